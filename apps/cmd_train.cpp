// hippo train: train a model on a synthetic task (or, with the tokenizer, on text).
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "apps/commands.h"
#include "core/error.h"
#include "core/threads.h"
#include "data/synthetic.h"
#include "data/corpus.h"
#include "data/hash.h"
#include "data/lm_batches.h"
#include "data/synthetic_batches.h"
#include "data/tokenizer.h"
#include "models/lm.h"
#include "train/lm_eval.h"
#include "train/int_option.h"
#include "train/synthetic_eval.h"
#include "train/trainer.h"

namespace hippo::cli {

namespace {

struct TrainCli {
  std::string config;  // model config JSON; empty: built-in small hybrid
  std::string data = "brown";
  std::string tokenizer = "byte";
  std::string cache_dir = "data/cache";
  int threads = 0;
  uint64_t seed = 0;
  int batch_size = 16;
  int seq_len = 256;
  int64_t eval_tokens = 65536;  // validation tokens per periodic evaluation
  // 64-bit options as given, parsed strictly by parse_numbers (see train/int_option.h).
  std::string seed_text = "0", steps_text = "600", warmup_text = "50", eval_every_text = "200",
              save_every_text = "0", log_every_text = "10", eval_tokens_text = "65536";
  TrainOptions t;
  float dropout = -1;
  bool dropout_given = false;
};

void parse_numbers(TrainCli& o) {
  o.seed = parse_u64_option(o.seed_text, "--seed");
  o.t.steps = parse_int_option(o.steps_text, "--steps", 1, kMaxCount);
  o.t.warmup_steps = parse_int_option(o.warmup_text, "--warmup", 0, kMaxCount);
  o.t.eval_every = parse_int_option(o.eval_every_text, "--eval-every", 0, kMaxCount);
  o.t.save_every = parse_int_option(o.save_every_text, "--save-every", 0, kMaxCount);
  o.t.log_every = parse_int_option(o.log_every_text, "--log-every", 1, kMaxCount);
  o.eval_tokens = parse_int_option(o.eval_tokens_text, "--eval-tokens", 0, kMaxCount);
}

// Ranges of the options train() does not see itself (train() checks the rest).
void validate_cli(const TrainCli& o) {
  HIPPO_CHECK(o.batch_size >= 1 && o.batch_size <= 65536, "--batch-size must be in [1, 65536], got ",
              o.batch_size);
  HIPPO_CHECK(o.seq_len >= 1 && o.seq_len <= (1 << 20), "--seq-len must be in [1, 1048576], got ",
              o.seq_len);
  HIPPO_CHECK(static_cast<int64_t>(o.batch_size) * o.seq_len <= (int64_t{1} << 22),
              "--batch-size x --seq-len must be at most 4194304 tokens per micro-batch, got ",
              o.batch_size, " x ", o.seq_len);
  HIPPO_CHECK(o.threads >= 0 && o.threads <= 4096, "--threads must be in [0, 4096] (0: all cores), got ",
              o.threads);
  HIPPO_CHECK(!o.dropout_given || (o.dropout >= 0 && o.dropout < 1),
              "--dropout must be in [0, 1), got ", o.dropout);
  HIPPO_CHECK(!o.t.resume || !o.t.out_dir.empty(),
              "--resume needs -o DIR: the run folder whose checkpoint.safetensors to continue");
  validate_train_options(o.t);
}

// What the training data is, by content: the train split's token count and a hash of its ids,
// so a resume on other data is refused wherever the files now live.
std::string data_fingerprint(const TokenCache& toks) {
  uint64_t h = kFnvOffset;
  std::vector<int32_t> buf;
  const size_t chunk = size_t{1} << 16;
  for (size_t i = 0; i < toks.size(); i += chunk) {
    buf.resize(std::min(chunk, toks.size() - i));
    toks.read(i, buf.size(), buf.data());
    h = fnv1a64(buf.data(), buf.size() * sizeof(int32_t), h);
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return str(toks.size(), " train tokens, fingerprint ", hex);
}

// The built-in default: a small hybrid H3-attention model, attention at layer 1 of 4
// ("one early", as in the paper's hybrids).
ModelConfig default_config(int vocab, bool synthetic) {
  nlohmann::json j = {{"vocab_size", vocab}, {"d_model", synthetic ? 64 : 128},
                      {"n_layer", synthetic ? 2 : 4}, {"d_state", 64}, {"attn_heads", synthetic ? 4 : 8}};
  j["layers"] = synthetic ? nlohmann::json{"h3", "attention"}
                          : nlohmann::json{"h3", "attention", "h3", "h3"};
  return ModelConfig::from_json(j, "built-in default config");
}

std::unique_ptr<LanguageModel> make_model(const TrainCli& o, int vocab, bool synthetic) {
  ModelConfig cfg = o.config.empty() ? default_config(vocab, synthetic) : ModelConfig::load(o.config);
  HIPPO_CHECK(cfg.vocab_size >= vocab, o.config, ": vocab_size ", cfg.vocab_size,
              " is smaller than the data's vocabulary ", vocab);
  if (o.dropout_given) {
    cfg.dropout = o.dropout;
    cfg.validate("--dropout");
  }
  auto model = std::make_unique<LanguageModel>(cfg);  // not movable: params point into it
  model->init(o.seed);
  std::fprintf(stderr, "model: %d layers (%s), d=%d, %lld parameters\n", cfg.n_layer,
               layers_summary(cfg).c_str(), cfg.d_model, static_cast<long long>(model->num_params()));
  return model;
}

int train_synthetic(TrainCli& o, const std::string& task, RunFolder* folder) {
  SynthOptions so;
  so.task = parse_synth_task(task);
  so.seed = o.seed;
  so.fill_defaults();
  SynthSplits data = make_synthetic(so);
  const std::unique_ptr<LanguageModel> owned = make_model(o, so.vocab, true);
  LanguageModel& model = *owned;
  o.t.run_settings["data"] = "synthetic:" + synth_task_name(so.task);
  o.t.run_settings["batch-size"] = std::to_string(o.batch_size);
  std::fprintf(stderr, "task %s: %d train / %d test sequences\n", synth_task_name(so.task).c_str(),
               data.train.n, data.test.n);
  const int B = o.batch_size, accum = o.t.grad_accum;
  TrainResult r = train(
      model, o.t,
      [&](int64_t step, int micro, Batch& b) { synthetic_batch(data.train, o.seed, step * accum + micro, B, b); },
      [&](LanguageModel& m) { return evaluate_synthetic(m, data.test); }, folder);
  std::printf("final: step %lld  train loss %.4f  test loss %.4f  test acc %.4f  %.0f tokens/s\n",
              static_cast<long long>(r.steps_done), r.last_loss, r.last_eval.metrics["loss"],
              r.last_eval.metrics["acc"], r.tokens_per_s);
  return 0;
}

int train_text(TrainCli& o, RunFolder* folder) {
  const std::string path = resolve_corpus_path(o.data);
  auto tok = load_tokenizer(o.tokenizer);
  auto split = [&](Split s) {
    std::string why;
    TokenCache c = split_tokens(path, s, *tok, default_cache_path(o.cache_dir, path, s, *tok), &why);
    if (!why.empty()) std::fprintf(stderr, "tokenized %s split (%s): %zu tokens\n", split_name(s), why.c_str(), c.size());
    return c;
  };
  TokenCache train_toks = split(Split::Train), val_toks = split(Split::Validation),
             test_toks = split(Split::Test);
  std::fprintf(stderr, "corpus %s, tokenizer %s: %zu train / %zu validation / %zu test tokens\n",
               path.c_str(), tok->id().c_str(), train_toks.size(), val_toks.size(), test_toks.size());
  const std::unique_ptr<LanguageModel> owned = make_model(o, tok->vocab_size(), false);
  LanguageModel& model = *owned;
  embed_tokenizer(*tok, o.t.metadata);  // the model file needs no vocabulary folder to run
  o.t.metadata["data"] = path;  // for the record; resume compares the content (below)
  o.t.run_settings["data"] = data_fingerprint(train_toks);
  o.t.run_settings["tokenizer"] = tok->id();
  o.t.run_settings["batch-size"] = std::to_string(o.batch_size);
  o.t.run_settings["seq-len"] = std::to_string(o.seq_len);
  const std::vector<int32_t> bytes = token_byte_lengths(*tok);
  const int B = o.batch_size, L = o.seq_len, accum = o.t.grad_accum;
  TrainResult r = train(
      model, o.t,
      [&](int64_t step, int micro, Batch& b) { lm_random_batch(train_toks, o.seed, step * accum + micro, B, L, b); },
      [&](LanguageModel& m) { return evaluate_lm(m, val_toks, L, B, &bytes, o.eval_tokens); }, folder);
  const bool tty = isatty(STDERR_FILENO);
  EvalResult test = evaluate_lm(model, test_toks, L, B, &bytes, 0, [tty](int64_t done, int64_t total) {
    if (tty || done == total)
      std::fprintf(stderr, "%stest evaluation: %lld/%lld windows%s", tty ? "\r" : "",
                   static_cast<long long>(done), static_cast<long long>(total), done == total ? "\n" : "");
  });
  std::printf("final: step %lld  train loss %.4f  %.0f tokens/s\n", static_cast<long long>(r.steps_done),
              r.last_loss, r.tokens_per_s);
  std::printf("test: %.0f tokens  loss %.4f  perplexity %.3f  bits/byte %.4f\n", test.metrics["tokens"],
              test.metrics["loss"], test.metrics["ppl"], test.metrics["bpb"]);
  if (!o.t.out_dir.empty()) std::printf("weights: %s/model.safetensors\n", o.t.out_dir.c_str());
  return 0;
}

int run_train(TrainCli& o) {
  parse_numbers(o);
  o.t.seed = o.seed;
  validate_cli(o);
  set_num_threads(o.threads);
  // Past a file-size limit (ulimit -f) a write then fails with EFBIG, which a save reports
  // and survives, instead of the signal killing the run with its state.
  ::signal(SIGXFSZ, SIG_IGN);
  // The run folder first: a locked folder or a run that is there already is refused before
  // any data is read.
  std::unique_ptr<RunFolder> folder;
  if (!o.t.out_dir.empty()) folder = std::make_unique<RunFolder>(o.t);
  const std::string prefix = "synthetic:";
  if (o.data.rfind(prefix, 0) == 0) return train_synthetic(o, o.data.substr(prefix.size()), folder.get());
  return train_text(o, folder.get());
}

}  // namespace

void add_train(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<TrainCli>();
  o->t.adam.lr = 2e-3f;
  o->t.adam.weight_decay = 0.1f;
  auto* c = app.add_subcommand("train", "Train a model");
  c->add_option("-c,--config", o->config, "Model config JSON (default: built-in tiny hybrid)");
  c->add_option("-d,--data", o->data,
                 "brown (data/brown) | a text file or folder of .txt files | "
                 "synthetic:induction_head | synthetic:associative_recall")
      ->capture_default_str();
  c->add_option("--tokenizer", o->tokenizer, "byte | gpt2:DIR (text data)")->capture_default_str();
  c->add_option("-L,--seq-len", o->seq_len, "Tokens per training window (text data)")
      ->capture_default_str();
  c->add_option("--cache-dir", o->cache_dir, "Where tokenized corpora are cached")->capture_default_str();
  c->add_option("--eval-tokens", o->eval_tokens_text, "Validation tokens per evaluation (0: all)")
      ->type_name("INT")->capture_default_str();
  c->add_option("-t,--threads", o->threads, "Threads (0: all cores)")->capture_default_str();
  c->add_option("-s,--seed", o->seed_text, "Random seed")->type_name("INT")->capture_default_str();
  c->add_option("-b,--batch-size", o->batch_size, "Sequences per micro-batch")->capture_default_str();
  c->add_option("--grad-accum", o->t.grad_accum, "Micro-batches per step")->capture_default_str();
  c->add_option("-n,--steps", o->steps_text, "Optimizer steps (with --resume: the new total)")
      ->type_name("INT")->capture_default_str();
  c->add_option("--lr", o->t.adam.lr, "Peak learning rate")->capture_default_str();
  c->add_option("--wd", o->t.adam.weight_decay, "AdamW weight decay")->capture_default_str();
  c->add_option("--warmup", o->warmup_text, "Linear warmup steps")->type_name("INT")->capture_default_str();
  c->add_option("--min-lr-ratio", o->t.min_lr_ratio, "Cosine floor / peak lr")->capture_default_str();
  c->add_option("--clip", o->t.clip, "Global gradient-norm clip (0: off)")->capture_default_str();
  c->add_option("--dropout", o->dropout, "Override the config's dropout")
      ->each([o](const std::string&) { o->dropout_given = true; });
  c->add_option("--eval-every", o->eval_every_text, "Evaluate every N steps")
      ->type_name("INT")->capture_default_str();
  c->add_option("--save-every", o->save_every_text, "Checkpoint every N steps (0: at the end)")
      ->type_name("INT")->capture_default_str();
  c->add_option("--log-every", o->log_every_text, "Progress/log every N steps")
      ->type_name("INT")->capture_default_str();
  c->add_option("-o,--out", o->t.out_dir, "Run folder: checkpoint, weights, log.jsonl");
  c->add_flag("--resume", o->t.resume,
              "Continue from OUT/checkpoint.safetensors (same settings; --steps, --threads and the "
              "eval/save/log frequencies may change)");
  c->add_flag("--force", o->t.force,
              "Discard a run already in OUT (without it, such a folder is refused)");
  c->add_flag("-q,--quiet", o->t.quiet, "No progress line");
  c->callback([&run, o] { run = [o] { return run_train(*o); }; });
}

}  // namespace hippo::cli
