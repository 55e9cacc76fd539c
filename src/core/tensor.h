// A small fp32 tensor: shape, strides, and either owned (shared) or borrowed storage.
// Kernels take raw pointers; Tensor is what parameters, checkpoints and tests hold.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace hippo {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);

// 64-byte aligned float storage; contents are zeroed.
std::shared_ptr<float[]> alloc_floats(size_t n);
// The same storage, not zeroed: contents unspecified. Only for memory that the caller writes
// in full before reading any of it (outputs of products, convolutions, copies), so that it
// costs no clearing pass on top of the page faults (prefill scratch is allocated per call).
std::shared_ptr<float[]> alloc_floats_uninit(size_t n);
// Tests: alloc_floats_uninit fills its memory with NaN while on, so that a read of anything
// not written first shows in the results.
void poison_uninit_floats(bool on);
// Zeroed too, but large blocks are fresh pages that take no resident memory until written
// (for memory that may never be used, like the gradients of a model loaded for inference).
std::shared_ptr<float[]> alloc_floats_untouched(size_t n);

// Uninitialised bytes, 64-byte aligned; from 4 MiB up 2 MiB-aligned and advised onto
// transparent huge pages (as the float blocks above). For read-mostly data streamed whole, like
// q8 weights (models/q8_weights.cpp).
std::shared_ptr<char[]> alloc_bytes_uninit(size_t bytes);

// Tells the kernel that the whole pages inside [p, p + bytes) will not be read again soon, so
// it may reclaim them (MADV_PAGEOUT: clean file pages are dropped, anonymous ones swapped; the
// contents stay valid either way). For a mapped file's tensors once copied elsewhere. Advice
// only: nothing happens where the kernel lacks it.
void release_pages(const void* p, size_t bytes);

class Tensor {
 public:
  Tensor() = default;
  static Tensor zeros(Shape shape);
  // Same, backed by alloc_floats_untouched.
  static Tensor zeros_untouched(Shape shape);
  // A view of memory someone else owns; the caller keeps it alive.
  static Tensor borrow(float* data, Shape shape);

  float* data() { return data_; }
  const float* data() const { return data_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int dim() const { return static_cast<int>(shape_.size()); }
  int64_t size(int i) const { return shape_[i < 0 ? i + dim() : i]; }
  int64_t stride(int i) const { return strides_[i < 0 ? i + dim() : i]; }
  int64_t numel() const { return shape_numel(shape_); }
  bool empty() const { return data_ == nullptr; }
  bool contiguous() const;
  bool owned() const { return storage_ != nullptr; }

  // Same storage, new shape (contiguous tensors only).
  Tensor view(Shape shape) const;
  // Same storage, [begin, end) along dimension d.
  Tensor slice(int d, int64_t begin, int64_t end) const;
  // A contiguous owned copy.
  Tensor clone() const;

  float& operator[](int64_t i) { return data_[i]; }
  float operator[](int64_t i) const { return data_[i]; }
  float& at(std::initializer_list<int64_t> idx);
  float at(std::initializer_list<int64_t> idx) const;

  void fill(float v);
  void copy_from(const Tensor& src);

 private:
  static Tensor zeros_impl(Shape shape, bool untouched);
  std::shared_ptr<float[]> storage_;
  float* data_ = nullptr;
  Shape shape_, strides_;
};

}  // namespace hippo
