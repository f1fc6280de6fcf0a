#include "storage/append_planner.h"

#include "events/codec.h"
#include "util/coding.h"

namespace dfm {

std::string IdempotencyIndexKey(std::string_view tenant, std::string_view system,
                                std::string_view key) {
  std::string k;
  k.reserve(tenant.size() + system.size() + key.size() + 6);
  PutLengthPrefixed(&k, tenant);
  PutLengthPrefixed(&k, system);
  k.append(key.data(), key.size());
  return k;
}

Status AppendPlanner::Plan(std::vector<EventDraft>& drafts, const Lookup& lookup,
                           std::vector<PlannedRecord>* records,
                           std::vector<AppendOutcome>* outcomes) {
  if (!saved_) {
    saved_ = true;
    saved_next_seq_ = next_seq_;
    saved_head_hash_ = head_hash_;
  }
  // This call's own rollback point: a refused call leaves the group's
  // other calls planned.
  const uint64_t call_seq = next_seq_;
  const Sha256Digest call_hash = head_hash_;
  const size_t call_records = records->size(), call_outcomes = outcomes->size();
  if (sealer_) sealer_->BeginCall();
  Status s = PlanDrafts(drafts, lookup, records, outcomes);
  if (s.ok()) return s;
  next_seq_ = call_seq;
  head_hash_ = call_hash;
  // The call's records hold the idempotency keys it put in flight.
  for (size_t i = call_records; i < records->size(); ++i)
    if (!(*records)[i].idempotency_key.empty()) in_flight_.erase((*records)[i].idempotency_key);
  records->resize(call_records);
  outcomes->resize(call_outcomes);
  if (sealer_) sealer_->AbandonCall();
  return s;
}

Status AppendPlanner::PlanDrafts(std::vector<EventDraft>& drafts, const Lookup& lookup,
                                 std::vector<PlannedRecord>* records,
                                 std::vector<AppendOutcome>* outcomes) {
  const int64_t now_us = clock_->NowMicros();
  for (auto& d : drafts) {
    AppendOutcome out;
    std::string index_key;
    if (!d.idempotency_key.empty()) {
      index_key = IdempotencyIndexKey(d.tenant, d.idempotency_system, d.idempotency_key);
      auto it = in_flight_.find(index_key);
      if (it != in_flight_.end()) {
        out.seq = it->second.seq;
        out.id = it->second.id;
        out.duplicate = true;
        outcomes->push_back(out);
        continue;
      }
      Status found = lookup(index_key, &out.seq, &out.id);
      if (found.ok()) {
        out.duplicate = true;
        outcomes->push_back(out);
        continue;
      }
      if (!found.IsNotFound()) return found;
    }
    Event e;
    e.seq = next_seq_++;
    e.id = d.id.IsZero() ? ids_.Next(now_us / 1000) : d.id;
    e.recorded_at_us = now_us;
    e.source_time_us = d.source_time_us;
    e.tenant = std::move(d.tenant);
    e.stream = std::move(d.stream);
    e.type = std::move(d.type);
    e.schema_version = d.schema_version;
    e.causation_id = d.causation_id;
    e.correlation_id = d.correlation_id.IsZero() ? e.id : d.correlation_id;
    e.prev_hash = head_hash_;
    e.payload = std::move(d.payload);
    if (sealer_) {
      Status s = sealer_->Seal(&e, seal_lookups_);
      if (!s.ok()) return s;
    }

    PlannedRecord r;
    r.seq = e.seq;
    r.id = e.id;
    r.record = EncodeRecord(e);
    head_hash_ = RecordHash(r.record);
    r.tenant = std::move(e.tenant);
    r.stream = std::move(e.stream);
    if (!index_key.empty()) {
      in_flight_.emplace(index_key, Pending{e.seq, e.id});
      r.idempotency_key = std::move(index_key);
    }
    out.seq = e.seq;
    out.id = e.id;
    outcomes->push_back(out);
    records->push_back(std::move(r));
  }
  return Status::OK();
}

void AppendPlanner::Commit() {
  in_flight_.clear();
  saved_ = false;
  if (sealer_) sealer_->Commit();
}

void AppendPlanner::Abandon() {
  if (saved_) {
    next_seq_ = saved_next_seq_;
    head_hash_ = saved_head_hash_;
  }
  in_flight_.clear();
  saved_ = false;
  if (sealer_) sealer_->Abandon();
}

}  // namespace dfm
