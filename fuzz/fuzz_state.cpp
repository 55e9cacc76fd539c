// libFuzzer target for generation state files (load_state, the path of `generate
// --load-state`), loaded for a tiny model of every layer kind: any bytes must load or be
// refused with a hippo::Error. A state that loads must step (the layers trust its shapes).
// Built and run by scripts/fuzz.sh state.
#include <cmath>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "fuzz/fuzz_common.h"
#include "generate/state_io.h"
#include "io/safetensors.h"
#include "models/lm.h"
#include "nn/attention.h"
#include "nn/h3.h"
#include "nn/s4d_mixer.h"

using namespace hippo;

namespace {

LanguageModel& model() {
  static LanguageModel* m = [] {
    auto* p = new LanguageModel(fuzz::tiny_config());
    p->init(7);
    return p;
  }();
  return *m;
}

template <class V>
bool finite(const V& v) {
  for (const auto& x : v)
    if (!std::isfinite(std::abs(x))) return false;
  return true;
}

// load_state does not check the values themselves, and a NaN in a state reaches exp_fast
// (kernels/vec_math.h), whose float-to-int conversion of NaN is undefined behaviour (UBSan
// stops there; x86 gives NaN logits). Reported; until states are checked at load, only finite
// states are stepped here so that the run goes on to find other things.
bool finite_state(const ModelState& st) {
  for (const auto& l : st.layers) {
    if (auto* h = dynamic_cast<const H3State*>(l.get())) {
      if (!finite(h->shift) || !finite(h->diag)) return false;
    } else if (auto* s = dynamic_cast<const S4DState*>(l.get())) {
      if (!finite(s->x)) return false;
    } else if (auto* c = dynamic_cast<const AttentionCache*>(l.get())) {
      if (!finite(c->k) || !finite(c->v)) return false;
    }
  }
  return true;
}

// The input with its "checksum" metadata recomputed, so that mutations get past the checksum
// to the checks behind it; empty when the input is not a readable safetensors file.
std::string with_checksum_fixed(const uint8_t* data, size_t size) {
  try {
    const SafeTensors st = parse_safetensors(data, size, "fuzz");
    std::vector<NamedTensor> tensors;
    for (const auto& [name, t] : st.tensors) tensors.push_back({name, &t});
    uint64_t n = 0;
    std::memcpy(&n, data, 8);  // parse_safetensors checked that the header fits
    nlohmann::json header = nlohmann::json::parse(data + 8, data + 8 + n);
    header["__metadata__"]["checksum"] = state_checksum(st.metadata, tensors);
    const std::string text = header.dump();
    const uint64_t m = text.size();
    std::string out(8, '\0');
    std::memcpy(out.data(), &m, 8);
    out += text;
    out.append(reinterpret_cast<const char*>(data) + 8 + n, size - 8 - n);
    return out;
  } catch (const Error&) {
  } catch (const nlohmann::json::exception&) {
  }
  return {};
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  LanguageModel& m = model();
  const std::string dir = fuzz::seed_dir();
  if (dir.empty()) return 0;
  const std::string tmp = dir + "/.state.tmp";
  const std::vector<int32_t> prompt = {1, 5, 2, 9, 3, 3};
  ModelState fresh = m.new_state(1);
  save_state(tmp, m, fresh);
  fuzz::write_seed(dir, "fresh", fuzz::read_all(tmp));
  ModelState st = m.new_state(2);
  const float* lg = m.prefill(prompt.data(), 2, 3, st);
  save_state(tmp, m, st, lg);
  fuzz::write_seed(dir, "prefilled_logits", fuzz::read_all(tmp));
  const int32_t next[2] = {4, 7};
  m.step(next, st);
  save_state(tmp, m, st);
  fuzz::write_seed(dir, "stepped", fuzz::read_all(tmp));
  std::remove(tmp.c_str());
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  LanguageModel& m = model();
  // Half the inputs as they are (the checksum check itself), half with the checksum made to
  // match (everything after it).
  std::string fixed;
  if (size % 4 >= 2) fixed = with_checksum_fixed(data, size);
  const std::string& path =
      fixed.empty() ? fuzz::write_scratch(data, size)
                    : fuzz::write_scratch(reinterpret_cast<const uint8_t*>(fixed.data()), fixed.size());
  ModelState st;
  std::vector<float> logits;
  try {
    st = load_state(path, m, size % 2 ? &logits : nullptr);  // with and without the logits
  } catch (const Error&) {
    return 0;
  }
  // Loaded: two steps on it must run (or stop with an Error, e.g. past max_position).
  if (!finite_state(st)) return 0;
  std::vector<int32_t> tok(static_cast<size_t>(st.batch), 3);
  try {
    m.step(tok.data(), st);
    m.step(tok.data(), st);
  } catch (const Error&) {
  }
  return 0;
}
