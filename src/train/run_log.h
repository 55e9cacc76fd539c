// log.jsonl of a training run: one JSON object per line. Each record goes to the file with a
// single write(2) and no user-space buffer, so a kill loses no record already reported; a
// failed write (full disk) is cut back, so the file never holds a partial line.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace hippo {

class RunLog {
 public:
  RunLog() = default;
  ~RunLog();
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;

  // Opens `path` for appending (`fresh`: emptied first). Throws hippo::Error naming the file.
  void open(const std::string& path, bool fresh);
  bool is_open() const { return fd_ >= 0; }
  // Appends one record as a line. On failure prints a warning (once until a write succeeds
  // again), cuts the file back to its last whole line and returns false; training goes on.
  bool append(const nlohmann::json& record);
  // fsync: called before a checkpoint is saved, so after a power loss the log reaches at
  // least as far as the checkpoint.
  void sync();

 private:
  std::string path_;
  int fd_ = -1;
  int64_t size_ = 0;     // bytes of whole lines in the file
  bool failing_ = false;
};

// For a resume from a checkpoint of step `step`: rewrites `path` atomically without the
// records whose "step" is greater (logged after that checkpoint, so they will be logged again)
// and without lines that are not whole JSON objects (cut by a kill). Returns the number of
// lines dropped; a missing file stays missing.
int64_t truncate_log_after(const std::string& path, int64_t step);

}  // namespace hippo
