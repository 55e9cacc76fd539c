// `hippo tokenize`: text on stdin to token ids on stdout, or back with --decode.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "apps/commands.h"
#include "core/error.h"
#include "data/token_ids_json.h"
#include "data/tokenizer.h"
#include "io/strict_json.h"

namespace hippo::cli {

namespace {

struct TokenizeOptions {
  std::string tokenizer = "byte";
  bool decode = false;
  bool special = false;
  bool jsonl = false;
};

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

int run_tokenize(const TokenizeOptions& o) {
  std::unique_ptr<Tokenizer> tok = load_tokenizer(o.tokenizer);
  auto encode = [&](std::string_view s) {
    return o.special ? tok->encode_with_special(s) : tok->encode(s);
  };
  if (o.jsonl) {
    // One JSON value per line: a string to encode (-> array of ids), or with --decode an
    // array of ids (-> string; invalid UTF-8 from partial tokens shows as U+FFFD).
    std::string line;
    size_t ln = 0;
    while (std::getline(std::cin, line)) {
      ++ln;
      const nlohmann::json j = parse_json_strict(line, str("tokenize --jsonl: stdin line ", ln));
      if (o.decode) {
        const std::vector<int32_t> ids = token_ids_from_json(j, tok->vocab_size(), ln);
        std::cout << nlohmann::json(tok->decode(ids))
                         .dump(-1, ' ', true, nlohmann::json::error_handler_t::replace)
                  << '\n';
      } else {
        HIPPO_CHECK(j.is_string(), "tokenize --jsonl: line ", ln, " is not a string");
        std::cout << nlohmann::json(encode(j.get<std::string>())).dump() << '\n';
      }
    }
    return 0;
  }
  const std::string input{std::istreambuf_iterator<char>(std::cin),
                          std::istreambuf_iterator<char>()};
  if (o.decode) {
    const std::string text = tok->decode(parse_ids(input, tok->vocab_size()));
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else {
    std::cout << ids_to_text(encode(input)) << '\n';
  }
  return 0;
}

}  // namespace

void add_tokenize(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize", "Encode stdin to space-separated token ids, or decode ids back to text");
  cmd->add_option("--tokenizer", o->tokenizer, "'byte' or 'gpt2:<dir with encoder.json, vocab.bpe>'")
      ->capture_default_str();
  cmd->add_flag("--decode", o->decode, "Read token ids, write the text");
  cmd->add_flag("--special", o->special, "Encode the text <|endoftext|> as the end-of-text id");
  cmd->add_flag("--jsonl", o->jsonl,
                "Each stdin line is one JSON string (or id array with --decode); one JSON "
                "result per line");
  cmd->callback([o, &run] { run = [o] { return run_tokenize(*o); }; });
}

}  // namespace hippo::cli
