#include "models/q8_weights.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"
#include "kernels/gemm_q8.h"

namespace hippo {

namespace {

// 64-byte aligned storage (rows of 768 int8 then lie in whole cache lines).
template <class T>
struct AlignedArray {
  explicit AlignedArray(size_t n)
      : p(static_cast<T*>(std::aligned_alloc(64, std::max<size_t>(64, (n * sizeof(T) + 63) / 64 * 64)))) {
    HIPPO_CHECK(p != nullptr, "q8 weights: out of memory for ", n * sizeof(T), " bytes");
  }
  ~AlignedArray() { std::free(p); }
  AlignedArray(const AlignedArray&) = delete;
  AlignedArray& operator=(const AlignedArray&) = delete;
  T* data() const { return p; }
  T* p;
};

// One parameter's quantized values and scales.
struct Q8Copy {
  Q8Copy(size_t n) : q(n), s(n / kQ8Block) {}
  AlignedArray<int8_t> q;
  AlignedArray<float> s;
};

std::shared_ptr<Q8Copy> quantize_param(const Param& p, const std::string& name) {
  const WeightView v = p.view();
  auto c = std::make_shared<Q8Copy>(static_cast<size_t>(v.rows * v.cols));
  quantize_q8(p.value.data(), v.rows, v.cols, c->q.data(), c->s.data(), name.c_str());
  return c;
}

}  // namespace

bool q8_capable(const Param& p) {
  return p.accepts_stored && !p.has_stored() && p.value.numel() > 0 &&
         p.view().cols % kQ8Block == 0;
}

void round_weights_to_q8(LanguageModel& model) {
  for (auto& p : model.params()) {
    Param& q = *p.param;
    if (!q8_capable(q)) continue;
    auto c = quantize_param(q, p.name);
    const WeightView w{DType::Q8, c->q.data(), q.view().rows, q.view().cols, c->s.data()};
    dequantize_q8_rows(w, 0, w.rows, q.value.data());
  }
}

// One anonymous region for all of a model's q8 values and scales, 2 MiB aligned and advised
// onto transparent huge pages (issue 18, session 10): a decode step streams all 150 MB of a
// 125M model's q8 weights, i.e. ~37K distinct 4 KiB pages, far beyond the data TLB (3K
// entries), and a page walk under a hypervisor costs up to ~24 memory references; 2 MiB pages
// make it 75 entries. HIPPO_Q8_ARENA=0 keeps the former one-allocation-per-parameter layout
// (ordinary pages) for A/B measurements (bench/decode_variants_ab.sh).
struct HugeArena {
  explicit HugeArena(size_t n) : bytes((n + kHuge - 1) / kHuge * kHuge) {
    p = static_cast<char*>(std::aligned_alloc(kHuge, bytes));
    HIPPO_CHECK(p != nullptr, "q8 weights: out of memory for ", bytes, " bytes");
#ifdef MADV_HUGEPAGE
    ::madvise(p, bytes, MADV_HUGEPAGE);
#endif
  }
  ~HugeArena() { std::free(p); }
  HugeArena(const HugeArena&) = delete;
  HugeArena& operator=(const HugeArena&) = delete;
  static constexpr size_t kHuge = size_t{2} << 20;
  size_t bytes;
  char* p;
};

void convert_weights_to_q8(LanguageModel& model) {
  const char* env = std::getenv("HIPPO_Q8_ARENA");
  const bool arena = !(env && env[0] == '0');
  if (!arena) {
    for (auto& p : model.params()) {
      Param& q = *p.param;
      if (!q8_capable(q)) continue;
      auto c = quantize_param(q, p.name);
      q.stored = {DType::Q8, c->q.data(), q.view().rows, q.view().cols, c->s.data()};
      q.value = Tensor::borrow(nullptr, q.value.shape());
      model.keep_alive(std::move(c));
    }
    return;
  }
  auto up64 = [](size_t n) { return (n + 63) / 64 * 64; };
  size_t total = 0;
  for (auto& p : model.params()) {
    if (!q8_capable(*p.param)) continue;
    const size_t n = static_cast<size_t>(p.param->view().rows * p.param->view().cols);
    total += up64(n) + up64(n / kQ8Block * sizeof(float));
  }
  auto a = std::make_shared<HugeArena>(total);
  model.keep_alive(a);  // first: parameters point into it even if a later one fails to quantize
  size_t off = 0;
  for (auto& p : model.params()) {
    Param& q = *p.param;
    if (!q8_capable(q)) continue;
    const WeightView v = q.view();
    const size_t n = static_cast<size_t>(v.rows * v.cols);
    auto* qq = reinterpret_cast<int8_t*>(a->p + off);
    off += up64(n);
    auto* ss = reinterpret_cast<float*>(a->p + off);
    off += up64(n / kQ8Block * sizeof(float));
    quantize_q8(q.value.data(), v.rows, v.cols, qq, ss, p.name.c_str());
    q.stored = {DType::Q8, qq, v.rows, v.cols, ss};
    q.value = Tensor::borrow(nullptr, q.value.shape());
  }
}

void save_weights_q8(const std::string& path, const LanguageModel& model,
                     std::map<std::string, std::string> metadata) {
  std::vector<RawTensor> list;
  std::vector<std::shared_ptr<Q8Copy>> copies;
  for (auto& p : model.params()) {
    const Param& q = *p.param;
    HIPPO_CHECK(!q.has_stored(), path, ": cannot save '", p.name,
                "': it is already an inference view (save the fp32 model)");
    if (!q8_capable(q)) {
      list.push_back({p.name, "F32", q.value.shape(), q.value.data()});
      continue;
    }
    copies.push_back(quantize_param(q, p.name));
    const WeightView v = q.view();
    list.push_back({p.name, "I8", q.value.shape(), copies.back()->q.data()});
    list.push_back({p.name + kQ8ScaleSuffix, "F32", {v.rows, v.cols / kQ8Block},
                    copies.back()->s.data()});
  }
  metadata["format"] = "hippo";
  metadata["config"] = model.config().to_json().dump();
  metadata["weights"] = "q8";
  write_file_atomic(path, safetensors_bytes_raw(list, metadata));
}

}  // namespace hippo
