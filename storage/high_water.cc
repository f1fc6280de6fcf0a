#include "storage/high_water.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "storage/durable_file.h"

namespace dfm {

namespace {

constexpr char kMagic[] = "dfm-high-water";
constexpr char kVersion[] = "1";

Status Errno(const std::string& what) { return Status::IOError(what + ": " + std::strerror(errno)); }

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
  return ReplaceFileDurably(dir + "/" + kHighWaterFile,
                            std::string(kMagic) + " " + kVersion + "\n" + std::to_string(seq) + "\n");
}

}  // namespace dfm
