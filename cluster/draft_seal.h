// A webhook sealed where it is taken (cluster mode, docs/privacy.md): the
// ingest stream DFM_IN_<p> and NATS's own logs of it never hold personal
// data in clear. The front seals a draft's payload with a fresh key of its
// partition (DFM_SEAL, cluster/seal_keys.h) in the layout of a sealed
// record (events/sealing.h: the key's number, then AES-256-GCM bound to
// the draft's tenant, stream, type and event id); the partition's runner
// opens it, appends it to its log (which seals it again under the log's
// own rules), then destroys the front's key: from then on the stream's
// copy is unreadable, and nothing but the log names the person.
//
// Pure: no NATS inside; the keys come through the KeyStore interface.
#pragma once

#include <cstdint>

#include "events/event.h"
#include "storage/key_store.h"
#include "util/status.h"

namespace dfm {

// Whether a draft's payload is sealed at the front: every draft the log
// would seal (events/sealing.h, SealKindFor).
bool SealsDraft(const EventDraft& d);

// Seals d->payload with a new key of `keys`. REQUIRES: SealsDraft(*d), and
// d's tenant, stream, type and id final.
Status SealDraft(KeyStore* keys, EventDraft* d);

enum class DraftOpen {
  kOpened,     // d->payload is the plaintext; *key_no the key to destroy
  kDestroyed,  // its key is gone: the runner appended it and destroyed it
  kDamaged,    // it does not open with its key (or names none): never will
  kMissing,    // the store answers that it holds no such key (KeyStore::Found::kMissing)
  kUnread,     // the key could not be read now (the store unreachable): ask again
};
DraftOpen OpenDraft(const KeyStore& keys, EventDraft* d, uint64_t* key_no);

}  // namespace dfm
