#include "api/state_bytes.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "generate/state_io.h"

namespace hippo::api {

namespace {

// Interim: through a private temporary file until state_io serialises to memory directly.
struct TempFile {
  std::string path;
  TempFile() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hippo-state-XXXXXX").string();
    const int fd = ::mkstemp(tmpl.data());
    HIPPO_CHECK(fd >= 0, "session state: cannot create a temporary file in ",
                std::filesystem::temp_directory_path().string());
    ::close(fd);
    path = tmpl;
  }
  ~TempFile() { std::filesystem::remove(path); }
};

}  // namespace

std::vector<uint8_t> state_to_bytes(const LanguageModel& lm, const ModelState& st,
                                    const float* logits) {
  TempFile f;
  std::filesystem::remove(f.path);
  save_state(f.path, lm, st, logits);
  std::ifstream in(f.path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

ModelState state_from_bytes(std::span<const uint8_t> bytes, const LanguageModel& lm,
                            std::vector<float>* logits) {
  HIPPO_CHECK(!bytes.empty(), "Session::restore_bytes: no bytes");
  TempFile f;
  {
    std::ofstream out(f.path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    HIPPO_CHECK(out.good(), "Session::restore_bytes: cannot write a temporary file");
  }
  return load_state(f.path, lm, logits);
}

const float* prefill_state(const LanguageModel& lm, const int32_t* tokens, int L, ModelState& st) {
  // Interim: LanguageModel::prefill still uses the layers' buffers under its own lock; the model
  // object itself is never const (Model::load allocates it), so this cast is defined.
  return const_cast<LanguageModel&>(lm).prefill(tokens, 1, L, st);
}

void step_states(const LanguageModel& lm, const int32_t* tokens,
                 std::span<ModelState* const> states) {
  for (size_t i = 0; i < states.size(); ++i) lm.step(&tokens[i], *states[i]);
}

}  // namespace hippo::api
