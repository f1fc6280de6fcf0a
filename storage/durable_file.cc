#include "storage/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "storage/crc32c.h"

namespace dfm {
namespace {

Status Errno(const std::string& what) { return Status::IOError(what + ": " + std::strerror(errno)); }

std::string CrcHex(std::string_view json) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", Crc32cExtend(0, json.data(), json.size()));
  return buf;
}

}  // namespace

std::string CrcLine(std::string_view json) { return CrcHex(json) + " " + std::string(json) + "\n"; }

Status SplitCrcLine(const std::string& line, std::string_view* json) {
  if (line.size() < 11 || line.back() != '\n' || line[8] != ' ') return Status::Corruption("not a whole line");
  *json = std::string_view(line.data() + 9, line.size() - 10);
  if (CrcHex(*json) != std::string_view(line.data(), 8)) return Status::Corruption("line checksum mismatch");
  return Status::OK();
}

bool WriteAllTo(int fd, std::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

Status SyncDirectory(const std::string& dir) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Errno("cannot open " + dir);
  const bool ok = ::fsync(dfd) == 0;
  const int saved = errno;
  ::close(dfd);
  errno = saved;
  return ok ? Status::OK() : Errno("cannot sync " + dir);
}

bool TakesDirectWrites(const std::string& dir) {
  std::string path = dir + "/" + kDirectProbePrefix + "XXXXXX";
  const int made = ::mkstemp(path.data());
  if (made < 0) return false;
  ::close(made);
  // The page size is the strictest alignment O_DIRECT asks on Linux.
  constexpr size_t kBlock = 4096;
  void* block = nullptr;
  bool ok = false;
  const int fd = ::open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  if (fd >= 0 && ::posix_memalign(&block, kBlock, kBlock) == 0) {
    std::memset(block, 0, kBlock);
    ok = ::pwrite(fd, block, kBlock, 0) == static_cast<ssize_t>(kBlock) && ::fdatasync(fd) == 0;
  }
  std::free(block);
  if (fd >= 0) ::close(fd);
  ::unlink(path.c_str());
  return ok;
}

Status ReplaceFileDurably(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot create " + tmp);
  const bool ok = WriteAllTo(fd, text) && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (!ok) return Errno("cannot write " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno("cannot rename " + tmp);
  const size_t slash = path.rfind('/');
  return SyncDirectory(slash == std::string::npos ? "." : path.substr(0, slash));
}

}  // namespace dfm
