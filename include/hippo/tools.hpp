// Helpers for programs built on hippo that work like the `hippo` command: the tokenizer as a
// text filter, and one message for any exception the library lets through.
#pragma once
#include <iosfwd>
#include <cstdint>
#include <functional>
#include <string>

#include "hippo/error.hpp"

namespace hippo {

struct TokenizeOptions {
  std::string tokenizer = "byte";  // "byte" or "gpt2:DIR"; ignored when `model` is given
  std::string model;               // use this model file's embedded tokenizer
  bool decode = false;             // ids -> text (else text -> ids)
  bool special = false;            // encode the text "<|endoftext|>" as the end-of-text id
  bool jsonl = false;              // one JSON string (or id array with decode) per line
};

// `hippo tokenize`: reads `in` to its end and writes to `out`. Text mode: the whole input to
// space-separated ids and a newline, or (decode) ids back to the bytes. JSONL mode: each line
// a JSON string -> an array of ids, or (decode) an array of ids -> a JSON string (invalid UTF-8
// from partial tokens as U+FFFD). A malformed line or id is an Error naming the line or word.
void tokenize_stream(const TokenizeOptions& options, std::istream& in, std::ostream& out);

// `hippo tokenize --shards DIR`: the corpus `data` (as `hippo train --data`: a text file, a
// folder, a .jsonl file, "brown") tokenized on all threads into DIR/train.tok,
// DIR/validation.tok and DIR/test.tok (docs/scaling.md, "Data formats"), which
// `hippo train --data DIR` then memory-maps.
struct ShardOptions {
  std::string data = "brown";
  std::string tokenizer = "byte";  // "byte" or "gpt2:DIR"
  std::string out_dir;
  int threads = 0;                 // 0: all cores
  uint64_t shard_tokens = 0;       // ids per shard file; 0: 2^27
  bool force = false;              // replace shards already in out_dir (else refused)
  std::function<void(uint64_t done_bytes, uint64_t total_bytes)> on_progress;  // null: none
};
struct ShardResult {
  std::string tokenizer_id;
  uint64_t train_tokens = 0, validation_tokens = 0, test_tokens = 0;
  int train_files = 0, validation_files = 0, test_files = 0;
};
ShardResult write_shards(const ShardOptions& options);

// The message for the exception being handled (call it inside a catch block): a hippo::Error's
// text; the few library exceptions that may slip through (out of memory, a filesystem error,
// invalid JSON, number conversions) as a sentence naming `command`, never a raw what().
std::string current_exception_message(const std::string& command);

}  // namespace hippo
