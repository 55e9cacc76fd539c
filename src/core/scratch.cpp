#include "core/scratch.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_set>

#include "core/error.h"

namespace hippo {

namespace {

struct Registry {
  std::mutex mutex;  // guards `buffers`
  std::unordered_set<ScratchBuffer*> buffers;
  std::atomic<size_t> bytes{0};
};

// Never destroyed: OpenMP pool threads may run their thread_local destructors after the
// static destructors of the main thread.
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

size_t bytes_for(size_t floats) {
  const size_t b = (floats * sizeof(float) + 63) / 64 * 64;
  return b == 0 ? 64 : b;
}

}  // namespace

ScratchBuffer::ScratchBuffer() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.buffers.insert(this);
}

ScratchBuffer::~ScratchBuffer() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  release();
  r.buffers.erase(this);
}

void ScratchBuffer::grow(size_t n) {
  release();
  const size_t bytes = bytes_for(n);
  auto* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  HIPPO_CHECK(p != nullptr, "out of memory allocating ", bytes, " bytes of kernel scratch");
  std::memset(p, 0, bytes);
  data_ = p;
  cap_ = n;
  registry().bytes.fetch_add(bytes, std::memory_order_relaxed);
}

void ScratchBuffer::release() {
  if (data_ == nullptr) return;
  std::free(data_);
  registry().bytes.fetch_sub(bytes_for(cap_), std::memory_order_relaxed);
  data_ = nullptr;
  cap_ = 0;
}

size_t thread_scratch_bytes() { return registry().bytes.load(std::memory_order_relaxed); }

void release_thread_scratch() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (ScratchBuffer* b : r.buffers) b->release();
}

}  // namespace hippo
