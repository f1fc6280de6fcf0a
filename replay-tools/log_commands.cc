#include "replay-tools/log_commands.h"

#include <filesystem>
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
  const uint64_t mark = log->HighWaterAtOpen();
  const bool short_of_mark = r.ok && log->LastSequence() < mark;
  if (json) {
    JsonObject o;
    o.Bool("ok", r.ok && !short_of_mark)
        .UInt("events", r.count)
        .UInt("first_seq", r.first_seq)
        .UInt("last_seq", r.last_seq)
        .Str("head_hash", head)
        .UInt("high_water", mark);
    if (!r.ok) o.UInt("first_bad_seq", r.first_bad_seq).Str("problem", r.problem);
    if (short_of_mark) o.Str("problem", "the log ends before its high-water mark");
    out << o.Finish() << "\n";
  } else if (short_of_mark) {
    out << "log SHORT: it ends at seq " << log->LastSequence() << ", but events up to " << mark
        << " were acknowledged (high-water mark): they are lost (hash chain intact up to there; "
           "`dfm log recover` records the loss)\n";
  } else if (r.ok) {
    out << "hash chain intact: " << r.count << " events, seq " << r.first_seq << ".." << r.last_seq
        << ", head " << head << "\n";
  } else {
    out << "hash chain BROKEN at seq " << r.first_bad_seq << ": " << r.problem << " (" << r.count
        << " events verified before it)\n";
  }
  return r.ok && !short_of_mark ? 0 : 1;
}

int RunLogRecover(const std::string& data_dir, std::ostream& out, std::ostream& err) {
  RocksDbLogOptions o;
  o.path = data_dir;
  if (!std::filesystem::exists(data_dir + "/CURRENT")) {
    err << "dfm log recover: no event log at " << data_dir << "\n";
    return 2;
  }
  std::unique_ptr<RocksDbEventLog> log;
  Status as_is = RocksDbEventLog::Open(o, &log);
  if (as_is.ok()) {
    out << "nothing to recover: the log in " << data_dir << " holds every acknowledged event (up to seq "
        << log->LastSequence() << ")\n";
    return 0;
  }
  if (!as_is.IsCorruption()) {
    err << "dfm log recover: " << as_is.ToString()
        << (as_is.message().find("lock") != std::string::npos ? " (is the service running? stop it first)"
                                                               : "")
        << "\n";
    return 2;
  }
  o.accept_loss = true;
  Status s = RocksDbEventLog::Open(o, &log);
  if (!s.ok()) {
    err << "dfm log recover: " << s.ToString() << "\n";
    return 2;
  }
  const uint64_t head = log->LastSequence();
  const auto [lost_from, lost_to] = log->LostOnOpen();
  EventDraft d;
  d.tenant = "default";
  d.stream = kLogStream;
  d.type = std::string(kLogRecoveredType);
  JsonObject p;
  p.UInt("head", head).UInt("high_water", log->HighWaterAtOpen());
  if (lost_to != 0) p.UInt("lost_from", lost_from).UInt("lost_to", lost_to);
  d.payload = p.Str("cause", as_is.message()).Finish();
  AppendOutcome appended;
  s = log->Append(std::move(d), &appended);
  if (!s.ok()) {
    err << "dfm log recover: the log opened but the record of its loss could not be written: "
        << s.ToString() << "\n";
    return 2;
  }
  out << "recovered: the log in " << data_dir << " now ends at seq " << head;
  if (lost_to != 0) {
    out << "; events " << lost_from << ".." << lost_to << " were acknowledged and are lost";
  } else {
    out << "; what followed the damage is lost (no high-water mark says how much)";
  }
  out << ". Recorded as log.recovered (seq " << appended.seq << ").\n";
  return 0;
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
