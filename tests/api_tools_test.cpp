// include/hippo/tools.hpp (tokenize_stream, current_exception_message) and the scope of the
// fast-bf16 switch (src/api/bf16_activations_scope.h): what the CLI's tokenize command and its
// error printing now run on.
#include <gtest/gtest.h>

#include <filesystem>
#include <new>
#include <nlohmann/json.hpp>
#include <sstream>

#include "api/bf16_activations_scope.h"
#include "data/byte_tokenizer.h"
#include "hippo/tools.hpp"
#include "test_util.h"

using namespace hippo;
using hippo::test_util::error_of;

namespace {

std::string tokenize(const TokenizeOptions& o, const std::string& input) {
  std::istringstream in(input);
  std::ostringstream out;
  tokenize_stream(o, in, out);
  return out.str();
}

template <class E>
std::string message_of(const E& e) {
  try {
    throw e;
  } catch (...) {
    return current_exception_message("train");
  }
}

}  // namespace

TEST(ApiTools, TokenizeStreamMatchesTheTokenizer) {
  TokenizeOptions o;  // byte
  EXPECT_EQ(tokenize(o, "hi"), "104 105\n");
  o.special = true;
  EXPECT_EQ(tokenize(o, "a<|endoftext|>"), "97 256\n");
  o.special = false;
  o.decode = true;
  EXPECT_EQ(tokenize(o, "104 105 256"), "hi<|endoftext|>");
  EXPECT_NE(error_of([&] { tokenize(o, "104 +5"); }).find("word 1 ('+5') is not a token id"), std::string::npos);
  o.jsonl = true;
  EXPECT_EQ(tokenize(o, "[104,105]\n"), "\"hi\"\n");
  o.decode = false;
  EXPECT_EQ(tokenize(o, "\"hi\"\n\"\"\n"), "[104,105]\n[]\n");
  EXPECT_NE(error_of([&] { tokenize(o, "\"ok\"\n5\n"); }).find("line 2 is not a string"), std::string::npos);
}

TEST(ApiTools, ExceptionsBecomeOneSentence) {
  EXPECT_EQ(message_of(Error("f.safetensors: bad")), "f.safetensors: bad");
  EXPECT_EQ(message_of(std::bad_alloc()), "out of memory while running `hippo train`");
  const std::string fs_msg = message_of(std::filesystem::filesystem_error(
      "x", "/a/b", std::make_error_code(std::errc::permission_denied)));
  EXPECT_EQ(fs_msg.rfind("/a/b: ", 0), 0u) << fs_msg;
  EXPECT_NE(fs_msg.find("(during `hippo train`)"), std::string::npos) << fs_msg;
  std::string json_msg;
  try {
    const nlohmann::json j = nlohmann::json::parse("{");
    ADD_FAILURE() << "parsed: " << j.dump();
  } catch (...) {
    json_msg = current_exception_message("eval");
  }
  EXPECT_EQ(json_msg.rfind("invalid JSON data during `hippo eval`: ", 0), 0u) << json_msg;
  EXPECT_EQ(json_msg.find("[json.exception"), std::string::npos) << json_msg;
  EXPECT_EQ(message_of(std::out_of_range("x")), "a value is out of range (during `hippo train`)");
  EXPECT_EQ(message_of(42), "an unknown error during `hippo train`");
}

TEST(ApiTools, FastBf16SwitchLastsOnlyForItsCall) {
  ASSERT_EQ(bf16_activations(), Bf16Activations::Exact);
  try {
    const api::Bf16ActivationsScope scope(true);
    EXPECT_EQ(bf16_activations(), Bf16Activations::RoundedToBf16);
    throw Error("a failing generate");
  } catch (const Error&) {
  }
  EXPECT_EQ(bf16_activations(), Bf16Activations::Exact);
  {
    const api::Bf16ActivationsScope scope(false);
    EXPECT_EQ(bf16_activations(), Bf16Activations::Exact);
  }
}
