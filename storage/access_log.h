// The access log: every call of the keyed API and the admin API, who made
// it and how it was answered (docs/operations.md, "Review access logs"),
// read with `dfm audit access`.
//
// Files `<data dir>/access.log` (current) and `access.log.1` .. `.<keep>`
// (older, .1 the newest of them), mode 0600. When the current file passes
// `max_bytes` it becomes .1 (the others move up one; the oldest goes) and a
// new one starts. Each file:
//
//   file     := header *record
//   header   := "dfm-access" SP version LF
//   version  := "1"
//   record   := crc SP json LF
//   crc      := 8HEXDIG          ; CRC-32C of `json`, lower case
//   json     := {"at": iso8601 UTC, "at_us": int, "credential": str,
//                "key_id": str, "key_name": str, "role": str,
//                "tenant": str, "client": str, "method": str,
//                "route": str, "status": int, "request_id": str}
//
// `credential` is "key:<id>", "admin-token", "session:<key id>" or "none"
// (no valid credential: `key_id` then holds the id a presented token names,
// if any). `route` is the route's pattern ("/v1/admin/keys/{id}"), never
// the path or query asked: those can carry phone numbers. No secret, body
// or personal data is written.
//
// Lines are written whole with one write(2) each and not synced: a crash of
// the process loses none, a power loss may lose the last seconds'. A line
// cut short or with a crc that does not match is skipped by the reader and
// counted. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "util/status.h"

namespace dfm {

struct AccessRecord {
  int64_t at_us = 0;
  std::string credential = "none";
  std::string key_id, key_name, role, tenant;
  std::string client;  // the client's address (X-Forwarded-For from a trusted proxy)
  std::string method, route;
  int status = 0;
  std::string request_id;
};

std::string EncodeAccessRecord(const AccessRecord& r);  // one line, LF included
Status DecodeAccessRecord(const std::string& line, AccessRecord* out);

class AccessLog {
 public:
  AccessLog(std::string data_dir, uint64_t max_bytes = 64ull << 20, int keep = 8);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Appends one record; an error is returned (the caller logs it) and the
  // next call tries again.
  Status Record(const AccessRecord& r);

 private:
  Status OpenLocked();
  Status RotateLocked();

  const std::string dir_;
  const uint64_t max_bytes_;
  const int keep_;
  std::mutex mu_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// The records of `data_dir`'s access log, oldest first, each given to
// `fn` (false stops). *damaged (may be null) counts the lines skipped.
Status ReadAccessLog(const std::string& data_dir, const std::function<bool(const AccessRecord&)>& fn,
                     uint64_t* damaged = nullptr);

}  // namespace dfm
