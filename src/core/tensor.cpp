#include "core/tensor.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace hippo {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (auto v : s) n *= v;
  return n;
}

std::string shape_str(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + ")";
}

namespace {
constexpr size_t kHuge = size_t{2} << 20;

size_t padded_bytes(size_t n) {
  const size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
  return bytes == 0 ? 64 : bytes;
}

// Large buffers (activations of long sequences, prefill scratch) on transparent huge pages
// where the kernel offers them on request: first-touching 4 KiB pages one fault at a time
// was ~30% of a long training step's time (system time); a 2 MiB page is one fault.
// Returns the block (not yet touched) and its size in `bytes`.
float* allocate_block(size_t& bytes) {
  bytes = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
  if (bytes >= 2 * kHuge) {
    bytes = (bytes + kHuge - 1) / kHuge * kHuge;
    auto* p = static_cast<float*>(std::aligned_alloc(kHuge, bytes));
    HIPPO_CHECK(p != nullptr, "out of memory allocating ", bytes, " bytes");
#ifdef MADV_HUGEPAGE
    ::madvise(p, bytes, MADV_HUGEPAGE);  // advice only: without it, ordinary pages
#endif
    return p;
  }
  auto* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  HIPPO_CHECK(p != nullptr, "out of memory allocating ", bytes, " bytes");
  return p;
}

std::atomic<bool> g_poison_uninit{false};
}  // namespace

void poison_uninit_floats(bool on) { g_poison_uninit.store(on, std::memory_order_relaxed); }

std::shared_ptr<float[]> alloc_floats_uninit(size_t n) {
  size_t bytes = padded_bytes(n);
  float* p = allocate_block(bytes);
  if (g_poison_uninit.load(std::memory_order_relaxed))
    std::fill(p, p + bytes / sizeof(float), std::numeric_limits<float>::quiet_NaN());
  return std::shared_ptr<float[]>(p, [](float* q) { std::free(q); });
}

std::shared_ptr<char[]> alloc_bytes_uninit(size_t bytes) {
  char* p = reinterpret_cast<char*>(allocate_block(bytes));
  return std::shared_ptr<char[]>(p, [](char* q) { std::free(q); });
}

void release_pages(const void* p, size_t bytes) {
#ifdef MADV_PAGEOUT
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const auto a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t lo = (a + page - 1) / page * page, hi = (a + bytes) / page * page;
  if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_PAGEOUT);
#else
  (void)p;
  (void)bytes;
#endif
}

std::shared_ptr<float[]> alloc_floats(size_t n) {
  size_t bytes = padded_bytes(n);
  float* p = allocate_block(bytes);
  if (bytes >= 2 * kHuge) {
    // The first touch (the kernel's page clearing, then ours) split over the threads: serial,
    // it was half of a 125M-shape training step's first step at -t 2 (issue 18; each buffer's
    // first get() is in step 1). In 2 MiB pieces, so that each huge page faults in one thread.
    const int64_t pieces = static_cast<int64_t>(bytes / kHuge);
    char* base = reinterpret_cast<char*>(p);
#pragma omp parallel for schedule(static) if (pieces >= 4)
    for (int64_t i = 0; i < pieces; ++i) std::memset(base + i * kHuge, 0, kHuge);
    return std::shared_ptr<float[]>(p, [](float* q) { std::free(q); });
  }
  // Split over the threads as above (a training step's (B*L, d) activations are 3 MiB at the
  // 125M shape), in 256 KiB pieces.
  constexpr size_t kPiece = size_t{256} << 10;
  const int64_t pieces = static_cast<int64_t>((bytes + kPiece - 1) / kPiece);
  char* base = reinterpret_cast<char*>(p);
#pragma omp parallel for schedule(static) if (pieces >= 4)
  for (int64_t i = 0; i < pieces; ++i) {
    const size_t b0 = static_cast<size_t>(i) * kPiece;
    std::memset(base + b0, 0, std::min(kPiece, bytes - b0));
  }
  return std::shared_ptr<float[]>(p, [](float* q) { std::free(q); });
}

std::shared_ptr<float[]> alloc_floats_untouched(size_t n) {
  size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
  if (bytes < (size_t{1} << 20)) return alloc_floats(n);
  // Fresh anonymous pages read as zero and take no resident memory until written.
  void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  HIPPO_CHECK(m != MAP_FAILED, "out of memory allocating ", bytes, " bytes");
  return std::shared_ptr<float[]>(static_cast<float*>(m), [bytes](float* q) { ::munmap(q, bytes); });
}

static Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t s = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    st[i] = s;
    s *= shape[i];
  }
  return st;
}

Tensor Tensor::zeros(Shape shape) { return zeros_impl(std::move(shape), false); }

Tensor Tensor::zeros_untouched(Shape shape) { return zeros_impl(std::move(shape), true); }

Tensor Tensor::zeros_impl(Shape shape, bool untouched) {
  for (auto v : shape) HIPPO_CHECK(v >= 0, "negative tensor size in shape ", shape_str(shape));
  Tensor t;
  const size_t n = static_cast<size_t>(shape_numel(shape));
  t.storage_ = untouched ? alloc_floats_untouched(n) : alloc_floats(n);
  t.data_ = t.storage_.get();
  t.strides_ = contiguous_strides(shape);
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::borrow(float* data, Shape shape) {
  Tensor t;
  t.data_ = data;
  t.strides_ = contiguous_strides(shape);
  t.shape_ = std::move(shape);
  return t;
}

bool Tensor::contiguous() const { return strides_ == contiguous_strides(shape_); }

Tensor Tensor::view(Shape shape) const {
  HIPPO_CHECK(contiguous(), "view of a non-contiguous tensor");
  HIPPO_CHECK(shape_numel(shape) == numel(), "view ", shape_str(shape), " of tensor ",
              shape_str(shape_), " changes the element count");
  Tensor t = *this;
  t.strides_ = contiguous_strides(shape);
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::slice(int d, int64_t begin, int64_t end) const {
  if (d < 0) d += dim();
  HIPPO_CHECK(d >= 0 && d < dim() && 0 <= begin && begin <= end && end <= shape_[d],
              "slice [", begin, ", ", end, ") out of range for dim ", d, " of ", shape_str(shape_));
  Tensor t = *this;
  t.data_ = data_ + begin * strides_[d];
  t.shape_[d] = end - begin;
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = zeros(shape_);
  t.copy_from(*this);
  return t;
}

static int64_t offset_of(const Shape& shape, const Shape& strides,
                         std::initializer_list<int64_t> idx) {
  HIPPO_CHECK(idx.size() == shape.size(), "index has ", idx.size(), " dims, tensor has ",
              shape.size());
  int64_t off = 0;
  size_t i = 0;
  for (auto v : idx) {
    HIPPO_CHECK(v >= 0 && v < shape[i], "index ", v, " out of range for dim ", i, " of size ",
                shape[i]);
    off += v * strides[i++];
  }
  return off;
}

float& Tensor::at(std::initializer_list<int64_t> idx) {
  return data_[offset_of(shape_, strides_, idx)];
}
float Tensor::at(std::initializer_list<int64_t> idx) const {
  return data_[offset_of(shape_, strides_, idx)];
}

// Visits every element of a (possibly strided) tensor in row-major order.
template <typename F>
static void for_each_offset(const Shape& shape, const Shape& strides, F f) {
  int nd = static_cast<int>(shape.size());
  int64_t n = shape_numel(shape);
  if (n == 0) return;
  std::vector<int64_t> idx(nd, 0);
  for (int64_t lin = 0; lin < n; ++lin) {
    int64_t off = 0;
    for (int i = 0; i < nd; ++i) off += idx[i] * strides[i];
    f(lin, off);
    for (int i = nd - 1; i >= 0; --i) {
      if (++idx[i] < shape[i]) break;
      idx[i] = 0;
    }
  }
}

void Tensor::fill(float v) {
  for_each_offset(shape_, strides_, [&](int64_t, int64_t off) { data_[off] = v; });
}

void Tensor::copy_from(const Tensor& src) {
  HIPPO_CHECK(src.shape_ == shape_, "copy from ", shape_str(src.shape_), " into ",
              shape_str(shape_));
  if (contiguous() && src.contiguous()) {
    std::memcpy(data_, src.data_, sizeof(float) * numel());
    return;
  }
  std::vector<float> tmp(numel());
  for_each_offset(src.shape_, src.strides_, [&](int64_t lin, int64_t off) { tmp[lin] = src.data_[off]; });
  for_each_offset(shape_, strides_, [&](int64_t lin, int64_t off) { data_[off] = tmp[lin]; });
}

}  // namespace hippo
