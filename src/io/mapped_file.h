// A whole file memory-mapped for reading, e.g. model weights used in place by inference.
#pragma once
#include <cstdint>
#include <string>

namespace hippo {

class MappedFile {
 public:
  // Maps the whole file. The mapping is private (copy-on-write) on a read-only descriptor: the
  // file is never modified, pages are shared with the page cache until written, and a stray
  // write costs a page of memory instead of a crash. A file too short to map (size 0) gives
  // data() == nullptr and size() == 0.
  //
  // If the file is truncated (or replaced in place) while mapped, reading a page past its new
  // end raises SIGBUS. A handler installed with the first mapping turns that into
  // "hippo: error: FILE changed or was truncated while mapped" and exit status 1 when the
  // faulting address lies in one of these mappings; other SIGBUS faults keep their default
  // action (or the handler installed before).
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  unsigned char* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  std::string path_;
  unsigned char* data_ = nullptr;
  uint64_t size_ = 0;
  int slot_ = -1;  // entry in the SIGBUS handler's table, -1 if none
};

}  // namespace hippo
