// hippo::write_shards (include/hippo/tools.hpp): what `hippo tokenize --shards` does.
#include <memory>

#include "core/error.h"
#include "core/threads.h"
#include "data/corpus.h"
#include "data/shards.h"
#include "data/tokenizer.h"
#include "hippo/tools.hpp"

namespace hippo {

ShardResult write_shards(const ShardOptions& o) {
  HIPPO_CHECK(!o.out_dir.empty(), "hippo tokenize --shards needs an output folder");
  HIPPO_CHECK(o.threads >= 0 && o.threads <= 4096, "--threads must be in [0, 4096] (0: all cores), got ",
              o.threads);
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
