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

void embedding_forward_bf16(const int32_t* ids, Bf16Data E, float* y, int64_t n, int64_t V,
                            int64_t d) {
  check_ids(ids, n, V, "embedding");
  HIPPO_CHECK(E.rows8 == 0 || (d % 32 == 0 && E.rows8 % 8 == 0 && E.rows8 <= V), "embedding: ",
              E.rows8, " of ", V, " rows of width ", d, " in the Rows8 order (whole groups of "
              "8 rows, width a multiple of 32)");
#pragma omp parallel for schedule(static) if (worth_parallel(n * d))
  for (int64_t i = 0; i < n; ++i) {
    const int64_t id = ids[i];
    if (id >= E.rows8) {
      const uint16_t* row = E.w + id * d;
      for (int64_t j = 0; j < d; ++j) y[i * d + j] = bf16_to_f32(row[j]);
    } else {  // the Rows8 order (core/weight.h): 32 consecutive elements at a time
      for (int64_t j = 0; j < d; j += 32) {
        const uint16_t* chunk = E.w + bf16_offset(id, j, d, E.rows8);
        for (int64_t c = 0; c < 32; ++c) y[i * d + j + c] = bf16_to_f32(chunk[c]);
      }
    }
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
