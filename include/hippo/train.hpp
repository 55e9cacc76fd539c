// hippo's training and evaluation entry points: what `hippo train`, `hippo eval`, `hippo synth`
// and `hippo convert` do, callable from a program.
//
//   hippo::TrainingOptions o;
//   o.data = "data/brown";
//   o.tokenizer = "gpt2:data/gpt2";
//   o.out_dir = "runs/brown";
//   o.steps = 2000;
//   hippo::TrainingCallbacks cb;
//   cb.on_step = [](const hippo::TrainingProgress& p) {
//     std::printf("step %lld loss %.3f\n", (long long)p.step, p.loss);
//     return true;  // false: stop after this step (the checkpoint is saved)
//   };
//   hippo::TrainingResult r = hippo::train(o, cb);
//
// The model file written (out_dir/model.safetensors) embeds its tokenizer, so
// hippo::Model::load works on it from any folder. Every failure is a hippo::Error; messages
// name options by their `hippo` command-line flags (e.g. "--batch-size must be in ...").
// The names differ from the internal trainer's (TrainOptions, EvalResult) on purpose: both
// live in namespace hippo.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hippo/error.hpp"

namespace hippo {

// ---- hippo train ---------------------------------------------------------------------------

struct TrainingOptions {
  // Model config JSON file; empty: the built-in small hybrid (4 layers, d 128; 2 layers, d 64
  // for synthetic data).
  std::string config;
  // "brown" (data/brown), a text file or a folder of .txt files, a .jsonl file ({"text": ...}
  // per line; or such files in the folder), a folder of token shards (`hippo tokenize
  // --shards`), or "synthetic:induction_head" / "synthetic:associative_recall" / "synthetic:mqar".
  std::string data = "brown";
  // An explicit validation set (text, .jsonl or a token shard .tok file): all of it is the
  // validation split. Empty: the data's own validation split.
  std::string val_data;
  std::string tokenizer = "byte";         // text data: "byte" or "gpt2:DIR"; embedded in the output
  std::string cache_dir = "data/cache";   // tokenized corpora
  int threads = 0;                        // 0: all cores
  uint64_t seed = 0;
  int batch_size = 16;                    // sequences per micro-batch
  int seq_len = 256;                      // tokens per window (text data)
  // Synthetic tasks' sizes; 0: the task's default (docs/results.md, "Synthetic tasks").
  int synth_vocab = 0, synth_seq_len = 0, synth_pairs = 0;
  // Micro-batches per optimizer step, over all ranks of `mpirun -np N` (a multiple of N; each
  // rank computes its share); 0: one per rank. The global batch is batch_size * grad_accum.
  int grad_accum = 0;
  int64_t steps = 600;                    // optimizer steps (with resume: the new total)
  float lr = 2e-3f;                       // peak learning rate
  float weight_decay = 0.1f;
  int64_t warmup = 50;                    // linear warmup steps, then cosine
  float min_lr_ratio = 0.1f;              // cosine floor / peak lr
  float clip = 1.0f;                      // global gradient-norm clip; 0: off
  std::optional<float> dropout;           // overrides the config's dropout
  int64_t eval_every = 200;               // 0: only at the end
  int64_t eval_tokens = 65536;            // validation tokens per evaluation (0: all)
  int64_t save_every = 0;                 // 0: only at the end
  int64_t log_every = 10;
  std::string out_dir;                    // run folder: checkpoint, model.safetensors, log.jsonl
  bool resume = false;                    // continue from out_dir/checkpoint.safetensors
  bool force = false;                     // discard a run already in out_dir
  bool quiet = false;                     // no progress lines on stderr
  // Under mpirun: a collective that waits longer than this for the other ranks (one died or
  // hangs) ends the job with a message. Must exceed an evaluation plus a checkpoint save.
  double dist_timeout = 600;
  // Under mpirun: the gradients are all-reduced in buckets of about this many MB (10^6 bytes),
  // each started while the backward of the step's last micro-batch still runs; 0: one
  // all-reduce after the backward. The weights are the same bit for bit either way
  // (docs/scaling.md "Bucketed all-reduce").
  double allreduce_bucket_mb = 0;
  // The long-sequence step (recompute each block's activations in the backward; constant
  // memory in the layer count): "auto" (when the plain step's activations would pass 4 GiB, or
  // as HIPPO_TRAIN_RECOMPUTE=0|1 says when set), "on" or "off" (the environment is then not
  // read). Evaluation takes the chunked path under "on" too.
  std::string recompute = "auto";
};

struct TrainingProgress {
  int64_t step = 0;          // optimizer steps done (1-based)
  int64_t total_steps = 0;
  double loss = 0;           // this step's training loss
  double tokens_per_s = 0;   // since the run (or the resume) began
};

struct TrainingCallbacks {
  // After every optimizer step. Returning false stops the run after this step; the checkpoint
  // and weights are saved as at the end (TrainingResult::stopped says so).
  std::function<bool(const TrainingProgress&)> on_step;
  // Informational lines (model size, corpus, tokenization), without a newline. Null: none.
  std::function<void(const std::string&)> on_info;
  // Progress of the final test-split evaluation of text data, in windows. Null: none.
  std::function<void(int64_t done, int64_t total)> on_test_progress;
};

struct TrainingResult {
  bool synthetic = false;         // trained on a synthetic task (no test split, no tokenizer)
  int64_t steps_done = 0;
  bool stopped = false;           // on_step asked to stop before `steps`
  double last_loss = 0;
  double tokens_per_s = 0;
  int64_t num_params = 0;
  std::map<std::string, double> last_eval;  // the last periodic evaluation ("loss", "acc", ...)
  std::map<std::string, double> test;       // text data: the test split ("tokens", "loss", "ppl", "bpb")
  std::string weights;            // out_dir/model.safetensors, or "" without out_dir
  // Under mpirun: this process's rank and the rank count. Only rank 0 has the evaluation
  // results (last_eval, test) and writes files; the others should print nothing.
  int rank = 0, ranks = 1;
};

TrainingResult train(const TrainingOptions& options, const TrainingCallbacks& callbacks = {});

// ---- hippo eval ----------------------------------------------------------------------------

struct EvaluationOptions {
  std::string model;                  // weights or checkpoint (.safetensors)
  std::string data = "brown";         // "brown", a text file or a folder of .txt files
  std::string split = "test";         // "train", "validation" or "test"
  std::string tokenizer;              // "byte" | "gpt2:DIR"; empty: the model file's
  std::string cache_dir = "data/cache";
  int seq_len = 256;                  // tokens per window; 0: each document whole (chunked)
  int batch_size = 16;                // windows per batch
  int64_t max_tokens = 0;             // 0: the whole split
  int threads = 0;
  std::function<void(int64_t done, int64_t total)> on_progress;  // windows; null: none
  // With seq_len 0: bits per byte by position in the document (buckets 1, 2-3, 4-7, ...)
  // written to this CSV file; empty: none.
  std::string position_csv;
};

struct EvaluationResult {
  std::string corpus;   // the corpus path the data resolved to
  double tokens = 0, loss = 0, perplexity = 0, bits_per_byte = 0;
};

// A loss that is not finite is an Error (the model's outputs are not finite).
EvaluationResult evaluate(const EvaluationOptions& options);

// ---- hippo synth (the paper's Table 1 study) -------------------------------------------------

struct SynthStudyOptions {
  std::vector<std::string> tasks = {"induction_head", "associative_recall"};
  std::vector<std::string> models = {"attention", "s4d", "h3", "h3_noshift", "h3_nodiag"};
  int seeds = 5;
  int d_model = 64;
  int n_layer = 2;
  int batch_size = 32;
  int64_t steps = 3000;         // per run; a run stops early at 100% test accuracy
  // Attention's budget (0: `steps`). Attention leaves the induction-head plateau later than H3
  // (2,900-9,600 steps over 5 seeds, docs/results.md), so by default it gets more steps.
  int64_t attn_steps = 10000;
  int64_t eval_every = 100;
  // Peak learning rates: H3 leaves the induction-head plateau in 5 of 5 seeds at 2e-3 (2 of 3 at
  // 1e-3); attention does better at 1e-3 than at 2e-3 (docs/results.md).
  float lr = 2e-3f;
  float attn_lr = 1e-3f;        // attention's peak learning rate (0: `lr`)
  float init_std = 0;           // 0: 1/sqrt(d_model)
  float dropout = 0;            // embedding and residual dropout of every model (training only)
  std::string attn_positions = "rotary";  // attention's positions: "learned" or "rotary" (all dims)
  int threads = 0;              // runs in parallel (0: all cores)
  std::string out = "runs/synth";
  int n_train = 100000, n_test = 500;
  // Task sizes for every task of the study; 0: each task's default (vocab 20 / 10 / 64, length
  // 32 / 20 / 64, pairs: as many as fit / - / 8 for induction head / associative recall / mqar).
  int vocab = 0, seq_len = 0, pairs = 0;
  // Length generalisation: after training, every run is also tested at these sequence lengths
  // (the task's other sizes held; written to out/lengths.csv and a table in out/table.md).
  std::vector<int> test_lengths;
  // Length curriculum: a run that solves its task (>= 99% test accuracy) is trained on at each of
  // these longer lengths in turn, from the weights it has, until a stage is not solved; each
  // stage's budget is `curriculum_steps` (0: `steps` x trained length / stage length, i.e. the
  // tokens of `steps` at the first length, for every model). Written to out/curriculum.csv and
  // out/table.md.
  std::vector<int> curriculum;
  int64_t curriculum_steps = 0;
  bool force = false;           // replace an earlier study's results in `out`
  // Where scripts/plot_synth.py is looked for (after the executable's tree); empty: only there
  // and the working directory.
  std::string source_dir;
};

struct SynthStudyResult {
  std::string table_markdown;   // also written to out/table.md
  int runs = 0, failed = 0;
};

// Trains every model on every task for every seed, writes out/{table.md, summary.csv,
// curves.csv, accuracy.png}, prints one line per run to stderr. A failed run is left out of
// the tables and reported as an Error once all the others have finished and been written.
SynthStudyResult run_synth(const SynthStudyOptions& options);

// ---- hippo convert -------------------------------------------------------------------------

struct ConvertOptions {
  std::string input;            // a released H3 PyTorch checkpoint (model.pt)
  std::string output;           // .safetensors
  std::string dtype = "fp32";   // or "bf16" / "q8" (linear and embedding weights)
  int heads = 0;                // attention heads; 0: from a released model of the same shape
  int vocab_size = 0;           // 0: from the embedding
  std::string tokenizer;        // "byte" | "gpt2:DIR": embedded in the output; empty: none
};

// Runs scripts/convert_h3.py (PyTorch; HIPPO_TORCH_PYTHON, HIPPO_CONVERT_SCRIPT override),
// whose report goes to stdout. The output never replaces anything but plain hippo weights.
void convert_checkpoint(const ConvertOptions& options);

}  // namespace hippo
