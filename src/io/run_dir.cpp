#include "io/run_dir.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "core/error.h"

namespace hippo {

namespace {

std::string human_bytes(uint64_t n) {
  char buf[64];
  const double mib = static_cast<double>(n) / (1 << 20);
  if (mib >= 1024) std::snprintf(buf, sizeof buf, "%.2f GiB", mib / 1024);
  else std::snprintf(buf, sizeof buf, "%.2f MiB", mib);
  return str(buf, " (", n, " bytes)");
}

// "pid 123 on host h: hippo train -o runs/x" (the command line cut to a readable length).
std::string holder_description() {
  char host[256] = "?";
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "?");
  host[sizeof host - 1] = '\0';
  std::string cmd;
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  if (in) cmd.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  for (char& c : cmd)
    if (c == '\0' || c == '\n') c = ' ';
  while (!cmd.empty() && cmd.back() == ' ') cmd.pop_back();
  if (cmd.size() > 300) cmd = cmd.substr(0, 300) + "...";
  return str("pid ", ::getpid(), " on host ", host, ": ", cmd.empty() ? "?" : cmd);
}

std::string read_small(int fd) {
  char buf[1024];
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "";
  std::string s(buf, static_cast<size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

void ensure_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  HIPPO_CHECK(!dir.empty(), "empty output folder name");
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return;
  HIPPO_CHECK(!fs::exists(fs::symlink_status(dir, ec)) || fs::is_directory(dir, ec), dir,
              ": exists and is not a folder");
  fs::create_directories(dir, ec);
  HIPPO_CHECK(!ec && fs::is_directory(dir), dir, ": cannot create the folder: ",
              ec ? ec.message() : std::string("unknown error"));
}

DirLock::DirLock(const std::string& dir, const std::string& what) : path_(dir + "/.lock") {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  HIPPO_CHECK(fd_ >= 0, dir, ": cannot create the lock file ", path_, ": ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder;
    // The holder writes its description right after locking; give it a moment to appear.
    for (int i = 0; i < 20 && err == EWOULDBLOCK && (holder = read_small(fd_)).empty(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ::close(fd_);
    fd_ = -1;
    HIPPO_CHECK(err != EWOULDBLOCK, dir, ": the ", what, " is in use by another process (",
                holder.empty() ? std::string("holder unknown") : holder,
                "); wait for it to finish or choose another folder");
    fail(dir, ": cannot lock ", path_, ": ", std::strerror(err));
  }
  const std::string me = holder_description() + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    // The lock holds without the description; a refused process then says "holder unknown".
  }
}

DirLock::~DirLock() {
  if (fd_ < 0) return;
  // Emptied while still held, so the file never names a process that is gone.
  if (::ftruncate(fd_, 0) != 0) {
  }
  ::close(fd_);  // releases the lock
}

void check_dir_writable(const std::string& dir) {
  // Named like an atomic save's temporary file, so a kill right here leaves nothing that the
  // next start would not remove.
  const std::string tmp = str(dir, "/.write-test.tmp", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  HIPPO_CHECK(fd >= 0, dir, ": cannot write into the folder: ", std::strerror(errno));
  const std::string block(4096, '\0');  // one real block, so a full disk shows here
  ssize_t n = ::write(fd, block.data(), block.size());
  const int err = n < 0 ? errno : (n != static_cast<ssize_t>(block.size()) ? ENOSPC : 0);
  const int err2 = err ? err : (::fsync(fd) != 0 ? errno : 0);
  ::close(fd);
  ::unlink(tmp.c_str());
  HIPPO_CHECK(err2 == 0, dir, ": cannot write into the folder: ", std::strerror(err2));
}

uint64_t free_bytes(const std::string& dir) {
  struct statvfs s;
  HIPPO_CHECK(::statvfs(dir.c_str(), &s) == 0, dir, ": cannot read the free space: ",
              std::strerror(errno));
  return static_cast<uint64_t>(s.f_bavail) * static_cast<uint64_t>(s.f_frsize);
}

void check_room_for(const std::string& dir, uint64_t total_bytes, uint64_t largest_file_bytes,
                    const std::string& what) {
  const uint64_t avail = free_bytes(dir);
  HIPPO_CHECK(avail >= total_bytes, dir, ": not enough free space: ", what, " needs ",
              human_bytes(total_bytes), " but its file system has ", human_bytes(avail),
              " free; free some space or choose another folder");
  struct rlimit rl;
  if (::getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    HIPPO_CHECK(largest_file_bytes <= rl.rlim_cur, dir, ": ", what, " needs a file of ",
                human_bytes(largest_file_bytes), " but this process may write files of at most ",
                human_bytes(rl.rlim_cur), " (ulimit -f)");
}

long temp_file_pid(const std::string& name) {
  const size_t at = name.rfind(".tmp");
  if (name.size() < 2 || name[0] != '.' || at == std::string::npos || at < 2) return -1;
  const std::string digits = name.substr(at + 4);
  if (digits.empty() || digits.size() > 9 || digits[0] == '0') return -1;
  for (char c : digits)
    if (c < '0' || c > '9') return -1;
  return std::stol(digits);
}

std::vector<std::string> remove_stale_temp_files(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> removed;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return removed;  // an unreadable folder fails the checks that follow, with a reason
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    const long pid = temp_file_pid(name);
    if (pid <= 0 || pid == ::getpid()) continue;
    std::error_code sec;
    if (!fs::is_regular_file(fs::symlink_status(it->path(), sec))) continue;
    // kill(pid, 0) fails with ESRCH only when no such process exists; EPERM means it lives.
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    if (fs::remove(it->path(), sec)) removed.push_back(name);
  }
  return removed;
}

}  // namespace hippo
