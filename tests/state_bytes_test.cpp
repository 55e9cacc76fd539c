// A generation state to bytes and back (save_state_bytes / load_state_bytes): the restored
// state continues exactly as the original, for every model kind; the bytes are the state file's;
// a changed byte or a state of another model is refused.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <vector>

#include "core/rng.h"
#include "generate/state_io.h"
#include "models/lm.h"
#include "model_cases.h"
#include "test_util.h"

using namespace hippo;
using hippo::test_util::error_of;
using hippo::test_util::TempDir;

namespace {

using test_models::Case;
using test_models::cases;
using test_models::config_with;
using test_models::init_model;
using test_models::random_tokens;

constexpr int kB = 2, kPrompt = 6, kBefore = 3, kAfter = 5;

// A state after a prompt and a few steps.
ModelState advanced(const LanguageModel& m, const std::vector<int32_t>& tok) {
  ModelState st = m.new_state(kB);
  m.prefill(tok.data(), kB, kPrompt, st);
  for (int t = 0; t < kBefore; ++t) m.step(tok.data() + kB * (kPrompt + t), st);
  return st;
}

// The logits of kAfter more steps.
std::vector<float> continue_from(const LanguageModel& m, ModelState& st,
                                 const std::vector<int32_t>& tok) {
  const int64_t V = m.config().padded_vocab();
  std::vector<float> out;
  for (int t = 0; t < kAfter; ++t) {
    const float* lg = m.step(tok.data() + kB * (kPrompt + kBefore + t), st);
    out.insert(out.end(), lg, lg + kB * V);
  }
  return out;
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

TEST(StateBytes, RoundTripContinuesExactlyForEveryModelKind) {
  for (const Case& c : cases()) {
    LanguageModel m(config_with(c.cfg));
    init_model(m, 3);
    const int64_t V = m.config().padded_vocab();
    const auto tok = random_tokens(kB * (kPrompt + kBefore + kAfter), m.config().vocab_size, 9);
    ModelState original = advanced(m, tok);
    const std::vector<float> last(original.logits.data(), original.logits.data() + kB * V);
    const std::vector<uint8_t> bytes = save_state_bytes(m, original, last.data());

    // The bytes are exactly the state file.
    TempDir dir("state_bytes");
    save_state(dir.file("s.safetensors"), m, original, last.data());
    EXPECT_EQ(read_file(dir.file("s.safetensors")), bytes) << c.name;

    std::vector<float> logits;
    ModelState restored = load_state_bytes(bytes, m, &logits, "session bytes");
    EXPECT_EQ(restored.position, original.position) << c.name;
    EXPECT_EQ(restored.batch, kB) << c.name;
    EXPECT_EQ(logits, last) << c.name;
    const std::vector<float> want = continue_from(m, original, tok);
    EXPECT_EQ(continue_from(m, restored, tok), want) << c.name;
    // The comparison can fail: a fresh state at the same position continues differently.
    ModelState forgetful = m.new_state(kB);
    if (!m.config().learned_pos) {
      forgetful.position = kPrompt + kBefore;
      EXPECT_NE(continue_from(m, forgetful, tok), want) << c.name;
    }
  }
}

TEST(StateBytes, RefusesAChangedByteAndAnotherModelsState) {
  LanguageModel m(config_with({{"layers", {"h3", "attention", "s4d"}}, {"n_layer", 3}}));
  init_model(m, 3);
  const auto tok = random_tokens(kB * (kPrompt + kBefore + kAfter), m.config().vocab_size, 9);
  ModelState st = advanced(m, tok);
  const std::vector<uint8_t> bytes = save_state_bytes(m, st, st.logits.data());
  EXPECT_NO_THROW(load_state_bytes(bytes, m, nullptr, "ok"));

  // One changed byte in the tensors' data, anywhere: the checksum no longer matches. (The
  // header is JSON: most changes there break it; those that do not also fail the checksum.)
  const size_t header = 8 + (bytes[0] | bytes[1] << 8 | bytes[2] << 16);
  int refused = 0, tried = 0;
  for (size_t at = header; at < bytes.size(); at += (bytes.size() - header) / 23 + 1) {
    std::vector<uint8_t> bad = bytes;
    bad[at] ^= 0x10;
    const std::string e = error_of([&] { load_state_bytes(bad, m, nullptr, "flipped bytes"); });
    ++tried;
    refused += e.find("checksum mismatch") != std::string::npos &&
               e.find("flipped bytes") != std::string::npos;
  }
  EXPECT_EQ(refused, tried);
  EXPECT_GT(tried, 10);

  // Another model's state: other weights, or another config.
  LanguageModel reseeded(config_with({{"layers", {"h3", "attention", "s4d"}}, {"n_layer", 3}}));
  init_model(reseeded, 4);
  EXPECT_NE(error_of([&] { load_state_bytes(bytes, reseeded, nullptr, "x"); })
                .find("different model weights"),
            std::string::npos);
  LanguageModel other(config_with({{"layers", {"h3", "attention", "s4d"}}, {"n_layer", 3},
                                   {"d_model", 24}}));
  init_model(other, 3);
  const std::string e = error_of([&] { load_state_bytes(bytes, other, nullptr, "x"); });
  EXPECT_NE(e.find("different model config"), std::string::npos) << e;
  // Not a state at all.
  const std::vector<uint8_t> junk = {1, 2, 3};
  EXPECT_THROW(load_state_bytes(junk, m, nullptr, "junk"), Error);
}
