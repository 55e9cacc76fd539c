// hippo synth: the paper's Table 1 study. Trains every model on both synthetic tasks for
// several seeds and writes a CSV of test-accuracy curves, a markdown summary table and (via
// scripts/plot_synth.py) a PNG plot.
#include <omp.h>

#include <chrono>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "apps/commands.h"
#include "core/error.h"
#include "core/threads.h"
#include "data/synthetic.h"
#include "data/synthetic_batches.h"
#include "models/lm.h"
#include "train/synthetic_eval.h"
#include "train/trainer.h"

namespace hippo::cli {

namespace {

struct SynthCli {
  std::vector<std::string> tasks = {"induction_head", "associative_recall"};
  std::vector<std::string> models = {"attention", "s4d", "h3", "h3_noshift", "h3_nodiag"};
  int seeds = 3;
  int d_model = 64;
  int n_layer = 2;
  int batch_size = 32;
  int64_t steps = 3000;
  int64_t eval_every = 100;
  float lr = 1e-3f;
  float init_std = 0;  // 0: 1/sqrt(d_model)
  int threads = 0;
  std::string out = "runs/synth";
  int n_train = 5000, n_test = 500;
};

// The source tree, for scripts/: next to the executable (build/hippo), else where it was built
// from, else the working directory.
std::string source_dir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  for (const fs::path& root : {ec ? fs::path() : exe.parent_path().parent_path(), fs::path(HIPPO_SOURCE_DIR)})
    if (!root.empty() && fs::exists(root / "scripts" / "plot_synth.py")) return root.string();
  return fs::current_path().string();
}

ModelConfig study_config(const std::string& model, int vocab, int seq_len, const SynthCli& o) {
  // GPT-2's init std 0.02 leaves a d=64 model on a plateau for thousands of steps (the
  // paper's epoch budget hides that); 1/sqrt(d) lets every model start learning at once.
  const float std = o.init_std > 0 ? o.init_std : 1.0f / std::sqrt(static_cast<float>(o.d_model));
  nlohmann::json j = {{"vocab_size", vocab}, {"d_model", o.d_model}, {"n_layer", o.n_layer},
                      {"d_state", 64},       {"attn_heads", 4},       {"init_std", std}};
  if (model == "attention") {
    j["mixer"] = "attention";
    j["learned_pos"] = true;  // the paper's attention baseline has positions of its own
    j["max_position"] = seq_len;
  } else {
    j["mixer"] = model;
  }
  return ModelConfig::from_json(j, "synth study config for " + model);
}

struct RunResult {
  std::string task, model;
  int seed;
  TrainResult r;
  int64_t params;
  double seconds;
};

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

int run_synth(const SynthCli& o) {
  namespace fs = std::filesystem;
  fs::create_directories(o.out);
  struct Job { std::string task, model; int seed; };
  std::vector<Job> jobs;
  for (auto& t : o.tasks)
    for (auto& m : o.models)
      for (int s = 0; s < o.seeds; ++s) jobs.push_back({t, m, s});
  const int workers = o.threads > 0 ? o.threads : omp_get_num_procs();
  std::fprintf(stderr, "synth: %zu runs (%zu tasks x %zu models x %d seeds), %d at a time, "
               "up to %lld steps each, batch %d\n", jobs.size(), o.tasks.size(), o.models.size(),
               o.seeds, workers, static_cast<long long>(o.steps), o.batch_size);
  std::vector<RunResult> results(jobs.size());
  std::mutex io;
  int done = 0;
  const auto t0 = std::chrono::steady_clock::now();
  // One run per thread: these models are tiny, so runs in parallel beat threads inside a run,
  // and each run stays single-threaded and therefore deterministic.
  omp_set_max_active_levels(1);
#pragma omp parallel for schedule(dynamic) num_threads(workers)
  for (size_t i = 0; i < jobs.size(); ++i) {
    const Job& job = jobs[i];
    SynthOptions so;
    so.task = parse_synth_task(job.task);
    so.seed = 1000 + job.seed;
    so.n_train = o.n_train;
    so.n_test = o.n_test;
    so.fill_defaults();
    SynthSplits data = make_synthetic(so);
    LanguageModel model(study_config(job.model, so.vocab, so.seq_len, o));
    model.init(job.seed);
    TrainOptions t;
    t.steps = o.steps;
    t.adam.lr = o.lr;
    t.adam.weight_decay = 0.1f;
    t.warmup_steps = std::min<int64_t>(100, o.steps / 10);
    t.eval_every = o.eval_every;
    t.seed = job.seed;
    t.quiet = true;
    t.stop_metric = "acc";
    t.stop_threshold = 1.0;
    const int B = o.batch_size;
    const auto r0 = std::chrono::steady_clock::now();
    TrainResult r = train(
        model, t, [&](int64_t step, int micro, Batch& b) { synthetic_batch(data.train, job.seed, step, B, b); },
        [&](LanguageModel& m) { return evaluate_synthetic(m, data.test); });
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count();
    results[i] = {job.task, job.model, job.seed, r, model.num_params(), secs};
    std::lock_guard<std::mutex> lock(io);
    ++done;
    std::fprintf(stderr, "[%d/%zu] %-18s %-11s seed %d: test acc %.3f after %lld steps%s, %.0f tok/s, %.0fs\n",
                 done, jobs.size(), job.task.c_str(), job.model.c_str(), job.seed,
                 r.last_eval.metrics["acc"], static_cast<long long>(r.steps_done),
                 r.stopped_early ? " (stopped at 100%)" : "", r.tokens_per_s, secs);
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::ofstream curves(o.out + "/curves.csv");
  curves << "task,model,seed,step,test_acc,test_loss\n";
  for (auto& rr : results)
    for (auto& [step, e] : rr.r.eval_history)
      curves << rr.task << "," << rr.model << "," << rr.seed << "," << step << ","
             << e.metrics.at("acc") << "," << e.metrics.at("loss") << "\n";

  std::ostringstream md;
  md << "| task | model | params | test acc % (mean ± std over " << o.seeds
     << " seeds) | steps (mean) | runs stopped at 100% | train tokens/s (1 thread) |\n"
     << "|---|---|---|---|---|---|---|\n";
  std::ofstream summary(o.out + "/summary.csv");
  summary << "task,model,params,acc_mean,acc_std,steps_mean,stopped_early,tokens_per_s\n";
  for (auto& t : o.tasks)
    for (auto& m : o.models) {
      double sum = 0, sq = 0, steps = 0, tps = 0;
      int n = 0, early = 0;
      int64_t params = 0;
      for (auto& rr : results)
        if (rr.task == t && rr.model == m) {
          double a = 100.0 * rr.r.last_eval.metrics.at("acc");
          sum += a;
          sq += a * a;
          steps += rr.r.steps_done;
          tps += rr.r.tokens_per_s;
          early += rr.r.stopped_early || a >= 100.0;
          params = rr.params;
          ++n;
        }
      const double mean = sum / n, sd = std::sqrt(std::max(0.0, sq / n - mean * mean));
      md << "| " << t << " | " << m << " | " << params << " | " << fmt("%.1f", mean) << " ± "
         << fmt("%.1f", sd) << " | " << fmt("%.0f", steps / n) << " | " << early << "/" << n
         << " | " << fmt("%.0f", tps / n) << " |\n";
      summary << t << "," << m << "," << params << "," << mean << "," << sd << "," << steps / n
              << "," << early << "," << tps / n << "\n";
    }
  md << "\nSettings: d_model " << o.d_model << ", " << o.n_layer << " layers, AdamW lr " << o.lr
     << " (SSM dynamics min(lr, 1e-3)), weight decay 0.1, warmup then cosine, clip 1.0, init std "
     << fmt("%.3f", o.init_std > 0 ? o.init_std : 1.0 / std::sqrt(static_cast<double>(o.d_model)))
     << "; attention has learned positions.\n";
  md << "\nBudget: up to " << o.steps << " steps of batch " << o.batch_size << " ("
     << fmt("%.1f", static_cast<double>(o.steps) * o.batch_size / o.n_train)
     << " epochs of " << o.n_train << " sequences), the same for every model; a run stops early "
     << "once it reaches 100% test accuracy (evaluated every " << o.eval_every << " steps). "
     << "Wall time " << fmt("%.0f", total) << " s for all runs, " << workers << " at a time.\n";
  std::ofstream(o.out + "/table.md") << md.str();
  curves.close();  // flushed before the plot script reads them
  summary.close();
  std::printf("%s", md.str().c_str());
  std::fprintf(stderr, "wrote %s/{table.md,summary.csv,curves.csv}\n", o.out.c_str());
  // The PNG comes from matplotlib (Debian's python3-matplotlib); a missing one only costs the plot.
  const std::string plot = "/usr/bin/python3 '" + source_dir() + "/scripts/plot_synth.py' '" + o.out +
                           "/curves.csv' '" + o.out + "/accuracy.png'";
  if (std::system(plot.c_str()) != 0)
    std::fprintf(stderr, "warning: could not draw the plot; run: %s\n", plot.c_str());
  return 0;
}

}  // namespace

void add_synth(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<SynthCli>();
  auto* c = app.add_subcommand("synth", "Paper Table 1: synthetic tasks for every model and seed");
  c->add_option("--tasks", o->tasks, "Tasks")->capture_default_str();
  c->add_option("--models", o->models, "Mixers to compare")->capture_default_str();
  c->add_option("--seeds", o->seeds, "Seeds per model")->capture_default_str()->check(CLI::PositiveNumber);
  c->add_option("--d-model", o->d_model, "Model width")->capture_default_str();
  c->add_option("--layers", o->n_layer, "Layers")->capture_default_str();
  c->add_option("-b,--batch-size", o->batch_size, "Batch size")->capture_default_str();
  c->add_option("-n,--steps", o->steps, "Step budget per run")->capture_default_str();
  c->add_option("--eval-every", o->eval_every, "Evaluate every N steps")->capture_default_str();
  c->add_option("--lr", o->lr, "Peak learning rate")->capture_default_str();
  c->add_option("--init-std", o->init_std, "Init std of linears and embeddings (0: 1/sqrt(d))")
      ->capture_default_str();
  c->add_option("--n-train", o->n_train, "Training sequences")->capture_default_str();
  c->add_option("--n-test", o->n_test, "Test sequences")->capture_default_str();
  c->add_option("-t,--threads", o->threads, "Runs in parallel (0: all cores)")->capture_default_str();
  c->add_option("-o,--out", o->out, "Output folder")->capture_default_str();
  c->callback([&run, o] { run = [o] { return run_synth(*o); }; });
}

}  // namespace hippo::cli
