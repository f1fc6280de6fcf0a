// `dfm backfill SYSTEM`: imports the contacts a system held before the
// engine was set up, as `contact.imported` events (events/webhook_received.h)
// that the router then matches to known contacts like any webhook's facts.
//
// Two ways to read a vendor:
// - list: vendors with a list or search API (GoHighLevel) are paged through;
//   each page is appended as one batch, then the cursor is stored (synced),
//   so an interrupted run continues where it stopped.
// - lookup: vendors without one (Aloware) are asked about every phone the
//   engine knows: the mappings projection's phones of the tenant plus the
//   phones of contacts other systems' backfills imported (not yet routed).
//
// Contract: re-running is harmless. A contact imported again unchanged
// (same id and version) is a duplicate the log acknowledges and does not
// append (its idempotency key is "backfill/<id>/<version>"); a changed one
// is a new fact, which the merge rules weigh like any other.
//
// Two ways to reach the vendor:
// - through the running service (BackfillDeps::read, app/backfill_jobs.h):
//   each read goes to the tenant's connector actor, which holds the grant,
//   refreshes it and counts the read in its rate limit; the position is
//   also replicated for the partition's next node (cluster mode);
// - on its own (`dfm backfill` with the service stopped): the newest
//   stored grant, requests paced by the connector's rate limit, and a 401
//   with OAuth refreshes the token once (stored synced before use).
// Either way 429, 5xx and transport errors are retried with backoff
// (Retry-After honoured).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "connectors/common/outbound.h"
#include "storage/cas_store.h"
#include "storage/event_log.h"
#include "sync/normalize.h"
#include "util/status.h"

namespace dfm {

struct BackfillOptions {
  std::string tenant = "default";
  std::string system;
  int page_size = 100;
  bool restart = false;         // ignore a stored position: start over
  int64_t min_interval_us = 0;  // between two requests (rate window / rate limit)
  int max_attempts = 8;         // per request, for 429, 5xx and transport errors
  int64_t retry_base_us = 500000;
  int64_t retry_max_us = 30000000;
  std::string run_id;  // recorded as each event's request_id
};

struct BackfillStats {
  int64_t requests = 0;
  int64_t pages = 0;      // list: pages read
  int64_t phones = 0;     // lookup: phones to ask about
  int64_t asked = 0;      // lookup: phones asked about (this run and those before a resume)
  int64_t not_found = 0;  // lookup: phones the vendor does not know
  int64_t refused = 0;    // lookup: phones the vendor refused as invalid (400/422)
  int64_t seen = 0;       // contacts read
  int64_t imported = 0;   // appended as new events
  int64_t unchanged = 0;  // already imported with the same version
  int64_t total = -1;     // list: the vendor's count, when it says
  bool resumed = false;
  bool finished = false;
};

// One read of the vendor: a page of its list, or a phone looked up.
struct ReadAsk {
  bool lookup = false;
  std::string cursor;  // list
  int page_size = 100;
  std::string phone;   // lookup (E.164)
};

struct BackfillDeps {
  EventLog* log = nullptr;
  // On its own: the vendor's client and the configured credentials (a
  // stored newer grant wins).
  VendorClient* client = nullptr;
  Credentials credentials;
  // Through the service instead (when set; blocks until answered): `client`
  // and `credentials` are unused, `list` says how the vendor is read.
  std::function<ContactPage(const ReadAsk&)> read;
  bool list = true;
  // Cluster mode: where the position goes for the partition's next node.
  StateReplicator replicate_state;
  // Asked between two reads: true stops the run (Status Unavailable, the
  // position kept).
  std::function<bool()> stopping;
  const Normalizer* normalizer = nullptr;  // lookup: reads phones of imported contacts
  std::function<int64_t()> now_us;
  std::function<void(int64_t)> sleep_us;
  std::function<void(const std::string&)> warn;  // optional: problems that do not stop the run
};

// Consumer whose state holds each unfinished backfill's position, key
// "<tenant>/<system>", value (grammar; the page size since this build):
//   mode [" " page_size] LF position
//   mode = "list" (position: the cursor) | "lookup" (position: the
//          fingerprint of the phone list, " #", how many of it were
//          asked; earlier builds: " ", the last phone asked, still read)
// A run continues with the page size it was stored with.
inline constexpr char kBackfillConsumer[] = "backfill";

// Runs one backfill to the end or to the first error it cannot retry.
// `progress` is called after every page (list) or lookup, from this thread.
Status RunBackfill(const BackfillOptions& options, const BackfillDeps& deps,
                   const std::function<void(const BackfillStats&)>& progress, BackfillStats* stats);

// The E.164 phones lookup mode asks about, sorted (see above).
Status PhonesToLookUp(const EventLog& log, const std::string& tenant, const std::string& system,
                      const Normalizer& normalizer, std::vector<std::string>* phones);

// "ghl: page 3 · 300 of 1,234 contacts (24%) · 280 new · 20 unchanged · 95/s"
std::string FormatBackfillProgress(const std::string& system, const BackfillStats& s,
                                   double per_second);

}  // namespace dfm
