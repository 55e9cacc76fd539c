// Guards for a folder a command writes results into (a training run, a study, saved states):
// an exclusive lock naming its holder, a write test, a free-space check, and the removal of
// temporary files that killed writers left behind. Generic: nothing here knows about training.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hippo {

// Creates `dir` (and its parents) if missing; throws hippo::Error naming it and the reason.
void ensure_dir(const std::string& dir);

// An exclusive lock on a folder: flock(2) on DIR/.lock, so the kernel releases it when the
// process ends in any way (exit, crash, kill -9). The holder writes its pid, host and command
// line into the file, so a second process is refused with a message naming the holder.
// flock locks belong to the open file, so two locks in one process also exclude each other.
class DirLock {
 public:
  // Throws hippo::Error at once (no waiting) when another holder has the lock; `what` names
  // the kind of folder in the message ("run folder").
  DirLock(const std::string& dir, const std::string& what = "folder");
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// Creates, writes, fsyncs and removes a small temporary file in `dir`: the folder's
// permissions, a read-only mount or a full disk are found out now, not after hours of work.
void check_dir_writable(const std::string& dir);

// Bytes an unprivileged process may still write on the file system holding `dir` (statvfs).
uint64_t free_bytes(const std::string& dir);

// Throws hippo::Error, naming `dir`, both sizes and `what`, when the file system has less than
// `total_bytes` free, or when the largest single file (`largest_file_bytes`) exceeds the
// process's file-size limit (ulimit -f).
void check_room_for(const std::string& dir, uint64_t total_bytes, uint64_t largest_file_bytes,
                    const std::string& what);

// The temporary-file naming of write_file_atomic (io/safetensors.h): ".NAME.tmpPID". Returns
// the pid, or -1 for any other name.
long temp_file_pid(const std::string& filename);

// Removes the temporary files ".NAME.tmpPID" in `dir` whose writer process no longer exists
// (an interrupted atomic save); files of live processes and any other name are left alone.
// Returns the names removed.
std::vector<std::string> remove_stale_temp_files(const std::string& dir);

}  // namespace hippo
