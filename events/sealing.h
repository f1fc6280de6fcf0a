// Sealed payloads (docs/privacy.md): the personal data in events is
// encrypted with keys kept outside the log, so destroying a key erases
// what it sealed everywhere the log's bytes went, while the hash chain,
// which covers the stored (sealed) bytes, still verifies.
//
// Pure: which key seals an event, and the sealed layout. Keys themselves
// live in a KeyStore (storage/key_store.h); the log's PayloadSealer
// (storage/sealer.h) puts the two together.
//
// Sealed payload (record flag bit 1, docs/event-format.md):
//   sealed = key_no:uint64 nonce:12 ciphertext tag:16
// AES-256-GCM under key `key_no`; the additional data binds it to its
// record: string(tenant) string(stream) string(type) event_id(16).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "events/event.h"

namespace dfm {

// The erasure event: never sealed (it must stay readable once the keys it
// names are gone). Payload: sync/erasure.h.
inline constexpr std::string_view kContactErasedType = "contact.erased";

// The contact a contact.erased event erases (its stream "contact:<id>");
// "" for any other event.
std::string_view ErasedContactOf(const Event& e);

enum class SealKind {
  kClear,    // not sealed: the log's own events, admin actions, erasures
  kOwn,      // a key of its own: webhook.received, contact.imported, replay.requested
  kContact,  // its contact's key: every event of a "contact:<id>" stream
  kCause,    // the key of the event that caused it: the router's records in
             // "source:<system>" streams (a conflict names the webhook's phone)
  kTaskContact,  // the key of the contact it is about: a campaign's task events
                 // ("campaign-tasks:<campaign>", their payload's "contact":
                 // campaigns/task.h), which carry the text sent to the person
};

// REQUIRES nothing; total over any stream and type.
SealKind SealKindFor(std::string_view stream, std::string_view type);

// "<tenant>\n<stream>": the cache key of a contact's key.
std::string ContactKeyName(std::string_view tenant, std::string_view stream);

// `plaintext` sealed for the record of `e` (its tenant, stream, type, id)
// under `key` (32 bytes), numbered `key_no`.
std::string SealPayload(std::string_view key, uint64_t key_no, const Event& e,
                        std::string_view plaintext);
// The key number a sealed payload names; nullopt when too short to be one.
std::optional<uint64_t> SealedKeyNo(std::string_view sealed);
// The plaintext, or nullopt (another key, another record, tampered).
std::optional<std::string> OpenPayload(std::string_view key, const Event& e,
                                       std::string_view sealed);
// OpenPayload into *out (its bytes replaced): true, or false and *out empty.
bool OpenPayloadTo(std::string_view key, const Event& e, std::string_view sealed, std::string* out);
// OpenPayload of e->payload in place, without a copy: true and e->payload
// the plaintext, or false and e->payload no longer what it was (its
// ciphertext zeroed).
bool OpenPayloadInPlace(std::string_view key, Event* e);

}  // namespace dfm
