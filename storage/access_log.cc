#include "storage/access_log.h"

#include <fcntl.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "storage/durable_file.h"
#include "util/clock.h"
#include "util/json.h"

namespace dfm {
namespace {

constexpr char kHeader[] = "dfm-access 1\n";
constexpr char kFile[] = "access.log";

Status Errno(const std::string& what) { return Status::IOError(what + ": " + std::strerror(errno)); }

std::string PathOf(const std::string& dir, int n) {
  return dir + "/" + kFile + (n == 0 ? std::string() : "." + std::to_string(n));
}

std::string Text(simdjson::dom::object& o, const char* key) {
  std::string_view v;
  return o[key].get(v) == simdjson::SUCCESS ? std::string(v) : std::string();
}

}  // namespace

std::string EncodeAccessRecord(const AccessRecord& r) {
  const std::string json = JsonObject()
                               .Str("at", FormatIso8601Millis(r.at_us))
                               .Int("at_us", r.at_us)
                               .Str("credential", r.credential)
                               .Str("key_id", r.key_id)
                               .Str("key_name", r.key_name)
                               .Str("role", r.role)
                               .Str("tenant", r.tenant)
                               .Str("client", r.client)
                               .Str("method", r.method)
                               .Str("route", r.route)
                               .Int("status", r.status)
                               .Str("request_id", r.request_id)
                               .Finish();
  return CrcLine(json);
}

Status DecodeAccessRecord(const std::string& line, AccessRecord* out) {
  std::string_view json;
  if (Status s = SplitCrcLine(line, &json); !s.ok()) return Status::Corruption("access record: " + s.message());
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  int64_t at = 0, status = 0;
  if (parser.parse(json.data(), json.size()).get(o) != simdjson::SUCCESS ||
      o["at_us"].get(at) != simdjson::SUCCESS || o["status"].get(status) != simdjson::SUCCESS)
    return Status::Corruption("access record is not its JSON");
  out->at_us = at;
  out->status = static_cast<int>(status);
  out->credential = Text(o, "credential");
  out->key_id = Text(o, "key_id");
  out->key_name = Text(o, "key_name");
  out->role = Text(o, "role");
  out->tenant = Text(o, "tenant");
  out->client = Text(o, "client");
  out->method = Text(o, "method");
  out->route = Text(o, "route");
  out->request_id = Text(o, "request_id");
  return Status::OK();
}

AccessLog::AccessLog(std::string data_dir, uint64_t max_bytes, int keep)
    : dir_(std::move(data_dir)), max_bytes_(max_bytes), keep_(keep) {}

AccessLog::~AccessLog() {
  if (fd_ >= 0) ::close(fd_);
}

Status AccessLog::OpenLocked() {
  const std::string path = PathOf(dir_, 0);
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) return Errno("opening " + path);
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return Errno("reading the size of " + path);
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ == 0) {
    if (!WriteAllTo(fd_, kHeader)) return Errno("writing " + path);
    size_ = sizeof(kHeader) - 1;
  }
  return Status::OK();
}

Status AccessLog::RotateLocked() {
  ::close(fd_);
  fd_ = -1;
  ::unlink(PathOf(dir_, keep_).c_str());
  for (int n = keep_ - 1; n >= 0; --n) {
    if (::rename(PathOf(dir_, n).c_str(), PathOf(dir_, n + 1).c_str()) != 0 && errno != ENOENT)
      return Errno("rotating " + PathOf(dir_, n));
  }
  return OpenLocked();
}

Status AccessLog::Record(const AccessRecord& r) {
  const std::string line = EncodeAccessRecord(r);
  std::lock_guard<std::mutex> lk(mu_);
  Status s = fd_ < 0 ? OpenLocked() : Status::OK();
  if (s.ok() && size_ + line.size() > max_bytes_ && size_ > sizeof(kHeader) - 1) s = RotateLocked();
  if (!s.ok()) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return s;
  }
  if (!WriteAllTo(fd_, line)) return Errno("writing " + PathOf(dir_, 0));
  size_ += line.size();
  return Status::OK();
}

Status ReadAccessLog(const std::string& data_dir, const std::function<bool(const AccessRecord&)>& fn,
                     uint64_t* damaged) {
  uint64_t bad = 0;
  int oldest = 0;
  while (::access(PathOf(data_dir, oldest + 1).c_str(), F_OK) == 0) ++oldest;
  for (int n = oldest; n >= 0; --n) {
    std::ifstream in(PathOf(data_dir, n), std::ios::binary);
    if (!in) continue;
    std::string line;
    if (!std::getline(in, line)) continue;
    if (line + "\n" != kHeader)
      return Status::Corruption(PathOf(data_dir, n) + " is not an access log of version 1");
    while (std::getline(in, line)) {
      AccessRecord r;
      const bool whole = !in.eof();
      if (!whole || !DecodeAccessRecord(line + "\n", &r).ok()) {
        ++bad;
        continue;
      }
      if (!fn(r)) {
        if (damaged) *damaged = bad;
        return Status::OK();
      }
    }
  }
  if (damaged) *damaged = bad;
  return Status::OK();
}

}  // namespace dfm
