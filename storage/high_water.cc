#include "storage/high_water.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace dfm {

namespace {

constexpr char kMagic[] = "dfm-high-water";
constexpr char kVersion[] = "1";

Status Errno(const std::string& what) { return Status::IOError(what + ": " + std::strerror(errno)); }

// Writes all of `data` to `fd`.
bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Status ReadHighWater(const std::string& dir, uint64_t* seq) {
  *seq = 0;
  const std::string path = dir + "/" + kHighWaterFile;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? Status::OK() : Errno("cannot read " + path);
  std::string text;
  char buf[128];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || text.size() > 4096) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  const std::string head = std::string(kMagic) + " ";
  size_t eol = text.find('\n');
  if (text.compare(0, head.size(), head) != 0 || eol == std::string::npos)
    return Status::Corruption(path + " is not a high-water mark file");
  const std::string version = text.substr(head.size(), eol - head.size());
  if (version != kVersion)
    return Status::Corruption(path + " has unknown version " + version);
  size_t end = text.find('\n', eol + 1);
  const std::string digits = text.substr(eol + 1, end == std::string::npos ? end : end - eol - 1);
  if (digits.empty() || digits.size() > 20 || end != text.size() - 1 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return Status::Corruption(path + " does not hold a sequence number");
  *seq = std::stoull(digits);
  return Status::OK();
}

Status WriteHighWater(const std::string& dir, uint64_t seq) {
  const std::string path = dir + "/" + kHighWaterFile;
  const std::string tmp = path + ".tmp";
  const std::string text =
      std::string(kMagic) + " " + kVersion + "\n" + std::to_string(seq) + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot create " + tmp);
  bool ok = WriteAll(fd, text) && ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  errno = saved;
  if (!ok) return Errno("cannot write " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno("cannot rename " + tmp);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Errno("cannot open " + dir);
  ok = ::fsync(dfd) == 0;
  saved = errno;
  ::close(dfd);
  errno = saved;
  return ok ? Status::OK() : Errno("cannot sync " + dir);
}

}  // namespace dfm
