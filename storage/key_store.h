// KeyStore: the keys that seal personal data in the log (events/sealing.h,
// docs/privacy.md). Kept apart from the log, in its own directory, so that
// copies of the log alone never hold them: destroying a key here makes
// what it sealed unreadable in every such copy.
//
// Keys are numbered from 1 and never reused. RocksDbKeyStore makes them a
// block of 256 at a time (the first block from 1) in one synced write, so a
// key handed out is durable before any record it seals is written, at one
// sync per 256 keys; numbers made but not handed out before a restart are
// left unused.
//
// Layout (RocksDB, default column family), version under "m:version" = "2":
//   "b" block:u64   -> KeyBlock row    keys block * 256 to block * 256 + 255,
//                                      each live, destroyed (so it reads as
//                                      erased, not as lost) or never made
//                                      (grammar in storage/key_block.h)
//   "m:next"        -> u64             the first number never made
//   "m:hash"        -> 32 bytes        the keyed-hash secret (HashKey)
//   "m:erasures"    -> u64             ErasuresThrough
// Version "1" kept a row per key instead: "k" key_no:u64 -> 32 bytes (live)
// and "d" key_no:u64 -> "" (destroyed). A store opened for writing moves
// them into blocks first (a reader then finds a key's block in one read,
// not in a seek over its rows), under version "moving to 2" until the last
// write of the move; one opened read-only reads them as they are.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "util/status.h"

namespace rocksdb {
class DB;
}

namespace dfm {

// The layout version under "m:version" (above).
inline constexpr int kKeyStoreFormat = 2;

class KeyStore {
 public:
  virtual ~KeyStore() = default;

  // A new key (32 bytes) and its number, durable when this returns.
  virtual Status NewKey(uint64_t* no, std::string* key) = 0;

  // kKey: the key, into *key. kDestroyed: destroyed (what it sealed reads
  // as erased). kMissing: the store holds no such key and never will
  // (never made, or made after a copy of the store was taken). kError: the
  // store could not be read now (I/O, a row that does not decode, a shared
  // store that does not answer): nothing is known, ask again later; sealing
  // fails the append (the sender retries) and reading leaves it sealed.
  enum class Found { kKey, kDestroyed, kMissing, kError };
  virtual Found Get(uint64_t no, std::string* key) const = 0;

  // Destroys the keys: when OK, they are durably gone and no longer in the
  // store's files (RocksDB: their blocks rewritten without them, flushed,
  // and the files that held them compacted). Numbers already destroyed or never made are fine.
  virtual Status Destroy(const std::vector<uint64_t>& nos) = 0;

  // The secret of the keyed hashes that stand in for an erased person's
  // phone and email (sync/erasure.h). Made once; never destroyed.
  virtual std::string HashKey() const = 0;

  // The log position up to which every contact.erased event has been
  // carried out on this store. A store restored from an older copy is
  // behind: the service destroys again what the log says was erased
  // (app/erase.h, ApplyErasures) before it serves.
  virtual uint64_t ErasuresThrough() const = 0;
  virtual Status SetErasuresThrough(uint64_t seq) = 0;
};

// Where a data directory's key store is: "<data_dir>/keys".
std::string KeyStorePath(const std::string& data_dir);

// A data directory's key store for a `dfm` tool. read_only: a secondary
// beside a running service, or null (OK) when the directory has none (a
// log that never sealed). For writing: only where a log is (FindLogAt: a
// tool given another directory must not make one there); created when
// missing; fails (its lock) while the service runs.
Status OpenToolKeys(const std::string& data_dir, bool read_only, std::shared_ptr<KeyStore>* out);

class RocksDbKeyStore : public KeyStore {
 public:
  // Creates `path` (mode 0700) when missing, unless read_only. Read-only
  // (the `dfm` tools beside a running service) opens it as a secondary
  // that catches up with the service's writes when asked for a key it
  // does not have; NotFound when there is no store at `path`.
  static Status Open(const std::string& path, bool read_only, std::unique_ptr<RocksDbKeyStore>* out);
  ~RocksDbKeyStore() override;

  Status NewKey(uint64_t* no, std::string* key) override;
  Found Get(uint64_t no, std::string* key) const override;
  Status Destroy(const std::vector<uint64_t>& nos) override;
  std::string HashKey() const override;
  uint64_t ErasuresThrough() const override;
  Status SetErasuresThrough(uint64_t seq) override;

  static constexpr uint64_t kKeysPerWrite = 256;

  // Numbers up to `no` are never handed out from now on (a restore that
  // destroyed keys a later timeline had made: app/backup.h). Durable.
  Status ReserveThrough(uint64_t no);
  // Runs `fn` on RocksDB's handle (storage/backup.h).
  Status WithDb(const std::function<Status(rocksdb::DB*)>& fn) const;

 private:
  struct Impl;
  explicit RocksDbKeyStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The same contract in memory (tests, the simulation).
class MemoryKeyStore : public KeyStore {
 public:
  MemoryKeyStore();
  Status NewKey(uint64_t* no, std::string* key) override;
  Found Get(uint64_t no, std::string* key) const override;
  Status Destroy(const std::vector<uint64_t>& nos) override;
  std::string HashKey() const override { return hash_key_; }
  uint64_t ErasuresThrough() const override;
  Status SetErasuresThrough(uint64_t seq) override;
  // Test hook: NewKey fails (a full disk) while set.
  void FailNewKeys(bool fail);
  // Test hooks: Get answers kError (a failing disk) while set, or for key
  // `no` alone (a damaged block) until FailGetsOf(0).
  void FailGets(bool fail);
  void FailGetsOf(uint64_t no);
  // Get calls so far.
  uint64_t Gets() const;

 private:
  mutable std::mutex mu_;
  std::map<uint64_t, std::string> keys_;
  std::set<uint64_t> destroyed_;
  uint64_t next_ = 1;
  uint64_t erasures_ = 0;
  bool fail_ = false;
  bool fail_gets_ = false;
  uint64_t fail_gets_of_ = 0;
  mutable uint64_t gets_ = 0;
  std::string hash_key_;
};

}  // namespace dfm
