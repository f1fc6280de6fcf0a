#include "storage/data_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace dfm {

namespace {

std::string Octal(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", mode);
  return buf;
}

}  // namespace

std::vector<LooseMode> LooseModes(const std::string& dir) {
  std::vector<LooseMode> out;
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) return out;
  auto check = [&](const std::string& path, const struct stat& s) {
    const unsigned mode = s.st_mode & 07777;
    if (!S_ISLNK(s.st_mode) && (mode & 077) != 0) out.push_back({path, mode});
  };
  check(dir, st);
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string path = it->path().string();
    if (::lstat(path.c_str(), &st) == 0) check(path, st);
  }
  return out;
}

std::string DescribeLooseModes(const std::string& dir, const std::vector<LooseMode>& loose) {
  if (loose.empty()) return "";
  std::string text;
  size_t files = loose.size();
  if (loose.front().path == dir) {
    text = dir + " is open to others (mode " + Octal(loose.front().mode) + ")";
    --files;
  } else {
    text = dir + " is private, but not everything in it";
  }
  if (files > 0) {
    const LooseMode& example = loose.back();
    text += (loose.front().path == dir ? ", and so " : ": ") + std::string(files == 1 ? "is " : "are ") +
            std::to_string(files) + (files == 1 ? " entry" : " entries") + " in it (e.g. " +
            std::filesystem::path(example.path).filename().string() + ", mode " +
            Octal(example.mode) + ")";
  }
  return text + ": it holds webhook bodies with personal data and OAuth grants; `chmod -R go-rwx " +
         dir + "`";
}

Status FindLogAt(const std::string& dir) {
  struct stat st;
  const std::string current = dir + "/CURRENT";
  if (::stat(current.c_str(), &st) == 0) return Status::OK();
  if (errno == ENOENT || errno == ENOTDIR)
    return Status::NotFound("no event log at " + dir + " (is -c the service's configuration?)");
  return Status::IOError("cannot read " + dir + ": " + std::strerror(errno));
}

namespace {

// Gives the root-owned entries under the open directory `fd` to uid:gid,
// depth first; never follows a symbolic link (every step is relative to a
// directory opened O_NOFOLLOW, and fchownat does not follow the last), so
// a link planted in the tree cannot hand root's files out. Closes `fd`.
void GiveRootsEntries(int fd, uid_t uid, gid_t gid, int depth) {
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return;
  }
  while (dirent* e = ::readdir(d)) {
    const char* name = e->d_name;
    if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
    struct stat st;
    if (::fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (st.st_uid == 0) (void)::fchownat(fd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
    if (S_ISDIR(st.st_mode) && depth < 8) {
      const int sub = ::openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) GiveRootsEntries(sub, uid, gid, depth + 1);
    }
  }
  ::closedir(d);  // closes fd
}

}  // namespace

void KeepOwnersFiles(const std::string& dir) {
  if (::geteuid() != 0) return;
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  struct stat top;
  if (::fstat(fd, &top) != 0 || top.st_uid == 0) {
    ::close(fd);
    return;
  }
  GiveRootsEntries(fd, top.st_uid, top.st_gid, 0);
}

}  // namespace dfm
