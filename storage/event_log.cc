#include "storage/event_log.h"

#include <future>

#include "events/codec.h"

namespace dfm {

Status EventLog::Append(std::vector<EventDraft> drafts, std::vector<AppendOutcome>* outcomes) {
  std::promise<Status> done;
  auto fut = done.get_future();
  AppendAsync(std::move(drafts), [&](const Status& s, const std::vector<AppendOutcome>& o) {
    if (outcomes) *outcomes = o;
    done.set_value(s);
  });
  return fut.get();
}

Status EventLog::Append(EventDraft draft, AppendOutcome* outcome) {
  std::vector<EventDraft> drafts;
  drafts.push_back(std::move(draft));
  std::vector<AppendOutcome> outcomes;
  Status s = Append(std::move(drafts), &outcomes);
  if (s.ok() && outcome && !outcomes.empty()) *outcome = outcomes[0];
  return s;
}

Status EventLog::BulkCommitConsumer(std::string_view consumer, uint64_t seq,
                                    const StateEntryRefs& entries) {
  std::vector<StateOp> ops(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    ops[i].key = std::string(entries[i].key);
    ops[i].value = std::string(entries[i].value);
    ops[i].erase = entries[i].erase;
  }
  return CommitConsumer(consumer, seq, ops);
}

Status EventLog::ScanStream(std::string_view tenant, std::string_view stream,
                            const std::function<bool(const Event&)>& fn, uint64_t from) const {
  constexpr size_t kBatch = 1024;
  for (;;) {
    std::vector<Event> batch;
    Status s = ReadStream(tenant, stream, from, kBatch, &batch);
    if (!s.ok()) return s;
    for (const auto& e : batch)
      if (!fn(e)) return Status::OK();
    if (batch.size() < kBatch) return Status::OK();
    from = batch.back().seq + 1;
  }
}

Status EventLog::ReadWholeStream(std::string_view tenant, std::string_view stream,
                                 std::vector<Event>* out) const {
  return ScanStream(tenant, stream, [out](const Event& e) {
    out->push_back(e);
    return true;
  });
}

Status EventLog::ReadUnopened(uint64_t seq, Event* e) const {
  Status decoded = Status::NotFound("no event " + std::to_string(seq));
  Status s = ScanRecords(seq, [&](uint64_t at, std::string_view record) {
    if (at == seq) decoded = DecodeRecord(record, e);
    return false;
  });
  return s.ok() ? decoded : s;
}

ChainReport EventLog::VerifyChain(const std::function<void(const Event&)>& visit) const {
  ChainReport r;
  Sha256Digest prev{};
  uint64_t expect = 1;
  Status s = ScanRecords(1, [&](uint64_t key_seq, std::string_view record) {
    Event e;
    Status d = DecodeRecord(record, &e);
    auto fail = [&](std::string why) {
      r.ok = false;
      r.first_bad_seq = key_seq;
      r.problem = std::move(why);
      return false;
    };
    if (!d.ok()) return fail("record does not decode: " + d.ToString());
    if (e.seq != key_seq) return fail("record says seq " + std::to_string(e.seq));
    if (key_seq != expect) return fail("gap: expected seq " + std::to_string(expect));
    if (e.prev_hash != prev) return fail("prev_hash is not the hash of the previous record");
    prev = RecordHash(record);
    if (r.count == 0) r.first_seq = key_seq;
    r.last_seq = key_seq;
    ++r.count;
    ++expect;
    if (visit) {
      (void)Unseal(&e);  // the chain is checked either way; the visit sees it as it is
      visit(e);
    }
    return true;
  });
  if (!s.ok() && r.ok) {
    r.ok = false;
    r.first_bad_seq = expect;
    r.problem = "read failed: " + s.ToString();
  }
  r.head_hash = prev;
  return r;
}

}  // namespace dfm
