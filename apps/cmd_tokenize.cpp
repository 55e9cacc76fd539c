// `hippo tokenize`: text on stdin to token ids on stdout, or back with --decode
// (hippo::tokenize_stream, include/hippo/tools.hpp).
#include <iostream>
#include <memory>

#include "apps/commands.h"
#include "hippo/tools.hpp"

namespace hippo::cli {

void add_tokenize(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<TokenizeOptions>();
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
  cmd->callback([o, &run] { run = [o] { tokenize_stream(*o, std::cin, std::cout); return 0; }; });
}

}  // namespace hippo::cli
