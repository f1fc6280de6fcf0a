#include "cluster/draft_seal.h"

#include "events/sealing.h"

namespace dfm {

namespace {
// The record a draft becomes, as far as its seal is bound to it.
Event BoundTo(const EventDraft& d) {
  Event e;
  e.tenant = d.tenant;
  e.stream = d.stream;
  e.type = d.type;
  e.id = d.id;
  return e;
}
}  // namespace

bool SealsDraft(const EventDraft& d) { return SealKindFor(d.stream, d.type) != SealKind::kClear; }

Status SealDraft(KeyStore* keys, EventDraft* d) {
  uint64_t no = 0;
  std::string key;
  Status s = keys->NewKey(&no, &key);
  if (!s.ok()) return s;
  d->payload = SealPayload(key, no, BoundTo(*d), d->payload);
  return Status::OK();
}

DraftOpen OpenDraft(const KeyStore& keys, EventDraft* d, uint64_t* key_no) {
  std::optional<uint64_t> no = SealedKeyNo(d->payload);
  if (!no || *no == 0) return DraftOpen::kDamaged;
  *key_no = *no;
  std::string key;
  switch (keys.Get(*no, &key)) {
    case KeyStore::Found::kDestroyed:
      return DraftOpen::kDestroyed;
    case KeyStore::Found::kMissing:
      return DraftOpen::kMissing;
    case KeyStore::Found::kError:
      return DraftOpen::kUnread;
    case KeyStore::Found::kKey:
      break;
  }
  std::optional<std::string> plain = OpenPayload(key, BoundTo(*d), d->payload);
  if (!plain) return DraftOpen::kDamaged;
  d->payload = std::move(*plain);
  return DraftOpen::kOpened;
}

}  // namespace dfm
