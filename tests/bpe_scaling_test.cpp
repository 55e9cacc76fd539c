// The GPT-2 BPE fast path (Gpt2Bpe::bpe: linked symbols and a heap of candidate pairs,
// O(n log n)) against the reference's loop kept beside it (bpe_reference: rescan for the best
// pair after every merge, O(n^2)): the same ids on long runs without spaces, random text, and
// hand-made vocabularies built to break a careless heap (issue 11 item 17). No timings here;
// the speed is in docs (1 MB of letters).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/rng.h"
#include "data/gpt2_bpe.h"
#include "data/utf8.h"
#include "test_util.h"

using namespace hippo;
using hippo::test_util::TempDir;
namespace fs = std::filesystem;
using hippo::test_util::find_gpt2_dir;

namespace {

// GPT-2's byte-to-unicode map (as tests/tokenizer_test.cpp writes it out).
std::string byte_token(unsigned char b) {
  auto printable = [](int x) { return (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE; };
  char32_t cp = b;
  if (!printable(b)) {
    int n = 0;
    for (int x = 0; x < b; ++x) n += !printable(x);
    cp = 256 + n;
  }
  std::string s;
  utf8::append(s, cp);
  return s;
}

std::string printable(const std::string& raw) {
  std::string s;
  for (unsigned char c : raw) s += byte_token(c);
  return s;
}

// A GPT-2-format vocabulary: the 256 byte tokens, the merges in the given (rank) order, then
// <|endoftext|>.
void write_vocab(const TempDir& dir, const std::vector<std::pair<std::string, std::string>>& merges) {
  nlohmann::json enc = nlohmann::json::object();
  int id = 0;
  for (int b = 0; b < 256; ++b) enc[byte_token(static_cast<unsigned char>(b))] = id++;
  std::string bpe = "#version: 0.2\n";
  for (const auto& [a, b] : merges) {
    const std::string ab = printable(a + b);
    if (!enc.contains(ab)) enc[ab] = id++;
    bpe += printable(a) + " " + printable(b) + "\n";
  }
  enc["<|endoftext|>"] = id++;
  std::ofstream(dir.file("encoder.json"), std::ios::binary) << enc.dump();
  std::ofstream(dir.file("vocab.bpe"), std::ios::binary) << bpe;
}

std::string random_word(Rng& rng, const std::string& alphabet, size_t n) {
  std::string s(n, ' ');
  for (char& c : s) c = alphabet[rng.below(alphabet.size())];
  return s;
}

// Random valid UTF-8 text: words, numbers, punctuation, spaces, newlines, some non-ASCII.
std::string random_text(Rng& rng, size_t n_pieces) {
  static const std::vector<std::string> extra = {"\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80",
                                                 "'s", "'ll", "\n\n", "  ", "\t", "!?", "3.14"};
  std::string s;
  for (size_t i = 0; i < n_pieces; ++i) {
    switch (rng.below(4)) {
      case 0:  // (not " " + word: GCC 12 warns falsely (-Wrestrict) on that operator+)
        s.push_back(' ');
        s += random_word(rng, "etaoinshrdlucmfwyp", 1 + rng.below(12));
        break;
      case 1: s += random_word(rng, "abcdefghijklmnopqrstuvwxyzABCXYZ", 1 + rng.below(30)); break;
      case 2: s += random_word(rng, "0123456789", 1 + rng.below(6)); break;
      default: s += extra[rng.below(extra.size())];
    }
  }
  return s;
}

}  // namespace

// Vocabularies the real one does not have: ranks in arbitrary order (a merge can make a pair
// whose rank is lower than its own, which must still wait for the next round), duplicate
// lines (the later one wins), overlapping runs ("aaaa"). Random merges over a 4-letter
// alphabet, shuffled, checked on random words of every length up to 300.
TEST(Gpt2BpeFastPath, EqualsReferenceOnHandMadeVocabularies) {
  Rng rng(17);
  for (int v = 0; v < 12; ++v) {
    std::vector<std::string> tokens = {"a", "b", "c", "d"};
    std::vector<std::pair<std::string, std::string>> merges;
    for (int k = 0; k < 40; ++k) {
      const std::string& x = tokens[rng.below(tokens.size())];
      const std::string& y = tokens[rng.below(tokens.size())];
      merges.push_back({x, y});
      if (std::find(tokens.begin(), tokens.end(), x + y) == tokens.end()) tokens.push_back(x + y);
    }
    for (size_t i = merges.size() - 1; i > 0; --i) std::swap(merges[i], merges[rng.below(i + 1)]);
    for (int k = 0; k < 4; ++k) merges.push_back(merges[rng.below(merges.size())]);  // re-ranked
    TempDir dir("bpefast");
    write_vocab(dir, merges);
    Gpt2Bpe tok(dir.path.string());
    for (int k = 0; k < 200; ++k) {
      const std::string w = random_word(rng, "abcd", rng.below(301));
      ASSERT_EQ(tok.bpe(w), tok.bpe_reference(w)) << "vocabulary " << v << ", word " << w;
    }
    std::string run_b(300, 'b');
    run_b.append("cd");
    for (const std::string& w : {std::string(257, 'a'), run_b})
      ASSERT_EQ(tok.bpe(w), tok.bpe_reference(w)) << "vocabulary " << v << ", word " << w;
  }
}

// The case a heap that does not finish a round before taking newly made pairs gets wrong:
// "x y" merges first (rank 0); the pair "xy x" it makes ranks 1, before "x y"'s second
// occurrence would be taken again if rounds were not kept. The reference merges both "x y"
// (rank 0) and then "xy xy" (rank 2), never "xy x".
TEST(Gpt2BpeFastPath, NewPairsWaitForTheRoundToFinish) {
  TempDir dir("bperound");
  write_vocab(dir, {{"x", "y"}, {"xy", "x"}, {"xy", "xy"}});
  Gpt2Bpe tok(dir.path.string());
  const std::vector<int32_t> ids = tok.bpe("xyxy");
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(tok.token_bytes(ids[0]), "xyxy");
  EXPECT_EQ(ids, tok.bpe_reference("xyxy"));
  EXPECT_EQ(tok.bpe("xyxyx"), tok.bpe_reference("xyxyx"));
  EXPECT_EQ(tok.bpe(""), std::vector<int32_t>{});
  EXPECT_EQ(tok.bpe("x"), tok.bpe_reference("x"));
}

TEST(Gpt2BpeFastPath, EqualsReferenceOnLongRunsWithTheRealVocabulary) {
  const std::string dir = find_gpt2_dir();
  if (dir.empty()) GTEST_SKIP() << "data/gpt2 missing: run scripts/get_gpt2_vocab.sh";
  Gpt2Bpe tok(dir);
  Rng rng(23);
  // 100 KB of letters without a space: one piece, the quadratic case (the reference takes
  // about 4 s on it, 17 s on 200 KB).
  const std::string letters = random_word(rng, "abcdefghijklmnopqrstuvwxyz", 100'000);
  const std::vector<int32_t> ids = tok.encode(letters);
  EXPECT_EQ(ids, tok.encode_reference(letters));
  EXPECT_EQ(tok.decode(ids), letters);
  // Long runs of one kind, and of a repeated word.
  std::string repeated;
  for (int i = 0; i < 4000; ++i) repeated += "hello";
  for (const std::string& s : {std::string(50'000, 'z'), repeated, std::string(30'000, '7'),
                               std::string(20'000, '!')})
    EXPECT_EQ(tok.encode(s), tok.encode_reference(s)) << s.substr(0, 20) << "...";
  // Random text with short pieces (mostly from the cache), and invalid UTF-8.
  for (int k = 0; k < 20; ++k) {
    const std::string s = random_text(rng, 2000);
    ASSERT_EQ(tok.encode(s), tok.encode_reference(s)) << "text " << k;
  }
  std::string bytes(5000, '\0');
  for (char& c : bytes) c = static_cast<char>(rng.below(256));
  EXPECT_EQ(tok.encode(bytes), tok.encode_reference(bytes));
}
