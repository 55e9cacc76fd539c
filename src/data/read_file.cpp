#include "data/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace hippo {

namespace {

const char* kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a pipe";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

struct Fd {
  int fd;
  ~Fd() { ::close(fd); }
};

}  // namespace

std::string read_whole_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO must not block
  if (fd < 0) fail("cannot open ", path, ": ", std::strerror(errno));
  const Fd guard{fd};
  struct stat sb;
  if (::fstat(fd, &sb) != 0) fail("cannot read ", path, ": ", std::strerror(errno));
  if (!S_ISREG(sb.st_mode)) fail(path, ": not a regular file (", kind_of(sb.st_mode), ")");
  std::string out;
  out.reserve(static_cast<size_t>(sb.st_size));  // the real size, not a claim
  char buf[1 << 16];
  for (;;) {
    const ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail("error reading ", path, ": ", std::strerror(errno));
    if (got == 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

}  // namespace hippo
