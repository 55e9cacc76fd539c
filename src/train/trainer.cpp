#include "train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "train/checkpoint.h"
#include "train/grad_clip.h"

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

}  // namespace

TrainResult train(LanguageModel& model, const TrainOptions& opt, const BatchFn& next_batch,
                  const EvalFn& evaluate) {
  namespace fs = std::filesystem;
  HIPPO_CHECK(opt.steps > 0, "train: --steps must be positive");
  HIPPO_CHECK(opt.grad_accum > 0, "train: --grad-accum must be positive");
  AdamW adam(model.params(), opt.adam);
  Schedule sched{opt.warmup_steps, opt.steps, opt.min_lr_ratio};
  const std::string ckpt = opt.out_dir.empty() ? "" : opt.out_dir + "/checkpoint.safetensors";
  if (!opt.out_dir.empty()) fs::create_directories(opt.out_dir);
  int64_t start = 0;
  if (opt.resume) {
    HIPPO_CHECK(!ckpt.empty() && fs::exists(ckpt), "train: --resume needs ", ckpt);
    load_checkpoint(ckpt, model, &adam);
    start = adam.steps();
    if (!opt.quiet) std::fprintf(stderr, "resumed from %s at step %lld\n", ckpt.c_str(),
                                 static_cast<long long>(start));
  }
  std::ofstream log;
  if (!opt.out_dir.empty()) log.open(opt.out_dir + "/log.jsonl", opt.resume ? std::ios::app : std::ios::trunc);

  const bool tty = isatty(STDERR_FILENO);
  TrainResult res;
  Batch batch;
  const auto t0 = std::chrono::steady_clock::now();
  int64_t tokens_seen = 0;
  double loss_acc = 0, acc_acc = 0;
  int64_t acc_steps = 0;

  auto run_eval = [&](int64_t step) {
    if (!evaluate) return;
    model.set_training(false);
    EvalResult e = evaluate(model);
    res.last_eval = e;
    res.eval_history.push_back({step, e});
    nlohmann::json j = {{"step", step}, {"eval", e.metrics}};
    if (log.is_open()) log << j.dump() << "\n" << std::flush;
    if (!opt.quiet) {
      std::string s;
      for (auto& [k, v] : e.metrics) s += " " + k + "=" + std::to_string(v);
      std::fprintf(stderr, "%seval @ step %lld:%s\n", tty ? "\r\033[K" : "",
                   static_cast<long long>(step), s.c_str());
    }
  };

  for (int64_t step = start; step < opt.steps; ++step) {
    model.zero_grad();
    double step_loss = 0, step_acc = 0;
    for (int micro = 0; micro < opt.grad_accum; ++micro) {
      next_batch(step, micro, batch);
      model.set_training(true, mix(opt.seed, static_cast<uint64_t>(step) * 1024 + micro));
      model.forward(batch.tokens.data(), batch.B, batch.L);
      LossStats s = model.loss(batch.targets.data());
      HIPPO_CHECK(std::isfinite(s.loss), "train: loss is ", s.loss, " at step ", step,
                  "; stopping (the last checkpoint is kept)");
      model.backward(1.0f / static_cast<float>(opt.grad_accum));
      step_loss += s.loss / opt.grad_accum;
      step_acc += (s.count ? static_cast<double>(s.correct) / s.count : 0.0) / opt.grad_accum;
      tokens_seen += static_cast<int64_t>(batch.B) * batch.L;
    }
    const std::string bad = first_nonfinite_grad(model.params());
    HIPPO_CHECK(bad.empty(), "train: gradient of '", bad, "' is not finite at step ", step,
                "; stopping (the last checkpoint is kept)");
    const double gnorm = clip_grad_norm(model.params(), opt.clip);
    const float scale = sched.at(step);
    adam.step(scale);
    res.steps_done = step + 1;
    res.last_loss = step_loss;
    loss_acc += step_loss;
    acc_acc += step_acc;
    ++acc_steps;

    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    res.tokens_per_s = tokens_seen / std::max(elapsed, 1e-9);
    const bool last = step + 1 == opt.steps;
    if ((step + 1) % opt.log_every == 0 || last) {
      const double loss_avg = loss_acc / acc_steps, acc_avg = acc_acc / acc_steps;
      const double eta = elapsed / (step + 1 - start) * (opt.steps - step - 1);
      nlohmann::json j = {{"step", step + 1}, {"loss", loss_avg}, {"acc", acc_avg},
                          {"lr", opt.adam.lr * scale}, {"grad_norm", gnorm},
                          {"tokens_per_s", res.tokens_per_s}};
      if (log.is_open()) log << j.dump() << "\n";
      if (!opt.quiet)
        std::fprintf(stderr, "%sstep %lld/%lld  loss %.4f  acc %.3f  lr %.2e  %.0f tok/s  ETA %s%s",
                     tty ? "\r\033[K" : "", static_cast<long long>(step + 1),
                     static_cast<long long>(opt.steps), loss_avg, acc_avg, opt.adam.lr * scale,
                     res.tokens_per_s, fmt_duration(eta).c_str(), tty ? "" : "\n");
      loss_acc = acc_acc = 0;
      acc_steps = 0;
    }
    const bool eval_now = (opt.eval_every > 0 && (step + 1) % opt.eval_every == 0) || last;
    if (eval_now) {
      run_eval(step + 1);
      if (!opt.stop_metric.empty() && res.last_eval.metrics.count(opt.stop_metric) &&
          res.last_eval.metrics[opt.stop_metric] >= opt.stop_threshold) {
        res.stopped_early = !last;
        if (!ckpt.empty()) save_checkpoint(ckpt, model, &adam, opt.metadata);
        break;
      }
    }
    if (!ckpt.empty() && ((opt.save_every > 0 && (step + 1) % opt.save_every == 0) || last))
      save_checkpoint(ckpt, model, &adam, opt.metadata);
  }
  if (!opt.quiet && tty) std::fprintf(stderr, "\n");
  if (!opt.out_dir.empty()) save_checkpoint(opt.out_dir + "/model.safetensors", model, nullptr, opt.metadata);
  return res;
}

}  // namespace hippo
