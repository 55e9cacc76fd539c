// Grow-only scratch memory. Layers keep their saved activations and temporaries in Buffers
// sized on the first step, so the training loop touches no new pages after that
// (first-touch costs about 2 us per 4 KiB page here).
#pragma once
#include <cstddef>
#include <memory>

#include "core/tensor.h"

namespace hippo {

class Buffer {
 public:
  // At least n floats, 64-byte aligned. Contents are kept only if no growth happened.
  float* get(size_t n) { return grow(n, /*zeroed=*/true); }
  // The same without zeroing new memory (alloc_floats_uninit): for a caller that writes all
  // n floats before reading them.
  float* get_uninit(size_t n) { return grow(n, /*zeroed=*/false); }
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  size_t capacity() const { return cap_; }
  // Gives the memory back; the next get() allocates (and first-touches) again.
  void release() {
    data_.reset();
    cap_ = 0;
  }

 private:
  float* grow(size_t n, bool zeroed) {
    if (n > cap_) {
      data_.reset();  // the old block goes first: at most one of the two is held
      data_ = zeroed ? alloc_floats(n) : alloc_floats_uninit(n);
      cap_ = n;
    }
    return data_.get();
  }
  std::shared_ptr<float[]> data_;
  size_t cap_ = 0;
};

template <class... Bufs>
void release_buffers(Bufs&... bufs) {
  (bufs.release(), ...);
}

}  // namespace hippo
