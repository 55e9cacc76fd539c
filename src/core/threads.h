// Thread control. All parallel work uses OpenMP; oneDNN's GEMM follows the same setting.
#pragma once

namespace hippo {

// n <= 0 means all hardware threads.
void set_num_threads(int n);
int num_threads();

}  // namespace hippo
