#include "models/load.h"

#include <set>

#include "core/error.h"
#include "io/safetensors.h"

namespace hippo {

static ModelConfig config_of(const SafeTensorsReader& st) {
  const auto& meta = st.header().metadata;
  auto it = meta.find("config");
  HIPPO_CHECK(it != meta.end(), st.path(),
              ": no model config in __metadata__.config (not a hippo weights file; convert a "
              "PyTorch checkpoint with `hippo convert`)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    fail(st.path(), ": __metadata__.config is not valid JSON: ", e.what());
  }
  return ModelConfig::from_json(j, st.path() + ": __metadata__.config");
}

void load_model_weights(const SafeTensorsReader& st, LanguageModel& model) {
  std::set<std::string> loaded;
  for (auto& p : model.params()) {
    const TensorEntry& e = st.entry(p.name);
    Tensor& into = p.param->value;
    HIPPO_CHECK(e.shape == into.shape(), st.path(), ": tensor '", p.name, "' has shape ",
                shape_str(e.shape), ", the model expects ", shape_str(into.shape()));
    st.read_f32(p.name, into.data());
    loaded.insert(p.name);
  }
  for (auto& [name, e] : st.header().tensors)
    HIPPO_CHECK(loaded.count(name) || name.rfind("optim.", 0) == 0, st.path(),
                ": unexpected tensor '", name, "' (not a parameter of this model)");
}

ModelConfig read_model_config(const std::string& path) {
  SafeTensorsReader st(path);
  return config_of(st);
}

std::unique_ptr<LanguageModel> load_model(const std::string& path) {
  SafeTensorsReader st(path);
  auto model = std::make_unique<LanguageModel>(config_of(st));
  load_model_weights(st, *model);
  return model;
}

void load_model_weights(const std::string& path, LanguageModel& model) {
  SafeTensorsReader st(path);
  load_model_weights(st, model);
}

}  // namespace hippo
