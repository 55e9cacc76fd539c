// `hippo tokenize`: text on stdin to token ids on stdout, or back with --decode
// (hippo::tokenize_stream, include/hippo/tools.hpp).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "apps/commands.h"
#include "apps/int_option.h"
#include "hippo/tools.hpp"

namespace hippo::cli {

namespace {

// --shards: a corpus to token files, with progress on stderr.
int run_shards(const ShardOptions& o) {
  ShardOptions opt = o;
  const bool tty = isatty(STDERR_FILENO);
  int last_pct = -1;
  opt.on_progress = [tty, &last_pct](uint64_t done, uint64_t total) {
    const int pct = total ? static_cast<int>(done * 100 / total) : 100;
    if (pct == last_pct || (!tty && pct % 25 != 0)) return;
    last_pct = pct;
    std::fprintf(stderr, "%stokenizing: %d%% of %llu bytes%s", tty ? "\r" : "", pct,
                 static_cast<unsigned long long>(total), tty && pct < 100 ? "" : "\n");
  };
  const ShardResult r = write_shards(opt);
  std::printf("shards in %s (tokenizer %s): %llu train / %llu validation / %llu test tokens"
              " in %d / %d / %d files\n",
              o.out_dir.c_str(), r.tokenizer_id.c_str(), static_cast<unsigned long long>(r.train_tokens),
              static_cast<unsigned long long>(r.validation_tokens),
              static_cast<unsigned long long>(r.test_tokens), r.train_files, r.validation_files,
              r.test_files);
  return 0;
}

}  // namespace

void add_tokenize(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<TokenizeOptions>();
  auto shards = std::make_shared<ShardOptions>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize", "Encode stdin to space-separated token ids, or decode ids back to text");
  cmd->add_option("--tokenizer", o->tokenizer, "'byte' or 'gpt2:<dir with encoder.json, vocab.bpe>'")
      ->capture_default_str();
  cmd->add_option("-m,--model", o->model, "Use this model file's tokenizer (embedded in it)")
      ->excludes(cmd->get_option("--tokenizer"));
  cmd->add_flag("--decode", o->decode, "Read token ids, write the text");
  cmd->add_flag("--special", o->special, "Encode the text <|endoftext|> as the end-of-text id");
  cmd->add_flag("--jsonl", o->jsonl,
                "Each stdin line is one JSON string (or id array with --decode); one JSON "
                "result per line");
  auto* shards_opt = cmd->add_option("--shards", shards->out_dir,
                  "Tokenize the corpus --data on all cores into OUT_DIR/{train,validation,test}-NNNNN.tok "
                  "(for hippo train --data OUT_DIR)")->type_name("OUT_DIR");
  shards_opt->excludes("--decode")->excludes("--jsonl")->excludes("--model")->excludes("--special");
  cmd->add_option("-d,--data", shards->data, "With --shards: the corpus (as hippo train --data)")
      ->capture_default_str()->needs(shards_opt);
  // Parsed strictly (apps/int_option.h): CLI11 would wrap "-5" into a huge unsigned count.
  auto shard_tokens_text = std::make_shared<std::string>("0");
  cmd->add_option("--shard-tokens", *shard_tokens_text,
                  "With --shards: ids per shard file (0: 2^27, 256 MiB of uint16 ids)")
      ->type_name("INT")->capture_default_str()->needs(shards_opt);
  cmd->add_flag("--force", shards->force,
                "With --shards: replace the token shards already in OUT_DIR (without it, refused)")
      ->needs(shards_opt);
  cmd->add_option("-t,--threads", shards->threads, "With --shards: threads (0: all cores)")
      ->capture_default_str()->needs(shards_opt);
  cmd->callback([o, shards, shard_tokens_text, &run] {
    if (!shards->out_dir.empty()) {
      shards->tokenizer = o->tokenizer;
      run = [shards, shard_tokens_text] {
        shards->shard_tokens = static_cast<uint64_t>(
            parse_int_option(*shard_tokens_text, "--shard-tokens", 0, kMaxCount));
        return run_shards(*shards);
      };
      return;
    }
    run = [o] { tokenize_stream(*o, std::cin, std::cout); return 0; };
  });
}

}  // namespace hippo::cli
