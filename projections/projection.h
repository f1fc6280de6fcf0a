// Projections: folds over the event log into key/value state.
//
// A Projection is pure: Fold reads and writes a ProjectionState and nothing
// else, so the same fold runs live, in a rebuild from sequence 1, and in unit
// tests over an in-memory base. The ProjectionRunner (runner.h) feeds it the
// log and commits each batch's writes atomically with the checkpoint
// (EventLog::CommitConsumer): after a crash, state and checkpoint agree, and
// dropping the state and folding again from 1 gives the same state.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "projections/state_table.h"
#include "sync/domain_event.h"
#include "storage/event_log.h"
#include "util/status.h"

namespace dfm {

// The committed state seen through this batch's own uncommitted writes.
class ProjectionState {
 public:
  // `base` reads committed state: OK + value, NotFound, or an error.
  using BaseReader = std::function<Status(std::string_view key, std::string* value)>;
  explicit ProjectionState(BaseReader base) : base_(std::move(base)) {}
  // Visits the committed keys with a prefix (EventLog::ScanConsumerState);
  // without one, Scan sees only this batch's writes.
  using BaseScanner = std::function<Status(
      std::string_view prefix, const std::function<bool(std::string_view, std::string_view)>&)>;
  void SetBaseScanner(BaseScanner scan) { scan_ = std::move(scan); }

  // Every present key starting with `prefix` and its value, in key order.
  // A big overlay (a rebuild's) is walked whole by its first scans; once
  // those walks add up to a few times its size, it gets a sorted index of
  // its keys, which later scans search (ScanIndex).
  std::vector<std::pair<std::string, std::string>> Scan(std::string_view prefix);

  // While an owner (a contact id) is set, every Put also records the key
  // in the owner's index (OwnerIndexPrefix), so that the contact's rows can
  // be found and erased when it is (Projection::ForgetContact), except a
  // key that names the owner itself, found by its prefix instead:
  // "<kind>/<contact id>" then '/', ':' or the end, for a kind in
  // `own_kinds` (Projection::OwnKinds), or "<kind>/<tenant>/<contact id>"
  // then '/' or the end, for a kind in `tenant_kinds` (Projection::
  // TenantOwnKinds). Add() is for counters shared by many contacts and
  // records nothing.
  void SetOwner(std::string_view contact, std::string_view own_kinds = "",
                std::string_view tenant = "", std::string_view tenant_kinds = "");

  // nullopt when absent. A failed base read is remembered (status()) and
  // reads as absent; the runner then refuses to commit the batch.
  std::optional<std::string> Get(std::string_view key);
  // Get without the copy: nullopt when absent; valid until the next call.
  std::optional<std::string_view> Peek(std::string_view key);
  void Put(std::string_view key, std::string_view value);

  void Erase(std::string_view key);
  // Adds `delta` to the decimal counter at `key` (absent = 0); erases it at 0.
  void Add(std::string_view key, int64_t delta);

  Status status() const { return status_; }
  bool empty() const { return overlay_.empty(); }
  size_t size() const { return overlay_.size(); }
  // The batch's writes, sorted by key (each key once), and an empty overlay.
  std::vector<StateOp> TakeOps();
  // The same writes by reference, sorted by key, valid until the next
  // change; Clear() then empties the overlay. For batches too big to copy.
  // Its capacity leaves room for one entry more.
  StateEntryRefs SortedEntries() const;
  void Clear() {
    overlay_.Clear();
    scan_index_.Reset();
  }

 private:
  // The entry for `key` in the overlay, read from the base on first use
  // (value absent: absent or erased).
  StateTable::Slot* Load(std::string_view key);

  // The overlay's keys in order, for Scan: `big` and `small` each sorted
  // (views into the overlay's entries), the keys inserted since the last
  // scan still in the table's NewKeys(). Each scan sorts those into
  // `small`, and `small` goes into `big` once it is an eighth of it, so a
  // key is moved a few times in all. Empty until built; reset with the
  // overlay.
  struct ScanIndex {
    std::vector<std::string_view> big, small;
    bool built = false;
    size_t walked = 0;  // entries the scans walked before it was built
    void Reset() { *this = ScanIndex(); }
  };
  // Brings the index up to the overlay (building it if due); false while
  // scans still walk the overlay.
  bool UpdateScanIndex();

  BaseReader base_;
  BaseScanner scan_;
  ScanIndex scan_index_;
  std::string owner_;  // empty: none
  std::string own_kinds_;
  std::string tenant_;
  std::string tenant_kinds_;
  std::string index_key_;  // Put's buffer for the index key (OwnerIndexPrefix + key)
  // Hashed: a rebuild holds millions of keys here, and a fold looks each
  // one up several times; the order is made once per commit
  // (SortedEntries, used by TakeOps and by the rebuild's bulk commit).
  StateTable overlay_;
  std::string peeked_;  // Peek's copy of a base value
  Status status_;
};

// Where a projection's state records its key layout (when not 1).
inline constexpr char kLayoutKey[] = "~layout";

// The owner index: "~o/<contact id>\n<key>" -> "" for each key a fold of
// one of the contact's events put (ProjectionState::SetOwner).
std::string OwnerIndexPrefix(std::string_view contact_id);
// Whether `key` is "<kind>/<contact_id>" then '/', ':' or the end, for a
// kind (its first letter) in `kinds`.
bool NamesContact(std::string_view key, std::string_view contact_id, std::string_view kinds);
// Whether `key` is "<kind>/<tenant>/<contact_id>" then '/' or the end, for
// a kind (its first letter) in `kinds`.
bool NamesTenantContact(std::string_view key, std::string_view tenant,
                        std::string_view contact_id, std::string_view kinds);

class Projection {
 public:
  virtual ~Projection() = default;
  // The consumer name its state and checkpoint are kept under.
  virtual std::string name() const = 0;
  // The version of its key layout. A runner that finds committed state of
  // another layout drops it and folds again from sequence 1, so state of
  // two layouts never mixes. A layout above 1 is recorded in the state
  // under kLayoutKey; state without it is of layout 1.
  virtual int layout() const { return 1; }
  // Whether it folds events of `type` at all: the runner neither decodes
  // nor hands it the others. Called from any thread.
  virtual bool Uses(std::string_view type) const = 0;
  // Folds one event. `d` is its payload decoded when it is a domain event
  // (sync/domain_event.h), else null; a payload that does not decode is
  // null too, and skipped (the log is immutable; the event stays visible
  // to `dfm log dump`), never a reason to stop. A rebuild folds each
  // projection on its own thread: a fold touches nothing but `state`.
  virtual void FoldDecoded(const Event& e, const DomainEvent* d, ProjectionState* state) = 0;

  // Whether the runner hands it events of `type`: those it Uses, and
  // every contact.erased (events/sealing.h).
  bool Takes(std::string_view type) const;
  // How the runner folds: a contact.erased first forgets the contact
  // (ForgetContact); an event of a contact's stream is folded with that
  // contact as the state's owner; then FoldDecoded when it Uses the type.
  void Apply(const Event& e, const DomainEvent* d, ProjectionState* state);
  // Decodes `e` when the projection takes it, then Apply.
  void Fold(const Event& e, ProjectionState* state);

  // Erases the rows the contact's events put (its owner index, and the
  // rows of its own kinds in `tenant`) that are still its own (OwnedBy),
  // calling Forget for each first. Once its keys are destroyed a rebuild
  // cannot fold its events, so this leaves the state a rebuild gives
  // (docs/privacy.md says where that falls short).
  void ForgetContact(std::string_view tenant, std::string_view contact_id,
                     ProjectionState* state);

 protected:
  // The kinds (a key's first letter) of keys that begin "<kind>/<contact
  // id>" and are that contact's alone (see ProjectionState::SetOwner).
  // Default: none.
  virtual std::string_view OwnKinds() const { return ""; }
  // The kinds of keys that begin "<kind>/<tenant>/<contact id>" and are
  // that contact's alone (ProjectionState::SetOwner). Default: none.
  virtual std::string_view TenantOwnKinds() const { return ""; }
  // Whether a row the contact once put is still its own (not since put
  // by another contact, e.g. a phone that moved). Default: yes.
  virtual bool OwnedBy(std::string_view key, std::string_view value,
                       std::string_view contact_id) const;
  // Called before a row of an erased contact is erased (to keep counters
  // that count it right). Default: nothing.
  virtual void Forget(std::string_view key, std::string_view value, ProjectionState* state);
};

}  // namespace dfm
