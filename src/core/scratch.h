// Per-thread scratch memory of the kernels, owned by one process-wide registry so that it can be
// given back. Kernels called hundreds of times per token keep their temporaries in
// `thread_local ScratchBuffer`s (grow-only: no allocation once warm); every such buffer
// registers itself, thread_scratch_bytes() counts what they hold, and release_thread_scratch()
// frees all of them, on every thread (OpenMP's pool threads too), e.g. after a long prompt
// grew them or when an embedding program goes idle. The next kernel call allocates again.
#pragma once
#include <cstddef>

namespace hippo {

class ScratchBuffer {
 public:
  ScratchBuffer();   // registers with the registry
  ~ScratchBuffer();  // frees and unregisters (at thread exit for a thread_local)
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;

  // At least n floats, 64-byte aligned, zero on allocation. Contents are kept only if no
  // growth (and no release) happened since the last call.
  float* get(size_t n) {
    if (n > cap_ || data_ == nullptr) grow(n);
    return data_;
  }
  size_t capacity() const { return cap_; }
  // Gives the memory back; the next get() allocates (and first-touches) again.
  void release();

 private:
  void grow(size_t n);
  float* data_ = nullptr;
  size_t cap_ = 0;
};

// Bytes held by all ScratchBuffers of all threads.
size_t thread_scratch_bytes();

// Frees the memory of every ScratchBuffer of every thread. Call only while no kernel runs on any
// thread (between requests): a buffer in use by another thread would be freed under it.
void release_thread_scratch();

}  // namespace hippo
