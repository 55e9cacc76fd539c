// libFuzzer target for the safetensors reader: any byte string must either parse or be refused
// with a hippo::Error. Anything else (a crash, a sanitizer report, another exception type
// escaping) is a bug. Built and run by scripts/fuzz_safetensors.sh.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    hippo::SafeTensors st = hippo::parse_safetensors(data, size, "fuzz.safetensors");
    // Touch every converted value so a bad offset would read out of bounds under ASan.
    volatile float sink = 0;
    for (auto& [name, t] : st.tensors)
      for (int64_t i = 0; i < t.numel(); ++i) sink = sink + t[i];
  } catch (const hippo::Error&) {
  }
  return 0;
}
