#include "models/bf16_weights.h"

#include <algorithm>
#include <set>
#include <type_traits>
#include <vector>

#include "core/bf16.h"
#include "core/tensor.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "kernels/gemm_small.h"

namespace hippo {

void round_weights_to_bf16(LanguageModel& model) {
  for (auto& p : model.params()) {
    if (!p.param->accepts_stored || p.param->has_stored()) continue;
    float* v = p.param->value.data();
    for (int64_t i = 0; i < p.param->value.numel(); ++i) v[i] = bf16_to_f32(f32_to_bf16(v[i]));
  }
}

Bf16Layout bf16_decode_layout() {
  return small_rows_kernel_available() ? Bf16Layout::Rows8 : Bf16Layout::Rows;
}

namespace {

// The layout a (rows, cols) weight takes when `want` is asked: Rows8 needs whole 32-element
// chunks and at least one group.
Bf16Layout layout_for(int64_t rows, int64_t cols, Bf16Layout want) {
  return want == Bf16Layout::Rows8 && cols % 32 == 0 && rows >= 8 ? Bf16Layout::Rows8
                                                                  : Bf16Layout::Rows;
}

// Writes the row-major (rows, cols) `src` (fp32 or bf16) into dst in `layout`.
template <class T>
void write_bf16(const T* src, int64_t rows, int64_t cols, Bf16Layout layout, uint16_t* dst) {
  const int64_t rows8 = layout == Bf16Layout::Rows8 ? rows / 8 * 8 : 0;
#pragma omp parallel for schedule(static) if (rows * cols >= (int64_t{1} << 20))
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; c += 32) {
      uint16_t* d = dst + bf16_offset(r, c, cols, rows8);
      const T* s = src + r * cols + c;
      const int64_t n = std::min<int64_t>(32, cols - c);
      for (int64_t j = 0; j < n; ++j) {
        if constexpr (std::is_same_v<T, float>)
          d[j] = f32_to_bf16(s[j]);
        else
          d[j] = s[j];
      }
    }
}

// One region on transparent huge pages for `bytes`, kept alive by the model (as the q8
// conversion does, models/q8_weights.cpp: a batch-1 step streams every weight once).
char* weights_region(LanguageModel& model, size_t bytes) {
  std::shared_ptr<char[]> arena = alloc_bytes_uninit(bytes);
  model.keep_alive(arena);
  return arena.get();
}

size_t up64(size_t n) { return (n + 63) / 64 * 64; }

}  // namespace

void convert_weights_to_bf16(LanguageModel& model, std::optional<Bf16Layout> layout) {
  const Bf16Layout want = layout.value_or(bf16_decode_layout());
  std::vector<Param*> todo;
  size_t total = 0;
  for (auto& p : model.params()) {
    Param& q = *p.param;
    if (!q.accepts_stored || q.has_stored()) continue;
    todo.push_back(&q);
    total += up64(static_cast<size_t>(q.value.numel()) * sizeof(uint16_t));
  }
  if (todo.empty()) return;
  char* region = weights_region(model, total);
  size_t off = 0;
  for (Param* q : todo) {
    const int64_t rows = q->view().rows, cols = q->view().cols;
    auto* dst = reinterpret_cast<uint16_t*>(region + off);
    off += up64(static_cast<size_t>(q->value.numel()) * sizeof(uint16_t));
    const Bf16Layout to = layout_for(rows, cols, want);
    write_bf16(q->value.data(), rows, cols, to, dst);
    q->stored = {DType::BF16, dst, rows, cols};
    q->stored.bf16_layout = to;
    // Frees the fp32 storage; the shape stays.
    q->value = Tensor::borrow(nullptr, q->value.shape());
  }
}

void relayout_bf16_weights(LanguageModel& model, Bf16Layout layout) {
  std::vector<Param*> todo;
  size_t total = 0;
  for (auto& p : model.params()) {
    const Param& q = *p.param;
    if (!q.has_stored() || q.stored.dtype != DType::BF16) continue;
    if (layout_for(q.stored.rows, q.stored.cols, layout) == q.stored.bf16_layout) continue;
    todo.push_back(p.param);
    total += up64(static_cast<size_t>(q.stored.rows * q.stored.cols) * sizeof(uint16_t));
  }
  if (todo.empty()) return;
  char* region = weights_region(model, total);
  size_t off = 0;
  std::vector<uint16_t> rowmajor;
  for (Param* q : todo) {
    const WeightView v = q->stored;
    auto* dst = reinterpret_cast<uint16_t*>(region + off);
    off += up64(static_cast<size_t>(v.rows * v.cols) * sizeof(uint16_t));
    const Bf16Data from = bf16_data(v);
    const uint16_t* src = from.w;
    if (from.rows8 > 0) {  // back to row-major first
      rowmajor.resize(static_cast<size_t>(v.rows * v.cols));
      for (int64_t r = 0; r < v.rows; ++r)
        for (int64_t c = 0; c < v.cols; ++c)
          rowmajor[r * v.cols + c] = src[bf16_offset(r, c, v.cols, from.rows8)];
      src = rowmajor.data();
    }
    const Bf16Layout to = layout_for(v.rows, v.cols, layout);
    write_bf16(src, v.rows, v.cols, to, dst);
    q->stored.data = dst;
    q->stored.bf16_layout = to;
    // The original is not read again: a mapped file's pages need not stay resident (125M
    // hybrid from a bf16 file: peak RSS 627 MB without this, with the copy).
    release_pages(from.w, static_cast<size_t>(v.rows * v.cols) * sizeof(uint16_t));
  }
}

void save_weights_bf16(const std::string& path, const LanguageModel& model) {
  std::vector<NamedTensor> list;
  std::set<std::string> as_bf16;
  for (auto& p : model.params()) {
    HIPPO_CHECK(!p.param->has_stored(), path, ": cannot save '", p.name,
                "': it is already a bf16 inference view (save the fp32 model)");
    list.push_back({p.name, &p.param->value});
    if (p.param->accepts_stored) as_bf16.insert(p.name);
  }
  save_safetensors(path, list,
                   {{"format", "hippo"}, {"config", model.config().to_json().dump()}}, as_bf16);
}

}  // namespace hippo
