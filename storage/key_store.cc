#include "storage/key_store.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <shared_mutex>
#include <unordered_map>

#include "storage/data_dir.h"
#include "storage/key_block.h"
#include "util/coding.h"
#include "util/crypto.h"

namespace dfm {
namespace {

constexpr size_t kKeyBytes = KeyBlock::kKeyBytes;
constexpr char kVersionKey[] = "m:version";
constexpr char kNextKey[] = "m:next";
constexpr char kHashKey[] = "m:hash";
constexpr char kErasuresKey[] = "m:erasures";
// m:version while layout 1's rows are moved into blocks: read as layout 1
// (its rows are whole until the move's last write), moved again by the
// next writer, refused by a build that knows layout 1 only, which would
// not purge the blocks' copies of the keys it destroys.
constexpr char kMovingVersion[] = "moving to 2";
// Numbers [b * kBlockKeys, (b + 1) * kBlockKeys) are block b: one row of
// layout 2, and what the cache holds. A key read from disk brings its
// whole block: keys are made in order as the log grows, so a reader going
// through the log (a rebuild, `dfm log dump`) asks for the others next.
constexpr uint64_t kBlockKeys = KeyBlock::kKeys;
// Blocks kept in memory (65,536 keys, 2 MiB); past this the cache starts over.
constexpr size_t kCacheBlocks = 256;
// Layout 1's rows, moved into blocks when a writer opens the store
// (MigrateToBlocks); read as they are by a read-only store.
constexpr char kV1Key = 'k', kV1Destroyed = 'd';
constexpr char kBlockRow = 'b';

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
  std::string path;
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

  // 1 or 2: the layout the store's rows are in (Open; a read-only store
  // sees the writer move them to 2 when it catches up).
  mutable std::atomic<int> layout{kKeyStoreFormat};

  // Key `no` as the cache knows it (into *key when it has the key);
  // kMissing when it does not know. REQUIRES: cache_mu held (shared is
  // enough).
  Found Cached(uint64_t no, std::string* key) const {
    auto it = cache.find(no / kBlockKeys);
    if (it == cache.end()) return Found::kMissing;
    return Answer(*it->second, no, key);
  }

  static Found Answer(const KeyBlock& block, uint64_t no, std::string* key) {
    if (block.Destroyed(no)) return Found::kDestroyed;
    if (!block.Present(no)) return Found::kMissing;
    key->assign(block.Key(no));
    return Found::kKey;
  }

  // Remembers the keys `got` holds of block `b` unless a Destroy came
  // since `seen` (`destroys` before they were read; nullopt: MakeKeys's
  // blocks, read and written under writer_mu, which keeps Destroy out).
  void Remember(uint64_t b, std::unique_ptr<KeyBlock> got, std::optional<uint64_t> seen) const {
    std::unique_lock<std::shared_mutex> lk(cache_mu);
    if (seen && destroys != *seen) return;
    auto it = cache.find(b);
    if (it == cache.end()) {
      if (cache.size() >= kCacheBlocks) cache.clear();
      cache.emplace(b, std::move(got));
      return;
    }
    it->second->Merge(*got);
  }

  // Block `b` as the store holds it (an empty block when it has no row).
  Status Load(uint64_t b, KeyBlock* got) const {
    if (layout.load() == 1) return LoadV1(b, got);
    std::string row;
    rocksdb::Status g = db->Get(rocksdb::ReadOptions(), RowKey(kBlockRow, b), &row);
    if (g.IsNotFound()) return Status::OK();
    Status s = FromRocks(g);
    if (s.ok() && !got->Decode(row))
      s = Status::Corruption("key store: bad block " + std::to_string(b));
    Wipe(row.data(), row.size());
    return s;
  }

  // Layout 1: a bounded seek for the block's keys and one for its
  // destroyed numbers.
  Status LoadV1(uint64_t b, KeyBlock* got) const {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    for (char kind : {kV1Key, kV1Destroyed}) {
      const std::string first = RowKey(kind, b * kBlockKeys);
      const std::string end = RowKey(kind, (b + 1) * kBlockKeys);
      for (it->Seek(first); it->Valid() && it->key().compare(end) < 0; it->Next()) {
        if (it->key().size() != first.size()) continue;
        const uint64_t n = DecodeFixed64BE(it->key().data() + 1);
        if (kind == kV1Destroyed) {
          got->Destroy(n);
        } else {
          got->Put(n, it->value().ToStringView());
        }
      }
    }
    return FromRocks(it->status());
  }

  // The block that holds key `no`, from disk, into the cache; key `no`
  // into *key when it is one. kMissing: never made (or made since a
  // secondary last caught up). kError: the block could not be read.
  Found Read(uint64_t no, std::string* key, uint64_t seen) const {
    const uint64_t b = no / kBlockKeys;
    auto got = std::make_unique<KeyBlock>();
    if (!Load(b, got.get()).ok()) return Found::kError;
    const Found found = Answer(*got, no, key);
    if (!got->Empty()) Remember(b, std::move(got), seen);
    return found;
  }

  // Layout 1's rows moved into layout 2's blocks, and the version set to
  // 2, in steps a crash may stop anywhere: the version says kMovingVersion
  // first, the blocks are made again from the rows until the last write,
  // which drops the rows and sets the version at once.
  Status MigrateToBlocks();
  // The numbers from the pool's end to the end of its block made (a whole
  // block of kKeysPerWrite once the first is used), in one synced write of
  // the block's row, and handed to the pool. REQUIRES: writer_mu held.
  Status MakeKeys();
  // Flushes, then compacts the blocks' rows down to the bottom level, so
  // that no file keeps an older row (with a key since destroyed).
  Status Purge() const;
};

Status RocksDbKeyStore::Impl::MakeKeys() {
  const uint64_t b = pool_end / kBlockKeys, end = (b + 1) * kBlockKeys;
  auto block = std::make_unique<KeyBlock>();
  Status s = Load(b, block.get());  // it may hold keys made before
  if (!s.ok()) return s;
  // One draw of the generator for the block (each RAND_bytes call costs
  // ~0.55 us whatever its size: a getpid and the DRBG's own setup).
  std::string drawn((end - pool_end) * kKeyBytes, '\0');
  RandomBytes(reinterpret_cast<unsigned char*>(drawn.data()), drawn.size());
  for (uint64_t n = pool_end; n < end; ++n)
    block->Put(n, std::string_view(drawn).substr((n - pool_end) * kKeyBytes, kKeyBytes));
  Wipe(drawn.data(), drawn.size());
  std::string row = block->Encode();
  rocksdb::WriteBatch wb;
  wb.Put(RowKey(kBlockRow, b), row);
  Wipe(row.data(), row.size());
  wb.Put(kNextKey, EncodeFixed64BE(end));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  s = FromRocks(db->Write(wo, &wb));
  if (!s.ok()) return s;
  Remember(b, std::move(block), std::nullopt);
  pool_end = end;
  return Status::OK();
}

Status RocksDbKeyStore::Impl::Purge() const {
  Status s = FromRocks(db->Flush(rocksdb::FlushOptions()));
  if (!s.ok()) return s;
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  return FromRocks(db->CompactRange(co, nullptr, nullptr));
}

Status RocksDbKeyStore::Impl::MigrateToBlocks() {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  Status s = FromRocks(db->Put(wo, kVersionKey, kMovingVersion));
  if (!s.ok()) return s;
  // Every block layout 1 has a row in, from its keys' and its destroyed
  // numbers' rows.
  std::set<uint64_t> blocks;
  {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    for (char kind : {kV1Destroyed, kV1Key}) {
      const std::string first(1, kind), end(1, static_cast<char>(kind + 1));
      for (it->Seek(first); it->Valid() && it->key().compare(end) < 0; it->Next())
        if (it->key().size() == 9)
          blocks.insert(DecodeFixed64BE(it->key().data() + 1) / kBlockKeys);
    }
    s = FromRocks(it->status());
    if (!s.ok()) return s;
  }
  constexpr size_t kBlocksPerWrite = 64;  // ~540 KiB a write
  rocksdb::WriteBatch wb;
  size_t in_batch = 0;
  for (uint64_t b : blocks) {
    KeyBlock block;
    s = LoadV1(b, &block);
    if (!s.ok()) return s;
    std::string row = block.Encode();
    wb.Put(RowKey(kBlockRow, b), row);
    Wipe(row.data(), row.size());
    if (++in_batch < kBlocksPerWrite) continue;
    s = FromRocks(db->Write(rocksdb::WriteOptions(), &wb));
    if (!s.ok()) return s;
    wb.Clear();
    in_batch = 0;
  }
  // The last write, synced (and with it every one before): the rows of
  // layout 1 go, and the version says 2.
  wb.DeleteRange(std::string(1, kV1Destroyed), std::string(1, kV1Destroyed + 1));
  wb.DeleteRange(std::string(1, kV1Key), std::string(1, kV1Key + 1));
  wb.Put(kVersionKey, std::to_string(kKeyStoreFormat));
  s = FromRocks(db->Write(wo, &wb));
  if (!s.ok()) return s;
  layout = kKeyStoreFormat;
  return Purge();
}

RocksDbKeyStore::RocksDbKeyStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RocksDbKeyStore::~RocksDbKeyStore() {
  if (impl_->db) (void)impl_->db->Close();
  impl_->db.reset();
  if (!impl_->read_only && !impl_->path.empty()) KeepOwnersFiles(impl_->path);
  if (!impl_->secondary_path.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(impl_->secondary_path, ec);
  }
}

Status RocksDbKeyStore::Open(const std::string& path, bool read_only,
                             std::unique_ptr<RocksDbKeyStore>* out) {
  auto impl = std::make_unique<Impl>();
  impl->read_only = read_only;
  impl->path = path;
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
  const bool layout1 = g.ok() && (v == "1" || v == kMovingVersion);
  if (g.ok() && !layout1 && v != "2")
    return Status::Corruption("key store " + path + ": unknown version " + v);
  if (!g.ok() && !g.IsNotFound()) return FromRocks(g);
  if (g.ok()) impl->layout = layout1 ? 1 : 2;
  if (layout1 && !read_only) {
    Status s = impl->MigrateToBlocks();
    if (!s.ok())
      return Status::IOError("key store " + path + ": moving to layout 2: " + s.ToString());
  }
  if (g.IsNotFound()) {
    if (read_only) return Status::NotFound("key store " + path + " is empty");
    rocksdb::WriteBatch wb;
    wb.Put(kVersionKey, std::to_string(kKeyStoreFormat));
    wb.Put(kHashKey, NewSecret());
    wb.Put(kNextKey, EncodeFixed64BE(1));
    wb.Put(kErasuresKey, EncodeFixed64BE(0));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    Status s = FromRocks(impl->db->Write(wo, &wb));
    if (!s.ok()) return s;
  }
  Status s = FromRocks(impl->db->Get(rocksdb::ReadOptions(), kHashKey, &impl->hash_key));
  if (s.ok() && impl->hash_key.size() != kKeyBytes)
    s = Status::Corruption("key store: bad hash key");
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
  for (;;) {
    if (m.pool_next == m.pool_end) {
      Status s = m.MakeKeys();
      if (!s.ok()) return s;
    }
    *no = m.pool_next++;
    switch (Get(*no, key)) {
      case Found::kKey:
        return Status::OK();
      case Found::kDestroyed:
        // Destroyed before it was made (an erasure carried out again on a
        // store restored from before the key was made): never handed out.
        continue;
      case Found::kError:
        return Status::IOError("key store: key " + std::to_string(*no) + " could not be read");
      case Found::kMissing:
        return Status::Corruption("key store lost a key it just made");
    }
  }
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
  if (!m.db->TryCatchUpWithPrimary().ok()) return Found::kError;
  std::string v;  // the service may have moved the rows to layout 2 since
  if (m.layout.load() == 1 && m.db->Get(rocksdb::ReadOptions(), kVersionKey, &v).ok() && v == "2")
    m.layout = 2;
  return m.Read(no, key, seen);
}

Status RocksDbKeyStore::Destroy(const std::vector<uint64_t>& nos) {
  Impl& m = *impl_;
  if (m.read_only) return Status::Unavailable("key store opened read-only");
  if (nos.empty()) return Status::OK();
  std::lock_guard<std::mutex> lk(m.writer_mu);
  std::map<uint64_t, std::vector<uint64_t>> by_block;
  for (uint64_t n : nos) by_block[n / kBlockKeys].push_back(n);
  rocksdb::WriteBatch wb;
  for (const auto& [b, in_block] : by_block) {
    KeyBlock block;
    Status s = m.Load(b, &block);
    if (!s.ok()) return s;
    for (uint64_t n : in_block) block.Destroy(n);
    std::string row = block.Encode();
    wb.Put(RowKey(kBlockRow, b), row);
    Wipe(row.data(), row.size());
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  Status s = FromRocks(m.db->Write(wo, &wb));
  if (!s.ok()) return s;
  {
    std::unique_lock<std::shared_mutex> clk(m.cache_mu);
    for (uint64_t n : nos) {
      auto it = m.cache.find(n / kBlockKeys);
      if (it != m.cache.end()) it->second->Destroy(n);
    }
    m.destroys++;
  }
  // The new rows only hide the old ones: flush them, then rewrite every
  // file that still holds a destroyed key's bytes, down to the bottom level.
  return m.Purge();
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
  if (!read_only)  // a tool writes only where the service's log is
    if (Status found = FindLogAt(data_dir); !found.ok()) return found;
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
  do {
    *no = next_++;
  } while (destroyed_.count(*no) != 0);  // destroyed before it was made: never handed out
  *key = keys_[*no] = NewSecret();
  return Status::OK();
}

KeyStore::Found MemoryKeyStore::Get(uint64_t no, std::string* key) const {
  std::lock_guard<std::mutex> lk(mu_);
  ++gets_;
  if (fail_gets_ || (fail_gets_of_ != 0 && no == fail_gets_of_)) return Found::kError;
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

void MemoryKeyStore::FailGets(bool fail) {
  std::lock_guard<std::mutex> lk(mu_);
  fail_gets_ = fail;
}

void MemoryKeyStore::FailGetsOf(uint64_t no) {
  std::lock_guard<std::mutex> lk(mu_);
  fail_gets_of_ = no;
}

uint64_t MemoryKeyStore::Gets() const {
  std::lock_guard<std::mutex> lk(mu_);
  return gets_;
}

}  // namespace dfm
