// The data pipeline's parts (issue 15): JSONL parsing and its errors, parallel tokenization
// against the sequential reference, token shards' checks; and the trainer's gradient buffer
// and single-process communicator. End-to-end checks are tests/ref/test_data_pipeline.py and
// tests/ref/test_mpi_train.py.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "core/error.h"
#include "core/threads.h"
#include "data/byte_tokenizer.h"
#include "data/corpus.h"
#include "data/jsonl.h"
#include "data/shards.h"
#include "models/lm.h"
#include "test_util.h"
#include "train/dist/communicator.h"
#include "train/dist/grad_sync.h"

namespace hippo {
namespace {

using test_util::TempDir;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Jsonl, ReadsTheTextFieldOfEachLine) {
  const auto r = parse_jsonl_texts("{\"text\": \"a\\nb\", \"id\": 1}\r\n{\"meta\": {}, \"text\": \"\\u00e9\"}", "f.jsonl");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].text, "a\nb");
  EXPECT_EQ(r[1].text, "\xc3\xa9");
  EXPECT_EQ(r[1].line, 2u);
  EXPECT_TRUE(is_jsonl_path("x/y.jsonl"));
  EXPECT_FALSE(is_jsonl_path("x/y.json"));
}

TEST(Jsonl, RefusesBadLinesNamingFileAndLine) {
  const std::string ok = "{\"text\": \"x\"}\n";
  EXPECT_NE(error_of([&] { parse_jsonl_texts(ok + "{\"text\": \"x\"", "f.jsonl"); }).find("f.jsonl:2: not valid JSON"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_jsonl_texts(ok + ok + "{\"txt\": \"x\"}", "f.jsonl"); }).find("f.jsonl:3: no \"text\""),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_jsonl_texts("{\"text\": null}", "f.jsonl"); }).find("f.jsonl:1: \"text\" is a null"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_jsonl_texts("\"text\"", "f.jsonl"); }).find("f.jsonl:1: a JSON string"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_jsonl_texts(ok + "  \n" + ok, "f.jsonl"); }).find("f.jsonl:2: empty line"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_jsonl_texts("{\"text\": \"a\", \"text\": \"b\"}", "f.jsonl"); })
                .find("duplicate key 'text'"),
            std::string::npos);
}

TEST(Shards, ParallelTokenizationEqualsTheSequentialReference) {
  TempDir dir("shards_par");
  std::filesystem::create_directories(dir.path / "docs");
  for (int i = 0; i < 40; ++i) {
    std::ofstream f(dir.path / "docs" / str("d", i, ".txt"));
    for (int k = 0; k <= i * 7; ++k) f << "line " << k << " of document " << i << "\n";
  }
  const Corpus c = load_corpus((dir.path / "docs").string());
  ByteTokenizer tok;
  set_num_threads(3);
  uint64_t last = 0, total = 0;
  for (Split s : {Split::Train, Split::Validation, Split::Test}) {
    const auto par = tokenize_split_parallel(c, s, tok, [&](uint64_t d, uint64_t t) { last = d; total = t; });
    EXPECT_EQ(par, tokenize_split(c, s, tok)) << split_name(s);
    EXPECT_EQ(last, total);  // the progress ends at 100%
  }
  set_num_threads(0);
}

TEST(Shards, WrittenShardsOpenAndRefuseAnotherTokenizer) {
  TempDir dir("shards_rw");
  {
    std::ofstream f(dir.file("c.txt"));
    for (int k = 0; k < 500; ++k) f << "some text " << k << "\n";
  }
  ByteTokenizer tok;
  const ShardCounts n = write_token_shards(dir.file("c.txt"), tok, dir.file("out"));
  EXPECT_TRUE(is_shard_folder(dir.file("out")));
  EXPECT_FALSE(is_shard_folder(dir.file("c.txt")));
  const Corpus c = load_corpus(dir.file("c.txt"));
  for (Split s : {Split::Train, Split::Validation, Split::Test}) {
    TokenCache t = TokenCache::open_shard(shard_path(dir.file("out"), s, 0), tok.id());
    EXPECT_EQ(t.to_vector(), tokenize_split(c, s, tok));
    EXPECT_EQ(t.size(), n.tokens[static_cast<int>(s)]);
  }
  const std::string e = error_of([&] { TokenCache::open_shard(shard_path(dir.file("out"), Split::Train, 0), "other"); });
  EXPECT_NE(e.find("tokenized by 'byte-v1'"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { TokenCache::open_shard(dir.file("none.tok"), tok.id()); }).find("no such file"),
            std::string::npos);
}

TEST(GradBuffer, SumsMicroBatchGradientsInOrder) {
  LanguageModel m(ModelConfig::from_json({{"vocab_size", 10}, {"d_model", 8}, {"n_layer", 1}, {"d_state", 4}},
                                         "test"));
  m.init(1);
  GradBuffer buf(m.params());
  auto fill = [&](float base) {
    float v = base;
    for (auto& p : m.params())
      for (int64_t i = 0; i < p.param->grad.numel(); ++i) p.param->grad.data()[i] = (v += 0.25f);
  };
  fill(1.0f);
  buf.assign_grads();
  fill(-3.0f);
  buf.add_grads();
  buf.store_grads();
  float a = 1.0f, b = -3.0f;
  for (auto& p : m.params())
    for (int64_t i = 0; i < p.param->grad.numel(); ++i) {
      a += 0.25f;
      b += 0.25f;
      ASSERT_EQ(p.param->grad.data()[i], a + b) << p.name;
    }
}

TEST(Communicator, SingleProcessIsRankZeroOfOne) {
  auto c = make_single_process_communicator();
  EXPECT_EQ(c->rank(), 0);
  EXPECT_EQ(c->size(), 1);
  float x = 2.5f;
  c->allreduce_sum(&x, 1);
  EXPECT_EQ(x, 2.5f);
  if (launched_ranks() == 1) {  // not under mpirun
    EXPECT_EQ(world_communicator().size(), 1);
  }
}

}  // namespace
}  // namespace hippo
