#include "models/load.h"

#include <cstring>
#include <set>
#include <vector>

#include "core/error.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"

namespace hippo {

static ModelConfig config_of(const std::map<std::string, std::string>& meta,
                             const std::string& path) {
  auto it = meta.find("config");
  HIPPO_CHECK(it != meta.end(), path,
              ": no model config in __metadata__.config (not a hippo weights file; convert a "
              "PyTorch checkpoint with `hippo convert`)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": __metadata__.config is not valid JSON: ", e.what());
  }
  return ModelConfig::from_json(j, path + ": __metadata__.config");
}

static const TensorEntry& entry_for(const SafeTensorsHeader& h, const ParamRef& p,
                                    const std::string& path) {
  auto it = h.tensors.find(p.name);
  HIPPO_CHECK(it != h.tensors.end(), path, ": missing tensor '", p.name, "'");
  const Shape& want = p.param->value.shape();
  HIPPO_CHECK(it->second.shape == want, path, ": tensor '", p.name, "' has shape ",
              shape_str(it->second.shape), ", the model expects ", shape_str(want));
  return it->second;
}

static void check_no_extra(const SafeTensorsHeader& h, const std::set<std::string>& loaded,
                           const std::string& path) {
  for (auto& [name, e] : h.tensors)
    HIPPO_CHECK(loaded.count(name) || name.rfind("optim.", 0) == 0, path,
                ": unexpected tensor '", name, "' (not a parameter of this model)");
}

void load_model_weights(const SafeTensorsReader& st, LanguageModel& model) {
  HIPPO_CHECK(!model.has_external_weights(), st.path(),
              ": cannot load into a model whose weights were loaded for inference");
  std::set<std::string> loaded;
  for (auto& p : model.params()) {
    entry_for(st.header(), p, st.path());
    st.read_f32(p.name, p.param->value.data());
    loaded.insert(p.name);
  }
  check_no_extra(st.header(), loaded, st.path());
}

std::unique_ptr<LanguageModel> load_model_mapped(const std::string& path,
                                                 std::map<std::string, std::string>* metadata) {
  auto file = std::make_shared<MappedFile>(path);
  const SafeTensorsHeader h = parse_safetensors_header(file->data(), file->size(), file->size(), path);
  auto model = std::make_unique<LanguageModel>(config_of(h.metadata, path));
  std::set<std::string> loaded;
  for (auto& p : model->params()) {
    const TensorEntry& e = entry_for(h, p, path);
    Param& q = *p.param;
    unsigned char* src = file->data() + h.data_offset + e.begin;
    const int64_t n = q.value.numel();
    const auto addr = reinterpret_cast<uintptr_t>(src);
    if (e.dtype == "BF16" && q.accepts_bf16) {
      if (addr % alignof(uint16_t) == 0) {
        q.bf16 = reinterpret_cast<const uint16_t*>(src);
      } else {  // a valid but oddly packed file: one aligned copy of this tensor
        auto copy = std::make_shared<std::vector<uint16_t>>(static_cast<size_t>(n));
        std::memcpy(copy->data(), src, static_cast<size_t>(n) * 2);
        q.bf16 = copy->data();
        model->keep_alive(std::move(copy));
      }
      // Frees the (untouched) fp32 storage made by the constructor; the shape stays.
      q.value = Tensor::borrow(nullptr, q.value.shape());
    } else if (e.dtype == "F32" && addr % alignof(float) == 0) {
      q.value = Tensor::borrow(reinterpret_cast<float*>(src), q.value.shape());
    } else {
      convert_to_f32(e.dtype, src, static_cast<uint64_t>(n), q.value.data());
    }
    loaded.insert(p.name);
  }
  check_no_extra(h, loaded, path);
  model->keep_alive(std::move(file));
  if (metadata) *metadata = h.metadata;
  return model;
}

ModelConfig read_model_config(const std::string& path) {
  SafeTensorsReader st(path);
  return config_of(st.header().metadata, st.path());
}

std::unique_ptr<LanguageModel> load_model(const std::string& path) {
  SafeTensorsReader st(path);
  auto model = std::make_unique<LanguageModel>(config_of(st.header().metadata, st.path()));
  load_model_weights(st, *model);
  return model;
}

void load_model_weights(const std::string& path, LanguageModel& model) {
  SafeTensorsReader st(path);
  load_model_weights(st, model);
}

}  // namespace hippo
