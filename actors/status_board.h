// The sync runtime's state as GET /v1/health shows it (docs/http-api.md).
//
// Contract:
// - The router and each connector actor publish their own counters here
//   after every message that changes them; any thread may read them at any
//   time without waiting on an actor. Each value is read on its own
//   (relaxed atomics): a reader may see the router's position and its
//   contact count from moments a message apart, never a torn value.
// - The set of connectors is fixed before the actors start; entries are
//   never added or removed while the board is shared.
// - SyncHealthJson is pure: it renders what the board holds against the
//   log's head and the clock it is given.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dfm {

struct RouterStatus {
  // Every webhook up to `decided` has been decided and its outcome appended
  // (the router's checkpoint trails it). It moves back when a contact actor
  // fails and the router reads again from its checkpoint.
  std::atomic<uint64_t> decided{0};
  std::atomic<uint64_t> read{0};                // last log seq the router has read
  std::atomic<uint64_t> webhooks_in_flight{0};  // read, not yet decided
  std::atomic<uint64_t> contacts_live{0};       // contact actors in memory
  std::atomic<uint64_t> facts_routed{0};
  std::atomic<uint64_t> quarantined{0};
};

struct ConnectorStatus {
  std::string tenant, system;          // set before the board is shared
  std::atomic<uint64_t> held{0};       // pushes it holds (waiting or in flight)
  std::atomic<uint64_t> in_flight{0};  // requests to the vendor now
  std::atomic<uint64_t> attempts{0}, succeeded{0}, dead_lettered{0};
  std::atomic<bool> breaker_open{false};  // the circuit breaker tripped...
  std::atomic<int64_t> reopens_at_us{0};  // ...until then (after it: half-open)
  // The vendor's last answer was a 401, or the last token refresh failed.
  std::atomic<bool> auth_failing{false};
};

struct SyncStatusBoard {
  bool sync_enabled = false;  // set before the board is shared
  RouterStatus router;
  std::vector<std::shared_ptr<ConnectorStatus>> connectors;  // shared with each actor
};

// {"state": "running"|"off", "router": {...}, "connectors": {"<tenant>/<system>": {...}}}
// `log_last_seq`: the log's head, for how far the router is behind it.
std::string SyncHealthJson(const SyncStatusBoard& board, uint64_t log_last_seq, int64_t now_us);

}  // namespace dfm
