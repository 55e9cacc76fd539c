// Corpora larger than memory (issue 15): the streamed corpus (data/corpus_stream.h) against
// load_corpus, the reference it must equal piece for piece; shards of a bounded size read back
// as the text path's tokens; checksums checked only where a rank reads; and each micro-batch
// drawing only from its part of the train tokens.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "core/rng.h"
#include "data/byte_tokenizer.h"
#include "data/corpus.h"
#include "data/corpus_stream.h"
#include "data/lm_batches.h"
#include "data/shards.h"
#include "test_util.h"

namespace hippo {
namespace {

using test_util::TempDir;
using Piece = std::tuple<Split, std::string, bool>;

void write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// Random text with what the cuts care about: line breaks, multi-byte characters (cuts must
// not split them), <|endoftext|> and stretches without any line break.
std::string random_text(Rng& rng, size_t n) {
  static const char* bits[] = {"a", "b", " ", "\n", "\xc3\xa9", "\xe2\x82\xac", "<|endoftext|>", "xyzw"};
  const bool no_breaks = rng.below(4) == 0;
  std::string s;
  while (s.size() < n) {
    const uint64_t k = rng.below(rng.below(3) == 0 ? 8 : 6);  // end-of-text is rarer
    if (no_breaks && k == 3) continue;
    s += bits[k];
  }
  return s;
}

std::vector<Piece> reference(const std::string& path) {
  std::vector<Piece> out;
  for (const Document& d : load_corpus(path).docs) out.emplace_back(d.split, d.text, d.ends_document);
  return out;
}

std::vector<Piece> streamed(const std::string& path, bool* streams = nullptr) {
  std::vector<Piece> out;
  const bool ok = stream_corpus(path, [&](Split s, std::string_view t, bool e) { out.emplace_back(s, std::string(t), e); });
  if (streams) *streams = ok;
  return out;
}

std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '\n') o += "\\n";
    else if (c == '"' || c == '\\') (o += '\\') += c;
    else o += c;
  }
  return o + "\"";
}

TEST(CorpusStream, SingleFilesGiveLoadCorpusPieces) {
  TempDir dir("stream_single");
  Rng rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    const size_t n = trial < 5 ? static_cast<size_t>(trial) : static_cast<size_t>(rng.below(3000));
    const std::string txt = dir.file(str("t", trial, ".txt"));
    write(txt, random_text(rng, n));
    EXPECT_EQ(streamed(txt), reference(txt)) << txt;
    std::string lines;  // the same as JSONL records, some holding <|endoftext|> themselves
    for (uint64_t r = 0, k = rng.below(6); r < k; ++r)
      lines += "{\"text\": " + json_string(random_text(rng, rng.below(400))) + "}\n";
    const std::string jsonl = dir.file(str("j", trial, ".jsonl"));
    write(jsonl, lines);
    EXPECT_EQ(streamed(jsonl), reference(jsonl)) << jsonl;
  }
  // Longer than the 64 KiB pieces, with and without line breaks.
  std::string big;
  for (int i = 0; i < 3000; ++i) big += str("line ", i, " of a long file with some words in it\n");
  write(dir.file("big.txt"), big + "<|endoftext|>" + std::string(150000, 'q') + "\n" + big);
  const std::vector<Piece> p = streamed(dir.file("big.txt"));
  EXPECT_GT(p.size(), 6u);
  EXPECT_EQ(p, reference(dir.file("big.txt")));
}

TEST(CorpusStream, FoldersGiveLoadCorpusOrderOrDeclineToStream) {
  TempDir dir("stream_folder");
  Rng rng(11);
  // Names whose documents sort across files as "x.jsonl:7" against "x.jsonl.txt".
  for (int i = 0; i < 30; ++i) write(dir.file(str("d", i % 7, "/f", i, ".txt")), random_text(rng, rng.below(300)));
  write(dir.file("x.jsonl.txt"), "text beside the jsonl file");
  write(dir.file("e.txt"), "");
  std::string lines;
  for (int r = 0; r < 25; ++r) lines += "{\"text\": " + json_string(random_text(rng, rng.below(200))) + "}\n";
  write(dir.file("x.jsonl"), lines);
  bool streams = false;
  const std::vector<Piece> p = streamed(dir.path.string(), &streams);
  EXPECT_TRUE(streams);
  EXPECT_EQ(p, reference(dir.path.string()));
  // A folder of one file is split by position: not streamed (the caller loads it whole).
  TempDir one("stream_one");
  write(one.file("only.txt"), "just one document\nof two lines\n");
  EXPECT_TRUE(streamed(one.path.string(), &streams).empty());
  EXPECT_FALSE(streams);
}

TEST(Shards, ManySmallShardsHoldTheTextPathTokens) {
  TempDir dir("shards_small");
  Rng rng(3);
  write(dir.file("c.txt"), random_text(rng, 20000));
  ByteTokenizer tok;
  const Corpus c = load_corpus(dir.file("c.txt"));
  for (uint64_t limit : {uint64_t{97}, uint64_t{1} << 20}) {
    const ShardCounts n = write_token_shards(dir.file("c.txt"), tok, dir.file("out"), {}, limit);
    for (Split s : {Split::Train, Split::Validation, Split::Test}) {
      const std::vector<std::string> files = shard_paths(dir.file("out"), s);
      EXPECT_EQ(static_cast<int>(files.size()), n.files[static_cast<int>(s)]);  // earlier ones removed
      const std::vector<int32_t> want = tokenize_split(c, s, tok);
      EXPECT_EQ(files.size(), (want.size() + limit - 1) / limit) << split_name(s);
      const TokenCache t = open_split_shards(dir.file("out"), s, tok.id());
      t.verify(0, t.size());
      EXPECT_EQ(t.to_vector(), want) << split_name(s);
      for (int k = 0; k < 50; ++k) {  // reads across file boundaries
        const size_t b = rng.below(want.size()), len = rng.below(want.size() - b + 1);
        std::vector<int32_t> got(len);
        t.read(b, len, got.data());
        ASSERT_EQ(got, std::vector<int32_t>(want.begin() + static_cast<long>(b), want.begin() + static_cast<long>(b + len)));
        if (b < want.size()) {
          ASSERT_EQ(t[b], want[b]);
        }
      }
    }
  }
}

TEST(Shards, ChecksumsAreCheckedOnlyWhereARangeReads) {
  TempDir dir("shards_verify");
  std::string text;
  for (int k = 0; k < 400; ++k) text += str("some text ", k, "\n");
  write(dir.file("c.txt"), text);
  ByteTokenizer tok;
  write_token_shards(dir.file("c.txt"), tok, dir.file("out"), {}, 1000);
  const std::vector<std::string> files = shard_paths(dir.file("out"), Split::Train);
  ASSERT_GE(files.size(), 3u);
  {
    std::fstream f(files.back(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('!');  // an id changed: the file's checksum no longer matches
  }
  const TokenCache t = open_split_shards(dir.file("out"), Split::Train, tok.id());
  EXPECT_NO_THROW(t.verify(0, 2000));  // the first two files
  const std::string e = test_util::error_of([&] { t.verify(0, t.size()); });
  EXPECT_NE(e.find(files.back()), std::string::npos) << e;
  EXPECT_NE(e.find("checksum"), std::string::npos) << e;
  EXPECT_THROW(TokenCache::open_shard(files.back(), tok.id()), Error);  // checked whole alone
}

TEST(LmBatches, MicroBatchesReadOnlyTheirPart) {
  TempDir dir("parts");
  const int n = 5003, L = 16, parts = 4;
  std::vector<int32_t> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = i;  // each id is its position
  write_token_cache(dir.file("c.tok"), {"pos", 1, 1}, 65536, ids);
  const TokenCache t = *TokenCache::open(dir.file("c.tok"), {"pos", 1, 1});
  int64_t covered = 0;
  for (int part = 0; part < parts; ++part) {
    const auto [lo, hi] = lm_part_range(n, part, parts, L);
    EXPECT_EQ(lo, covered);
    covered = hi;
    int32_t seen_lo = n, seen_hi = 0;
    for (int64_t index = 0; index < 200; ++index) {
      Batch b;
      lm_random_batch(t, 5, index, 4, L, b, part, parts);
      for (int r = 0; r < 4; ++r)
        for (int j = 0; j < L; ++j) {
          seen_lo = std::min(seen_lo, b.tokens[r * L + j]);
          seen_hi = std::max(seen_hi, b.targets[r * L + j]);
        }
    }
    EXPECT_GE(seen_lo, lo);
    EXPECT_LT(seen_hi, hi);
    EXPECT_LT(seen_lo, lo + 100);  // and all of it is used
    EXPECT_GE(seen_hi, hi - 100);
  }
  EXPECT_EQ(covered, n);
  EXPECT_EQ(lm_part_range(n, 2, 400, L), std::make_pair(int64_t{0}, int64_t{n}));  // parts too short
}

}  // namespace
}  // namespace hippo
