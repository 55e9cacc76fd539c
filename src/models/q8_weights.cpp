#include "models/q8_weights.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "io/safetensors.h"
#include "kernels/gemm_q8.h"
#include "kernels/q8_layout.h"

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
  quantize_q8_weights(p.value.data(), v.rows, v.cols, c->q.data(), c->s.data(), name.c_str());
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

Q8Layout q8_decode_layout() {
  return q8_dot_path(active_isa()) == Q8DotPath::Avx512Vnni ? Q8Layout::Rows4 : Q8Layout::Rows;
}

namespace {

// The weights a conversion rewrites, each with where its q8 values and scales go (fp32 scales
// in s, or bf16 scales in s16 when bf16_scales).
struct Q8Slot {
  Param* param;
  int64_t rows, cols;
  const char* name = "";  // for errors (points into the model's parameter list)
  bool bf16_scales = false;
  int8_t* q = nullptr;
  float* s = nullptr;
  uint16_t* s16 = nullptr;
  size_t scale_bytes() const {
    return static_cast<size_t>(rows * cols / kQ8Block) * (bf16_scales ? 2 : 4);
  }
};

// All of a model's q8 values and scales in one region on transparent huge pages (issue 18,
// session 10): a decode step streams all 150 MB of a 125M model's q8 weights, ~37K distinct
// 4 KiB pages, far beyond the data TLB (3K entries), and a page walk under a hypervisor costs
// up to ~24 memory references; 2 MiB pages make it 75 entries. Each tensor 64-byte aligned.
// Fills the slots' q and s; returns the largest slot's element count.
size_t place_in_one_region(LanguageModel& model, std::vector<Q8Slot>& slots) {
  auto up64 = [](size_t n) { return (n + 63) / 64 * 64; };
  size_t total = 0, largest = 0;
  for (const Q8Slot& t : slots) {
    const size_t n = static_cast<size_t>(t.rows * t.cols);
    total += up64(n) + up64(t.scale_bytes());
    largest = std::max(largest, n);
  }
  if (total == 0) return 0;
  std::shared_ptr<char[]> arena = alloc_bytes_uninit(total);
  model.keep_alive(arena);  // first: parameters point into it even if a later one fails
  size_t off = 0;
  for (Q8Slot& t : slots) {
    const size_t n = static_cast<size_t>(t.rows * t.cols);
    t.q = reinterpret_cast<int8_t*>(arena.get() + off);
    off += up64(n);
    if (t.bf16_scales)
      t.s16 = reinterpret_cast<uint16_t*>(arena.get() + off);
    else
      t.s = reinterpret_cast<float*>(arena.get() + off);
    off += up64(t.scale_bytes());
  }
  return largest;
}

}  // namespace

void convert_weights_to_q8(LanguageModel& model, std::optional<Q8Layout> layout) {
  const Q8Layout to = layout.value_or(q8_decode_layout());
  std::vector<Q8Slot> slots;
  // Rows4 keeps the scales as bf16 (quantize_q8_weights makes them bf16 values).
  for (auto& p : model.params())
    if (q8_capable(*p.param))
      slots.push_back({p.param, p.param->view().rows, p.param->view().cols, p.name.c_str(),
                       to == Q8Layout::Rows4});
  const size_t largest = place_in_one_region(model, slots);
  // Rows4: quantized row-major into a scratch copy, then rewritten into the region.
  std::unique_ptr<Q8Copy> scratch =
      to == Q8Layout::Rows || largest == 0 ? nullptr : std::make_unique<Q8Copy>(largest);
  for (const Q8Slot& t : slots) {
    Param& q = *t.param;
    if (to == Q8Layout::Rows) {
      quantize_q8_weights(q.value.data(), t.rows, t.cols, t.q, t.s, t.name);
      q.stored = {DType::Q8, t.q, t.rows, t.cols, t.s};
    } else {
      quantize_q8_weights(q.value.data(), t.rows, t.cols, scratch->q.data(), scratch->s.data(),
                          t.name);
      q.stored = q8_relayout(scratch->q.data(), scratch->s.data(), t.rows, t.cols, to, t.q, t.s,
                             t.s16);
    }
    q.value = Tensor::borrow(nullptr, q.value.shape());
  }
}

void relayout_q8_weights(LanguageModel& model, Q8Layout layout) {
  std::vector<Q8Slot> slots;
  for (auto& p : model.params()) {
    const Param& q = *p.param;
    if (q.has_stored() && q.stored.dtype == DType::Q8 && q.stored.layout != layout)
      slots.push_back({p.param, q.stored.rows, q.stored.cols, p.name.c_str()});
  }
  // Rows4 keeps a weight's scales as bf16 where every one is a bf16 value (files written since
  // session 14; older files keep fp32 scales). Views with bf16 scales are Rows4 only, so a
  // relayout to Rows widens them.
  for (Q8Slot& t : slots) {
    const WeightView& v = t.param->stored;
    t.bf16_scales = layout == Q8Layout::Rows4 && v.scales &&
                    q8_scales_are_bf16(v.scales, v.rows * (v.cols / kQ8Block));
  }
  const size_t largest = place_in_one_region(model, slots);
  if (largest == 0) return;
  Q8Copy scratch(largest);  // row-major rows of one weight, then rewritten into the region
  for (const Q8Slot& t : slots) {
    const WeightView v = t.param->stored;
    q8_copy_rows(v, 0, v.rows, scratch.q.data(), scratch.s.data());
    t.param->stored = q8_relayout(scratch.q.data(), scratch.s.data(), v.rows, v.cols, layout,
                                  t.q, t.s, t.s16);
    // The original is not read again: a mapped file's pages need not stay resident.
    release_pages(v.data, static_cast<size_t>(v.rows * v.cols));
    const size_t nb = static_cast<size_t>(v.rows * v.cols / kQ8Block);
    if (v.scales) release_pages(v.scales, nb * sizeof(float));
    if (v.scales_bf16) release_pages(v.scales_bf16, nb * sizeof(uint16_t));
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
