#include "storage/data_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
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

void KeepOwnersFiles(const std::string& dir) {
  struct stat top;
  if (::geteuid() != 0 || ::lstat(dir.c_str(), &top) != 0 || !S_ISDIR(top.st_mode) ||
      top.st_uid == 0)
    return;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    struct stat st;
    const std::string path = it->path().string();
    if (::lstat(path.c_str(), &st) == 0 && (st.st_uid != top.st_uid || st.st_gid != top.st_gid))
      (void)::lchown(path.c_str(), top.st_uid, top.st_gid);
  }
}

}  // namespace dfm
