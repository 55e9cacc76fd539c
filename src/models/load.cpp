#include "models/load.h"

#include <cstring>
#include <set>
#include <vector>

#include "core/bf16.h"
#include "core/error.h"
#include "core/finite.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "io/strict_json.h"
#include "models/memory_check.h"
#include "models/q8_weights.h"

namespace hippo {

static ModelConfig config_of(const std::map<std::string, std::string>& meta,
                             const std::string& path) {
  auto it = meta.find("config");
  HIPPO_CHECK(it != meta.end(), path,
              ": no model config in __metadata__.config (not a hippo weights file; convert a "
              "PyTorch checkpoint with `hippo convert`)");
  const std::string source = path + ": __metadata__.config";
  return ModelConfig::from_json(parse_json_strict(it->second, source), source);
}

// The config is a claim; the tensors in the file (validated against its size) are real. A
// config describing far more parameters than the file holds (d_model 65536 in a 1 KB file)
// would make the constructor allocate for nothing, so it is refused before anything is built.
// A smaller gap is left to the per-tensor checks, whose errors name the missing tensor.
static ModelConfig checked_config(const SafeTensorsHeader& h, const std::string& path) {
  const ModelConfig cfg = config_of(h.metadata, path);
  uint64_t in_file = 0;
  for (auto& [name, e] : h.tensors)
    if (name.rfind("optim.", 0) != 0) in_file += static_cast<uint64_t>(shape_numel(e.shape));
  const uint64_t claimed = static_cast<uint64_t>(cfg.num_params());
  HIPPO_CHECK(claimed <= 2 * in_file + (1u << 20), path, ": __metadata__.config describes a model of ",
              claimed, " parameters, but the file holds only ", in_file, " weights");
  return cfg;
}

void check_finite(const float* x, int64_t n, const std::string& tensor, const std::string& file) {
  const int64_t i = first_nonfinite(x, n);
  if (i >= 0)
    fail(file, ": tensor '", tensor, "' holds a non-finite value (", x[i], " at element ", i, " of ",
         n, "); refusing to use NaN/Inf weights");
}

static void check_finite_bf16(const uint16_t* x, int64_t n, const std::string& tensor,
                              const std::string& file) {
  const int64_t i = first_nonfinite_bf16(x, n);
  if (i >= 0)
    fail(file, ": tensor '", tensor, "' holds a non-finite value (", bf16_to_f32(x[i]),
         " at element ", i, " of ", n, ", bf16); refusing to use NaN/Inf weights");
}

// A q8 weight NAME (I8) and its scales NAME.q8_scale (F32, (rows, cols / 32)), mapped in place
// (an oddly aligned scale tensor is copied). The values must lie in [-127, 127] (the VNNI kernel
// moves signs onto them) and the scales must be finite and non-negative.
static WeightView map_q8(const SafeTensorsHeader& h, unsigned char* data, const ParamRef& p,
                         const TensorEntry& e, LanguageModel& model, std::set<std::string>& loaded,
                         const std::string& path) {
  const WeightView v = p.param->view();
  const std::string sname = p.name + kQ8ScaleSuffix;
  HIPPO_CHECK(v.cols % kQ8Block == 0, path, ": tensor '", p.name, "' is I8 (q8) but its rows of ",
              v.cols, " are not whole blocks of ", kQ8Block);
  auto it = h.tensors.find(sname);
  HIPPO_CHECK(it != h.tensors.end(), path, ": tensor '", p.name,
              "' is I8 (q8) but its scales '", sname, "' are missing");
  const TensorEntry& se = it->second;
  const Shape want{v.rows, v.cols / kQ8Block};
  HIPPO_CHECK(se.dtype == "F32", path, ": tensor '", sname, "' must be F32, not ", se.dtype);
  HIPPO_CHECK(se.shape == want, path, ": tensor '", sname, "' has shape ", shape_str(se.shape),
              ", the q8 weight '", p.name, "' needs ", shape_str(want));
  const auto* q = reinterpret_cast<const int8_t*>(data + e.begin);
  const int64_t n = v.rows * v.cols, ns = v.rows * (v.cols / kQ8Block);
  for (int64_t i = 0; i < n; ++i)
    if (q[i] == -128)
      fail(path, ": tensor '", p.name, "' holds -128 at element ", i,
           "; q8 values must lie in [-127, 127]");
  const float* s = nullptr;
  unsigned char* src = data + se.begin;
  if (reinterpret_cast<uintptr_t>(src) % alignof(float) == 0) {
    s = reinterpret_cast<const float*>(src);
  } else {
    auto copy = std::make_shared<std::vector<float>>(static_cast<size_t>(ns));
    std::memcpy(copy->data(), src, static_cast<size_t>(ns) * 4);
    s = copy->data();
    model.keep_alive(std::move(copy));
  }
  check_finite(s, ns, sname, path);
  for (int64_t i = 0; i < ns; ++i)
    if (s[i] < 0) fail(path, ": tensor '", sname, "' holds a negative scale (", s[i], ") at element ", i);
  loaded.insert(sname);
  return {DType::Q8, q, v.rows, v.cols, s};
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
    HIPPO_CHECK(entry_for(st.header(), p, st.path()).dtype != "I8", st.path(), ": tensor '",
                p.name, "' is q8 (I8): a q8 file can only be run (memory-mapped, as hippo "
                "generate and eval load it), not read into fp32 weights");
    st.read_f32(p.name, p.param->value.data());
    check_finite(p.param->value.data(), p.param->value.numel(), p.name, st.path());
    loaded.insert(p.name);
  }
  check_no_extra(st.header(), loaded, st.path());
}

std::unique_ptr<LanguageModel> load_model_mapped(const std::string& path,
                                                 std::map<std::string, std::string>* metadata) {
  auto file = std::make_shared<MappedFile>(path);
  const SafeTensorsHeader h = parse_safetensors_header(file->data(), file->size(), file->size(), path);
  auto model = std::make_unique<LanguageModel>(checked_config(h, path));
  std::set<std::string> loaded;
  for (auto& p : model->params()) {
    const TensorEntry& e = entry_for(h, p, path);
    Param& q = *p.param;
    unsigned char* src = file->data() + h.data_offset + e.begin;
    const int64_t n = q.value.numel();
    const auto addr = reinterpret_cast<uintptr_t>(src);
    if (e.dtype == "BF16" && q.accepts_stored) {
      const uint16_t* bf16 = nullptr;
      if (addr % alignof(uint16_t) == 0) {
        bf16 = reinterpret_cast<const uint16_t*>(src);
      } else {  // a valid but oddly packed file: one aligned copy of this tensor
        auto copy = std::make_shared<std::vector<uint16_t>>(static_cast<size_t>(n));
        std::memcpy(copy->data(), src, static_cast<size_t>(n) * 2);
        bf16 = copy->data();
        model->keep_alive(std::move(copy));
      }
      check_finite_bf16(bf16, n, p.name, path);
      q.stored = {DType::BF16, bf16, q.view().rows, q.view().cols};
      // Frees the (untouched) fp32 storage made by the constructor; the shape stays.
      q.value = Tensor::borrow(nullptr, q.value.shape());
    } else if (e.dtype == "I8") {
      HIPPO_CHECK(q.accepts_stored, path, ": tensor '", p.name,
                  "' is I8 (q8), but only linear and embedding weights can be q8");
      q.stored = map_q8(h, file->data() + h.data_offset, p, e, *model, loaded, path);
      q.value = Tensor::borrow(nullptr, q.value.shape());
    } else if (e.dtype == "F32" && addr % alignof(float) == 0) {
      q.value = Tensor::borrow(reinterpret_cast<float*>(src), q.value.shape());
      check_finite(q.value.data(), n, p.name, path);
    } else {
      // Conversion can also overflow (an F64 above FLT_MAX becomes Inf): checked after it.
      convert_to_f32(e.dtype, src, static_cast<uint64_t>(n), q.value.data());
      check_finite(q.value.data(), n, p.name, path);
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
  const ModelConfig cfg = checked_config(st.header(), st.path());
  // Every weight becomes an fp32 copy in memory.
  check_model_memory(cfg, ModelUse::Fp32, st.path());
  auto model = std::make_unique<LanguageModel>(cfg);
  load_model_weights(st, *model);
  return model;
}

void load_model_weights(const std::string& path, LanguageModel& model) {
  SafeTensorsReader st(path);
  load_model_weights(st, model);
}

}  // namespace hippo
