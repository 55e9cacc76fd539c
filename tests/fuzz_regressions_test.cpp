// Defects found with the fuzz targets (fuzz/, scripts/fuzz.sh), kept as regression tests.
#include <gtest/gtest.h>

#include <climits>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/token_ids_json.h"
#include "test_util.h"

using namespace hippo;
using hippo::test_util::error_of;

// fuzz_tokenizer: `tokenize --decode --jsonl` converted 42942949672964963814 (a double to
// nlohmann) to int with undefined behaviour (UBSan: "4.29429e+19 is outside the range of
// representable values of type 'int'"); 4294967361 wrapped to 65, "A".
TEST(FuzzRegressions, TokenIdsJsonOutOfRangeIsAnError) {
  for (const char* line : {"[1, 2, 3, 42942949672964963814]", "[4294967361]", "[2147483648]",
                           "[-2147483649]", "[1e10]", "[1.5]", "[true]"}) {
    const std::string msg = error_of([&] { token_ids_from_json(nlohmann::json::parse(line), 7); });
    EXPECT_NE(msg.find("line 7"), std::string::npos) << line << ": " << msg;
    EXPECT_NE(msg.find("not a token id"), std::string::npos) << line << ": " << msg;
  }
  EXPECT_EQ(token_ids_from_json(nlohmann::json::parse("[2147483647, -2147483648, 0]"), 1),
            (std::vector<int32_t>{2147483647, INT32_MIN, 0}));
}

// Found while writing fuzz_tokenizer: something other than numbers in the array threw
// nlohmann's type_error, whose library text reached the user ("[json.exception.type_error.302]
// type must be number, but is string"); now a hippo::Error naming the line.
TEST(FuzzRegressions, TokenIdsJsonWithANonNumberIsAnError) {
  for (const char* line : {R"(["a"])", R"([1, [2]])", R"([{"x": 1}])", R"([null])"}) {
    const std::string msg = error_of([&] { token_ids_from_json(nlohmann::json::parse(line), 3); });
    EXPECT_NE(msg.find("line 3"), std::string::npos) << line << ": " << msg;
    EXPECT_EQ(msg.find("json.exception"), std::string::npos) << line << ": " << msg;
  }
  EXPECT_EQ(token_ids_from_json(nlohmann::json::parse("[15496, 995]"), 1),
            (std::vector<int32_t>{15496, 995}));
  EXPECT_NE(error_of([] { token_ids_from_json(nlohmann::json::parse(R"("text")"), 2); })
                .find("not an array"),
            std::string::npos);
}
