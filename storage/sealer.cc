#include "storage/sealer.h"

#include <simdjson.h>

#include "events/codec.h"
#include "events/sealing.h"
#include "util/crypto.h"

namespace dfm {
namespace {
constexpr size_t kCacheEntries = 1 << 16;  // each cache starts over past this

template <typename Map>
void Bound(Map* m) {
  if (m->size() >= kCacheEntries) m->clear();
}

// The "contact" member of a task event's payload (campaigns/task.h); ""
// when it has none or does not parse.
std::string TaskContactOf(std::string_view payload) {
  thread_local simdjson::dom::parser parser;  // kept: its buffers are reused
  simdjson::dom::object o;
  std::string_view contact;
  if (parser.parse(payload.data(), payload.size()).get(o) != simdjson::SUCCESS ||
      o["contact"].get(contact) != simdjson::SUCCESS)
    return "";
  return std::string(contact);
}
// Opens e's payload with key `no` through `open`, and says so in
// e->sealing: kOpened, or kErased (payload emptied) when its key was
// destroyed or does not open it (sealed under a key made for it and
// forgotten: its contact was already erased). Returns what the store
// answered: kMissing or kError leave e untouched.
template <typename OpenFn>
KeyStore::Found OpenUnder(const KeyStore& keys, uint64_t no, Event* e, const OpenFn& open) {
  thread_local std::string key;  // kept: no allocation per event
  const KeyStore::Found found = keys.Get(no, &key);
  switch (found) {
    case KeyStore::Found::kKey: {
      const bool opened = open(key);
      Wipe(key.data(), key.size());
      if (!opened) e->payload.clear();
      e->sealing = opened ? Event::Sealing::kOpened : Event::Sealing::kErased;
      break;
    }
    case KeyStore::Found::kDestroyed:
      e->payload.clear();
      e->sealing = Event::Sealing::kErased;
      break;
    case KeyStore::Found::kMissing:
    case KeyStore::Found::kError:
      break;
  }
  return found;
}

Status NotRead(uint64_t no) {
  return Status::Unavailable("key store: key " + std::to_string(no) + " could not be read now");
}

}  // namespace

uint64_t PayloadSealer::KeyFor(const Event& e, const Lookups& lookups, std::string* key,
                               bool* forget, Status* status) {
  const std::function<uint64_t()> fresh = [&]() -> uint64_t {
    uint64_t no = 0;
    *status = keys_->NewKey(&no, key);
    return status->ok() ? no : 0;
  };
  switch (SealKindFor(e.stream, e.type)) {
    case SealKind::kClear:
      return 0;
    case SealKind::kOwn: {
      uint64_t no = fresh();
      if (no != 0) {
        Bound(&event_keys_);
        event_keys_[std::string(e.id.AsBytes())] = no;
      }
      return no;
    }
    case SealKind::kCause: {
      if (!e.causation_id.IsZero()) {
        auto it = event_keys_.find(std::string(e.causation_id.AsBytes()));
        uint64_t no = it != event_keys_.end() ? it->second : lookups.event_key(e.causation_id);
        if (no != 0) return no;
      }
      return fresh();
    }
    case SealKind::kContact:
      return ContactKey(e.tenant, e.stream, lookups, fresh, forget);
    case SealKind::kTaskContact: {
      const std::string contact = TaskContactOf(e.payload);
      if (contact.empty()) return fresh();
      // Only a key the contact's stream names (or will, from this batch):
      // one made here would be named by no record of the contact's, and
      // `dfm erase` would not find it. Without one, a key of its own.
      const std::string stream = ContactStream(contact);
      uint64_t no = ContactKey(e.tenant, stream, lookups, nullptr, forget);
      return no != 0 ? no : fresh();
    }
  }
  return 0;
}

uint64_t PayloadSealer::ContactKey(std::string_view tenant, std::string_view stream,
                                   const Lookups& lookups,
                                   const std::function<uint64_t()>& fresh, bool* forget) {
  std::string name = ContactKeyName(tenant, stream);
  *forget = erasing_.count(name) != 0 || erased_.count(name) != 0;
  auto it = contact_keys_.find(name);
  if (it != contact_keys_.end()) return it->second;
  uint64_t no = lookups.stream_key(tenant, stream);
  if (no == 0 && fresh) no = fresh();
  if (no != 0) {
    Bound(&contact_keys_);
    contact_keys_.emplace(std::move(name), no);
  }
  return no;
}

uint64_t PayloadSealer::KeyOfRecord(std::string_view record) {
  Event e;
  std::string_view payload;
  if (!DecodeRecord(record, &e, &payload).ok() || e.sealing == Event::Sealing::kClear) return 0;
  return SealedKeyNo(payload).value_or(0);
}

Status PayloadSealer::Seal(Event* e, const Lookups& lookups) {
  if (!ErasedContactOf(*e).empty()) {
    Bound(&erasing_);
    std::string name = ContactKeyName(e->tenant, e->stream);
    if (erasing_.insert(name).second) call_erasing_.push_back(std::move(name));
  }
  Status status;
  std::string key;
  bool forget = false;
  const uint64_t no = KeyFor(*e, lookups, &key, &forget, &status);
  if (!status.ok()) return status;
  if (no == 0) return Status::OK();
  if (!forget && key.empty()) {
    const KeyStore::Found found = keys_->Get(no, &key);
    // Not read now: sealing under a key nobody keeps would lose the event,
    // so the append fails and its sender asks again.
    if (found == KeyStore::Found::kError) return NotRead(no);
    forget = found != KeyStore::Found::kKey;
  }
  if (forget) {
    // Its contact erased (its key destroyed, or about to be): sealed
    // under a key nobody keeps.
    key.assign(32, '\0');
    RandomBytes(reinterpret_cast<uint8_t*>(key.data()), key.size());
  }
  e->payload = SealPayload(key, no, *e, e->payload);
  e->sealing = Event::Sealing::kSealed;
  return Status::OK();
}

void PayloadSealer::Commit() {
  Bound(&erased_);
  erased_.insert(erasing_.begin(), erasing_.end());
  erasing_.clear();
  call_erasing_.clear();
}

void PayloadSealer::Abandon() {
  erasing_.clear();
  call_erasing_.clear();
}

void PayloadSealer::BeginCall() { call_erasing_.clear(); }

void PayloadSealer::AbandonCall() {
  for (const std::string& name : call_erasing_) erasing_.erase(name);
  call_erasing_.clear();
}

Status PayloadSealer::Open(Event* e) const {
  if (e->sealing != Event::Sealing::kSealed) return Status::OK();
  std::optional<uint64_t> no = SealedKeyNo(e->payload);
  if (!no) return Status::OK();
  e->key_no = *no;
  const KeyStore::Found found = OpenUnder(
      *keys_, *no, e, [e](std::string_view key) { return OpenPayloadInPlace(key, e); });
  return found == KeyStore::Found::kError ? NotRead(*no) : Status::OK();
}

Status PayloadSealer::OpenFrom(std::string_view payload, Event* e) const {
  std::optional<uint64_t> no;
  if (e->sealing == Event::Sealing::kSealed) no = SealedKeyNo(payload);
  if (no) e->key_no = *no;
  const auto open = [&](std::string_view key) {
    return OpenPayloadTo(key, *e, payload, &e->payload);
  };
  const KeyStore::Found found = no ? OpenUnder(*keys_, *no, e, open) : KeyStore::Found::kMissing;
  if (found == KeyStore::Found::kKey || found == KeyStore::Found::kDestroyed) return Status::OK();
  e->payload.assign(payload.data(), payload.size());  // clear, or left sealed
  return found == KeyStore::Found::kError ? NotRead(*no) : Status::OK();
}

}  // namespace dfm
