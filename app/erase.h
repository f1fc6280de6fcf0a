// Erasure of a person against the immutable log (docs/privacy.md).
//
// EraseContact appends the contact.erased event (sync/erasure.h), then
// destroys every key its contact's records, and the webhooks and re-drive
// requests about the person, were sealed with, and deletes its snapshot.
// It reads the tenant's webhooks once (EraseRequest::mapper): an erasure
// costs a pass over the log. From
// then on those events read as erased (Event::Sealing::kErased) in this log
// and in every copy of it, while the hash chain, over the stored sealed
// bytes, still verifies. The running service's router and projections
// forget the contact when they reach the event (actors/router.h,
// projections/projection.h).
//
// ApplyErasures destroys again the keys named by every contact.erased the
// key store has not yet carried out (one restored from an older copy, or a
// crash between the append and the destruction), and moves its mark; the
// service runs it before it serves.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "connectors/common/mapper.h"
#include "storage/event_log.h"
#include "storage/key_store.h"
#include "sync/decided_view.h"
#include "sync/erasure.h"
#include "util/status.h"

namespace dfm {

struct EraseRequest {
  std::string tenant;
  std::string contact_id;
  std::string reason;
  std::string requested_by;  // "cli", "admin-token <id>", ...
  // How the tenant's webhooks are read (the router's mappers). With it,
  // every webhook and import of the tenant is read again, and those with a
  // fact about the person (one of the contact's external ids, phones or
  // emails) are erased too, decided on or not (a duplicate STOP, an echo).
  // Without it, only those its events name.
  MapperSource mapper;
  // The erasure ledger (storage/erasure_ledger.h) the erasure is written to
  // once its event is durable, before any key is destroyed; empty: none.
  std::string ledger_path = {};
  // What the sync has decided now: the running router's own word
  // (RouterStatus::Decided), which a contact it holds keeps back only for
  // that contact's webhooks. Null: the router's checkpoint in the log
  // (CheckpointView), which any held contact keeps back.
  std::function<DecidedView()> decided = {};
  // With a mapper, when webhooks about the person are not decided yet (a
  // STOP received a moment ago), this is called with their sequence
  // numbers; OK once they are decided (the person is then read again), or
  // the error that refuses the erasure, nothing done. Null (the sync does
  // not run): their opt-outs are kept among the person's consent as they
  // stand.
  std::function<Status(const std::vector<uint64_t>& seqs)> wait_decided = {};
  // The person's opt-out, opt-in and do-not-contact pushes still on their
  // way (requested, not settled in the contact's stream) are waited for,
  // up to this long, re-reading the person; any still open then refuses
  // the erasure (FailedPrecondition naming them), nothing done. Once the
  // keys are gone such a push lives only in the memory of the connector
  // that holds it: its request is sealed with the person's keys, so a
  // restart before it lands would lose it. `force` erases all the same.
  std::chrono::milliseconds consent_wait{0};
  bool force = false;
  // Whether the tenant sends to `system` now: a consent push to one it
  // does not (taken out of the configuration) never lands, so it does not
  // hold the erasure. Null: every system.
  std::function<bool(const std::string& system)> delivers = {};
};

struct EraseOutcome {
  uint64_t seq = 0;         // the contact.erased event
  bool already = false;     // erased before: the first erasure's event
  Erasure erasure;
};

// NotFound when the tenant has no such contact. REQUIRES: `log` seals
// with `keys` (RocksDbLogOptions::keys), which this destroys keys in.
Status EraseContact(EventLog* log, KeyStore* keys, const EraseRequest& request,
                    EraseOutcome* outcome);

// The router's checkpoint in `log` as a view: every webhook up to it.
DecidedView CheckpointView(const EventLog* log);

// An EraseRequest::wait_decided for a log whose router runs in this
// process: asks `decided` every 50 ms until `budget` after its first call
// has passed (for every wait of the erasure together), then answers
// Unavailable, naming the first webhook the sync has not decided and why.
std::function<Status(const std::vector<uint64_t>&)> RouterWaiter(
    std::function<DecidedView()> decided, std::chrono::milliseconds budget);
// The same by the router's checkpoint in `log`.
std::function<Status(const std::vector<uint64_t>&)> RouterWaiter(const EventLog* log,
                                                                 std::chrono::milliseconds budget);

// Destroys the keys of the contact.erased events after
// keys->ErasuresThrough() and deletes those contacts' snapshots, then moves
// it to the log's head. `applied` (may be null) counts the erasures
// carried out again. With `ledger_path`, each such erasure is also written
// to that ledger when it lacks it (a crash between the event and the
// ledger).
Status ApplyErasures(EventLog* log, KeyStore* keys, uint64_t* applied,
                     const std::string& ledger_path = "");

}  // namespace dfm
