// hippo::tokenize_stream and hippo::current_exception_message (include/hippo/tools.hpp): what
// `hippo tokenize` does, and the CLI's one message for any failure.
#include "hippo/tools.hpp"

#include <filesystem>
#include <iostream>
#include <iterator>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>

#include "core/error.h"
#include "data/token_ids_json.h"
#include "data/tokenizer.h"
#include "io/strict_json.h"
#include "train/checkpoint.h"

namespace hippo {

namespace {

std::string ids_to_text(const std::vector<int32_t>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out.push_back(' ');
    out += std::to_string(ids[i]);
  }
  return out;
}

// Token ids are decimal integers in [0, vocab): "+5", "5.0", "0x5" and out-of-range values are
// refused, never rounded or wrapped.
std::vector<int32_t> parse_ids(const std::string& text, int32_t vocab) {
  std::vector<int32_t> ids;
  std::istringstream in(text);
  std::string word;
  size_t index = 0;
  while (in >> word) {
    int64_t v = 0;
    bool ok = !word.empty() && word.size() <= 10;
    for (char ch : word) ok = ok && ch >= '0' && ch <= '9';
    if (ok) v = std::stoll(word);
    HIPPO_CHECK(ok && v < vocab, "tokenize --decode: word ", index, " ('", word,
                "') is not a token id (an integer in 0..", vocab - 1, ")");
    ids.push_back(static_cast<int32_t>(v));
    ++index;
  }
  return ids;
}

}  // namespace

void tokenize_stream(const TokenizeOptions& o, std::istream& in, std::ostream& out) {
  const std::unique_ptr<Tokenizer> tok =
      o.model.empty() ? load_tokenizer(o.tokenizer) : tokenizer_from_metadata(read_metadata(o.model), o.model);
  auto encode = [&](std::string_view s) {
    return o.special ? tok->encode_with_special(s) : tok->encode(s);
  };
  if (o.jsonl) {
    // One JSON value per line: a string to encode (-> array of ids), or with --decode an
    // array of ids (-> string; invalid UTF-8 from partial tokens shows as U+FFFD).
    std::string line;
    size_t ln = 0;
    while (std::getline(in, line)) {
      ++ln;
      const nlohmann::json j = parse_json_strict(line, str("tokenize --jsonl: stdin line ", ln));
      if (o.decode) {
        const std::vector<int32_t> ids = token_ids_from_json(j, tok->vocab_size(), ln);
        out << nlohmann::json(tok->decode(ids))
                         .dump(-1, ' ', true, nlohmann::json::error_handler_t::replace)
                  << '\n';
      } else {
        HIPPO_CHECK(j.is_string(), "tokenize --jsonl: line ", ln, " is not a string");
        out << nlohmann::json(encode(j.get<std::string>())).dump() << '\n';
      }
    }
    return;
  }
  const std::string input{std::istreambuf_iterator<char>(in),
                          std::istreambuf_iterator<char>()};
  if (o.decode) {
    const std::string text = tok->decode(parse_ids(input, tok->vocab_size()));
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  } else {
    out << ids_to_text(encode(input)) << '\n';
  }
}

std::string current_exception_message(const std::string& cmd) {
  try {
    throw;
  } catch (const Error& e) {
    return json_error_text(e);  // a wrapped nlohmann text keeps no "[json...]"
  } catch (const std::bad_alloc&) {
    return "out of memory while running `hippo " + cmd + "`";
  } catch (const std::filesystem::filesystem_error& e) {
    std::string m = e.code().message();
    if (!e.path1().empty()) m = e.path1().string() + ": " + m;
    if (!e.path2().empty()) m += " (and " + e.path2().string() + ")";
    return m + " (during `hippo " + cmd + "`)";
  } catch (const nlohmann::json::exception& e) {
    return "invalid JSON data during `hippo " + cmd + "`: " + json_error_text(e);
  } catch (const std::invalid_argument&) {
    return "a value is not a valid number (during `hippo " + cmd + "`)";
  } catch (const std::out_of_range&) {
    return "a value is out of range (during `hippo " + cmd + "`)";
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an unknown error during `hippo " + cmd + "`";
  }
}

}  // namespace hippo
