#include "replay-tools/log_commands.h"

#include <ostream>

#include "events/describe.h"
#include "replay-tools/tool_log.h"
#include "storage/rocksdb_event_log.h"
#include "util/json.h"

namespace dfm {

int RunLogVerify(const std::string& data_dir, bool json, std::ostream& out, std::ostream& err) {
  std::unique_ptr<RocksDbEventLog> log;
  Status s = OpenToolLog(data_dir, &log);
  if (!s.ok()) {
    err << "dfm log verify: " << s.ToString() << "\n";
    return 2;
  }
  ChainReport r = log->VerifyChain();
  std::string head = HexEncode(r.head_hash);
  if (json) {
    JsonObject o;
    o.Bool("ok", r.ok)
        .UInt("events", r.count)
        .UInt("first_seq", r.first_seq)
        .UInt("last_seq", r.last_seq)
        .Str("head_hash", head);
    if (!r.ok) o.UInt("first_bad_seq", r.first_bad_seq).Str("problem", r.problem);
    out << o.Finish() << "\n";
  } else if (r.ok) {
    out << "hash chain intact: " << r.count << " events, seq " << r.first_seq << ".." << r.last_seq
        << ", head " << head << "\n";
  } else {
    out << "hash chain BROKEN at seq " << r.first_bad_seq << ": " << r.problem << " (" << r.count
        << " events verified before it)\n";
  }
  return r.ok ? 0 : 1;
}

int RunLogDump(const std::string& data_dir, uint64_t from, uint64_t limit, bool with_body,
               std::ostream& out, std::ostream& err) {
  std::unique_ptr<RocksDbEventLog> log;
  Status s = OpenToolLog(data_dir, &log);
  if (!s.ok()) {
    err << "dfm log dump: " << s.ToString() << "\n";
    return 2;
  }
  uint64_t next = from == 0 ? 1 : from;
  uint64_t printed = 0;
  std::vector<Event> batch;
  while (printed < limit) {
    batch.clear();
    s = log->Read(next, 1024, &batch);
    if (!s.ok()) {
      err << "dfm log dump: " << s.ToString() << "\n";
      return 2;
    }
    if (batch.empty()) break;
    for (const auto& e : batch) {
      if (printed++ >= limit) break;
      out << DescribeEventJson(e, with_body) << "\n";
      next = e.seq + 1;
    }
  }
  return 0;
}

}  // namespace dfm
