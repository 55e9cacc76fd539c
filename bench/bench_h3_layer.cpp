// Whole H3 layer forward + backward: FlashConv path against the plain FFTW path, on the same
// inputs. Usage: bench_h3_layer [reps]. Medians of process CPU time (steady on a shared
// machine; all threads together) and of wall time; 1 thread unless OMP_NUM_THREADS says
// otherwise. head_dim 1, d_state 64; the FlashConv path is the fused H3 op.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

#include "bench_timing.h"
#include "core/rng.h"
#include "nn/h3.h"

using namespace hippo;

namespace {

using bench::Timing;

Timing median_ms(H3& layer, const std::vector<float>& x, const std::vector<float>& dy, int B, int L,
                 int reps) {
  std::vector<float> y(x.size()), dx(x.size());
  return bench::median_timing(
      [&] {
        layer.forward(x.data(), y.data(), B, L);
        layer.backward(dy.data(), dx.data());
      },
      reps);
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 5;
  std::printf("%-16s %22s %22s %8s\n", "B,L,d", "FFTW path cpu (wall) ms",
              "FlashConv cpu (wall) ms", "ratio");
  const int shapes[][3] = {{1, 1024, 768}, {4, 1024, 768}, {1, 8192, 256}};
  for (auto& s : shapes) {
    const int B = s[0], L = s[1], d = s[2];
    Rng rng(1);
    std::vector<float> x(static_cast<size_t>(B) * L * d), dy(x.size());
    for (auto& v : x) v = static_cast<float>(rng.normal());
    for (auto& v : dy) v = static_cast<float>(rng.normal());
    H3 fast(d), ref(d);
    Rng a(2), b(2);
    fast.init(a, 12);
    ref.init(b, 12);
    ref.reference_conv = true;
    const Timing tr = median_ms(ref, x, dy, B, L, reps), tf = median_ms(fast, x, dy, B, L, reps);
    char name[32];
    std::snprintf(name, sizeof name, "%d,%d,%d", B, L, d);
    std::printf("%-16s %12.1f (%7.1f) %12.1f (%7.1f) %7.2fx\n", name, tr.cpu_ms, tr.wall_ms,
                tf.cpu_ms, tf.wall_ms, tr.cpu_ms / tf.cpu_ms);
    std::fflush(stdout);
  }
  return 0;
}
