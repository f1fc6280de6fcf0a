// Connector state the log cannot give back (an OAuth grant whose refresh
// token the vendor takes only once, a day's credit reservations),
// replicated for whichever node runs the tenant next (docs/scale-out.md):
// each durable write goes, sealed, to the NATS key-value bucket DFM_STATE
// before the connector uses it (Put, SyncEnv::replicate_state), and a
// partition starting on a node copies its tenants' entries into its log's
// consumer state before its connectors start (Restore).
//
// Entry key:   "s." hex(tenant) "." hex(SHA-256(consumer "\n" key))[0..40)
// Entry value (grammar, version 1): AeadSeal(state key, entry key, plain)
//   plain = %x01 str(writer node) str(consumer) str(key) str(value)
//   str   = u32be(length) bytes
// An erased state key is deleted from the bucket. Restore takes an entry
// another node wrote over the local copy; one this node wrote only where
// the local copy lacks it (the local copy is written first: as new or
// newer).
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/nats_client.h"
#include "storage/event_log.h"

namespace dfm {

inline constexpr char kStateBucket[] = "DFM_STATE";

struct StateEntry {
  std::string writer, consumer, key, value;
};

class StateMirror {
 public:
  // Connects (its own link, retrying in the background), opens or creates
  // the bucket. `state_key_hex`: cluster.state_key (64 hex digits).
  static Status Open(const std::vector<std::string>& urls, const std::string& node,
                     const NatsSecurity& security, int replicas, const std::string& state_key_hex,
                     std::unique_ptr<StateMirror>* out);

  Status Put(const std::string& tenant, std::string_view consumer, const std::vector<StateOp>& ops);
  // Copies the entries of every tenant `runs` accepts into `log`'s consumer
  // state (durable); *restored counts them, *unreadable those that do not
  // open with the state key (logged and left: another key, or damage).
  Status Restore(EventLog* log, const std::function<bool(const std::string&)>& runs, int* restored,
                 int* unreadable);

  // The pure parts, for tests.
  static std::string EntryKey(const std::string& tenant, std::string_view consumer, std::string_view key);
  // The tenant an entry key is of; false when it is no entry key.
  static bool TenantOf(const std::string& entry_key, std::string* tenant);
  static std::string Seal(std::string_view state_key, const std::string& entry_key, const StateEntry& e);
  // False when `sealed` was not sealed by Seal with this key for this entry.
  static bool Unseal(std::string_view state_key, const std::string& entry_key, std::string_view sealed,
                     StateEntry* e);

 private:
  StateMirror() = default;
  std::unique_ptr<NatsClient> nats_;
  std::string node_, key_;
};

}  // namespace dfm
