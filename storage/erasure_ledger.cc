#include "storage/erasure_ledger.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <simdjson.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "storage/durable_file.h"
#include "util/json.h"

namespace dfm {
namespace {

constexpr char kHeader[] = "dfm-erasures 1\n";

Status Errno(const std::string& what) { return Status::IOError(what + ": " + std::strerror(errno)); }

}  // namespace

std::string ErasureLedgerPath(const std::string& data_dir) {
  return data_dir + "/" + kErasureLedgerFile;
}

std::string EncodeLedgerEntry(const LedgerEntry& e) {
  const std::string json = JsonObject()
                               .Str("tenant", e.tenant)
                               .Str("contact_id", e.contact_id)
                               .UInt("erased_seq", e.erased_seq)
                               .Raw("erasure", e.erasure)
                               .Finish();
  return CrcLine(json);
}

Status DecodeLedgerEntry(const std::string& line, LedgerEntry* out) {
  std::string_view json;
  if (Status s = SplitCrcLine(line, &json); !s.ok()) return Status::Corruption("ledger: " + s.message());
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  std::string_view tenant, contact;
  simdjson::dom::element erasure;
  if (parser.parse(json.data(), json.size()).get(o) != simdjson::SUCCESS ||
      o["tenant"].get(tenant) != simdjson::SUCCESS ||
      o["contact_id"].get(contact) != simdjson::SUCCESS ||
      o["erased_seq"].get(out->erased_seq) != simdjson::SUCCESS ||
      o["erasure"].get(erasure) != simdjson::SUCCESS || !erasure.is_object())
    return Status::Corruption("ledger line is not an erasure entry");
  out->tenant = std::string(tenant);
  out->contact_id = std::string(contact);
  out->erasure = simdjson::minify(erasure);
  return Status::OK();
}

Status ReadErasureLedger(const std::string& path, std::vector<LedgerEntry>* out) {
  out->clear();
  std::ifstream in(path, std::ios::binary);
  if (!in) return errno == ENOENT ? Status::OK() : Errno("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const std::string header = kHeader;
  if (text.size() < header.size() && header.compare(0, text.size(), text) == 0)
    return Status::OK();  // made, and cut short before its first entry
  if (text.compare(0, header.size(), header) != 0)
    return Status::Corruption(path + " is not an erasure ledger of version 1");
  size_t at = sizeof(kHeader) - 1;
  while (at < text.size()) {
    const size_t eol = text.find('\n', at);
    const bool last = eol == std::string::npos || eol + 1 == text.size();
    const std::string line = text.substr(at, eol == std::string::npos ? eol : eol + 1 - at);
    LedgerEntry e;
    Status s = DecodeLedgerEntry(line, &e);
    if (!s.ok()) {
      if (last) break;  // cut short by a crash: its event is in the log
      return Status::Corruption(path + ": " + s.message() + " before its end");
    }
    out->push_back(std::move(e));
    if (eol == std::string::npos) break;
    at = eol + 1;
  }
  return Status::OK();
}

Status AddToErasureLedger(const std::string& path, const std::vector<LedgerEntry>& entries,
                          size_t* added) {
  if (added) *added = 0;
  std::vector<LedgerEntry> held;
  Status s = ReadErasureLedger(path, &held);
  if (!s.ok()) return s;
  std::set<std::pair<std::string, std::string>> have;
  for (const LedgerEntry& e : held) have.emplace(e.tenant, e.contact_id);
  std::string text;
  size_t n = 0;
  for (const LedgerEntry& e : entries) {
    if (!have.emplace(e.tenant, e.contact_id).second) continue;
    text += EncodeLedgerEntry(e);
    ++n;
  }
  if (n == 0) return Status::OK();
  const bool fresh = ::access(path.c_str(), F_OK) != 0;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot open " + path);
  struct stat st;
  const off_t size = ::fstat(fd, &st) == 0 ? st.st_size : 0;
  // A line cut short by a crash ends the file: cut it off (its event is
  // in the log, and this or a later entry carries it). The header is a
  // line too: a first write cut short within it (ReadErasureLedger reads
  // that as no entries) is written again whole.
  off_t end = size;
  char c = '\n';
  while (end > 0 && ::pread(fd, &c, 1, end - 1) == 1 && c != '\n') --end;
  if (end < static_cast<off_t>(sizeof(kHeader) - 1)) {
    text.insert(0, kHeader);
    end = 0;
  }
  if (end < size && ::ftruncate(fd, end) != 0) {
    ::close(fd);
    return Errno("cannot cut the torn end of " + path);
  }
  if (::lseek(fd, end, SEEK_SET) < 0) {
    ::close(fd);
    return Errno("cannot seek in " + path);
  }
  const bool ok = WriteAllTo(fd, text) && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (!ok) return Errno("cannot write " + path);
  if (fresh) {
    const size_t slash = path.rfind('/');
    s = SyncDirectory(slash == std::string::npos ? "." : path.substr(0, slash));
    if (!s.ok()) return s;
  }
  if (added) *added = n;
  return Status::OK();
}

}  // namespace dfm
