// libFuzzer target for tokenizer input: any bytes through the byte and GPT-2 encoders (the
// GPT-2 ids must equal the reference loop's, and decode back to the input with invalid UTF-8
// replaced), and every input line through the `tokenize --decode --jsonl` path (JSON, then
// parse_json_strict, token_ids_from_json, decode): results or hippo::Error, nothing else.
// GPT-2 vocabulary: $HIPPO_GPT2_DIR, else data/gpt2 (scripts/get_gpt2_vocab.sh). Built and run
// by scripts/fuzz.sh tokenizer.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/error.h"
#include "data/byte_tokenizer.h"
#include "data/gpt2_bpe.h"
#include "data/token_ids_json.h"
#include "data/utf8.h"
#include "fuzz/fuzz_common.h"
#include "io/strict_json.h"

using namespace hippo;

namespace {

struct Tokenizers {
  ByteTokenizer bytes;
  std::unique_ptr<Gpt2Bpe> gpt2;
};

Tokenizers& toks() {
  static Tokenizers* t = [] {
    auto* p = new Tokenizers;
    const char* env = std::getenv("HIPPO_GPT2_DIR");
    const std::string dir = env && *env ? env : "data/gpt2";
    if (!std::filesystem::exists(dir + "/encoder.json")) {
      std::fprintf(stderr, "fuzz_tokenizer: no GPT-2 vocabulary in %s (set HIPPO_GPT2_DIR or run "
                   "scripts/get_gpt2_vocab.sh)\n", dir.c_str());
      std::exit(1);
    }
    p->gpt2 = std::make_unique<Gpt2Bpe>(dir);
    return p;
  }();
  return *t;
}

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  toks();
  const std::string dir = fuzz::seed_dir();
  if (dir.empty()) return 0;
  const char* seeds[] = {
      "Hello world! It's 3.14, isn't it?\n\tOK  \n",
      "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80 they'll've <|endoftext|> x",
      "[15496, 995]\n[50256]\n[]\n\"text\"\n[1, 2, 3, 4294967296]\n[-1]\n",
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbb",
      "\xFF\xFE\xC3\x28\xE2\x82 invalid \xED\xA0\x80 bytes",
  };
  int i = 0;
  for (const char* s : seeds) fuzz::write_seed(dir, "text" + std::to_string(i++), s);
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Tokenizers& t = toks();
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  // Encoding: bytes exactly; GPT-2 as the reference does, decoding to the sanitised text.
  check(t.bytes.decode(t.bytes.encode(text)) == text);
  const std::vector<int32_t> ids = t.gpt2->encode(text);
  check(t.gpt2->decode(ids) == utf8::sanitize(text));
  if (size <= 4096) check(ids == t.gpt2->encode_reference(text));
  const std::vector<int32_t> special = t.gpt2->encode_with_special(text);
  check(t.gpt2->decode(special) == utf8::sanitize(text));

  // `tokenize --decode --jsonl`, line by line.
  size_t ln = 0;
  for (size_t pos = 0; pos <= size;) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = size;
    const std::string line(text.substr(pos, nl - pos));
    pos = nl + 1;
    ++ln;
    try {
      const nlohmann::json j = parse_json_strict(line, "fuzz line");
      for (const Tokenizer* tok : {static_cast<const Tokenizer*>(&t.bytes),
                                   static_cast<const Tokenizer*>(t.gpt2.get())}) {
        try {
          // Accepted ids are in range: decoding them must not fail.
          const std::vector<int32_t> line_ids = token_ids_from_json(j, tok->vocab_size(), ln);
          const std::string out = tok->decode(line_ids);
          (void)nlohmann::json(out).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
        } catch (const Error&) {
        }
      }
    } catch (const Error&) {
    }
  }
  return 0;
}
