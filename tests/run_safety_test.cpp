// Training never loses work (issue 11): the run folder's lock, stale temporary files, the
// refusal to overwrite a run, free-space and file-size checks, checkpoint saves that fail
// mid-run (real EFBIG errors from a lowered RLIMIT_FSIZE), the log on resume, the run
// settings a resume must share, strict checkpoint metadata and option ranges.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/threads.h"
#include "data/synthetic.h"
#include "data/synthetic_batches.h"
#include "io/run_dir.h"
#include "io/safetensors.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/run_log.h"
#include "train/synthetic_eval.h"
#include "train/trainer.h"

using namespace hippo;
using hippo::test_util::error_of;
using hippo::test_util::TempDir;
namespace fs = std::filesystem;

namespace {

ModelConfig tiny_config(int heads = 2) {
  return ModelConfig::from_json({{"vocab_size", 10}, {"d_model", 16}, {"n_layer", 2}, {"d_state", 8},
                                 {"attn_heads", heads}, {"dropout", 0.1}, {"layers", {"h3", "attention"}}},
                                "test");
}

SynthSplits tiny_data() {
  SynthOptions o;
  o.task = SynthTask::AssociativeRecall;
  o.n_train = 64;
  o.n_test = 16;
  return make_synthetic(o);
}

TrainOptions quiet_options(const std::string& dir, int64_t steps) {
  TrainOptions t;
  t.steps = steps;
  t.warmup_steps = 2;
  t.adam.lr = 3e-3f;
  t.log_every = 1;
  t.quiet = true;
  t.out_dir = dir;
  return t;
}

// Runs train() on the tiny task; `hook(step)` runs before each step's batch.
TrainResult run(LanguageModel& m, const TrainOptions& t, const SynthSplits& data,
                const std::function<void(int64_t)>& hook = nullptr) {
  return train(
      m, t,
      [&](int64_t step, int micro, Batch& b) {
        if (hook && micro == 0) hook(step);
        synthetic_batch(data.train, 5, step * t.grad_accum + micro, 8, b);
      },
      [&](LanguageModel& mm) { return evaluate_synthetic(mm, data.test); });
}

std::vector<float> weights(const LanguageModel& m) {
  std::vector<float> w;
  for (auto& p : m.params()) w.insert(w.end(), p.param->value.data(), p.param->value.data() + p.param->value.numel());
  return w;
}

std::vector<nlohmann::json> read_log(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));  // throws on a bad line
  return out;
}

std::vector<int64_t> logged_loss_steps(const std::string& path) {
  std::vector<int64_t> steps;
  for (auto& j : read_log(path))
    if (j.contains("loss")) steps.push_back(j["step"].get<int64_t>());
  return steps;
}

std::string checkpoint_step(const std::string& path) { return read_metadata(path).at("optim.step"); }

// A pid that existed and is gone: a child that has exited and been reaped.
pid_t dead_pid() {
  pid_t p = fork();
  if (p == 0) _exit(0);
  int status = 0;
  waitpid(p, &status, 0);
  return p;
}

// Lowers the soft file-size limit for its scope; writes past it fail with EFBIG (SIGXFSZ is
// ignored), as on a full disk, but only for files larger than the limit.
struct FileSizeLimit {
  rlimit saved{};
  void (*old_handler)(int) = nullptr;
  FileSizeLimit() {
    getrlimit(RLIMIT_FSIZE, &saved);
    old_handler = signal(SIGXFSZ, SIG_IGN);
  }
  void set(rlim_t bytes) {
    rlimit r = saved;
    r.rlim_cur = bytes;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &r), 0);
  }
  void lift() { setrlimit(RLIMIT_FSIZE, &saved); }
  ~FileSizeLimit() {
    lift();
    signal(SIGXFSZ, old_handler);
  }
};

bool has_temp_files(const fs::path& dir) {
  for (auto& e : fs::directory_iterator(dir))
    if (temp_file_pid(e.path().filename().string()) > 0) return true;
  return false;
}

}  // namespace

// ---- generic folder guards (io/run_dir.h) ----

TEST(RunDir, SecondLockIsRefusedNamingTheHolderAndFreedAtRelease) {
  TempDir d("lock");
  {
    DirLock a(d.path.string(), "run folder");
    std::string err = error_of([&] { DirLock b(d.path.string(), "run folder"); });
    EXPECT_NE(err.find("in use by another process"), std::string::npos) << err;
    EXPECT_NE(err.find(str("pid ", getpid())), std::string::npos) << err;
    EXPECT_NE(err.find("hippo_tests"), std::string::npos) << "the command line: " << err;
  }
  EXPECT_EQ(error_of([&] { DirLock c(d.path.string()); }), "");
}

TEST(RunDir, LockOfAKilledProcessIsFree) {
  TempDir d("lockkill");
  const std::string lock_path = d.file(".lock");  // DirLock's file, locked the same way
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  if (child == 0) {  // only async-signal-safe calls between fork and _exit
    int fd = open(lock_path.c_str(), O_RDWR | O_CREAT, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) _exit(2);
    char c = 1;
    if (write(ready[1], &c, 1) != 1) _exit(2);
    pause();
    _exit(0);
  }
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  EXPECT_NE(error_of([&] { DirLock l(d.path.string()); }).find("in use by another process"), std::string::npos);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_EQ(error_of([&] { DirLock l(d.path.string()); }), "") << "the kernel frees a dead holder's lock";
  close(ready[0]);
  close(ready[1]);
}

TEST(RunDir, TempFilePidMatchesOnlyTheAtomicSaveNaming) {
  EXPECT_EQ(temp_file_pid(".checkpoint.safetensors.tmp1234"), 1234);
  EXPECT_EQ(temp_file_pid(".log.jsonl.tmp7"), 7);
  EXPECT_EQ(temp_file_pid("checkpoint.safetensors.tmp1234"), -1);  // not hidden
  EXPECT_EQ(temp_file_pid(".tmp1234"), -1);                         // no NAME
  EXPECT_EQ(temp_file_pid(".a.tmp"), -1);
  EXPECT_EQ(temp_file_pid(".a.tmp12x"), -1);
  EXPECT_EQ(temp_file_pid(".a.tmp012"), -1);
  EXPECT_EQ(temp_file_pid(".a.tmp12345678901"), -1);
}

TEST(RunDir, StaleTempFilesOfDeadProcessesAreRemovedOthersKept) {
  TempDir d("stale");
  const pid_t dead = dead_pid();
  const std::string stale = str(".checkpoint.safetensors.tmp", dead);
  const std::string live = str(".checkpoint.safetensors.tmp", getppid());
  const std::string mine = str(".model.safetensors.tmp", getpid());
  for (const std::string& n : {stale, live, mine, std::string("notes.tmp1"), std::string(".x.tmpabc"),
                               str("keep.tmp", dead)})
    std::ofstream(d.file(n)) << "x";
  fs::create_directory(d.file(str(".dir.tmp", dead)));  // not a regular file
  const auto removed = remove_stale_temp_files(d.path.string());
  EXPECT_EQ(removed, std::vector<std::string>{stale});
  EXPECT_FALSE(fs::exists(d.file(stale)));
  for (const std::string& n : {live, mine, std::string("notes.tmp1"), std::string(".x.tmpabc"),
                               str("keep.tmp", dead), str(".dir.tmp", dead)})
    EXPECT_TRUE(fs::exists(d.file(n))) << n;
}

TEST(RunDir, WriteCheckFailsOnAFolderThatTakesNoFiles) {
  TempDir d("writable");
  EXPECT_EQ(error_of([&] { check_dir_writable(d.path.string()); }), "");
  EXPECT_FALSE(has_temp_files(d.path)) << "the probe file is removed";
  // /proc takes no new files, not even from root.
  std::string err = error_of([] { check_dir_writable("/proc"); });
  EXPECT_NE(err.find("/proc: cannot write into the folder"), std::string::npos) << err;
}

TEST(RunDir, FreeSpaceAndFileSizeLimitAreChecked) {
  TempDir d("space");
  struct statvfs s;
  ASSERT_EQ(statvfs(d.path.c_str(), &s), 0);
  const uint64_t disk = static_cast<uint64_t>(s.f_blocks) * s.f_frsize;
  EXPECT_EQ(error_of([&] { check_room_for(d.path.string(), 4096, 4096, "x"); }), "");
  std::string err = error_of([&] { check_room_for(d.path.string(), 2 * disk, 4096, "a checkpoint"); });
  EXPECT_NE(err.find("not enough free space: a checkpoint needs"), std::string::npos) << err;
  FileSizeLimit lim;
  lim.set(1 << 20);
  err = error_of([&] { check_room_for(d.path.string(), 4096, 2 << 20, "a checkpoint"); });
  EXPECT_NE(err.find("ulimit -f"), std::string::npos) << err;
}

// ---- training into a run folder ----

TEST(TrainSafety, ExistingRunIsRefusedWithoutForceAndDiscardedWithIt) {
  set_num_threads(1);
  TempDir d("exists");
  auto data = tiny_data();
  LanguageModel m(tiny_config());
  m.init(1);
  run(m, quiet_options(d.path.string(), 3), data);
  const auto ckpt = d.file("checkpoint.safetensors");
  const auto stamp = fs::last_write_time(ckpt);

  LanguageModel again(tiny_config());
  again.init(2);
  std::string err = error_of([&] { run(again, quiet_options(d.path.string(), 5), data); });
  EXPECT_NE(err.find("already holds a run"), std::string::npos) << err;
  EXPECT_NE(err.find("checkpoint.safetensors at step 3"), std::string::npos) << err;
  EXPECT_NE(err.find("log.jsonl"), std::string::npos) << err;
  EXPECT_NE(err.find("--force"), std::string::npos) << err;
  EXPECT_EQ(fs::last_write_time(ckpt), stamp) << "the run is untouched";
  EXPECT_EQ(checkpoint_step(ckpt), "3");

  TrainOptions forced = quiet_options(d.path.string(), 5);
  forced.force = true;
  run(again, forced, data);
  EXPECT_EQ(checkpoint_step(ckpt), "5");
  EXPECT_EQ(logged_loss_steps(d.file("log.jsonl")), (std::vector<int64_t>{1, 2, 3, 4, 5}))
      << "the new run's log only";
}

TEST(TrainSafety, FolderIsLockedWhileTrainingAndFreedAfterACrash) {
  set_num_threads(1);
  TempDir d("trainlock");
  auto data = tiny_data();
  LanguageModel m(tiny_config());
  m.init(1);
  std::string during;
  TrainOptions t = quiet_options(d.path.string(), 4);
  EXPECT_THROW(run(m, t, data, [&](int64_t step) {
                 if (step == 1) during = error_of([&] { DirLock other(d.path.string()); });
                 if (step == 2) throw Error("crash");
               }),
               Error);
  EXPECT_NE(during.find(str("pid ", getpid())), std::string::npos) << during;
  EXPECT_EQ(error_of([&] { DirLock after(d.path.string()); }), "");
}

TEST(TrainSafety, StaleTempFilesAreRemovedAtStart) {
  set_num_threads(1);
  TempDir d("trainstale");
  const std::string stale = str(".checkpoint.safetensors.tmp", dead_pid());
  std::ofstream(d.file(stale)) << std::string(1000, 'x');
  auto data = tiny_data();
  LanguageModel m(tiny_config());
  m.init(1);
  run(m, quiet_options(d.path.string(), 2), data);
  EXPECT_FALSE(fs::exists(d.file(stale)));
}

TEST(TrainSafety, CheckpointSizeEstimateBoundsTheFiles) {
  set_num_threads(1);
  TempDir d("size");
  auto data = tiny_data();
  LanguageModel m(tiny_config());
  m.init(1);
  run(m, quiet_options(d.path.string(), 2), data);
  const auto ck = fs::file_size(d.file("checkpoint.safetensors"));
  const auto w = fs::file_size(d.file("model.safetensors"));
  EXPECT_LE(ck, checkpoint_bytes(m, true));
  EXPECT_LE(w, checkpoint_bytes(m, false));
  EXPECT_GE(ck, checkpoint_bytes(m, true) - (128u << 10)) << "an estimate, not a wild guess";
  EXPECT_GT(ck, 2.5 * w) << "weights and two optimizer moments";
}

TEST(TrainSafety, FailedSavesMidRunKeepTheStateAndTheLastGoodCheckpoint) {
  set_num_threads(1);
  TempDir d("savefail");
  auto data = tiny_data();
  // The reference: the same run with no failure.
  LanguageModel ref(tiny_config());
  ref.init(4);
  TrainOptions plain = quiet_options("", 10);
  run(ref, plain, data);

  LanguageModel m(tiny_config());
  m.init(4);
  TrainOptions t = quiet_options(d.path.string(), 10);
  t.save_every = 2;
  FileSizeLimit lim;
  std::string on_disk_during_failure;
  run(m, t, data, [&](int64_t step) {
    if (step == 3) lim.set(8 << 10);  // the saves at steps 4 and 6 fail with EFBIG
    if (step == 6) {
      lim.lift();
      on_disk_during_failure = checkpoint_step(d.file("checkpoint.safetensors"));
    }
  });
  EXPECT_EQ(on_disk_during_failure, "2") << "the last good checkpoint stays while saves fail";
  EXPECT_EQ(checkpoint_step(d.file("checkpoint.safetensors")), "10") << "a later save succeeds";
  EXPECT_EQ(weights(m), weights(ref)) << "failed saves must not disturb training";
  std::vector<int64_t> failed;
  for (auto& j : read_log(d.file("log.jsonl")))
    if (j.value("event", "") == "save_failed") {
      failed.push_back(j["step"]);
      EXPECT_NE(j["error"].get<std::string>().find("File too large"), std::string::npos) << j.dump();
    }
  EXPECT_EQ(failed, (std::vector<int64_t>{4, 6}));
  EXPECT_FALSE(has_temp_files(d.path)) << "a failed save leaves no temporary file";
}

TEST(TrainSafety, FailedFinalSaveThrowsKeepingThePreviousCheckpointAndSavingTheWeights) {
  set_num_threads(1);
  TempDir d("finalfail");
  auto data = tiny_data();
  LanguageModel m(tiny_config());
  m.init(4);
  save_weights(d.file("probe.safetensors"), m);
  const auto weights_size = fs::file_size(d.file("probe.safetensors"));
  fs::remove(d.file("probe.safetensors"));
  TrainOptions t = quiet_options(d.path.string(), 8);
  t.save_every = 4;
  FileSizeLimit lim;
  // From step 6 on, a checkpoint (3x the weights) no longer fits, the weights file still does.
  std::string err = error_of([&] {
    run(m, t, data, [&](int64_t step) {
      if (step == 6) lim.set(2 * weights_size);
    });
  });
  lim.lift();
  EXPECT_NE(err.find("could not save the final checkpoint (step 8)"), std::string::npos) << err;
  EXPECT_NE(err.find("checkpoint of step 4"), std::string::npos) << err;
  EXPECT_NE(err.find("--resume"), std::string::npos) << err;
  EXPECT_NE(err.find("final weights were saved"), std::string::npos) << err;
  EXPECT_EQ(checkpoint_step(d.file("checkpoint.safetensors")), "4");
  EXPECT_FALSE(has_temp_files(d.path));
  // The kept checkpoint resumes to the same end.
  LanguageModel resumed(tiny_config());
  resumed.init(99);
  t.resume = true;
  run(resumed, t, data);
  EXPECT_EQ(weights(resumed), weights(m));
}

TEST(TrainSafety, ResumeDropsLogRecordsAfterTheCheckpoint) {
  set_num_threads(1);
  TempDir d("logresume");
  auto data = tiny_data();
  LanguageModel m(tiny_config());
  m.init(1);
  TrainOptions t = quiet_options(d.path.string(), 10);
  t.save_every = 5;
  // Crash during step 8: records 1..7 are logged, the checkpoint is from step 5.
  EXPECT_THROW(run(m, t, data, [](int64_t step) { if (step == 7) throw Error("crash"); }), Error);
  EXPECT_EQ(logged_loss_steps(d.file("log.jsonl")), (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7}));
  std::ofstream(d.file("log.jsonl"), std::ios::app) << "{\"step\": 8, \"lo";  // cut by a kill
  t.resume = true;
  LanguageModel r(tiny_config());
  r.init(1);
  run(r, t, data);
  std::vector<int64_t> want;
  for (int64_t s = 1; s <= 10; ++s) want.push_back(s);
  EXPECT_EQ(logged_loss_steps(d.file("log.jsonl")), want) << "each step once, every line whole";
}

TEST(TrainSafety, TruncateLogKeepsWholeRecordsUpToTheStep) {
  TempDir d("trunc");
  std::ofstream(d.file("log.jsonl")) << "{\"step\":1,\"loss\":2}\n{\"step\":2,\"eval\":{}}\n"
                                        "not json\n{\"step\":3,\"loss\":1}\n{\"step\":2,";
  EXPECT_EQ(truncate_log_after(d.file("log.jsonl"), 2), 3);
  std::ifstream in(d.file("log.jsonl"));
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all, "{\"step\":1,\"loss\":2}\n{\"step\":2,\"eval\":{}}\n");
  EXPECT_EQ(truncate_log_after(d.file("missing.jsonl"), 2), 0);
  EXPECT_FALSE(fs::exists(d.file("missing.jsonl")));
}

TEST(TrainSafety, ResumeRefusesOtherSettingsNamingTheField) {
  set_num_threads(1);
  TempDir d("mismatch");
  auto data = tiny_data();
  LanguageModel m(tiny_config());
  m.init(1);
  TrainOptions t = quiet_options(d.path.string(), 3);
  t.run_settings["batch-size"] = "8";
  run(m, t, data);
  TrainOptions r = t;
  r.resume = true;
  r.steps = 5;
  auto resume_err = [&](const ModelConfig& cfg, const TrainOptions& o) {
    LanguageModel x(cfg);
    x.init(1);
    return error_of([&] { run(x, o, data); });
  };
  TrainOptions seed = r;
  seed.seed = 7;
  std::string err = resume_err(tiny_config(), seed);
  EXPECT_NE(err.find("'seed': the checkpoint has 0, this run has 7"), std::string::npos) << err;
  TrainOptions batch = r;
  batch.run_settings["batch-size"] = "16";
  err = resume_err(tiny_config(), batch);
  EXPECT_NE(err.find("'batch-size': the checkpoint has 8, this run has 16"), std::string::npos) << err;
  err = resume_err(tiny_config(4), r);
  EXPECT_NE(err.find("model config field 'attn_heads': the checkpoint has 2, this run has 4"),
            std::string::npos) << err;
  ModelConfig c = tiny_config();
  c.discretization = "zoh";
  c.dropout = 0.0f;
  err = resume_err(c, r);
  EXPECT_NE(err.find("'discretization'"), std::string::npos) << err;
  EXPECT_NE(err.find("'dropout'"), std::string::npos) << err;
  TrainOptions lr = r;
  lr.adam.lr = 1e-3f;
  EXPECT_NE(resume_err(tiny_config(), lr).find("'lr'"), std::string::npos);
  EXPECT_EQ(checkpoint_step(d.file("checkpoint.safetensors")), "3") << "refusals change nothing";
  // Free to change: the step budget and the frequencies.
  TrainOptions more = r;
  more.log_every = 2;
  more.save_every = 1;
  more.eval_every = 1;
  EXPECT_EQ(resume_err(tiny_config(), more), "");
  EXPECT_EQ(checkpoint_step(d.file("checkpoint.safetensors")), "5");
}

TEST(TrainSafety, ResumeNeedsAFolderWithACheckpoint) {
  auto data = tiny_data();
  LanguageModel m(tiny_config());
  TrainOptions t = quiet_options("", 2);
  t.resume = true;
  EXPECT_NE(error_of([&] { run(m, t, data); }).find("--resume needs -o DIR"), std::string::npos);
  TempDir d("noresume");
  t.out_dir = d.path.string();
  EXPECT_NE(error_of([&] { run(m, t, data); }).find("nothing to resume"), std::string::npos);
}

TEST(TrainSafety, OptimStepIsParsedStrictly) {
  EXPECT_EQ(parse_checkpoint_step("12", "f"), 12);
  EXPECT_EQ(parse_checkpoint_step("0", "f"), 0);
  for (const char* bad : {"12junk", "-1", " 12", "12 ", "", "+5", "0x10", "1e3", "99999999999999999999"}) {
    std::string err = error_of([&] { parse_checkpoint_step(bad, "ck.safetensors"); });
    EXPECT_NE(err.find("ck.safetensors: __metadata__.optim.step must be a non-negative integer"),
              std::string::npos) << bad << ": " << err;
  }
  // And through load_checkpoint: a checkpoint claiming step "12junk" is refused.
  TempDir d("step");
  LanguageModel m(tiny_config());
  m.init(1);
  AdamW adam(m.params(), {});
  save_checkpoint(d.file("c.safetensors"), m, &adam, {});
  SafeTensors st = load_safetensors(d.file("c.safetensors"));
  st.metadata["optim.step"] = "12junk";
  std::vector<NamedTensor> list;
  for (auto& [name, t] : st.tensors) list.push_back({name, &t});
  save_safetensors(d.file("c.safetensors"), list, st.metadata);
  AdamW fresh(m.params(), {});
  std::string err = error_of([&] { load_checkpoint(d.file("c.safetensors"), m, &fresh); });
  EXPECT_NE(err.find("\"12junk\""), std::string::npos) << err;
}

TEST(TrainSafety, OptionRangesHaveClearMessages) {
  auto err = [](auto change) {
    TrainOptions t;
    change(t);
    return error_of([&] { validate_train_options(t); });
  };
  EXPECT_EQ(err([](TrainOptions&) {}), "");
  EXPECT_EQ(err([](TrainOptions& t) { t.log_every = 0; }), "--log-every must be >= 1, got 0");
  EXPECT_EQ(err([](TrainOptions& t) { t.steps = 0; }), "--steps must be >= 1, got 0");
  EXPECT_EQ(err([](TrainOptions& t) { t.eval_every = -1; }), "--eval-every must be >= 0, got -1");
  EXPECT_EQ(err([](TrainOptions& t) { t.save_every = -5; }), "--save-every must be >= 0, got -5");
  EXPECT_EQ(err([](TrainOptions& t) { t.warmup_steps = -1; }), "--warmup must be >= 0, got -1");
  EXPECT_EQ(err([](TrainOptions& t) { t.grad_accum = 0; }), "--grad-accum must be >= 1, got 0");
  EXPECT_NE(err([](TrainOptions& t) { t.adam.lr = 0; }).find("--lr must be a positive finite number"), std::string::npos);
  EXPECT_NE(err([](TrainOptions& t) { t.adam.lr = NAN; }).find("--lr"), std::string::npos);
  EXPECT_NE(err([](TrainOptions& t) { t.adam.lr = INFINITY; }).find("--lr"), std::string::npos);
  EXPECT_NE(err([](TrainOptions& t) { t.clip = -1; }).find("--clip"), std::string::npos);
  EXPECT_NE(err([](TrainOptions& t) { t.adam.weight_decay = -0.1f; }).find("--wd"), std::string::npos);
  EXPECT_NE(err([](TrainOptions& t) { t.min_lr_ratio = 2; }).find("--min-lr-ratio"), std::string::npos);
}
