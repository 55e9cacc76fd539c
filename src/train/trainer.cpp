#include "train/trainer.h"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/phase_profile.h"
#include "train/checkpoint.h"
#include "train/dist/grad_buckets.h"
#include "train/dist/grad_sync.h"
#include "train/grad_clip.h"
#include "train/run_log.h"

namespace hippo {

namespace {

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t x = a * 0x9e3779b97f4a7c15ULL ^ (b + 0x632be59bd9b4e019ULL + (a << 6) + (a >> 2));
  x ^= x >> 31;
  return x * 0xbf58476d1ce4e5b9ULL;
}

std::string fmt_duration(double s) {
  char buf[32];
  if (s < 0 || !std::isfinite(s)) return "?";
  int t = static_cast<int>(s);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%dh%02dm", t / 3600, t / 60 % 60);
  else std::snprintf(buf, sizeof buf, "%dm%02ds", t / 60, t % 60);
  return buf;
}

// Shortest text that reads back as the same float, so a stored setting compares exactly.
std::string float_text(float v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// The checkpoint saves of one run: a failed save is reported and the run goes on with its
// state in memory; the file on disk is still the last good checkpoint (saves are atomic).
struct Saver {
  std::string path;
  bool quiet_tty = false;
  int64_t on_disk = -1;       // step of the checkpoint on disk (-1: none from this run)
  int64_t failed_at = -1;     // step of the last failed save not yet made good
  std::string error;

  bool save(int64_t step, const LanguageModel& model, const AdamW& adam,
            const std::map<std::string, std::string>& meta, RunLog& log) {
    log.sync();  // the log reaches at least as far as the checkpoint, even after a power loss
    try {
      save_checkpoint(path, model, &adam, meta);
    } catch (const std::exception& e) {
      failed_at = step;
      error = e.what();
      std::fprintf(stderr, "%shippo: warning: could not save the checkpoint at step %lld: %s\n"
                   "  training goes on with its state in memory; %s; the save is tried again at "
                   "the next save point\n", quiet_tty ? "\r\033[K" : "", static_cast<long long>(step),
                   e.what(), kept().c_str());
      log.append({{"step", step}, {"event", "save_failed"}, {"error", error}});
      return false;
    }
    if (failed_at >= 0)
      std::fprintf(stderr, "%scheckpoint saved at step %lld (the save at step %lld had failed)\n",
                   quiet_tty ? "\r\033[K" : "", static_cast<long long>(step),
                   static_cast<long long>(failed_at));
    failed_at = -1;
    on_disk = step;
    return true;
  }

  std::string kept() const {
    return on_disk >= 0 ? str(path, " still holds the checkpoint of step ", on_disk)
                        : str("no checkpoint of this run is on disk yet");
  }
};

}  // namespace

void validate_train_options(const TrainOptions& o) {
  auto at_least = [](const char* name, int64_t v, int64_t lo) {
    HIPPO_CHECK(v >= lo, name, " must be >= ", lo, ", got ", v);
  };
  at_least("--steps", o.steps, 1);
  at_least("--grad-accum", o.grad_accum, 1);
  HIPPO_CHECK(o.grad_accum <= 65536, "--grad-accum must be <= 65536, got ", o.grad_accum);
  at_least("--warmup", o.warmup_steps, 0);
  at_least("--eval-every", o.eval_every, 0);
  at_least("--save-every", o.save_every, 0);
  at_least("--log-every", o.log_every, 1);
  auto finite = [](const char* name, float v, bool positive, const char* what) {
    HIPPO_CHECK(std::isfinite(v) && (positive ? v > 0 : v >= 0), name, " must be ", what, ", got ", v);
  };
  finite("--lr", o.adam.lr, true, "a positive finite number");
  finite("--wd", o.adam.weight_decay, false, "a finite number >= 0");
  finite("--clip", o.clip, false, "a finite number >= 0 (0: off)");
  HIPPO_CHECK(o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1, "--min-lr-ratio must be in [0, 1], got ",
              o.min_lr_ratio);
  HIPPO_CHECK(o.adam.beta1 >= 0 && o.adam.beta1 < 1 && o.adam.beta2 >= 0 && o.adam.beta2 < 1,
              "AdamW betas must be in [0, 1), got ", o.adam.beta1, " and ", o.adam.beta2);
  finite("AdamW eps", o.adam.eps, true, "a positive finite number");
  finite("the SSM learning-rate cap", o.adam.ssm_lr_cap, true, "a positive finite number");
  HIPPO_CHECK(!std::isnan(o.stop_threshold), "the early-stop threshold is NaN");
}

std::map<std::string, std::string> run_settings(const TrainOptions& o) {
  std::map<std::string, std::string> s = o.run_settings;
  s["seed"] = std::to_string(o.seed);
  s["grad-accum"] = std::to_string(o.grad_accum);
  s["lr"] = float_text(o.adam.lr);
  s["wd"] = float_text(o.adam.weight_decay);
  s["adam-beta1"] = float_text(o.adam.beta1);
  s["adam-beta2"] = float_text(o.adam.beta2);
  s["adam-eps"] = float_text(o.adam.eps);
  s["ssm-lr-cap"] = float_text(o.adam.ssm_lr_cap);
  s["warmup"] = std::to_string(o.warmup_steps);
  s["min-lr-ratio"] = float_text(o.min_lr_ratio);
  s["clip"] = float_text(o.clip);
  return s;
}

TrainResult train(LanguageModel& model, const TrainOptions& opt, const BatchFn& next_batch,
                  const EvalFn& evaluate, RunFolder* folder, Communicator* comm) {
  validate_train_options(opt);
  std::unique_ptr<Communicator> own_comm;
  if (!comm) comm = (own_comm = make_single_process_communicator()).get();
  const int nranks = comm->size(), rank = comm->rank();
  const bool root = rank == 0;  // the one that writes, logs, evaluates and decides to stop
  HIPPO_CHECK(opt.grad_accum % nranks == 0, "--grad-accum ", opt.grad_accum,
              " (micro-batches per step, over all ranks) must be a multiple of the ", nranks,
              " ranks, so that every rank has the same share; give --grad-accum ",
              (opt.grad_accum + nranks - 1) / nranks * nranks);
  const int per_rank = opt.grad_accum / nranks;
  HIPPO_CHECK(root || !folder, "train: only rank 0 has a run folder");
  std::optional<RunFolder> own_folder;
  if (!opt.out_dir.empty() && !folder && root) folder = &own_folder.emplace(opt);
  HIPPO_CHECK(!folder || folder->dir() == opt.out_dir, "train: the run folder ", folder->dir(),
              " is not --out ", opt.out_dir);
  HIPPO_CHECK(folder || !opt.resume || !root,
              "--resume needs -o DIR: the run folder whose checkpoint to continue");
  const bool quiet = opt.quiet || !root;

  AdamW adam(model.params(), opt.adam);
  Schedule sched{opt.warmup_steps, opt.steps, opt.min_lr_ratio};
  const std::map<std::string, std::string> settings = run_settings(opt);
  std::map<std::string, std::string> meta = opt.metadata;
  meta[kRunSettingsKey] = nlohmann::json(settings).dump();
  const bool tty = isatty(STDERR_FILENO);
  Saver saver;
  saver.quiet_tty = tty;
  RunLog log;
  int64_t start = 0;
  if (folder) {
    saver.path = folder->checkpoint();
    folder->check_room(checkpoint_bytes(model, true, meta), checkpoint_bytes(model, false, meta));
    if (opt.resume) {
      const auto ck_meta = read_metadata(saver.path);
      check_resume_compatible(saver.path, ck_meta, model.config(), settings);
      if (!ck_meta.count(kRunSettingsKey))
        std::fprintf(stderr, "hippo: warning: %s predates stored run settings: its seed, batch and "
                     "data cannot be checked against this run's\n", saver.path.c_str());
      load_checkpoint(saver.path, model, &adam);
      start = adam.steps();
      HIPPO_CHECK(start <= opt.steps, saver.path, ": the checkpoint is at step ", start,
                  ", past --steps ", opt.steps, "; give --steps above ", start, " to train further");
      saver.on_disk = start;
      const int64_t dropped = truncate_log_after(folder->log(), start);
      if (!quiet) {
        std::fprintf(stderr, "resumed from %s at step %lld\n", saver.path.c_str(),
                     static_cast<long long>(start));
        if (dropped)
          std::fprintf(stderr, "%s: dropped %lld record(s) logged after that checkpoint\n",
                       folder->log().c_str(), static_cast<long long>(dropped));
      }
    } else {
      folder->discard_previous_run(opt.quiet);
    }
    log.open(folder->log(), !opt.resume);
  }
  // Every rank starts from rank 0's weights and optimizer state (fresh or resumed).
  comm->set_context("the start (rank 0's weights to all ranks)");
  broadcast_train_state(*comm, model.params(), adam);
  start = adam.steps();
  // Micro-batch gradients summed apart from Param::grad (see train() in trainer.h).
  std::optional<GradBuffer> flat;
  if (nranks > 1 || opt.grad_accum > 1) flat.emplace(model.params());
  // Bucketed: the last micro-batch's gradients are all-reduced as the backward finishes them.
  std::optional<BucketedAllreduce> buckets;
  if (nranks > 1 && opt.allreduce_bucket_bytes > 0)
    buckets.emplace(*flat, *comm, opt.allreduce_bucket_bytes);
  struct HookGuard {  // the model's hook points at `buckets` only during that backward
    LanguageModel& m;
    ~HookGuard() { m.set_grads_final_hook(nullptr); }
  };

  struct RecomputeGuard {  // the model's own mode again after the run
    LanguageModel& m;
    RecomputeMode before;
    ~RecomputeGuard() { m.set_recompute(before); }
  } recompute_guard{model, model.recompute()};
  model.set_recompute(opt.recompute);

  TrainResult res;
  res.steps_done = start;
  Batch batch;
  const auto t0 = std::chrono::steady_clock::now();
  int64_t tokens_seen = 0;
  double loss_acc = 0, acc_acc = 0;
  // Rank 0's seconds per step: its micro-batches, waiting for the slowest rank, the all-reduce.
  double compute_acc = 0, wait_acc = 0, allreduce_acc = 0;
  int64_t acc_steps = 0;
  bool acc_recompute = false;  // a micro-batch since the last log record took the recompute step

  auto run_eval = [&](int64_t step) {
    if (!evaluate) return;
    model.set_training(false);
    EvalResult e = evaluate(model);
    res.last_eval = e;
    res.eval_history.push_back({step, e});
    log.append({{"step", step}, {"eval", e.metrics}});
    if (!quiet) {
      std::string s;
      for (auto& [k, v] : e.metrics) s += " " + k + "=" + std::to_string(v);
      std::fprintf(stderr, "%seval @ step %lld:%s\n", tty ? "\r\033[K" : "",
                   static_cast<long long>(step), s.c_str());
    }
  };

  for (int64_t step = start; step < opt.steps; ++step) {
    comm->set_context(str("step ", step + 1));
    double step_loss = 0, step_acc = 0, step_tokens = 0;
    const auto t_step = std::chrono::steady_clock::now();
    prof::reset();
    std::optional<prof::Scope> step_scope(std::in_place, "step (rest)");
    for (int k = 0; k < per_rank; ++k) {
      const int micro = rank * per_rank + k;  // its index in the step, over all ranks
      if (k == 0 || flat) {
        prof::Scope ps("zero_grad");
        model.zero_grad();
      }
      const bool hooked = buckets && k + 1 == per_rank;
      std::optional<HookGuard> hook;
      if (hooked) {
        buckets->begin(k == 0);
        hook.emplace(model);
        model.set_grads_final_hook([&](size_t b, size_t e) { buckets->grads_final(b, e); });
      }
      {
        prof::Scope ps("batch");
        next_batch(step, micro, batch);
      }
      model.set_training(true, mix(opt.seed, static_cast<uint64_t>(step) * 1024 + micro));
      const float scale = 1.0f / static_cast<float>(opt.grad_accum);
      // Long sequences: only each block's input is kept, the rest recomputed in the backward
      // (LanguageModel::train_step_recompute; the loss check then follows the backward).
      const bool recompute = model.prefers_recompute(batch.B, batch.L);
      res.recompute_micro_batches += recompute ? 1 : 0;
      acc_recompute = acc_recompute || recompute;
      LossStats s;
      if (recompute) {
        s = model.train_step_recompute(batch.tokens.data(), batch.targets.data(), batch.B,
                                       batch.L, scale);
      } else {
        model.forward(batch.tokens.data(), batch.B, batch.L);
        s = model.loss(batch.targets.data());
      }
      // With several ranks the check comes after the statistics are summed, on every rank alike.
      HIPPO_CHECK(nranks > 1 || std::isfinite(s.loss), "train: loss is ", s.loss, " at step ", step,
                  "; stopping (the last checkpoint is kept)");
      if (!recompute) model.backward(scale);
      step_loss += s.loss / opt.grad_accum;
      step_acc += (s.count ? static_cast<double>(s.correct) / s.count : 0.0) / opt.grad_accum;
      step_tokens += static_cast<double>(batch.B) * batch.L;
      if (hooked) buckets->start_rest();  // after train_step_recompute: all of them
      else if (flat && k == 0) flat->assign_grads();
      else if (flat) flat->add_grads();
    }
    const auto t_wait = std::chrono::steady_clock::now();
    compute_acc += std::chrono::duration<double>(t_wait - t_step).count();
    if (nranks > 1) comm->barrier();  // apart from the all-reduce: load imbalance is not transfer
    const auto t_reduce = std::chrono::steady_clock::now();
    wait_acc += std::chrono::duration<double>(t_reduce - t_wait).count();
    if (nranks > 1) {
      if (buckets) buckets->wait();
      else comm->allreduce_sum(flat->data(), flat->size());
      double stats[3] = {step_loss, step_acc, step_tokens};
      comm->allreduce_sum(stats, 3);
      step_loss = stats[0];
      step_acc = stats[1];
      step_tokens = stats[2];
      HIPPO_CHECK(std::isfinite(step_loss), "train: loss is ", step_loss, " at step ", step,
                  "; stopping (the last checkpoint is kept)");
    }
    allreduce_acc += std::chrono::duration<double>(std::chrono::steady_clock::now() - t_reduce).count();
    if (flat) flat->store_grads();
    tokens_seen += static_cast<int64_t>(step_tokens);
    std::optional<prof::Scope> ps(std::in_place, "grad_check");
    const std::string bad = first_nonfinite_grad(model.params());
    HIPPO_CHECK(bad.empty(), "train: gradient of '", bad, "' is not finite at step ", step,
                "; stopping (the last checkpoint is kept)");
    ps.emplace("grad_clip");
    const double gnorm = clip_grad_norm(model.params(), opt.clip);
    const float scale = sched.at(step);
    ps.emplace("adamw");
    adam.step(scale);
    ps.reset();
    step_scope.reset();
    if (prof::enabled()) prof::report(stderr, str("training step ", step + 1));
    res.steps_done = step + 1;
    res.last_loss = step_loss;
    loss_acc += step_loss;
    acc_acc += step_acc;
    ++acc_steps;

    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    res.tokens_per_s = tokens_seen / std::max(elapsed, 1e-9);
    const bool last = step + 1 == opt.steps;
    if (root && ((step + 1) % opt.log_every == 0 || last)) {
      const double loss_avg = loss_acc / acc_steps, acc_avg = acc_acc / acc_steps;
      const double eta = elapsed / (step + 1 - start) * (opt.steps - step - 1);
      log.append({{"step", step + 1}, {"loss", loss_avg}, {"acc", acc_avg},
                  {"lr", opt.adam.lr * scale}, {"grad_norm", gnorm},
                  {"tokens_per_s", res.tokens_per_s}, {"compute_s", compute_acc / acc_steps},
                  {"wait_s", wait_acc / acc_steps},
                  {"allreduce_s", allreduce_acc / acc_steps}, {"recompute", acc_recompute}});
      if (!quiet)
        std::fprintf(stderr, "%sstep %lld/%lld  loss %.4f  acc %.3f  lr %.2e  %.0f tok/s  ETA %s%s",
                     tty ? "\r\033[K" : "", static_cast<long long>(step + 1),
                     static_cast<long long>(opt.steps), loss_avg, acc_avg, opt.adam.lr * scale,
                     res.tokens_per_s, fmt_duration(eta).c_str(), tty ? "" : "\n");
      loss_acc = acc_acc = compute_acc = wait_acc = allreduce_acc = 0;
      acc_steps = 0;
      acc_recompute = false;
    }
    bool stop = false;
    if (root && opt.on_step && !opt.on_step(step + 1, step_loss, res.tokens_per_s)) {
      res.stopped_early = !last;
      stop = true;  // evaluated and saved below, as at the end
    }
    const bool eval_now = (opt.eval_every > 0 && (step + 1) % opt.eval_every == 0) || last || stop;
    if (root && eval_now) {
      run_eval(step + 1);
      if (!opt.stop_metric.empty() && res.last_eval.metrics.count(opt.stop_metric) &&
          res.last_eval.metrics[opt.stop_metric] >= opt.stop_threshold) {
        res.stopped_early = !last;
        stop = true;
      }
    }
    if (folder && (stop || last || (opt.save_every > 0 && (step + 1) % opt.save_every == 0)))
      saver.save(step + 1, model, adam, meta, log);
    if (nranks > 1) {  // rank 0's decision to stop, to all
      int32_t flags[2] = {stop, res.stopped_early};
      comm->broadcast(flags, sizeof flags, 0);
      stop = flags[0] != 0;
      res.stopped_early = flags[1] != 0;
    }
    if (stop) break;
  }
  comm->set_context("the end (comparing the ranks' weights)");
  check_same_weights(*comm, model.params());
  if (!quiet && tty) std::fprintf(stderr, "\n");
  if (folder) {
    std::string weights_error;
    try {
      save_checkpoint(folder->weights(), model, nullptr, meta);
    } catch (const std::exception& e) {
      weights_error = e.what();
    }
    log.sync();
    if (saver.failed_at >= 0)
      fail("could not save the final checkpoint (step ", saver.failed_at, "): ", saver.error, ". ",
           saver.kept(), saver.on_disk >= 0 ? " (continue from it with --resume)" : "", "; ",
           weights_error.empty() ? "the final weights were saved to " + folder->weights()
                                 : "the weights could not be saved either: " + weights_error);
    HIPPO_CHECK(weights_error.empty(), "could not save the weights: ", weights_error,
                ". The final checkpoint (step ", saver.on_disk, ") is saved; run again with --resume "
                "to write ", folder->weights(), " from it");
  }
  return res;
}

}  // namespace hippo
