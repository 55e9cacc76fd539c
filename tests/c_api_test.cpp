// The C API from a C11 program (tests/c_api/c_api_check.c, built as C): its greedy tokens equal
// those of the C++ API, and its own checks (fork, bytes/file restore, step_batch, error codes)
// pass.
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "hippo/hippo.hpp"
#include "models/lm.h"
#include "test_util.h"
#include "train/checkpoint.h"

using namespace hippo;

namespace {

std::string run(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = ::pclose(p);
  return out;
}

TEST(CApi, C11ProgramMatchesCppApi) {
  test_util::TempDir dir("c_api");
  const std::string path = dir.file("m.safetensors");
  LanguageModel m(ModelConfig::from_json({{"vocab_size", 257}, {"d_model", 16}, {"n_layer", 3},
                                          {"d_state", 8}, {"attn_heads", 2},
                                          {"layers", {"h3", "attention", "s4d"}}},
                                         "c_api_test"));
  m.init(3);
  save_weights(path, m);
  const std::string prompt = "The hippo ";
  constexpr int kTokens = 12;

  auto model = Model::load(path);
  Session s(model, {0.0f, 0, 1.0f, 0});
  s.prefill(model->tokenizer().encode_with_special(prompt));
  std::ostringstream expect;
  expect << "tokens:";
  for (int i = 0; i < kTokens; ++i) {
    const int32_t t = s.sample();
    expect << ' ' << t;
    s.step(t);
  }

  int status = -1;
  const std::string out = run(std::string(HIPPO_C_API_CHECK_BIN) + " " + path + " " +
                                  dir.file("s.state") + " '" + prompt + "' " +
                                  std::to_string(kTokens) + " 2>&1",
                              &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find(expect.str() + "\n"), std::string::npos) << "C program:\n" << out
                                                             << "\nC++ API: " << expect.str();
}

}  // namespace
