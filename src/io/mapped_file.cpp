#include "io/mapped_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "core/error.h"

namespace hippo {

namespace {

// The mappings the SIGBUS handler knows, in a fixed table: the handler may only read memory
// (no locks, no allocation). A slot is published by storing `end` then `begin` (release) and
// retired by clearing `begin` before the unmap; the handler reads `begin` first (acquire).
constexpr int kSlots = 64;
constexpr size_t kPathMax = 512;
struct Slot {
  std::atomic<uintptr_t> begin{0}, end{0};
  char path[kPathMax];
  size_t path_len = 0;
};
Slot g_slots[kSlots];
std::mutex g_slots_mutex;  // registration only; never taken by the handler
struct sigaction g_previous;
bool g_installed = false;

void write_all(const char* s, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

// Async-signal-safe: atomics, write(2), _exit(2), sigaction(2), raise(3).
void on_sigbus(int sig, siginfo_t* info, void* ctx) {
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  for (Slot& s : g_slots) {
    const uintptr_t b = s.begin.load(std::memory_order_acquire);
    if (b == 0 || addr < b || addr >= s.end.load(std::memory_order_relaxed)) continue;
    static const char pre[] = "hippo: error: ";
    static const char post[] = " changed or was truncated while mapped (reading it failed); "
                               "do not modify a model file while hippo uses it\n";
    write_all(pre, sizeof pre - 1);
    write_all(s.path, s.path_len);
    write_all(post, sizeof post - 1);
    ::_exit(1);
  }
  // Not ours: what would have happened without this handler.
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction != nullptr) return g_previous.sa_sigaction(sig, info, ctx);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN &&
             g_previous.sa_handler != nullptr) {
    return g_previous.sa_handler(sig);
  }
  // Default action: restore it; the faulting access runs again on return and kills us.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGBUS, &dfl, nullptr);
}

int register_mapping(const std::string& path, const void* data, uint64_t size) {
  std::lock_guard<std::mutex> lock(g_slots_mutex);
  if (!g_installed) {
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(SIGBUS, &sa, &g_previous) != 0) return -1;
    g_installed = true;
  }
  for (int i = 0; i < kSlots; ++i) {
    Slot& s = g_slots[i];
    if (s.begin.load(std::memory_order_relaxed) != 0) continue;
    s.path_len = std::min(path.size(), kPathMax);
    std::memcpy(s.path, path.data(), s.path_len);
    const auto b = reinterpret_cast<uintptr_t>(data);
    s.end.store(b + size, std::memory_order_relaxed);
    s.begin.store(b, std::memory_order_release);
    return i;
  }
  return -1;  // table full: this mapping keeps the plain SIGBUS
}

void unregister_mapping(int slot) {
  if (slot < 0) return;
  std::lock_guard<std::mutex> lock(g_slots_mutex);
  g_slots[slot].begin.store(0, std::memory_order_release);
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  HIPPO_CHECK(fd >= 0, path, ": cannot open file: ", std::strerror(errno));
  struct stat sb;
  if (::fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    ::close(fd);
    fail(path, ": not a regular file");
  }
  size_ = static_cast<uint64_t>(sb.st_size);
  if (size_ > 0) {
    void* m = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);  // the mapping keeps the file open
    HIPPO_CHECK(m != MAP_FAILED, path, ": cannot memory-map ", size_, " bytes: ", std::strerror(err));
    data_ = static_cast<unsigned char*>(m);
    slot_ = register_mapping(path, data_, size_);
  } else {
    ::close(fd);
  }
}

MappedFile::~MappedFile() {
  unregister_mapping(slot_);
  if (data_) ::munmap(data_, size_);
}

}  // namespace hippo
