#include "train/checkpoint.h"

#include "core/error.h"
#include "io/safetensors.h"
#include "models/load.h"

namespace hippo {

void save_checkpoint(const std::string& path, const LanguageModel& model, const AdamW* opt,
                     const std::map<std::string, std::string>& extra_metadata) {
  std::vector<NamedTensor> list;
  std::vector<std::string> names;  // keeps the optimizer names alive
  for (auto& p : model.params()) {
    HIPPO_CHECK(!p.param->bf16, path, ": cannot save '", p.name, "': the model holds bf16 "
                "inference weights (save the fp32 model it came from)");
    list.push_back({p.name, &p.param->value});
  }
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

std::map<std::string, std::string> load_checkpoint(const std::string& path, LanguageModel& model,
                                                   AdamW* opt) {
  SafeTensorsReader st(path);
  load_model_weights(st, model);
  const auto& meta = st.header().metadata;
  if (opt) {
    auto step = meta.find("optim.step");
    HIPPO_CHECK(step != meta.end(), path,
                ": no optimizer state (__metadata__.optim.step); cannot resume from weights only");
    auto take = [&](const std::string& name, Tensor& into) {
      const TensorEntry& e = st.entry(name);
      HIPPO_CHECK(e.shape == into.shape(), path, ": tensor '", name, "' has shape ",
                  shape_str(e.shape), ", the optimizer expects ", shape_str(into.shape()));
      st.read_f32(name, into.data());
    };
    for (size_t i = 0; i < opt->params().size(); ++i) {
      take("optim.m." + opt->params()[i].name, opt->first_moments()[i]);
      take("optim.v." + opt->params()[i].name, opt->second_moments()[i]);
    }
    try {
      opt->set_steps(std::stoll(step->second));
    } catch (const std::exception&) {
      fail(path, ": __metadata__.optim.step is not an integer");
    }
  }
  return meta;
}

}  // namespace hippo
