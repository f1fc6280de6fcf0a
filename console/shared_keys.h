// API keys shared by every node of a cluster (docs/scale-out.md): each
// front keeps its ApiKeyRegistry, and the keys created or revoked through
// any node are written to a CasStore every node reads (the NATS bucket
// DFM_KEYS), which each front folds again every second. A key's events
// stay in the log of its tenant's partition as on a single node; the
// bucket is how the fronts learn them.
//
// Entry key: "k." <key id>. Value (grammar, version 1):
//   entry = "1" LF ( created LF [revoked LF] / LF revoked LF )
//   created, revoked = recorded_at_us SP payload   ; the api_key event's
// (payloads are one-line JSON). A revocation without its creation (a key
// made before sharing) is kept alone: such a key is refused everywhere.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "console/api_keys.h"
#include "events/event.h"
#include "storage/cas_store.h"

namespace dfm {

class SharedKeys {
 public:
  explicit SharedKeys(std::shared_ptr<CasStore> store) : store_(std::move(store)) {}
  // Makes `e` (an api_key.created or .revoked event the log took) known
  // to every node; durable in the store when OK.
  Status Publish(const Event& e);
  // Folds every shared key into `keys` (new keys and revocations; nothing
  // is ever taken back). *count: the entries read. Corruption, the others
  // folded, when some entry does not read (it may revoke a key: the node
  // is not up to date).
  Status FoldInto(ApiKeyRegistry* keys, size_t* count) const;

  // The pure parts, for tests.
  static std::string Encode(const std::vector<Event>& events);
  static bool Decode(const std::string& value, std::vector<Event>* events);

  // The changes a node made and could not share yet, kept in
  // <data dir>/keys-unshared until it can (docs/event-format.md). Grammar:
  //   file   = "dfm-keys-unshared" SP "1" LF *change
  //   change = ("created" / "revoked") SP recorded_at_us SP payload LF
  // SaveUnshared replaces the file whole (removes it when `events` is
  // empty); LoadUnshared reads none from a missing file. A file that does
  // not read whole gives the changes that read, and Corruption; it is
  // moved to keys-unshared.damaged. DecodeUnshared: false when not whole.
  static Status SaveUnshared(const std::string& data_dir, const std::vector<Event>& events);
  static Status LoadUnshared(const std::string& data_dir, std::vector<Event>* events);
  static std::string EncodeUnshared(const std::vector<Event>& events);
  static bool DecodeUnshared(std::string_view text, std::vector<Event>* events);

 private:
  std::shared_ptr<CasStore> store_;
};

}  // namespace dfm
