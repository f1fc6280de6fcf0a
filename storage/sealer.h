// PayloadSealer: seals events' payloads as the log plans them and opens
// them as it reads them (events/sealing.h for which key, storage/key_store.h
// for the keys).
//
// A contact's events are sealed with one key, found in a bounded cache or
// else in the first sealed event of its stream (Lookups::stream_key), so no
// mapping from contacts to keys is stored anywhere: the records name their
// keys, and `dfm erase` destroys every key its contact's records name.
// Once a key is destroyed, an event that would be sealed with it is sealed
// with a key made for it and forgotten at once: recorded, never readable.
//
// Seal is called by the log's single writer; Open from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "events/event.h"
#include "storage/key_store.h"
#include "util/status.h"

namespace dfm {

class PayloadSealer {
 public:
  // What the sealer asks the log (committed records only).
  struct Lookups {
    // The key number of the first sealed event of (tenant, stream); 0: none.
    std::function<uint64_t(std::string_view tenant, std::string_view stream)> stream_key;
    // The key number event `id` was sealed with; 0: clear, or not found.
    std::function<uint64_t(const EventId& id)> event_key;
  };

  explicit PayloadSealer(KeyStore* keys) : keys_(keys) {}

  // Seals e->payload in place (e->sealing = kSealed) when SealKindFor says
  // so; e's tenant, stream, type, id and causation id must be final. Not OK
  // when a key could not be made, or its contact's key could not be read
  // now (the append then fails, and its sender asks again).
  Status Seal(Event* e, const Lookups& lookups);
  // Opens a kSealed payload in place: kOpened, or kErased (payload emptied)
  // when its key was destroyed. A key the store does not have leaves it
  // kSealed (a copy read without its key store). Unavailable, and e left
  // kSealed, when the store could not be read now: the event is not
  // unreadable for good, and a reader must not go past it as if it were.
  Status Open(Event* e) const;
  // Open() of a record's payload as DecodeRecord found it (`payload`; e's
  // own payload is replaced): a sealed one is decrypted straight from the
  // record's bytes, with no copy of its ciphertext first.
  Status OpenFrom(std::string_view payload, Event* e) const;

  // The key number a stored record was sealed with; 0 when it is clear or
  // does not decode.
  static uint64_t KeyOfRecord(std::string_view record);

  // As the log's plan goes (AppendPlanner): Commit() once what was sealed
  // since the last Commit() is durable, Abandon() when it was dropped.
  // A contact.erased sealed (it stays clear) makes every later event of
  // its contact, and every task event for it, sealed under a key made for
  // it and forgotten at once, before `dfm erase` has destroyed the
  // contact's key: nothing after the erasure in the log opens, live or
  // in a rebuild.
  void Commit();
  void Abandon();
  // Within a plan, one AppendAsync call's part: what Seal() learned since
  // BeginCall() is forgotten by AbandonCall() (that call refused alone).
  void BeginCall();
  void AbandonCall();

 private:
  // The key number for `e` (0: clear) and, when known without asking the
  // store, its bytes in *key.
  // *forget: seal under a key made for it and forgotten (its contact erased).
  uint64_t KeyFor(const Event& e, const Lookups& lookups, std::string* key, bool* forget,
                  Status* status);
  // The key of the contact whose stream is (tenant, stream): cached, else
  // the one its first sealed event names, else fresh() when given (0 when
  // not, or when it fails). *forget when the contact was erased.
  uint64_t ContactKey(std::string_view tenant, std::string_view stream, const Lookups& lookups,
                      const std::function<uint64_t()>& fresh, bool* forget);

  KeyStore* keys_;
  // ContactKeyName -> key no. Only numbers: a contact's key is asked of the
  // store at each use, so one destroyed since is never used again.
  std::unordered_map<std::string, uint64_t> contact_keys_;
  std::unordered_map<std::string, uint64_t> event_keys_;  // own-key event id bytes -> key no
  // ContactKeyName of the contacts whose contact.erased was sealed: since
  // the last Commit(), and before it.
  std::unordered_set<std::string> erasing_, erased_;
  std::vector<std::string> call_erasing_;  // put in erasing_ since BeginCall()
};

}  // namespace dfm
