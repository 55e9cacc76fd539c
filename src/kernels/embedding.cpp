#include "kernels/embedding.h"

#include <algorithm>
#include <cstring>

#include "core/bf16.h"
#include "core/error.h"
#include "kernels/parallel_work.h"

namespace hippo {

static void check_ids(const int32_t* ids, int64_t n, int64_t V, const char* what) {
  for (int64_t i = 0; i < n; ++i)
    HIPPO_CHECK(ids[i] >= 0 && ids[i] < V, what, ": token id ", ids[i], " at position ", i,
                " is out of range for vocabulary size ", V);
}

void embedding_forward(const int32_t* ids, const float* E, float* y, int64_t n, int64_t V,
                       int64_t d) {
  check_ids(ids, n, V, "embedding");
#pragma omp parallel for schedule(static) if (worth_parallel(n * d))
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(y + i * d, E + static_cast<int64_t>(ids[i]) * d, sizeof(float) * d);
}

void embedding_forward_bf16(const int32_t* ids, const uint16_t* E, float* y, int64_t n,
                            int64_t V, int64_t d) {
  check_ids(ids, n, V, "embedding");
#pragma omp parallel for schedule(static) if (worth_parallel(n * d))
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t* row = E + static_cast<int64_t>(ids[i]) * d;
    for (int64_t j = 0; j < d; ++j) y[i * d + j] = bf16_to_f32(row[j]);
  }
}

void embedding_backward(const int32_t* ids, const float* dy, float* dE, int64_t n, int64_t V,
                        int64_t d) {
  check_ids(ids, n, V, "embedding backward");
  // Threads split the columns, so repeated ids never race.
  constexpr int64_t kBlock = 64;
  const int64_t nblocks = (d + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (worth_parallel(n * d))
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t j0 = blk * kBlock, j1 = std::min(d, j0 + kBlock);
    for (int64_t i = 0; i < n; ++i) {
      float* row = dE + static_cast<int64_t>(ids[i]) * d;
      const float* g = dy + i * d;
      for (int64_t j = j0; j < j1; ++j) row[j] += g[j];
    }
  }
}

}  // namespace hippo
