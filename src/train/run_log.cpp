#include "train/run_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/safetensors.h"

namespace hippo {

RunLog::~RunLog() {
  if (fd_ >= 0) ::close(fd_);
}

void RunLog::open(const std::string& path, bool fresh) {
  HIPPO_CHECK(fd_ < 0, path, ": log already open");
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (fresh ? O_TRUNC : 0), 0644);
  HIPPO_CHECK(fd_ >= 0, path, ": cannot open the log: ", std::strerror(errno));
  path_ = path;
  size_ = ::lseek(fd_, 0, SEEK_END);
  if (size_ < 0) size_ = 0;
}

bool RunLog::append(const nlohmann::json& record) {
  if (fd_ < 0) return false;
  const std::string line = record.dump() + "\n";
  size_t done = 0;
  int err = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : ENOSPC;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (err == 0) {
    size_ += static_cast<int64_t>(line.size());
    failing_ = false;
    return true;
  }
  // Drop the partial line, so that the next record does not continue it.
  if (done > 0 && ::ftruncate(fd_, size_) != 0) {
  }
  if (!failing_)
    std::fprintf(stderr, "hippo: warning: %s: could not write a log record: %s (training goes on)\n",
                 path_.c_str(), std::strerror(err));
  failing_ = true;
  return false;
}

void RunLog::sync() {
  if (fd_ >= 0) ::fsync(fd_);
}

int64_t truncate_log_after(const std::string& path, int64_t step) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return 0;
  std::ifstream in(path, std::ios::binary);
  HIPPO_CHECK(in.good(), path, ": cannot read the log");
  std::string kept, line;
  int64_t dropped = 0;
  while (std::getline(in, line)) {
    const bool whole = !in.eof();  // the last line without '\n' was cut by a kill
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    const bool late = j.is_object() && j.contains("step") &&
                      (!j["step"].is_number_integer() || j["step"].get<int64_t>() > step);
    const bool keep = whole && j.is_object() && !late;
    if (keep) kept += line + "\n";
    else ++dropped;
  }
  HIPPO_CHECK(in.eof(), path, ": read failed");
  if (dropped > 0) write_file_atomic(path, kept);
  return dropped;
}

}  // namespace hippo
