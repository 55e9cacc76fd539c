#include "models/bf16_weights.h"

#include <set>
#include <vector>

#include "core/bf16.h"
#include "core/error.h"
#include "io/safetensors.h"

namespace hippo {

void round_weights_to_bf16(LanguageModel& model) {
  for (auto& p : model.params()) {
    if (!p.param->accepts_bf16 || p.param->bf16) continue;
    float* v = p.param->value.data();
    for (int64_t i = 0; i < p.param->value.numel(); ++i) v[i] = bf16_to_f32(f32_to_bf16(v[i]));
  }
}

void convert_weights_to_bf16(LanguageModel& model) {
  for (auto& p : model.params()) {
    Param& q = *p.param;
    if (!q.accepts_bf16 || q.bf16) continue;
    auto copy = std::make_shared<std::vector<uint16_t>>(static_cast<size_t>(q.value.numel()));
    f32_to_bf16(q.value.data(), copy->data(), q.value.numel());
    q.bf16 = copy->data();
    q.value = Tensor::borrow(nullptr, q.value.shape());
    model.keep_alive(std::move(copy));
  }
}

void save_weights_bf16(const std::string& path, const LanguageModel& model) {
  std::vector<NamedTensor> list;
  std::set<std::string> as_bf16;
  for (auto& p : model.params()) {
    HIPPO_CHECK(!p.param->bf16, path, ": cannot save '", p.name,
                "': it is already a bf16 inference view (save the fp32 model)");
    list.push_back({p.name, &p.param->value});
    if (p.param->accepts_bf16) as_bf16.insert(p.name);
  }
  save_safetensors(path, list,
                   {{"format", "hippo"}, {"config", model.config().to_json().dump()}}, as_bf16);
}

}  // namespace hippo
