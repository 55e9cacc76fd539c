// hippo::write_shards (include/hippo/tools.hpp): what `hippo tokenize --shards` does.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/threads.h"
#include "data/corpus.h"
#include "data/shards.h"
#include "data/tokenizer.h"
#include "hippo/tools.hpp"

namespace hippo {

namespace {

// The token files an earlier `tokenize --shards` left in `dir` (names as it writes them), at most
// `limit` of them, sorted.
std::vector<std::string> shards_present(const std::string& dir, size_t limit) {
  namespace fs = std::filesystem;
  static const std::regex name(R"((train|validation|test)(-[0-9]+)?\.tok)");
  std::vector<std::string> found;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (std::regex_match(it->path().filename().string(), name)) found.push_back(it->path().filename());
  std::sort(found.begin(), found.end());
  if (found.size() > limit) found.resize(limit);
  return found;
}

// Like a training run's folder (--force discards it): shards already in the folder are refused
// unless `force`, so a typo does not replace hours of tokenizing.
void check_shard_folder(const ShardOptions& o) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(o.out_dir, ec)) return;
  HIPPO_CHECK(fs::is_directory(o.out_dir, ec), "--shards ", o.out_dir, ": exists and is not a folder");
  const std::string data = resolve_corpus_path(o.data);
  HIPPO_CHECK(!fs::equivalent(o.out_dir, data, ec), "--shards ", o.out_dir,
              ": is the corpus folder itself (--data); choose another folder for the shards");
  if (o.force) return;
  const std::vector<std::string> present = shards_present(o.out_dir, 4);
  if (present.empty()) return;
  std::string names;
  for (const std::string& n : present) names += (names.empty() ? "" : ", ") + n;
  fail("--shards ", o.out_dir, ": already holds token shards (", names, present.size() == 4 ? ", ..." : "",
       "); replace them with --force or choose another folder");
}

}  // namespace

ShardResult write_shards(const ShardOptions& o) {
  HIPPO_CHECK(!o.out_dir.empty(), "hippo tokenize --shards needs an output folder");
  HIPPO_CHECK(o.threads >= 0 && o.threads <= 4096, "--threads must be in [0, 4096] (0: all cores), got ",
              o.threads);
  check_shard_folder(o);
  set_num_threads(o.threads);
  const std::unique_ptr<Tokenizer> tok = load_tokenizer(o.tokenizer);
  const ShardCounts c = write_token_shards(resolve_corpus_path(o.data), *tok, o.out_dir, o.on_progress,
                                             o.shard_tokens ? o.shard_tokens : kDefaultShardTokens);
  ShardResult r;
  r.tokenizer_id = tok->id();
  r.train_tokens = c.tokens[0];
  r.validation_tokens = c.tokens[1];
  r.test_tokens = c.tokens[2];
  r.train_files = c.files[0];
  r.validation_files = c.files[1];
  r.test_files = c.files[2];
  return r;
}

}  // namespace hippo
