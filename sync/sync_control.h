// SyncControl: an operator's pauses and concurrency limits on the pushes to
// vendors (`dfm sync pause|resume`, POST /v1/admin/sync/{pause,resume};
// docs/operations.md, "Stop all sync operations").
//
// Contract:
// - While a (tenant, system) is paused its connector starts no push: what it
//   holds waits, in order, and what comes meanwhile queues behind it;
//   requests already in flight finish (a push whose push.sending was being
//   recorded is not yet in flight: it waits). Webhooks are still taken, recorded
//   and decided: only the pushes wait. Opt-out pushes wait too (the send
//   gate still refuses texts to the people who opted out).
// - A resume lifts every pause inside its scope (a resume of tenant T lifts
//   T's pauses of any system, not a pause of every tenant). With a
//   concurrency, the connectors inside its scope start at most that many
//   pushes at once until a resume of that scope without one.
// - Both are events (`sync.paused`, `sync.resumed` on the stream
//   "sync_control" of the scope's tenant, "default" for every tenant), so
//   they are audited and survive restarts: the state is their fold, in the
//   log's order.
//
// Pure: no actor inside. Thread-safe: connectors ask from their threads,
// the console changes it from its own.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "util/status.h"

namespace dfm {

inline constexpr std::string_view kSyncControlStream = "sync_control";
inline constexpr std::string_view kSyncPaused = "sync.paused";
inline constexpr std::string_view kSyncResumed = "sync.resumed";
inline constexpr std::string_view kEverything = "*";

// What a pause or resume covers: a tenant or "*", a system or "*".
struct SyncScope {
  std::string tenant = std::string(kEverything);
  std::string system = std::string(kEverything);
  bool Covers(const std::string& t, const std::string& s) const;
  bool Within(const SyncScope& outer) const;  // every (t, s) this covers, `outer` covers
  bool operator==(const SyncScope& o) const { return tenant == o.tenant && system == o.system; }
};

struct SyncPause {
  SyncScope scope;
  int64_t since_us = 0;
  std::string by;      // "admin-token", "key:<id>", "cli"
  std::string reason;  // the operator's words, at most 200 characters
};

struct SyncLimit {
  SyncScope scope;
  int concurrency = 0;
  int64_t since_us = 0;
  std::string by;
};

// POST /v1/admin/sync/pause {"tenant"?, "system"?, "reason"?} and
// /resume {"tenant"?, "system"?, "concurrency"?}: InvalidArgument for a body
// shaped otherwise (concurrency 1-1000; reason at most 200 characters).
struct SyncControlRequest {
  SyncScope scope;
  std::string reason;
  int concurrency = 0;  // resume only; 0: no limit
};
Status DecodeSyncControlRequest(std::string_view body, bool resume, SyncControlRequest* out);

// The events; `at_us` is when the operator asked (the pause's "since": the
// fold reads it from the payload, so a rebuild gives the same times).
EventDraft SyncPausedDraft(const SyncControlRequest& r, const std::string& by, const std::string& request_id,
                           int64_t at_us);
EventDraft SyncResumedDraft(const SyncControlRequest& r, const std::string& by, const std::string& request_id,
                            int64_t at_us);

class SyncControl {
 public:
  // Folds one event (others are ignored); false for a malformed one.
  bool Apply(const Event& e);
  // The events of every tenant's "sync_control" stream, folded in the
  // log's order (by sequence number, whatever order they come in).
  void Fold(std::vector<Event> events);

  // The oldest pause covering (tenant, system), if any.
  std::optional<SyncPause> PausedBy(const std::string& tenant, const std::string& system) const;
  // The lowest concurrency limit covering (tenant, system); 0: none.
  int Limit(const std::string& tenant, const std::string& system) const;

  std::vector<SyncPause> Pauses() const;
  std::vector<SyncLimit> Limits() const;
  // {"paused": bool, "pauses": [...], "limits": [...]}; times as UTC text.
  // With `tenant` other than kEverything: only what covers that tenant (its
  // own, and those of every tenant), as one tenant's key may see.
  std::string Json(std::string_view tenant = kEverything) const;

 private:
  mutable std::mutex mu_;
  std::vector<SyncPause> pauses_;
  std::vector<SyncLimit> limits_;
};

}  // namespace dfm
