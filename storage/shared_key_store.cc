#include "storage/shared_key_store.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "util/aead.h"
#include "util/crypto.h"

namespace dfm {

namespace {

constexpr size_t kKeyBytes = 32;
// A block's neighbours that other instances took before this one finds a
// free block; past this many in a row it reads the hint again.
constexpr int kMissesBeforeHint = 64;
constexpr size_t kCachedBlocks = 1024;  // ~20 MiB; the cache starts over past it
constexpr int kCasAttempts = 16;
// Blocks tried in a row before NewBlock gives up (a store that answers
// "exists" for every write is refusing, not full of blocks).
constexpr int kMaxBlockMisses = 4096;
// A read the store does not answer is asked again this many times, 50 ms
// to 1 s apart (15.5 s of pauses, and each try asks the leader and then a
// replica, each waiting up to 1.5 s over NATS: ~75 s in all), before Get
// answers kError.
constexpr int kReadAttempts = 20;

std::string NewKeyBytes() {
  std::string k(kKeyBytes, '\0');
  RandomBytes(reinterpret_cast<uint8_t*>(k.data()), k.size());
  return k;
}

bool ValidScope(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

// Someone else wrote the entry first (CasStore's AlreadyExists).
bool Taken(const Status& s) { return s.code() == Status::Code::kAlreadyExists; }

// "1 <decimal>", or 0 when absent or unreadable.
uint64_t ParseCounter(const CasStore::Entry& e) {
  if (!e.present || e.value.size() < 3 || e.value.compare(0, 2, "1 ") != 0) return 0;
  return std::strtoull(e.value.c_str() + 2, nullptr, 10);
}

// Raises entry `name` to `value` unless it already holds as much.
Status RaiseCounter(CasStore* store, const std::string& name, uint64_t value) {
  for (int i = 0; i < kCasAttempts; ++i) {
    CasStore::Entry e;
    Status s = store->Get(name, &e);
    if (!s.ok()) return s;
    if (e.present && ParseCounter(e) >= value) return Status::OK();
    const std::string v = "1 " + std::to_string(value);
    s = e.present ? store->Update(name, v, e.rev) : store->Create(name, v);
    if (!Taken(s)) return s;
  }
  return Status::Unavailable(name + ": written by others all along");
}

}  // namespace

SharedKeyStore::SharedKeyStore(std::shared_ptr<CasStore> store, std::string store_key, std::string scope)
    : store_(std::move(store)), key_(std::move(store_key)), scope_(std::move(scope)) {}

std::string SharedKeyStore::BlockEntry(const std::string& scope, uint64_t block) {
  return "b." + scope + "." + std::to_string(block);
}

std::string SharedKeyStore::SealBlock(const std::string& store_key, const std::string& entry, const Block& b) {
  std::string plain(1, '\x01');
  plain.reserve(1 + kKeysPerBlock * (1 + kKeyBytes));
  for (const std::string& k : b.keys) {
    plain.push_back(k.empty() ? '\x00' : '\x01');
    plain.append(k.empty() ? std::string(kKeyBytes, '\0') : k);
  }
  return AeadSeal(store_key, entry, plain);
}

bool SharedKeyStore::OpenBlock(const std::string& store_key, const std::string& entry, const std::string& sealed,
                               Block* b) {
  auto plain = AeadOpen(store_key, entry, sealed);
  if (!plain || plain->size() != 1 + kKeysPerBlock * (1 + kKeyBytes) || (*plain)[0] != '\x01') return false;
  for (size_t i = 0; i < kKeysPerBlock; ++i) {
    const size_t at = 1 + i * (1 + kKeyBytes);
    const char flag = (*plain)[at];
    if (flag != '\x00' && flag != '\x01') return false;
    b->keys[i] = flag == '\x01' ? plain->substr(at + 1, kKeyBytes) : std::string();
  }
  return true;
}

Status SharedKeyStore::Open(std::shared_ptr<CasStore> store, std::string store_key, std::string scope,
                            std::unique_ptr<SharedKeyStore>* out) {
  if (store_key.size() != kAeadKeyBytes) return Status::InvalidArgument("shared key store: the store key is 32 bytes");
  if (!ValidScope(scope)) return Status::InvalidArgument("shared key store: bad scope '" + scope + "'");
  std::unique_ptr<SharedKeyStore> ks(new SharedKeyStore(std::move(store), std::move(store_key), std::move(scope)));
  Status s = ks->LoadHashKey();
  if (!s.ok()) return s;
  CasStore::Entry hint;
  s = ks->store_->Get("n." + ks->scope_, &hint);
  if (!s.ok()) return s;
  ks->hint_ = ParseCounter(hint);
  *out = std::move(ks);
  return Status::OK();
}

Status SharedKeyStore::LoadHashKey() {
  const std::string name = "h." + scope_;
  for (int i = 0; i < kCasAttempts; ++i) {
    CasStore::Entry e;
    Status s =
        i == 0 ? store_->Get(name, &e) : store_->GetLatest(name, &e);  // after a refused create
    if (!s.ok()) return s;
    if (e.present) {
      auto plain = AeadOpen(key_, name, e.value);
      if (!plain || plain->size() != 1 + kKeyBytes || (*plain)[0] != '\x01')
        return Status::Corruption("shared key store " + scope_ + ": its entries do not open with this store key");
      hash_key_ = plain->substr(1);
      return Status::OK();
    }
    s = store_->Create(name, AeadSeal(key_, name, std::string(1, '\x01') + NewKeyBytes()));
    if (!s.ok() && !Taken(s)) return s;
  }
  return Status::Unavailable("shared key store " + scope_ + ": no hash secret");
}

Status SharedKeyStore::NewBlock() {
  uint64_t b = hint_;
  for (int misses = 0;; ++misses) {
    if (misses >= kMaxBlockMisses)
      return Status::Unavailable("shared key store " + scope_ + ": no block could be made");
    if (misses > 0 && misses % kMissesBeforeHint == 0) {
      CasStore::Entry hint;
      Status s = store_->Get("n." + scope_, &hint);
      if (!s.ok()) return s;
      b = std::max(b, ParseCounter(hint));
    }
    Block fresh;
    std::string drawn(kKeysPerBlock * kKeyBytes, '\0');  // one draw of the generator
    RandomBytes(reinterpret_cast<uint8_t*>(drawn.data()), drawn.size());
    for (size_t i = 0; i < kKeysPerBlock; ++i)
      fresh.keys[i] = drawn.substr(i * kKeyBytes, kKeyBytes);
    Wipe(drawn.data(), drawn.size());
    const std::string entry = BlockEntry(scope_, b);
    Status s = store_->Create(entry, SealBlock(key_, entry, fresh));
    if (Taken(s)) {
      CasStore::Entry there;  // taken indeed, or a refusal that reads like it
      Status g = store_->GetLatest(entry, &there);
      if (!g.ok()) return g;
      if (!there.present) return Status::Unavailable("shared key store " + scope_ + ": " + s.ToString());
      ++b;
      continue;
    }
    if (!s.ok()) return s;
    mine_ = std::move(fresh);
    current_ = b;
    next_slot_ = 0;
    has_current_ = true;
    hint_ = b + 1;
    // Best effort: a stale hint costs the next instance a few misses.
    (void)RaiseCounter(store_.get(), "n." + scope_, hint_);
    return Status::OK();
  }
}

Status SharedKeyStore::NewKey(uint64_t* no, std::string* key) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!has_current_ || next_slot_ == kKeysPerBlock) {
    Status s = NewBlock();
    if (!s.ok()) return s;
  }
  const uint64_t slot = next_slot_++;
  *no = current_ * kKeysPerBlock + slot + 1;
  *key = mine_.keys[slot];
  return Status::OK();
}

const SharedKeyStore::Block* SharedKeyStore::CachedBlock(uint64_t block) const {
  if (has_current_ && block == current_) return &mine_;
  auto it = cache_.find(block);
  return it == cache_.end() ? nullptr : &it->second;
}

KeyStore::Found SharedKeyStore::FetchBlock(uint64_t block, Block* b, bool* from_leader) const {
  const std::string entry = BlockEntry(scope_, block);
  int64_t pause_ms = 50;
  for (int attempt = 0;; ++attempt) {
    // From the leader: a replica that lags may lack a block made a moment
    // ago, or still hold one as it was before its keys were destroyed.
    CasStore::Entry e;
    if (store_->GetLatest(entry, &e).ok()) {
      *from_leader = true;
      if (!e.present) return Found::kMissing;
      return OpenBlock(key_, entry, e.value, b) ? Found::kKey : Found::kError;
    }
    // No leader now (an election): a replica's copy of a block it holds,
    // rather than holding every append and read up until one is elected.
    // Its absence proves nothing, and the copy is not kept (Get).
    if (store_->Get(entry, &e).ok() && e.present) {
      *from_leader = false;
      return OpenBlock(key_, entry, e.value, b) ? Found::kKey : Found::kError;
    }
    if (attempt + 1 == kReadAttempts) return Found::kError;
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    pause_ms = std::min<int64_t>(pause_ms * 2, 1000);
  }
}

KeyStore::Found SharedKeyStore::Get(uint64_t no, std::string* key) const {
  if (no == 0) return Found::kMissing;
  const uint64_t block = (no - 1) / kKeysPerBlock;
  auto answer = [&](const Block& b) {
    const std::string& k = b.keys[(no - 1) % kKeysPerBlock];
    if (k.empty()) return Found::kDestroyed;
    *key = k;
    return Found::kKey;
  };
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (const Block* b = CachedBlock(block)) return answer(*b);
  }
  Block fetched;  // read without the lock: NewKey does not wait on it
  bool from_leader = false;
  const Found fetch = FetchBlock(block, &fetched, &from_leader);
  if (fetch != Found::kKey) return fetch;
  std::lock_guard<std::mutex> lk(mu_);
  if (const Block* b = CachedBlock(block)) return answer(*b);  // a Destroy meanwhile is newer
  if (!from_leader) return answer(fetched);  // a replica's, perhaps behind an erasure: once
  if (cache_.size() >= kCachedBlocks) cache_.clear();
  return answer(cache_.emplace(block, std::move(fetched)).first->second);
}

Status SharedKeyStore::DestroyInBlock(uint64_t block, const std::vector<uint64_t>& slots) {
  const std::string entry = BlockEntry(scope_, block);
  for (int i = 0; i < kCasAttempts; ++i) {
    CasStore::Entry e;
    Status s = store_->GetLatest(entry, &e);  // a lagging "absent" would keep the keys
    if (!s.ok()) return s;
    if (!e.present) return Status::OK();  // never made
    Block b;
    if (!OpenBlock(key_, entry, e.value, &b))
      return Status::Corruption("shared key store: " + entry + " does not open with the store key");
    bool changed = false;
    for (uint64_t slot : slots) {
      changed = changed || !b.keys[slot].empty();
      b.keys[slot].clear();
    }
    if (changed) s = store_->Update(entry, SealBlock(key_, entry, b), e.rev);
    if (Taken(s)) continue;
    if (!s.ok()) return s;
    std::lock_guard<std::mutex> lk(mu_);
    if (has_current_ && block == current_) {
      for (uint64_t slot : slots) mine_.keys[slot].clear();
    } else {
      if (cache_.size() >= kCachedBlocks) cache_.clear();
      cache_[block] = std::move(b);  // as the store now holds it
    }
    return Status::OK();
  }
  return Status::Unavailable("shared key store: " + entry + " written by others all along");
}

Status SharedKeyStore::Destroy(const std::vector<uint64_t>& nos) {
  std::map<uint64_t, std::vector<uint64_t>> by_block;
  for (uint64_t no : nos)
    if (no != 0) by_block[(no - 1) / kKeysPerBlock].push_back((no - 1) % kKeysPerBlock);
  for (const auto& [block, slots] : by_block) {
    Status s = DestroyInBlock(block, slots);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

uint64_t SharedKeyStore::ErasuresThrough() const {
  CasStore::Entry e;
  if (!store_->Get("e." + scope_, &e).ok()) return 0;
  return ParseCounter(e);
}

Status SharedKeyStore::SetErasuresThrough(uint64_t seq) {
  return RaiseCounter(store_.get(), "e." + scope_, seq);
}

}  // namespace dfm
