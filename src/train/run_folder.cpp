#include "train/run_folder.h"

#include <cstdio>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace hippo {

namespace {

// "checkpoint.safetensors (step 200), log.jsonl"
std::string describe(const RunFolder& f, const std::vector<std::string>& present) {
  std::string s;
  for (auto& name : present) {
    s += (s.empty() ? "" : ", ") + name;
    if (name == "checkpoint.safetensors") {
      try {
        auto meta = read_metadata(f.checkpoint());
        auto it = meta.find("optim.step");
        if (it != meta.end()) s += " at step " + it->second;
      } catch (const std::exception&) {
        s += " (unreadable)";
      }
    }
  }
  return s;
}

}  // namespace

RunFolder::RunFolder(const TrainOptions& opt) : dir_(opt.out_dir) {
  namespace fs = std::filesystem;
  HIPPO_CHECK(!opt.resume || !dir_.empty(),
              "--resume needs -o DIR: the run folder whose checkpoint.safetensors to continue");
  HIPPO_CHECK(!dir_.empty(), "internal: RunFolder without a folder");
  HIPPO_CHECK(!(opt.resume && opt.force), "--resume and --force exclude each other: --resume "
              "continues the run in ", dir_, ", --force discards it");
  ensure_dir(dir_);
  lock_ = std::make_unique<DirLock>(dir_, "run folder");
  const auto removed = remove_stale_temp_files(dir_);
  if (!removed.empty()) {
    std::string names;
    for (auto& n : removed) names += " " + n;
    std::fprintf(stderr, "%s: removed %zu temporary file(s) left by an interrupted save:%s\n",
                 dir_.c_str(), removed.size(), names.c_str());
  }
  std::vector<std::string> present;
  for (const char* name : {"checkpoint.safetensors", "model.safetensors", "log.jsonl"}) {
    std::error_code ec;
    if (fs::exists(fs::symlink_status(dir_ + "/" + name, ec))) present.push_back(name);
  }
  if (opt.resume) {
    std::error_code ec;
    HIPPO_CHECK(fs::exists(checkpoint(), ec), dir_, ": nothing to resume: there is no "
                "checkpoint.safetensors", present.empty() ? std::string()
                : " (the folder holds " + describe(*this, present) + "; start the run again with --force)");
  } else if (!present.empty()) {
    HIPPO_CHECK(opt.force, dir_, ": already holds a run (", describe(*this, present),
                "); continue it with --resume, discard it with --force, or choose another folder");
    previous_ = present;  // removed by discard_previous_run, once every check has passed
  }
  check_dir_writable(dir_);
}

void RunFolder::discard_previous_run(bool quiet) {
  namespace fs = std::filesystem;
  // The old run goes as a whole, so the folder never mixes its files with the new run's.
  for (auto& name : previous_) {
    std::error_code ec;
    fs::remove(dir_ + "/" + name, ec);
    HIPPO_CHECK(!ec, dir_, "/", name, ": cannot remove it (--force): ", ec.message());
  }
  if (!quiet && !previous_.empty()) {
    std::string names;
    for (auto& n : previous_) names += (names.empty() ? "" : ", ") + n;
    std::fprintf(stderr, "%s: --force: removed the previous run's %s\n", dir_.c_str(), names.c_str());
  }
  previous_.clear();
}

void RunFolder::check_room(uint64_t checkpoint_bytes, uint64_t weights_bytes) const {
  check_room_for(dir_, checkpoint_bytes + weights_bytes, checkpoint_bytes,
                 "a checkpoint and the weights file of this model");
}

}  // namespace hippo
