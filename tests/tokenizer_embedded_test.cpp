// The tokenizer embedded in a model file (data/tokenizer.h: embed_tokenizer,
// tokenizer_from_metadata): a model file carries its vocabulary, works from any working
// directory, and a damaged embedded vocabulary is refused naming the file and the key. Older
// files (a "gpt2:DIR" spec, or no tokenizer at all) still load, with errors that say why not.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/byte_tokenizer.h"
#include "data/gpt2_bpe.h"
#include "data/tokenizer.h"
#include "io/safetensors.h"
#include "models/lm.h"
#include "test_util.h"
#include "train/checkpoint.h"

using namespace hippo;
using hippo::test_util::error_of;
using hippo::test_util::find_gpt2_dir;
using hippo::test_util::TempDir;
namespace fs = std::filesystem;

namespace {

// GPT-2's bytes_to_unicode(), written out here independently of gpt2_bpe.cpp: the printable
// form of byte b in encoder.json, as UTF-8.
std::string byte_token(unsigned char b) {
  int n = 0;
  char32_t cp = b;
  for (int x = 0; x < 256; ++x) {
    const bool printable = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE;
    if (!printable) {
      if (x == b) cp = static_cast<char32_t>(256 + n);
      ++n;
    }
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// A small valid GPT-2-style vocabulary: the 256 bytes, merges "t h" and "th e", <|endoftext|>.
struct TinyVocab {
  std::string encoder_json, vocab_bpe;
  TinyVocab() {
    nlohmann::json enc = nlohmann::json::object();
    int id = 0;
    for (int b = 0; b < 256; ++b) enc[byte_token(static_cast<unsigned char>(b))] = id++;
    enc["th"] = id++;
    enc["the"] = id++;
    enc["<|endoftext|>"] = id++;
    encoder_json = enc.dump();
    vocab_bpe = "#version: 0.2\nt h\nth e\n";
  }
};

// Model-file metadata holding `tok`, as `hippo train` writes it.
std::map<std::string, std::string> meta_with(const Tokenizer& tok) {
  std::map<std::string, std::string> meta = {{"format", "hippo"}};
  embed_tokenizer(tok, meta);
  return meta;
}

// Writes a safetensors file with one small tensor and `meta`, and reads its metadata back:
// what a loader sees.
std::map<std::string, std::string> through_file(const std::string& path,
                                                const std::map<std::string, std::string>& meta) {
  const Tensor t = Tensor::zeros({2});
  save_safetensors(path, {{"x", &t}}, meta);
  return read_metadata(path);
}

// Runs f with the working directory set to `dir`, then restores it.
template <class F>
void in_folder(const fs::path& dir, F&& f) {
  const fs::path before = fs::current_path();
  fs::current_path(dir);
  try {
    f();
  } catch (...) {
    fs::current_path(before);
    throw;
  }
  fs::current_path(before);
}

ModelConfig gpt2_size_config() {
  return ModelConfig::from_json({{"vocab_size", 50257}, {"d_model", 8}, {"n_layer", 1},
                                 {"d_state", 4}, {"layers", {"h3"}}},
                                "test");
}

const char* kText = "The jury said it did find that many of Georgia's registration laws\n"
                    "are outmoded <|endoftext|> 1234 caf\xC3\xA9 \xF0\x9F\x98\x80";

}  // namespace

TEST(EmbeddedTokenizer, ByteTokenizerIsRecordedByName) {
  TempDir dir("tokemb");
  const auto meta = through_file(dir.file("m.safetensors"), meta_with(ByteTokenizer()));
  EXPECT_EQ(meta.at(kTokenizerKey), "byte");
  EXPECT_EQ(meta.count(kTokenizerEncoderJsonKey), 0u);
  const auto tok = tokenizer_from_metadata(meta, dir.file("m.safetensors"));
  EXPECT_EQ(tok->id(), "byte-v1");
  EXPECT_EQ(tok->encode("ab"), (std::vector<int32_t>{'a', 'b'}));
}

TEST(EmbeddedTokenizer, Gpt2VocabularyTravelsInTheFileByteForByte) {
  TempDir dir("tokemb");
  const TinyVocab v;
  const Gpt2Bpe tok(v.encoder_json, v.vocab_bpe, "enc", "bpe");
  EXPECT_EQ(tok.encoder_json(), v.encoder_json);
  EXPECT_EQ(tok.vocab_bpe(), v.vocab_bpe);
  const auto meta = through_file(dir.file("m.safetensors"), meta_with(tok));
  EXPECT_EQ(meta.at(kTokenizerKey), "gpt2-bpe");
  EXPECT_EQ(meta.at(kTokenizerEncoderJsonKey), v.encoder_json);
  EXPECT_EQ(meta.at(kTokenizerVocabBpeKey), v.vocab_bpe);
  const auto back = tokenizer_from_metadata(meta, dir.file("m.safetensors"));
  EXPECT_EQ(back->id(), tok.id());
  EXPECT_EQ(back->encode("the theme"), tok.encode("the theme"));
  EXPECT_EQ(back->encode("the").size(), 1u) << "the merges came along";
}

// The issue's case: a model trained with the GPT-2 tokenizer, copied away from data/gpt2 and
// used from another working directory, tokenizes exactly as with the vocabulary folder.
TEST(EmbeddedTokenizer, Gpt2ModelWorksFromAnotherFolderWithoutTheVocabulary) {
  const std::string gpt2 = find_gpt2_dir();
  if (gpt2.empty()) GTEST_SKIP() << "data/gpt2 missing: run scripts/get_gpt2_vocab.sh";
  const Gpt2Bpe ref(gpt2);
  TempDir made("tokemb_made"), elsewhere("tokemb_elsewhere");
  LanguageModel model(gpt2_size_config());
  model.init(3);
  std::map<std::string, std::string> meta;
  embed_tokenizer(ref, meta);
  save_checkpoint(made.file("model.safetensors"), model, nullptr, meta);
  EXPECT_LE(fs::file_size(made.file("model.safetensors")), checkpoint_bytes(model, false, meta))
      << "the free-space estimate counts the embedded vocabulary";
  fs::copy_file(made.file("model.safetensors"), elsewhere.file("copy.safetensors"));
  in_folder(elsewhere.path, [&] {
    ASSERT_FALSE(fs::exists("data/gpt2"));
    const auto loaded_meta = read_metadata("copy.safetensors");
    const auto tok = tokenizer_from_metadata(loaded_meta, "copy.safetensors");
    EXPECT_EQ(tok->id(), ref.id());
    EXPECT_EQ(tok->vocab_size(), 50257);
    EXPECT_EQ(tok->encode_with_special(kText), ref.encode_with_special(kText));
    const auto ids = ref.encode(kText);
    EXPECT_EQ(tok->decode(ids), ref.decode(ids));
  });
}

TEST(EmbeddedTokenizer, DamagedVocabularyIsRefusedNamingTheFileAndKey) {
  TempDir dir("tokemb");
  const std::string file = dir.file("bad.safetensors");
  const TinyVocab v;
  const Gpt2Bpe tok(v.encoder_json, v.vocab_bpe, "enc", "bpe");
  const auto good = meta_with(tok);
  auto refused = [&](auto edit) {
    auto meta = good;
    edit(meta);
    return error_of([&] { tokenizer_from_metadata(through_file(file, meta), file); });
  };
  // Still valid JSON, every id still used once: only the recorded id catches the swap.
  std::string e = refused([](auto& m) {
    nlohmann::json enc = nlohmann::json::parse(m.at(kTokenizerEncoderJsonKey));
    std::swap(enc["th"], enc["the"]);
    m[kTokenizerEncoderJsonKey] = enc.dump();
  });
  EXPECT_NE(e.find(file + ": __metadata__.tokenizer.id"), std::string::npos) << e;
  EXPECT_NE(e.find("changed or damaged"), std::string::npos) << e;
  e = refused([](auto& m) { m[kTokenizerEncoderJsonKey].pop_back(); });
  EXPECT_NE(e.find(file + ": __metadata__.tokenizer.encoder_json: not valid JSON"), std::string::npos) << e;
  e = refused([](auto& m) { m[kTokenizerVocabBpeKey] += "x y z\n"; });
  EXPECT_NE(e.find(file + ": __metadata__.tokenizer.vocab_bpe line 4"), std::string::npos) << e;
  e = refused([](auto& m) { m.erase(kTokenizerVocabBpeKey); });
  EXPECT_NE(e.find(file + ": __metadata__.tokenizer.vocab_bpe (the embedded vocabulary) is missing"),
            std::string::npos) << e;
  e = refused([](auto& m) { m[kTokenizerKey] = "sentencepiece"; });
  EXPECT_NE(e.find(file + ": __metadata__.tokenizer is \"sentencepiece\", not a known tokenizer"),
            std::string::npos) << e;
  e = refused([](auto& m) { m[kTokenizerIdKey] = "byte-v1"; });
  EXPECT_NE(e.find(file + ": __metadata__.tokenizer.id"), std::string::npos) << e;
  EXPECT_EQ(refused([](auto&) {}), "") << "the undamaged file loads";
}

TEST(EmbeddedTokenizer, OlderFilesLoadOrSayWhyNot) {
  TempDir dir("tokemb");
  const std::string file = dir.file("old.safetensors");
  // "gpt2:DIR" (hippo before embedding): loaded from DIR when it is there.
  const TinyVocab v;
  {
    std::ofstream(dir.file("encoder.json")) << v.encoder_json;
    std::ofstream(dir.file("vocab.bpe")) << v.vocab_bpe;
  }
  auto tok = tokenizer_from_metadata({{kTokenizerKey, "gpt2:" + dir.path.string()}}, file);
  EXPECT_EQ(tok->id(), Gpt2Bpe(v.encoder_json, v.vocab_bpe, "e", "b").id());
  std::string e = error_of([&] { tokenizer_from_metadata({{kTokenizerKey, "gpt2:no/such/dir"}}, file); });
  EXPECT_NE(e.find(file + ": __metadata__.tokenizer is \"gpt2:no/such/dir\""), std::string::npos) << e;
  EXPECT_NE(e.find("older hippo"), std::string::npos) << e;
  EXPECT_NE(e.find("no/such/dir/encoder.json"), std::string::npos) << e;
  // Nothing recorded: the old guess from the vocabulary size, and a message saying it guessed.
  const std::string small_cfg = R"({"vocab_size": 300, "d_model": 8})";
  EXPECT_EQ(tokenizer_from_metadata({{"config", small_cfg}}, file)->id(), "byte-v1");
  in_folder(dir.path, [&] {
    const std::string big_cfg = R"({"vocab_size": 50257, "d_model": 8})";
    e = error_of([&] { tokenizer_from_metadata({{"config", big_cfg}}, file); });
  });
  EXPECT_NE(e.find(file + ": no tokenizer recorded"), std::string::npos) << e;
  EXPECT_NE(e.find("the legacy guess"), std::string::npos) << e;
  e = error_of([&] { tokenizer_from_metadata({}, file); });
  EXPECT_NE(e.find(file + ": no tokenizer recorded"), std::string::npos) << e;
}
