// Erasure of a person (docs/privacy.md): what `dfm erase` decides and the
// contact.erased event that records it. Pure: no log, no key store.
//
// contact.erased (stream "contact:<id>", schema version 1, never sealed),
// one JSON object:
//   {"contact_id": str, "reason": str, "requested_by": str,
//    "keys": [uint, ...],             ; key numbers destroyed (KeyStore)
//    "events": uint,                  ; events made unreadable with the contact's
//                                     ; keys: its stream's and its campaign tasks'
//                                     ; (an older build counted its stream's only)
//    "sources": uint,                 ; webhooks and re-drive requests made unreadable
//    "subjects": [{"hash": hex32, "kind": "phone"|"email", "channel": str,
//                  "status": "out"|"in", "at_us": int, "seq": uint,
//                  "system": str}, ...]}
// `subjects` is the person's consent as it stood, per phone or email and
// channel, under a keyed hash (SubjectHash) instead of the phone or email:
// the opt-out registry keeps it (its "z/" rows), so a text to that number
// is still refused after the person is gone.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "util/crypto.h"
#include "util/status.h"

namespace dfm {

struct ErasedSubject {
  std::string hash;     // SubjectHash of the phone (E.164) or email
  std::string kind;     // "phone" | "email"
  std::string channel;  // "sms", "call", "email", ...
  bool out = false;
  int64_t at_us = 0;  // when the standing opt-out or opt-in happened
  uint64_t seq = 0;   // its event
  std::string system;
};

struct Erasure {
  std::string contact_id;
  std::string reason;
  std::string requested_by;
  std::vector<uint64_t> keys;
  uint64_t events = 0;
  uint64_t sources = 0;
  std::vector<ErasedSubject> subjects;
};

std::string EncodeErasure(const Erasure& e);
Status DecodeErasure(std::string_view json, Erasure* out);

// Hex of the first 16 bytes of HMAC-SHA256(hash_key, tenant "\n" identifier):
// the same phone or email in the same tenant always hashes alike, and
// nobody without the key store's secret can test a guess against it.
std::string SubjectHash(std::string_view hash_key, std::string_view tenant,
                        std::string_view identifier);

// SubjectHash of many identifiers of one tenant under one key, the key's
// HMAC pads prepared once (a campaign's audience hashes every phone and
// email of the tenant). Const use from one thread at a time.
class SubjectHasher {
 public:
  SubjectHasher(std::string_view hash_key, std::string tenant);
  ~SubjectHasher();
  std::string operator()(std::string_view identifier) const;

 private:
  std::unique_ptr<HmacKey> key_;
  std::string tenant_;
};

// An opt-out about the person in a webhook the sync has not decided (its
// key is destroyed with theirs, so it never will be): a STOP received just
// before the erasure, or while the sync does not run.
struct UndecidedOptOut {
  uint64_t seq = 0;   // its webhook
  int64_t at_us = 0;  // when it happened (the system's time, else received)
  std::string system;
  std::string phone, email;  // whom it concerns; either may be empty
  std::vector<std::string> channels;
};

// The erasure of `contact_id` from its stream as read (opened: the keys
// still exist; `events` counts the stream's, the caller adds its campaign
// task events) and the key numbers of the events outside it that carry its
// data (`source_keys`: the webhooks and re-drive requests that fed it).
// Collects every key the stream's records name and the person's standing
// consent per phone or email and channel (newest by ConsentSupersedes),
// `undecided` folded in by the same rule, after the stream's statements.
Erasure PlanErasure(std::string_view tenant, std::string_view contact_id,
                    const std::vector<Event>& stream, const std::vector<uint64_t>& source_keys,
                    std::string_view hash_key, const std::vector<UndecidedOptOut>& undecided = {});

}  // namespace dfm
