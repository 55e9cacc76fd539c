// Defects found with the fuzz targets (fuzz/, scripts/fuzz.sh), kept as regression tests.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/token_ids_json.h"
#include "test_util.h"

using namespace hippo;
using hippo::test_util::error_of;

// fuzz_tokenizer: `tokenize --decode --jsonl` converted 42942949672964963814 (a double to
// nlohmann) to int with undefined behaviour (UBSan: "4.29429e+19 is outside the range of
// representable values of type 'int'"), and a string in the array let nlohmann's own
// type_error text out. Now a hippo::Error naming the line and the element.
TEST(FuzzRegressions, TokenIdsJsonRefusesWhatIsNotAnId) {
  for (const char* line : {"[1, 2, 3, 42942949672964963814]", "[4294967361]", "[1e10]", "[1.5]",
                           "[true]", "[-1]", "[50257]", R"(["a"])", "[[2]]", R"([{"x": 1}])",
                           "[null]"}) {
    const std::string msg =
        error_of([&] { token_ids_from_json(nlohmann::json::parse(line), 50257, 7); });
    EXPECT_NE(msg.find("line 7, element"), std::string::npos) << line << ": " << msg;
    EXPECT_NE(msg.find("not a token id"), std::string::npos) << line << ": " << msg;
    EXPECT_EQ(msg.find("json.exception"), std::string::npos) << line << ": " << msg;
  }
  EXPECT_EQ(token_ids_from_json(nlohmann::json::parse("[15496, 995, 0, 50256]"), 50257, 1),
            (std::vector<int32_t>{15496, 995, 0, 50256}));
  EXPECT_NE(error_of([] { token_ids_from_json(nlohmann::json::parse(R"("text")"), 257, 2); })
                .find("not an array"),
            std::string::npos);
}
