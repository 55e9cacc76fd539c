// Below this many elements of work a loop runs on one thread: an OpenMP fork/join costs
// microseconds (much more on a loaded machine), more than small loops take serially.
#pragma once
#include <cstdint>

namespace hippo {

inline constexpr int64_t kMinParallelWork = int64_t{1} << 15;

inline bool worth_parallel(int64_t work) { return work >= kMinParallelWork; }

}  // namespace hippo
