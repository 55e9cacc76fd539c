// The run folder of a training (TrainOptions::out_dir: checkpoint.safetensors,
// model.safetensors, log.jsonl), made ready before any work is done: created, locked for this
// process (a second training into it is refused, naming the holder), cleared of temporary
// files that killed saves left, checked against the options (a folder holding a run needs
// --resume or --force; --resume needs a checkpoint) and tested for writing. The lock is held
// until the RunFolder is destroyed; the kernel drops it if the process dies.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/run_dir.h"

namespace hippo {

struct TrainOptions;

class RunFolder {
 public:
  explicit RunFolder(const TrainOptions& opt);
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;

  const std::string& dir() const { return dir_; }
  std::string checkpoint() const { return dir_ + "/checkpoint.safetensors"; }
  std::string weights() const { return dir_ + "/model.safetensors"; }
  std::string log() const { return dir_ + "/log.jsonl"; }

  // With --force: removes the previous run's files; called once every other check has passed,
  // so a run refused for another reason leaves the old one in place.
  void discard_previous_run(bool quiet);

  // Before step 1: the file system must have room for a checkpoint and the weights file.
  void check_room(uint64_t checkpoint_bytes, uint64_t weights_bytes) const;

 private:
  std::string dir_;
  std::unique_ptr<DirLock> lock_;
  std::vector<std::string> previous_;  // files of the run --force discards
};

}  // namespace hippo
