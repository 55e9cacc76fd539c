#include "train/checkpoint.h"

#include <set>

#include "core/error.h"
#include "io/safetensors.h"

namespace hippo {

void save_checkpoint(const std::string& path, const LanguageModel& model, const AdamW* opt,
                     const std::map<std::string, std::string>& extra_metadata) {
  std::vector<NamedTensor> list;
  std::vector<std::string> names;  // keeps the optimizer names alive
  for (auto& p : model.params()) list.push_back({p.name, &p.param->value});
  std::map<std::string, std::string> meta = extra_metadata;
  meta["format"] = "hippo";
  meta["config"] = model.config().to_json().dump();
  if (opt) {
    const auto& m = opt->first_moments();
    const auto& v = opt->second_moments();
    names.reserve(2 * opt->params().size());
    for (size_t i = 0; i < opt->params().size(); ++i) {
      names.push_back("optim.m." + opt->params()[i].name);
      list.push_back({names.back(), &m[i]});
      names.push_back("optim.v." + opt->params()[i].name);
      list.push_back({names.back(), &v[i]});
    }
    meta["optim.step"] = std::to_string(opt->steps());
  }
  save_safetensors(path, list, meta);
}

void save_weights(const std::string& path, const LanguageModel& model) {
  save_checkpoint(path, model, nullptr);
}

ModelConfig read_checkpoint_config(const std::string& path) {
  SafeTensors st = load_safetensors(path);
  HIPPO_CHECK(st.metadata.count("config"), path, ": no model config in __metadata__.config");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(st.metadata["config"]);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": __metadata__.config is not valid JSON: ", e.what());
  }
  return ModelConfig::from_json(j, path + ": __metadata__.config");
}

std::map<std::string, std::string> load_checkpoint(const std::string& path, LanguageModel& model,
                                                   AdamW* opt) {
  SafeTensors st = load_safetensors(path);
  std::set<std::string> expected;
  auto take = [&](const std::string& name, Tensor& into) {
    const Tensor& t = st.get(name, path);
    HIPPO_CHECK(t.shape() == into.shape(), path, ": tensor '", name, "' has shape ",
                shape_str(t.shape()), ", the model expects ", shape_str(into.shape()));
    into.copy_from(t);
    expected.insert(name);
  };
  for (auto& p : model.params()) take(p.name, p.param->value);
  if (opt) {
    HIPPO_CHECK(st.metadata.count("optim.step"), path,
                ": no optimizer state (__metadata__.optim.step); cannot resume from weights only");
    for (size_t i = 0; i < opt->params().size(); ++i) {
      take("optim.m." + opt->params()[i].name, opt->first_moments()[i]);
      take("optim.v." + opt->params()[i].name, opt->second_moments()[i]);
    }
    try {
      opt->set_steps(std::stoll(st.metadata["optim.step"]));
    } catch (const std::exception&) {
      fail(path, ": __metadata__.optim.step is not an integer");
    }
  }
  for (auto& [name, t] : st.tensors)
    HIPPO_CHECK(expected.count(name) || (!opt && name.rfind("optim.", 0) == 0), path,
                ": unexpected tensor '", name, "' (not a parameter of this model)");
  return st.metadata;
}

}  // namespace hippo
