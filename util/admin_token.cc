#include "util/admin_token.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/crypto.h"

namespace dfm {

namespace {

// Writes a fresh random secret to <data_dir>/<name> (mode 0600) through a
// temporary file, so a reader sees the old one or the new one whole.
Status WriteSecret(const std::string& data_dir, const std::string& name, std::string* token) {
  uint8_t raw[32];
  RandomBytes(raw, sizeof(raw));
  std::string t = HexEncode(std::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)));
  std::string path = data_dir + "/" + name;
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError("cannot write " + tmp + ": " + std::strerror(errno));
  std::string line = t + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ok = ::fchmod(fd, 0600) == 0 && ok;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0)
    return Status::IOError("cannot write " + path + ": " + std::strerror(errno));
  *token = std::move(t);
  return Status::OK();
}

Status ReadSecret(const std::string& data_dir, const std::string& name, std::string* token) {
  std::ifstream in(data_dir + "/" + name);
  if (!in) return Status::NotFound(data_dir + "/" + name + " does not exist");
  std::string t;
  in >> t;
  if (t.size() != 64) return Status::Corruption(data_dir + "/" + name + " is not a token");
  *token = std::move(t);
  return Status::OK();
}

}  // namespace

Status WriteAdminToken(const std::string& data_dir, std::string* token) {
  return WriteSecret(data_dir, kAdminTokenFile, token);
}

Status ReadAdminToken(const std::string& data_dir, std::string* token) {
  return ReadSecret(data_dir, kAdminTokenFile, token);
}

Status LoadOrCreateSecret(const std::string& data_dir, const std::string& name,
                          std::string* secret) {
  Status s = ReadSecret(data_dir, name, secret);
  if (s.IsNotFound()) return WriteSecret(data_dir, name, secret);
  return s;
}

}  // namespace dfm
