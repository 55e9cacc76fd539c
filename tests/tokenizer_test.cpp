// Tokenizers, UTF-8 handling, token caches and corpus splits. Exactness of the GPT-2 encoder
// against the reference JavaScript is in tests/ref/test_tokenizer.py; here: round trips, the
// BPE rules on a small hand-made vocabulary, and the real vocabulary when data/gpt2 exists.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "test_util.h"
#include "core/rng.h"
#include "data/byte_tokenizer.h"
#include "data/corpus.h"
#include "data/gpt2_bpe.h"
#include "data/token_cache.h"
#include "data/unicode_tables.h"
#include "data/utf8.h"

using namespace hippo;
using hippo::test_util::TempDir;
namespace fs = std::filesystem;

namespace {

// A fresh folder under the system temp dir, removed at the end of the test.

void write_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string gpt2_dir() {
  const fs::path here = hippo::test_util::source_data_dir("gpt2");
  return here.string();
}

bool have_gpt2() {
  return fs::exists(fs::path(gpt2_dir()) / "encoder.json") &&
         fs::exists(fs::path(gpt2_dir()) / "vocab.bpe");
}

#define REQUIRE_GPT2()                                                                    \
  if (!have_gpt2())                                                                       \
  GTEST_SKIP() << gpt2_dir() << " missing: run scripts/get_gpt2_vocab.sh for GPT-2 tests"

std::string random_bytes(Rng& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng.below(256));
  return s;
}

// Random valid UTF-8 drawn from ASCII, Latin, CJK, emoji and whitespace.
std::string random_utf8(Rng& rng, size_t n_cps) {
  static const std::vector<std::pair<char32_t, char32_t>> ranges = {
      {0x20, 0x7E}, {0x09, 0x0D}, {0xA0, 0x17F}, {0x370, 0x3FF}, {0x400, 0x4FF},
      {0x600, 0x6FF}, {0x2000, 0x206F}, {0x3000, 0x30FF}, {0x4E00, 0x4FFF}, {0xAC00, 0xAD00},
      {0x1F300, 0x1F64F}, {0xFE00, 0xFEFF}, {0x10000, 0x1007F}};
  std::string s;
  for (size_t i = 0; i < n_cps; ++i) {
    const auto& r = ranges[rng.below(ranges.size())];
    utf8::append(s, r.first + static_cast<char32_t>(rng.below(r.second - r.first + 1)));
  }
  return s;
}

// GPT-2's byte-to-unicode map, written out independently of gpt2_bpe.cpp.
std::string byte_token(unsigned char b) {
  std::vector<int> printable;
  for (int i = '!'; i <= '~'; ++i) printable.push_back(i);
  for (int i = 0xA1; i <= 0xAC; ++i) printable.push_back(i);
  for (int i = 0xAE; i <= 0xFF; ++i) printable.push_back(i);
  char32_t cp = b;
  if (std::find(printable.begin(), printable.end(), b) == printable.end()) {
    int n = 0;
    for (int x = 0; x < b; ++x)
      if (std::find(printable.begin(), printable.end(), x) == printable.end()) ++n;
    cp = 256 + n;
  }
  std::string s;
  utf8::append(s, cp);
  return s;
}

// A small GPT-2-format vocabulary: the 256 byte tokens, the given merges, then <|endoftext|>.
void write_tiny_vocab(const TempDir& dir, const std::vector<std::pair<std::string, std::string>>& merges,
                      const std::string& bpe_extra = "") {
  nlohmann::json enc = nlohmann::json::object();
  int id = 0;
  for (int b = 0; b < 256; ++b) enc[byte_token(static_cast<unsigned char>(b))] = id++;
  std::string bpe = "#version: 0.2\n";
  auto printable = [](const std::string& raw) {
    std::string s;
    for (unsigned char c : raw) s += byte_token(c);
    return s;
  };
  for (const auto& [a, b] : merges) {
    const std::string ab = printable(a + b);
    if (!enc.contains(ab)) enc[ab] = id++;
    bpe += printable(a) + " " + printable(b) + "\n";
  }
  bpe += bpe_extra;
  enc["<|endoftext|>"] = id++;
  write_text(dir.file("encoder.json"), enc.dump());
  write_text(dir.file("vocab.bpe"), bpe);
}

std::vector<std::string> token_strings(const Gpt2Bpe& t, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(t.token_bytes(id));
  return out;
}

using Pieces = std::vector<std::string_view>;

}  // namespace

// ---------------------------------------------------------------------------------------------
// Byte tokenizer

TEST(ByteTokenizer, RoundTripsAnyBytes) {
  ByteTokenizer t;
  EXPECT_EQ(t.vocab_size(), 257);
  EXPECT_EQ(t.eot_id(), 256);
  Rng rng(1);
  for (int k = 0; k < 50; ++k) {
    const std::string s = random_bytes(rng, rng.below(300));
    const std::vector<int32_t> ids = t.encode(s);
    ASSERT_EQ(ids.size(), s.size());
    for (size_t i = 0; i < s.size(); ++i) EXPECT_EQ(ids[i], static_cast<unsigned char>(s[i]));
    EXPECT_EQ(t.decode(ids), s);
  }
  EXPECT_EQ(t.decode(std::vector<int32_t>{104, 105, 256}), "hi<|endoftext|>");
  EXPECT_EQ(t.encode_with_special("a<|endoftext|>b<|endoftext|>"),
            (std::vector<int32_t>{'a', 256, 'b', 256}));
  EXPECT_THROW(t.decode(std::vector<int32_t>{257}), Error);
  EXPECT_THROW(t.decode(std::vector<int32_t>{-1}), Error);
}

TEST(Tokenizer, FactoryRejectsBadSpecs) {
  EXPECT_EQ(load_tokenizer("byte")->id(), "byte-v1");
  EXPECT_NE(error_of([] { load_tokenizer("wordpiece"); }).find("wordpiece"), std::string::npos);
  EXPECT_THROW(load_tokenizer("gpt2:"), Error);
  const std::string msg = error_of([] { load_tokenizer("gpt2:/nonexistent/dir"); });
  EXPECT_NE(msg.find("/nonexistent/dir/encoder.json"), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------------------
// UTF-8 and code-point classes

TEST(Utf8, ReplacesInvalidSequencesLikeWhatwg) {
  const char32_t R = 0xFFFD;
  using V = std::vector<char32_t>;
  EXPECT_EQ(utf8::decode("a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80"), (V{'a', 0xE9, 0x4E2D, 0x1F600}));
  EXPECT_EQ(utf8::decode("a\xFF" "b"), (V{'a', R, 'b'}));
  EXPECT_EQ(utf8::decode("\xC3"), (V{R}));                    // truncated at the end
  EXPECT_EQ(utf8::decode("\xF0\x9F\x98" "x"), (V{R, 'x'}));   // one U+FFFD per maximal subpart
  EXPECT_EQ(utf8::decode("\xED\xA0\x80"), (V{R, R, R}));      // surrogate
  EXPECT_EQ(utf8::decode("\xC0\xAF"), (V{R, R}));             // overlong
  EXPECT_EQ(utf8::decode("\xF4\x90\x80\x80"), (V{R, R, R, R}));  // > U+10FFFF
  EXPECT_EQ(utf8::decode("\xE2\x82" "\xE2\x82\xAC"), (V{R, 0x20AC}));
  EXPECT_TRUE(utf8::is_valid("caf\xC3\xA9"));
  EXPECT_FALSE(utf8::is_valid("caf\xE9"));
  Rng rng(2);
  for (int k = 0; k < 200; ++k) {
    const std::string s = random_bytes(rng, rng.below(64));
    const std::string clean = utf8::sanitize(s);
    EXPECT_TRUE(utf8::is_valid(clean));
    EXPECT_EQ(utf8::sanitize(clean), clean);
    const std::string v = random_utf8(rng, rng.below(30));
    EXPECT_EQ(utf8::sanitize(v), v);
  }
}

TEST(UnicodeClasses, TableLookupMatchesLinearScanAndJavaScript) {
  using namespace unicode;
  // Binary search equals the plain scan at and around every range edge.
  for (size_t i = 0; i < kRangeCount; ++i) {
    ASSERT_LE(kRanges[i].first, kRanges[i].last);
    if (i) {
      ASSERT_LT(kRanges[i - 1].last, kRanges[i].first);
    }
    for (char32_t cp : {kRanges[i].first - 1, kRanges[i].first, kRanges[i].last,
                        kRanges[i].last + 1})
      ASSERT_EQ(classify(cp), classify_linear(cp)) << std::hex << uint32_t(cp);
  }
  for (char32_t cp = 0; cp < 0x3000; ++cp) ASSERT_EQ(classify(cp), classify_linear(cp));
  // What /\p{L}/u, /\p{N}/u and /\s/u say about these in JavaScript.
  EXPECT_EQ(classify('a'), kLetter);
  EXPECT_EQ(classify(U'é'), kLetter);
  EXPECT_EQ(classify(U'中'), kLetter);
  EXPECT_EQ(classify('7'), kNumber);
  EXPECT_EQ(classify(U'٣'), kNumber);
  EXPECT_EQ(classify(U'½'), kNumber);
  EXPECT_EQ(classify(' '), kSpace);
  EXPECT_EQ(classify('\n'), kSpace);
  EXPECT_EQ(classify(0xA0), kSpace);
  EXPECT_EQ(classify(0x3000), kSpace);
  EXPECT_EQ(classify(0xFEFF), kSpace);
  EXPECT_EQ(classify(0x85), kOther);  // \s in Python, not in JavaScript
  EXPECT_EQ(classify('\''), kOther);
  EXPECT_EQ(classify(0x1F600), kOther);
  EXPECT_EQ(classify(0x10FFFF), kOther);
}

// ---------------------------------------------------------------------------------------------
// GPT-2 BPE

TEST(Gpt2Bpe, PreTokenisationFollowsTheRegex) {
  auto split = [](std::string_view s) { return Gpt2Bpe::split_pieces(s); };
  EXPECT_EQ(split("Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(split("I'm  ok\n\n"), (Pieces{"I", "'m", " ", " ok", "\n\n"}));
  EXPECT_EQ(split("they'll've 'S"), (Pieces{"they", "'ll", "'ve", " '", "S"}));
  EXPECT_EQ(split("\t\tx"), (Pieces{"\t", "\t", "x"}));
  EXPECT_EQ(split("x   "), (Pieces{"x", "   "}));
  EXPECT_EQ(split("12abc 34"), (Pieces{"12", "abc", " 34"}));
  EXPECT_EQ(split("!!  ?? ."), (Pieces{"!!", " ", " ??", " ."}));
  EXPECT_EQ(split("a \nb"), (Pieces{"a", " ", "\n", "b"}));
  EXPECT_EQ(split("caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87"), (Pieces{"caf\xC3\xA9", " \xE4\xB8\xAD\xE6\x96\x87"}));
  EXPECT_EQ(split("a\xC2\xA0" "b"), (Pieces{"a", "\xC2\xA0", "b"}));  // U+00A0 is \s
  EXPECT_EQ(split(""), (Pieces{}));
  // Pieces always tile the text.
  Rng rng(3);
  for (int k = 0; k < 200; ++k) {
    const std::string s = random_utf8(rng, rng.below(40));
    std::string joined;
    for (std::string_view p : split(s)) {
      EXPECT_FALSE(p.empty());
      joined += p;
    }
    EXPECT_EQ(joined, s);
  }
}

TEST(Gpt2Bpe, MergesByRankAllOccurrencesLeftToRight) {
  TempDir dir("tinybpe");
  // Ranks in file order: "b c" before "a b", so "abc" -> a|bc, never ab|c.
  write_tiny_vocab(dir, {{"b", "c"}, {"a", "b"}, {"a", "a"}, {"h", "e"}, {"he", "l"},
                         {"hel", "l"}, {"hell", "o"}, {" ", "w"}});
  Gpt2Bpe t(dir.path.string());
  EXPECT_EQ(t.vocab_size(), 256 + 8 + 1);
  EXPECT_EQ(t.eot_id(), 264);
  using S = std::vector<std::string>;
  EXPECT_EQ(token_strings(t, t.encode("abc")), (S{"a", "bc"}));
  EXPECT_EQ(token_strings(t, t.encode("abd")), (S{"ab", "d"}));
  EXPECT_EQ(token_strings(t, t.encode("aaa")), (S{"aa", "a"}));
  EXPECT_EQ(token_strings(t, t.encode("aaaa")), (S{"aa", "aa"}));
  EXPECT_EQ(token_strings(t, t.encode("hellohello wx")), (S{"hello", "hello", " w", "x"}));
  EXPECT_EQ(t.decode(t.encode("hellohello wx")), "hellohello wx");
  EXPECT_EQ(t.encode_with_special("ab<|endoftext|>"), (std::vector<int32_t>{257, 264}));
  EXPECT_EQ(t.decode(std::vector<int32_t>{264}), "<|endoftext|>");
  EXPECT_THROW(t.decode(std::vector<int32_t>{265}), Error);
  // Same vocabulary, same id; another vocabulary, another id.
  EXPECT_EQ(Gpt2Bpe(dir.path.string()).id(), t.id());
  TempDir other("tinybpe2");
  write_tiny_vocab(other, {{"a", "b"}, {"b", "c"}});
  EXPECT_NE(Gpt2Bpe(other.path.string()).id(), t.id());
  EXPECT_EQ(token_strings(Gpt2Bpe(other.path.string()), Gpt2Bpe(other.path.string()).encode("abc")),
            (S{"ab", "c"}));
}

TEST(Gpt2Bpe, BadVocabularyFilesNameTheFile) {
  TempDir dir("badbpe");
  write_tiny_vocab(dir, {{"a", "b"}});
  const std::string d = dir.path.string();
  write_text(dir.file("encoder.json"), "{\"a\": 0, ");
  std::string msg = error_of([&] { Gpt2Bpe t(d); });
  EXPECT_NE(msg.find("encoder.json"), std::string::npos) << msg;
  write_text(dir.file("encoder.json"), "{\"a\": 0}");
  msg = error_of([&] { Gpt2Bpe t(d); });
  EXPECT_NE(msg.find("encoder.json"), std::string::npos) << msg;
  write_tiny_vocab(dir, {{"a", "b"}}, "x y z\n");
  msg = error_of([&] { Gpt2Bpe t(d); });
  EXPECT_NE(msg.find("vocab.bpe line 3"), std::string::npos) << msg;
  write_tiny_vocab(dir, {{"a", "b"}}, "q r\n");  // "qr" is not in encoder.json
  msg = error_of([&] { Gpt2Bpe t(d); });
  EXPECT_NE(msg.find("vocab.bpe line 3"), std::string::npos) << msg;
  fs::remove(dir.file("vocab.bpe"));
  msg = error_of([&] { Gpt2Bpe t(d); });
  EXPECT_NE(msg.find("vocab.bpe"), std::string::npos) << msg;
}

TEST(Gpt2Bpe, RealVocabularyRoundTrips) {
  REQUIRE_GPT2();
  auto tok = load_tokenizer("gpt2:" + gpt2_dir());
  EXPECT_EQ(tok->vocab_size(), 50257);
  EXPECT_EQ(tok->eot_id(), 50256);
  // Ids from OpenAI's GPT-2 tokenizer.
  EXPECT_EQ(tok->encode("Hello world"), (std::vector<int32_t>{15496, 995}));
  EXPECT_EQ(tok->encode_with_special("<|endoftext|>"), (std::vector<int32_t>{50256}));
  EXPECT_GT(tok->encode("<|endoftext|>").size(), 1u);  // plain text for encode()
  for (const char* s : {"", " ", "\n\n\n", "It's 3.14, isn't it?  Yes!\n\tOK",
                        "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80\xF0\x9F\x91\x8D",
                        "\xEF\xBB\xBF" "BOM and \xEF\xBF\xBD"}) {
    EXPECT_EQ(tok->decode(tok->encode(s)), s);
  }
  Rng rng(4);
  for (int k = 0; k < 300; ++k) {
    const std::string s = random_utf8(rng, rng.below(80));
    ASSERT_EQ(tok->decode(tok->encode(s)), s);
  }
  std::string long_word(5000, 'z');
  EXPECT_EQ(tok->decode(tok->encode(long_word)), long_word);
}

TEST(Gpt2Bpe, InvalidUtf8IsReplacedNotFatal) {
  REQUIRE_GPT2();
  Gpt2Bpe tok(gpt2_dir());
  Rng rng(5);
  for (int k = 0; k < 300; ++k) {
    const std::string s = random_bytes(rng, rng.below(100));
    std::vector<int32_t> ids;
    ASSERT_NO_THROW(ids = tok.encode(s));
    EXPECT_EQ(tok.decode(ids), utf8::sanitize(s));
    EXPECT_EQ(ids, tok.encode(utf8::sanitize(s)));
  }
}

// ---------------------------------------------------------------------------------------------
// Token caches

TEST(TokenCache, WritesAndMapsBackBothWidths) {
  TempDir dir("cache");
  Rng rng(6);
  for (int32_t vocab : {257, 65536, 70000}) {
    std::vector<int32_t> tokens(1000);
    for (auto& t : tokens) t = static_cast<int32_t>(rng.below(vocab));
    tokens[0] = vocab - 1;
    const TokenCacheKey key{"tok-x", 123, 456};
    const std::string path = dir.file(str("c", vocab, ".tok"));
    write_token_cache(path, key, vocab, tokens);
    std::string why = "unset";
    auto c = TokenCache::open(path, key, &why);
    ASSERT_TRUE(c.has_value()) << why;
    EXPECT_EQ(why, "");
    EXPECT_EQ(c->width(), vocab <= 65536 ? 2 : 4);
    EXPECT_EQ(c->vocab_size(), vocab);
    EXPECT_EQ(c->to_vector(), tokens);
    int32_t two[2];
    c->read(998, 2, two);
    EXPECT_EQ(two[1], tokens[999]);
    EXPECT_THROW(c->read(999, 2, two), Error);
    TokenCache moved = std::move(*c);
    EXPECT_EQ(moved[0], vocab - 1);
  }
  const TokenCacheKey key{"t", 1, 1};
  write_token_cache(dir.file("empty.tok"), key, 10, {});
  auto e = TokenCache::open(dir.file("empty.tok"), key);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->size(), 0u);
  EXPECT_THROW(write_token_cache(dir.file("bad.tok"), key, 10, std::vector<int32_t>{3, 10}), Error);
}

TEST(TokenCache, DetectsStaleAndCorruptFilesAndRebuilds) {
  TempDir dir("cache2");
  const std::string path = dir.file("x.tok");
  std::vector<int32_t> tokens(5000);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(i * 7 % 300);
  const TokenCacheKey key{"tok-a", 11, 22};
  int builds = 0;
  auto make = [&] {
    ++builds;
    return tokens;
  };
  std::string why;
  EXPECT_EQ(load_or_build_token_cache(path, key, 300, make, &why).to_vector(), tokens);
  EXPECT_EQ(why, "missing");
  EXPECT_EQ(load_or_build_token_cache(path, key, 300, make, &why).size(), tokens.size());
  EXPECT_EQ(why, "");
  EXPECT_EQ(builds, 1);

  auto expect_refused = [&](const TokenCacheKey& k, const std::string& prefix) {
    std::string w;
    EXPECT_FALSE(TokenCache::open(path, k, &w).has_value());
    EXPECT_EQ(w.rfind(prefix, 0), 0u) << w;
  };
  expect_refused({"tok-b", 11, 22}, "stale");
  expect_refused({"tok-a", 12, 22}, "stale");
  expect_refused({"tok-a", 11, 23}, "stale");

  const std::string good = [&] {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  auto corrupt_with = [&](std::string bytes, const char* what) {
    write_text(path, bytes);
    expect_refused(key, "corrupt");
    std::string w;
    const int before = builds;
    EXPECT_EQ(load_or_build_token_cache(path, key, 300, make, &w).to_vector(), tokens) << what;
    EXPECT_EQ(w.rfind("corrupt", 0), 0u) << what << ": " << w;
    EXPECT_EQ(builds, before + 1) << what;
  };
  std::string b = good;
  b[0] = 'X';
  corrupt_with(b, "bad magic");
  corrupt_with(good.substr(0, good.size() - 2), "truncated by one token");
  corrupt_with(good.substr(0, 40), "truncated header");
  corrupt_with(good + "ab", "trailing bytes");
  b = good;
  b[good.size() - 100] ^= 1;
  corrupt_with(b, "flipped payload bit");
  b = good;
  b[40] ^= 1;  // token count
  corrupt_with(b, "token count changed");
  corrupt_with("", "empty file");
}

// ---------------------------------------------------------------------------------------------
// Corpora

TEST(Corpus, SplitIsDeterministicDisjointAndCoversAllDocuments) {
  TempDir dir("corpus");
  const int n = 400;
  for (int i = 0; i < n; ++i)
    write_text(dir.file(str(i % 2 ? "sub/" : "", "doc", i, ".txt")), str("document ", i, "\n"));
  write_text(dir.file("notes.md"), "not a .txt file");
  const Corpus c = load_corpus(dir.path.string());
  ASSERT_EQ(c.docs.size(), static_cast<size_t>(n));
  int counts[3] = {0, 0, 0};
  for (const Document& d : c.docs) {
    EXPECT_EQ(split_of(d.name), split_of(std::string(d.name)));
    ++counts[static_cast<int>(split_of(d.name))];
  }
  EXPECT_EQ(counts[0] + counts[1] + counts[2], n);
  EXPECT_GT(counts[0], n * 80 / 100);
  EXPECT_GT(counts[1], n * 2 / 100);
  EXPECT_GT(counts[2], n * 2 / 100);
  // Each split's tokens are its documents, each followed by end-of-text; together all of them.
  ByteTokenizer tok;
  std::multiset<std::string> seen;
  for (Split s : {Split::Train, Split::Validation, Split::Test}) {
    const std::vector<int32_t> ids = tokenize_split(c, s, tok);
    std::string cur;
    for (int32_t id : ids) {
      if (id == tok.eot_id()) {
        seen.insert(cur);
        cur.clear();
      } else {
        cur.push_back(static_cast<char>(id));
      }
    }
    EXPECT_EQ(cur, "");
    EXPECT_EQ(tokenize_split(load_corpus(dir.path.string()), s, tok), ids);  // deterministic
  }
  std::multiset<std::string> all;
  for (const Document& d : c.docs) all.insert(d.text);
  EXPECT_EQ(seen, all);
  EXPECT_EQ(parse_split("validation"), Split::Validation);
  EXPECT_THROW(parse_split("dev"), Error);
  EXPECT_THROW(load_corpus(dir.file("missing")), Error);
}

TEST(Corpus, SingleFileIsCutIntoDocuments) {
  TempDir dir("single");
  std::string big;
  for (int i = 0; i < 20000; ++i) big += str("line ", i, " of a long text\n");
  const std::string text = "short one<|endoftext|>second<|endoftext|>" + big;
  write_text(dir.file("book.txt"), text);
  const Corpus c = load_corpus(dir.file("book.txt"));
  ASSERT_GT(c.docs.size(), 5u);
  std::string joined;
  std::set<std::string> names;
  for (const Document& d : c.docs) names.insert(d.name);
  EXPECT_EQ(names.size(), c.docs.size());
  EXPECT_TRUE(names.count("book.txt#0"));
  // Docs come sorted by name, so rebuild in index order.
  for (size_t i = 0; i < c.docs.size(); ++i)
    for (const Document& d : c.docs)
      if (d.name == str("book.txt#", i)) joined += (i == 1 || i == 2 ? "<|endoftext|>" : "") + d.text;
  EXPECT_EQ(joined, text);
}

TEST(Corpus, BrownTagsAreStripped) {
  EXPECT_EQ(strip_brown_tags("\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, "
                             "it/pps ./.\n\n\n\t(/( 1/2/cd )/) Mr./np-tl went/vbd !/.\n"),
            "The jury said \"no evidence\", it.\n(1/2) Mr. went!\n");
}

TEST(Corpus, SplitTokensAreCachedAndRebuiltWhenTheSourceChanges) {
  TempDir dir("splitcache");
  for (int i = 0; i < 60; ++i) write_text(dir.file(str("d", i, ".txt")), str("text number ", i));
  ByteTokenizer tok;
  const std::string corpus = dir.file("");
  const std::string cache = default_cache_path(dir.file("cache"), dir.path.string(), Split::Train, tok);
  EXPECT_NE(cache.find("train"), std::string::npos);
  std::string why;
  const std::vector<int32_t> first = split_tokens(dir.path.string(), Split::Train, tok, cache, &why).to_vector();
  EXPECT_EQ(why, "missing");
  EXPECT_EQ(first, tokenize_split(load_corpus(dir.path.string()), Split::Train, tok));
  EXPECT_EQ(split_tokens(dir.path.string(), Split::Train, tok, cache, &why).to_vector(), first);
  EXPECT_EQ(why, "");
  // Same size, new modification time: stale.
  std::string victim;
  for (int i = 0; i < 60 && victim.empty(); ++i)
    if (split_of(str("d", i, ".txt")) == Split::Train) victim = dir.file(str("d", i, ".txt"));
  const auto t0 = fs::last_write_time(victim);
  write_text(victim, "TEXT NUMBER ??");
  fs::last_write_time(victim, t0 + std::chrono::seconds(5));
  const std::vector<int32_t> second = split_tokens(dir.path.string(), Split::Train, tok, cache, &why).to_vector();
  EXPECT_EQ(why.rfind("stale", 0), 0u) << why;
  EXPECT_NE(second, first);
  EXPECT_EQ(second, tokenize_split(load_corpus(dir.path.string()), Split::Train, tok));
}

TEST(Corpus, BrownCorpusLoads) {
  const fs::path brown = hippo::test_util::source_data_dir("brown");
  if (!is_brown_folder(brown.string()))
    GTEST_SKIP() << brown << " missing: run scripts/get_brown.sh";
  const Corpus c = load_corpus(brown.string());
  ASSERT_EQ(c.docs.size(), 500u);
  int counts[3] = {0, 0, 0};
  size_t chars = 0;
  for (const Document& d : c.docs) {
    ++counts[static_cast<int>(split_of(d.name))];
    chars += d.text.size();
    EXPECT_EQ(d.text.find("/nn"), std::string::npos) << d.name;
    EXPECT_EQ(d.text.find("/at "), std::string::npos) << d.name;
  }
  EXPECT_EQ(c.docs[0].text.substr(0, 40), "The Fulton County Grand Jury said Friday");
  EXPECT_GT(counts[1], 10);
  EXPECT_GT(counts[2], 10);
  EXPECT_GT(chars, 5'000'000u);
  std::printf("Brown: %zu documents, %zu chars; train/validation/test = %d/%d/%d\n",
              c.docs.size(), chars, counts[0], counts[1], counts[2]);
}
