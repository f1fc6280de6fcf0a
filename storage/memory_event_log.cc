#include "storage/memory_event_log.h"

#include "events/codec.h"

namespace dfm {

MemoryEventLog::MemoryEventLog(const Clock* clock) : planner_(clock, 0, Sha256Digest{}) {}

void MemoryEventLog::SetKeyStore(std::shared_ptr<KeyStore> keys) {
  std::lock_guard<std::mutex> lk(mu_);
  keys_ = std::move(keys);
  sealer_ = std::make_unique<PayloadSealer>(keys_.get());
  // Called by Plan, under mu_.
  PayloadSealer::Lookups l;
  l.stream_key = [this](std::string_view tenant, std::string_view stream) -> uint64_t {
    auto it = streams_.find({std::string(tenant), std::string(stream)});
    if (it == streams_.end()) return 0;
    for (size_t i = 0; i < it->second.size() && i < 16; ++i)
      if (uint64_t no = PayloadSealer::KeyOfRecord(records_[it->second[i] - 1])) return no;
    return 0;
  };
  l.event_key = [this](const EventId& id) -> uint64_t {
    auto it = event_ids_.find(id);
    return it == event_ids_.end() ? 0 : PayloadSealer::KeyOfRecord(records_[it->second - 1]);
  };
  planner_.SetSealer(sealer_.get(), std::move(l));
}

Status MemoryEventLog::Unseal(Event* e) const {
  return sealer_ ? sealer_->Open(e) : Status::OK();
}

std::string MemoryEventLog::SubjectHashKey() const {
  return keys_ ? keys_->HashKey() : std::string();
}

void MemoryEventLog::FailWrites(bool fail) {
  std::lock_guard<std::mutex> lk(mu_);
  fail_writes_ = fail;
  fail_after_ = 0;
}

void MemoryEventLog::FailLookups(bool fail) {
  std::lock_guard<std::mutex> lk(mu_);
  fail_lookups_ = fail;
}

void MemoryEventLog::FailLookupsOf(std::string_view prefix, bool fail) {
  std::lock_guard<std::mutex> lk(mu_);
  failing_lookups_ = fail ? std::string(prefix) : std::string();
}

void MemoryEventLog::FailReads(bool fail) {
  std::lock_guard<std::mutex> lk(mu_);
  fail_reads_ = fail;
}

void MemoryEventLog::FailStreamReadsOf(std::string_view stream, bool fail) {
  std::lock_guard<std::mutex> lk(mu_);
  if (fail) {
    failing_streams_.emplace(stream);
  } else if (auto it = failing_streams_.find(stream); it != failing_streams_.end()) {
    failing_streams_.erase(it);
  }
}

uint64_t MemoryEventLog::StreamReads(std::string_view stream) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = stream_reads_.find(stream);
  return it == stream_reads_.end() ? 0 : it->second;
}

uint64_t MemoryEventLog::Lookups() const {
  std::lock_guard<std::mutex> lk(mu_);
  return lookups_;
}

void MemoryEventLog::FailStreamReads(bool fail) {
  std::lock_guard<std::mutex> lk(mu_);
  fail_stream_reads_ = fail;
}

void MemoryEventLog::FailStateReads(std::string_view consumer, bool fail) {
  std::lock_guard<std::mutex> lk(mu_);
  if (fail) {
    failing_state_.emplace(consumer);
  } else if (auto it = failing_state_.find(consumer); it != failing_state_.end()) {
    failing_state_.erase(it);
  }
}

void MemoryEventLog::FailWritesAfter(uint64_t appends) {
  std::lock_guard<std::mutex> lk(mu_);
  fail_after_ = appends;
  fail_writes_ = appends == 0;
}

uint64_t MemoryEventLog::AppendCalls() const {
  std::lock_guard<std::mutex> lk(mu_);
  return append_calls_;
}

uint64_t MemoryEventLog::ConsumerStateReads(std::string_view consumer) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = state_reads_.find(consumer);
  return it == state_reads_.end() ? 0 : it->second;
}

void MemoryEventLog::CorruptRecordForTest(uint64_t seq, std::string bytes) {
  std::lock_guard<std::mutex> lk(mu_);
  records_.at(seq - 1) = std::move(bytes);
}

void MemoryEventLog::StallWrites(bool stall) {
  std::lock_guard<std::mutex> lk(mu_);
  stall_writes_ = stall;
}

size_t MemoryEventLog::Stalled() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stalled_.size();
}

bool MemoryEventLog::ReleaseStalled() {
  std::pair<std::vector<EventDraft>, AppendCallback> next;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stalled_.empty()) return false;
    next = std::move(stalled_.front());
    stalled_.pop_front();
  }
  AppendNow(std::move(next.first), std::move(next.second));
  return true;
}

void MemoryEventLog::DropStalled() {
  std::deque<std::pair<std::vector<EventDraft>, AppendCallback>> dropped;
  std::lock_guard<std::mutex> lk(mu_);
  dropped.swap(stalled_);
}

void MemoryEventLog::AppendAsync(std::vector<EventDraft> drafts, AppendCallback cb) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    append_calls_++;
    if (stall_writes_ || !stalled_.empty()) {
      stalled_.emplace_back(std::move(drafts), std::move(cb));
      return;
    }
  }
  AppendNow(std::move(drafts), std::move(cb));
}

void MemoryEventLog::AppendNow(std::vector<EventDraft> drafts, AppendCallback cb) {
  std::vector<AppendOutcome> outcomes;
  std::unique_lock<std::mutex> lk(mu_);
  const bool fail = fail_writes_;
  if (fail_after_ > 0 && --fail_after_ == 0) fail_writes_ = true;  // from the next one on
  if (fail) {
    lk.unlock();
    cb(Status::Unavailable("event log cannot accept writes: injected failure"), {});
    return;
  }
  std::vector<PlannedRecord> records;
  auto lookup = [&](const std::string& key, uint64_t* seq, EventId* id) {
    if (fail_lookups_) return Status::Unavailable("lookups fail (test)");
    auto it = idempotency_.find(key);
    if (it == idempotency_.end()) return Status::NotFound("");
    *seq = it->second.first;
    *id = it->second.second;
    return Status::OK();
  };
  if (Status ps = planner_.Plan(drafts, lookup, &records, &outcomes); !ps.ok()) {
    planner_.Abandon();
    lk.unlock();
    cb(Status::Unavailable("event log cannot accept writes: " + ps.ToString()), {});
    return;
  }
  for (auto& r : records) {
    records_.push_back(std::move(r.record));
    streams_[{r.tenant, r.stream}].push_back(r.seq);
    event_ids_[r.id] = r.seq;
    if (!r.idempotency_key.empty()) idempotency_[r.idempotency_key] = {r.seq, r.id};
  }
  planner_.Commit();
  lk.unlock();
  cv_.notify_all();
  cb(Status::OK(), outcomes);
}

uint64_t MemoryEventLog::LastSequence() const {
  std::lock_guard<std::mutex> lk(mu_);
  return records_.size();
}

uint64_t MemoryEventLog::WaitForSequence(uint64_t seq, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait_for(lk, timeout, [&] { return records_.size() >= seq; });
  return records_.size();
}

Status MemoryEventLog::ScanRecords(
    uint64_t from, const std::function<bool(uint64_t, std::string_view)>& fn) const {
  std::vector<std::pair<uint64_t, std::string>> copy;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (uint64_t s = from == 0 ? 1 : from; s <= records_.size(); ++s)
      copy.emplace_back(s, records_[s - 1]);
  }
  for (const auto& [seq, rec] : copy)
    if (!fn(seq, rec)) break;
  return Status::OK();
}

Status MemoryEventLog::Read(uint64_t from, size_t max, std::vector<Event>* out) const {
  std::lock_guard<std::mutex> lk(mu_);
  if (fail_reads_) return Status::Unavailable("reads fail (test)");
  for (uint64_t s = from == 0 ? 1 : from; s <= records_.size() && max > 0; ++s, --max) {
    Event e;
    Status d = DecodeRecord(records_[s - 1], &e);
    if (!d.ok()) return d;
    if (Status u = Unseal(&e); !u.ok()) return u;
    out->push_back(std::move(e));
  }
  return Status::OK();
}

Status MemoryEventLog::ReadStream(std::string_view tenant, std::string_view stream,
                                  uint64_t from, size_t max, std::vector<Event>* out) const {
  std::lock_guard<std::mutex> lk(mu_);
  if (fail_stream_reads_) return Status::Unavailable("stream reads fail (test)");
  stream_reads_[std::string(stream)]++;
  if (failing_streams_.count(stream)) return Status::Corruption("the stream cannot be read (test)");
  auto it = streams_.find({std::string(tenant), std::string(stream)});
  if (it == streams_.end()) return Status::OK();
  for (uint64_t seq : it->second) {
    if (seq < from) continue;
    if (max-- == 0) break;
    Event e;
    Status d = DecodeRecord(records_[seq - 1], &e);
    if (!d.ok()) return d;
    if (Status u = Unseal(&e); !u.ok()) return u;
    out->push_back(std::move(e));
  }
  return Status::OK();
}

Status MemoryEventLog::LookupIdempotency(std::string_view tenant, std::string_view system,
                                         std::string_view key, uint64_t* seq) const {
  std::lock_guard<std::mutex> lk(mu_);
  ++lookups_;
  if (fail_lookups_) return Status::Unavailable("lookups fail (test)");
  if (!failing_lookups_.empty() && key.substr(0, failing_lookups_.size()) == failing_lookups_)
    return Status::Unavailable("lookups fail (test)");
  auto it = idempotency_.find(IdempotencyIndexKey(tenant, system, key));
  if (it == idempotency_.end()) return Status::NotFound("no such idempotency key");
  *seq = it->second.first;
  return Status::OK();
}

Status MemoryEventLog::LookupEventId(const EventId& id, uint64_t* seq) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = event_ids_.find(id);
  if (it == event_ids_.end()) return Status::NotFound("no such event id");
  *seq = it->second;
  return Status::OK();
}

Status MemoryEventLog::ReadCheckpoint(std::string_view consumer, uint64_t* seq) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = checkpoints_.find(consumer);
  *seq = it == checkpoints_.end() ? 0 : it->second;
  return Status::OK();
}

Status MemoryEventLog::CommitConsumerDurable(std::string_view consumer, uint64_t seq,
                                             const std::vector<StateOp>& ops) {
  return CommitConsumer(consumer, seq, ops);  // memory: as durable as anything here
}

Status MemoryEventLog::CommitConsumer(std::string_view consumer, uint64_t seq,
                                      const std::vector<StateOp>& ops) {
  std::lock_guard<std::mutex> lk(mu_);
  auto& st = state_[std::string(consumer)];
  for (const auto& op : ops) {
    if (op.erase) {
      st.erase(op.key);
    } else {
      st[op.key] = op.value;
    }
  }
  checkpoints_[std::string(consumer)] = seq;
  return Status::OK();
}

Status MemoryEventLog::GetConsumerState(std::string_view consumer, std::string_view key,
                                        std::string* value) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto reads = state_reads_.find(consumer);
  if (reads == state_reads_.end()) reads = state_reads_.emplace(std::string(consumer), 0).first;
  reads->second++;
  if (failing_state_.count(consumer) != 0) return Status::Unavailable("state reads fail (test)");
  auto it = state_.find(consumer);
  if (it == state_.end()) return Status::NotFound("no state");
  auto kv = it->second.find(key);
  if (kv == it->second.end()) return Status::NotFound("no state");
  *value = kv->second;
  return Status::OK();
}

Status MemoryEventLog::ScanConsumerState(
    std::string_view consumer, std::string_view prefix,
    const std::function<bool(std::string_view, std::string_view)>& fn) const {
  std::vector<std::pair<std::string, std::string>> copy;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (failing_state_.count(consumer) != 0) return Status::Unavailable("state reads fail (test)");
    auto it = state_.find(consumer);
    if (it == state_.end()) return Status::OK();
    for (auto kv = it->second.lower_bound(prefix); kv != it->second.end(); ++kv) {
      if (kv->first.compare(0, prefix.size(), prefix) != 0) break;
      copy.emplace_back(kv->first, kv->second);
    }
  }
  for (const auto& [k, v] : copy)
    if (!fn(k, v)) break;
  return Status::OK();
}

Status MemoryEventLog::DropConsumer(std::string_view consumer) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = state_.find(consumer);
  if (it != state_.end()) state_.erase(it);
  auto c = checkpoints_.find(consumer);
  if (c != checkpoints_.end()) checkpoints_.erase(c);
  return Status::OK();
}

Status MemoryEventLog::Health() const {
  std::lock_guard<std::mutex> lk(mu_);
  return fail_writes_ ? Status::Unavailable("injected failure") : Status::OK();
}

}  // namespace dfm
