// AppendPlanner: the pure part of appending, shared by every EventLog
// implementation. It turns drafts into encoded, hash-chained records with
// sequence numbers and ids, and resolves idempotency keys.
//
// Not thread-safe: owned by the log's single writer. A plan is applied with
// Commit() once its records are durable, or dropped with Abandon(), which
// leaves the planner as it was before Plan().
#pragma once

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "events/event.h"
#include "storage/event_log.h"
#include "storage/sealer.h"
#include "util/clock.h"

namespace dfm {

struct PlannedRecord {
  uint64_t seq = 0;
  EventId id;
  std::string record;  // encoded bytes, ready to store
  std::string tenant, stream;
  std::string idempotency_key;  // encoded (tenant, system, key); empty for none
};

// Encoded idempotency index key: length-prefixed tenant, system and key.
std::string IdempotencyIndexKey(std::string_view tenant, std::string_view system,
                                std::string_view key);

class AppendPlanner {
 public:
  // `lookup` answers whether an idempotency index key is already stored:
  // OK with its event's seq and id, NotFound when it is not, any other
  // status when the index could not be read (the draft is then neither
  // taken for new nor for a duplicate: Plan refuses the call).
  using Lookup = std::function<Status(const std::string& index_key, uint64_t* seq, EventId* id)>;

  AppendPlanner(const Clock* clock, uint64_t last_seq, Sha256Digest head_hash)
      : clock_(clock), next_seq_(last_seq + 1), head_hash_(head_hash) {}

  // With a sealer, payloads are sealed as events/sealing.h says, with
  // keys found through `lookups` (committed records).
  void SetSealer(PayloadSealer* sealer, PayloadSealer::Lookups lookups) {
    sealer_ = sealer;
    seal_lookups_ = std::move(lookups);
  }

  // Plans one AppendAsync call. Fills `outcomes` (one per draft) and appends
  // to `records` the drafts that are new. Not OK only when a payload could
  // not be sealed (a key could not be made or read) or an idempotency key
  // could not be looked up: nothing of this call
  // is then planned (records and outcomes as they were), and what earlier
  // calls planned stays, so a group commit refuses that call alone.
  Status Plan(std::vector<EventDraft>& drafts, const Lookup& lookup,
              std::vector<PlannedRecord>* records, std::vector<AppendOutcome>* outcomes);

  // Marks everything planned so far as durable.
  void Commit();
  // Forgets everything planned since the last Commit().
  void Abandon();

 private:
  struct Pending {
    uint64_t seq;
    EventId id;
  };
  const Clock* clock_;
  PayloadSealer* sealer_ = nullptr;
  PayloadSealer::Lookups seal_lookups_;
  EventIdGenerator ids_;
  uint64_t next_seq_;
  Sha256Digest head_hash_;
  // Rollback point.
  uint64_t saved_next_seq_ = 0;
  Sha256Digest saved_head_hash_{};
  bool saved_ = false;
  // Plan()'s steps for each draft. Every idempotency key it puts in
  // in_flight_ is in one of the records it adds.
  Status PlanDrafts(std::vector<EventDraft>& drafts, const Lookup& lookup,
                    std::vector<PlannedRecord>* records, std::vector<AppendOutcome>* outcomes);
  // Idempotency keys planned but not yet committed.
  std::unordered_map<std::string, Pending> in_flight_;
};

}  // namespace dfm
