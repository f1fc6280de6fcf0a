#include "storage/key_store.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <array>
#include <atomic>
#include <bitset>
#include <cstring>
#include <filesystem>
#include <optional>
#include <shared_mutex>
#include <unordered_map>

#include "util/coding.h"
#include "util/crypto.h"

namespace dfm {
namespace {

constexpr size_t kKeyBytes = 32;
constexpr char kVersionKey[] = "m:version";
constexpr char kNextKey[] = "m:next";
constexpr char kHashKey[] = "m:hash";
constexpr char kErasuresKey[] = "m:erasures";
// The cache holds keys by block: numbers [b * kBlockKeys, (b + 1) *
// kBlockKeys) are block b. A key read from disk brings its whole block
// (one seek): keys are made in order as the log grows, so a reader going
// through the log (a rebuild, `dfm log dump`) asks for the others next.
constexpr uint64_t kBlockKeys = 256;
// Blocks kept in memory (65,536 keys, 2 MiB); past this the cache starts over.
constexpr size_t kCacheBlocks = 256;

// One block of keys: those known here marked present, those known to be
// destroyed marked so. Its key bytes are wiped when it goes, and a key's
// when it is destroyed.
struct KeyBlock {
  std::bitset<kBlockKeys> present, destroyed;
  std::array<std::array<char, kKeyBytes>, kBlockKeys> keys;

  KeyBlock() = default;
  KeyBlock(const KeyBlock&) = delete;
  KeyBlock& operator=(const KeyBlock&) = delete;
  ~KeyBlock() { Wipe(keys.data(), sizeof(keys)); }

  void Put(uint64_t no, std::string_view key) {
    present.set(no % kBlockKeys);
    std::memcpy(keys[no % kBlockKeys].data(), key.data(), kKeyBytes);
  }
  void Destroyed(uint64_t no) {
    present.reset(no % kBlockKeys);
    destroyed.set(no % kBlockKeys);
    Wipe(keys[no % kBlockKeys].data(), kKeyBytes);
  }
};

std::string RowKey(char kind, uint64_t no) {
  std::string k(1, kind);
  PutFixed64BE(&k, no);
  return k;
}

std::string NewSecret() {
  std::string k(kKeyBytes, '\0');
  RandomBytes(reinterpret_cast<unsigned char*>(k.data()), k.size());
  return k;
}

Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::OK();
  if (s.IsNotFound()) return Status::NotFound(s.ToString());
  if (s.IsCorruption()) return Status::Corruption(s.ToString());
  return Status::IOError(s.ToString());
}

}  // namespace

std::string KeyStorePath(const std::string& data_dir) { return data_dir + "/keys"; }

struct RocksDbKeyStore::Impl {
  std::unique_ptr<rocksdb::DB> db;
  bool read_only = false;
  std::string secondary_path;  // read-only: the secondary's own files (removed at the end)
  std::mutex catch_up_mu;
  std::mutex writer_mu;  // NewKey, Destroy, SetErasuresThrough
  uint64_t pool_next = 0, pool_end = 0;
  mutable std::shared_mutex cache_mu;
  mutable std::unordered_map<uint64_t, std::unique_ptr<KeyBlock>> cache;  // by block number
  std::string hash_key;
  std::atomic<uint64_t> erasures{0};

  // Bumped by every Destroy (under cache_mu): keys read from disk before
  // it are not remembered after it.
  mutable uint64_t destroys = 0;

  // Key `no` as the cache knows it (into *key when it has the key);
  // kMissing when it does not know. REQUIRES: cache_mu held (shared is
  // enough).
  Found Cached(uint64_t no, std::string* key) const {
    auto it = cache.find(no / kBlockKeys);
    if (it == cache.end()) return Found::kMissing;
    const KeyBlock& block = *it->second;
    if (block.destroyed.test(no % kBlockKeys)) return Found::kDestroyed;
    if (!block.present.test(no % kBlockKeys)) return Found::kMissing;
    key->assign(block.keys[no % kBlockKeys].data(), kKeyBytes);
    return Found::kKey;
  }

  // Remembers the keys `got` holds of block `b` unless a Destroy came
  // since `seen` (`destroys` before they were read; nullopt: new keys,
  // which nobody can have destroyed).
  void Remember(uint64_t b, std::unique_ptr<KeyBlock> got, std::optional<uint64_t> seen) const {
    std::unique_lock<std::shared_mutex> lk(cache_mu);
    if (seen && destroys != *seen) return;
    auto it = cache.find(b);
    if (it == cache.end()) {
      if (cache.size() >= kCacheBlocks) cache.clear();
      cache.emplace(b, std::move(got));
      return;
    }
    KeyBlock& have = *it->second;
    for (size_t i = 0; i < kBlockKeys; ++i)
      if (got->present.test(i) && !have.destroyed.test(i)) have.keys[i] = got->keys[i];
    have.destroyed |= got->destroyed;
    have.present = (have.present | got->present) & ~have.destroyed;
  }

  // The block that holds key `no`, from disk (a bounded seek for its keys
  // and one for its destroyed numbers), into the cache; key `no` into
  // *key when it is one. kMissing: never made (or made since a secondary
  // last caught up).
  Found Read(uint64_t no, std::string* key, uint64_t seen) const {
    const uint64_t b = no / kBlockKeys;
    auto got = std::make_unique<KeyBlock>();
    for (char kind : {'k', 'd'}) {
      const std::string first = RowKey(kind, b * kBlockKeys);
      const std::string end = RowKey(kind, (b + 1) * kBlockKeys);
      const rocksdb::Slice upper(end);
      rocksdb::ReadOptions ro;
      ro.iterate_upper_bound = &upper;
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
      for (it->Seek(first); it->Valid(); it->Next()) {
        const rocksdb::Slice k = it->key();
        if (k.size() != first.size()) continue;
        const uint64_t n = DecodeFixed64BE(k.data() + 1);
        if (kind == 'd') {
          got->Destroyed(n);
        } else if (it->value().size() == kKeyBytes) {
          got->Put(n, it->value().ToStringView());
        }
      }
    }
    Found found = Found::kMissing;
    if (got->destroyed.test(no % kBlockKeys)) {
      found = Found::kDestroyed;
    } else if (got->present.test(no % kBlockKeys)) {
      key->assign(got->keys[no % kBlockKeys].data(), kKeyBytes);
      found = Found::kKey;
    }
    if (got->present.any() || got->destroyed.any()) Remember(b, std::move(got), seen);
    return found;
  }
};

RocksDbKeyStore::RocksDbKeyStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RocksDbKeyStore::~RocksDbKeyStore() {
  if (impl_->db) (void)impl_->db->Close();
  impl_->db.reset();
  if (!impl_->secondary_path.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(impl_->secondary_path, ec);
  }
}

Status RocksDbKeyStore::Open(const std::string& path, bool read_only,
                             std::unique_ptr<RocksDbKeyStore>* out) {
  auto impl = std::make_unique<Impl>();
  impl->read_only = read_only;
  rocksdb::Options o;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status rs;
  if (read_only) {
    std::error_code ec;
    if (!std::filesystem::exists(path + "/CURRENT", ec))
      return Status::NotFound("no key store at " + path);
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "dfm-keys-secondary-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) return Status::IOError("cannot make a temporary directory");
    impl->secondary_path = tmpl;
    o.max_open_files = -1;  // a secondary must keep every file open
    rs = rocksdb::DB::OpenAsSecondary(o, path, tmpl, &raw);
  } else {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    ::chmod(path.c_str(), 0700);
    o.create_if_missing = true;
    o.keep_log_file_num = 2;
    o.max_manifest_file_size = 4 << 20;
    rs = rocksdb::DB::Open(o, path, &raw);
  }
  if (!rs.ok()) return Status::IOError("key store " + path + ": " + rs.ToString());
  impl->db.reset(raw);
  std::string v;
  rocksdb::Status g = impl->db->Get(rocksdb::ReadOptions(), kVersionKey, &v);
  if (g.ok() && v != "1") return Status::Corruption("key store " + path + ": unknown version " + v);
  if (!g.ok() && !g.IsNotFound()) return FromRocks(g);
  if (g.IsNotFound()) {
    if (read_only) return Status::NotFound("key store " + path + " is empty");
    rocksdb::WriteBatch wb;
    wb.Put(kVersionKey, "1");
    wb.Put(kHashKey, NewSecret());
    wb.Put(kNextKey, EncodeFixed64BE(1));
    wb.Put(kErasuresKey, EncodeFixed64BE(0));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    Status s = FromRocks(impl->db->Write(wo, &wb));
    if (!s.ok()) return s;
  }
  Status s = FromRocks(impl->db->Get(rocksdb::ReadOptions(), kHashKey, &impl->hash_key));
  if (s.ok() && impl->hash_key.size() != kKeyBytes) s = Status::Corruption("key store: bad hash key");
  if (!s.ok()) return s;
  if (!impl->db->Get(rocksdb::ReadOptions(), kNextKey, &v).ok() || v.size() != 8)
    return Status::Corruption("key store: bad m:next");
  impl->pool_next = impl->pool_end = DecodeFixed64BE(v.data());
  if (!impl->db->Get(rocksdb::ReadOptions(), kErasuresKey, &v).ok() || v.size() != 8)
    return Status::Corruption("key store: bad m:erasures");
  impl->erasures = DecodeFixed64BE(v.data());
  out->reset(new RocksDbKeyStore(std::move(impl)));
  return Status::OK();
}

Status RocksDbKeyStore::NewKey(uint64_t* no, std::string* key) {
  Impl& m = *impl_;
  if (m.read_only) return Status::Unavailable("key store opened read-only");
  std::lock_guard<std::mutex> lk(m.writer_mu);
  if (m.pool_next == m.pool_end) {
    rocksdb::WriteBatch wb;
    const uint64_t end = m.pool_end + kKeysPerWrite;
    std::vector<std::string> made;
    for (uint64_t n = m.pool_end; n < end; ++n) {
      made.push_back(NewSecret());
      wb.Put(RowKey('k', n), made.back());
    }
    wb.Put(kNextKey, EncodeFixed64BE(end));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    Status s = FromRocks(m.db->Write(wo, &wb));
    if (!s.ok()) return s;
    std::unique_ptr<KeyBlock> block;
    for (uint64_t n = m.pool_end; n < end; ++n) {
      if (!block) block = std::make_unique<KeyBlock>();
      block->Put(n, made[n - m.pool_end]);
      if ((n + 1) % kBlockKeys == 0 || n + 1 == end)
        m.Remember(n / kBlockKeys, std::move(block), std::nullopt);
    }
    m.pool_end = end;
  }
  *no = m.pool_next++;
  return Get(*no, key) == Found::kKey ? Status::OK()
                                      : Status::Corruption("key store lost a key it just made");
}

KeyStore::Found RocksDbKeyStore::Get(uint64_t no, std::string* key) const {
  Impl& m = *impl_;
  uint64_t seen = 0;
  {
    std::shared_lock<std::shared_mutex> lk(m.cache_mu);
    const Found cached = m.Cached(no, key);
    if (cached != Found::kMissing) return cached;
    seen = m.destroys;
  }
  const Found found = m.Read(no, key, seen);
  if (found != Found::kMissing || !m.read_only) return found;
  // Made (or destroyed) by the service since this secondary last caught up?
  std::lock_guard<std::mutex> lk(m.catch_up_mu);
  if (!m.db->TryCatchUpWithPrimary().ok()) return Found::kMissing;
  return m.Read(no, key, seen);
}

Status RocksDbKeyStore::Destroy(const std::vector<uint64_t>& nos) {
  Impl& m = *impl_;
  if (m.read_only) return Status::Unavailable("key store opened read-only");
  if (nos.empty()) return Status::OK();
  std::lock_guard<std::mutex> lk(m.writer_mu);
  rocksdb::WriteBatch wb;
  for (uint64_t n : nos) {
    wb.Delete(RowKey('k', n));
    wb.Put(RowKey('d', n), "");
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  Status s = FromRocks(m.db->Write(wo, &wb));
  if (!s.ok()) return s;
  {
    std::unique_lock<std::shared_mutex> clk(m.cache_mu);
    for (uint64_t n : nos) {
      auto it = m.cache.find(n / kBlockKeys);
      if (it != m.cache.end()) it->second->Destroyed(n);
    }
    m.destroys++;
  }
  // The deletions only hide the keys: flush them, then rewrite every file
  // that still holds a destroyed key's bytes, down to the bottom level.
  s = FromRocks(m.db->Flush(rocksdb::FlushOptions()));
  if (!s.ok()) return s;
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  std::string from = RowKey('k', 0), to = RowKey('l', 0);
  rocksdb::Slice a(from), b(to);
  return FromRocks(m.db->CompactRange(co, &a, &b));
}

Status RocksDbKeyStore::ReserveThrough(uint64_t no) {
  Impl& m = *impl_;
  if (m.read_only) return Status::Unavailable("key store opened read-only");
  std::lock_guard<std::mutex> lk(m.writer_mu);
  if (no < m.pool_next) return Status::OK();
  rocksdb::WriteOptions wo;
  wo.sync = true;
  Status s = FromRocks(m.db->Put(wo, kNextKey, EncodeFixed64BE(no + 1)));
  if (s.ok()) m.pool_next = m.pool_end = no + 1;
  return s;
}

Status RocksDbKeyStore::WithDb(const std::function<Status(rocksdb::DB*)>& fn) const {
  if (!impl_->db) return Status::Unavailable("key store closed");
  return fn(impl_->db.get());
}

std::string RocksDbKeyStore::HashKey() const { return impl_->hash_key; }
uint64_t RocksDbKeyStore::ErasuresThrough() const { return impl_->erasures.load(); }

Status RocksDbKeyStore::SetErasuresThrough(uint64_t seq) {
  Impl& m = *impl_;
  if (m.read_only) return Status::Unavailable("key store opened read-only");
  std::lock_guard<std::mutex> lk(m.writer_mu);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  Status s = FromRocks(m.db->Put(wo, kErasuresKey, EncodeFixed64BE(seq)));
  if (s.ok()) m.erasures = seq;
  return s;
}

Status OpenToolKeys(const std::string& data_dir, bool read_only, std::shared_ptr<KeyStore>* out) {
  std::unique_ptr<RocksDbKeyStore> ks;
  Status s = RocksDbKeyStore::Open(KeyStorePath(data_dir), read_only, &ks);
  if (read_only && s.IsNotFound()) {
    out->reset();
    return Status::OK();
  }
  if (!s.ok()) return s;
  *out = std::move(ks);
  return Status::OK();
}

MemoryKeyStore::MemoryKeyStore() : hash_key_(NewSecret()) {}

Status MemoryKeyStore::NewKey(uint64_t* no, std::string* key) {
  std::lock_guard<std::mutex> lk(mu_);
  if (fail_) return Status::IOError("key store: injected failure");
  *no = next_++;
  *key = keys_[*no] = NewSecret();
  return Status::OK();
}

KeyStore::Found MemoryKeyStore::Get(uint64_t no, std::string* key) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = keys_.find(no);
  if (it != keys_.end()) {
    *key = it->second;
    return Found::kKey;
  }
  return destroyed_.count(no) ? Found::kDestroyed : Found::kMissing;
}

Status MemoryKeyStore::Destroy(const std::vector<uint64_t>& nos) {
  std::lock_guard<std::mutex> lk(mu_);
  for (uint64_t n : nos) {
    keys_.erase(n);
    destroyed_.insert(n);
  }
  return Status::OK();
}

uint64_t MemoryKeyStore::ErasuresThrough() const {
  std::lock_guard<std::mutex> lk(mu_);
  return erasures_;
}

Status MemoryKeyStore::SetErasuresThrough(uint64_t seq) {
  std::lock_guard<std::mutex> lk(mu_);
  erasures_ = seq;
  return Status::OK();
}

void MemoryKeyStore::FailNewKeys(bool fail) {
  std::lock_guard<std::mutex> lk(mu_);
  fail_ = fail;
}

}  // namespace dfm
