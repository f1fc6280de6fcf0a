// SharedKeyStore: the KeyStore (storage/key_store.h) of a log that several
// processes write or read, kept in a CasStore they share (cluster mode: a
// partition's keys in the NATS bucket DFM_SEAL, docs/scale-out.md). Every
// value that holds a key is sealed with a store key (cluster.state_key), so
// the shared store never holds one in clear.
//
// Keys are made 256 at a time as one block entry, created only if absent:
// a block belongs to the instance that created it, so two instances never
// hand out the same number, and a key is durable in the shared store before
// any record it seals is written. A block left part-used (a restart, a
// fenced writer) leaves its other numbers unused.
//
// Entries of scope S (grammar, version byte 1):
//   "b." S "." block      -> AeadSeal(store key, entry, %x01 256*slot)
//        slot = %x01 key:32 (live) | %x00 zero:32 (destroyed);
//        slot i of block b is key number b*256 + i + 1
//   "h." S                -> AeadSeal(store key, entry, %x01 hash secret:32)
//   "e." S                -> "1 " decimal     ErasuresThrough
//   "n." S                -> "1 " decimal     a hint: no block below it is free
// Destroy rewrites a block (compare-and-set on its revision) with the
// slots zeroed; the shared store keeps one revision per entry (DFM_SEAL's
// history is 1), so the older one, with the key (sealed), is removed from
// its view; NATS's files may keep its bytes until they compact.
//
// Get answers from a bounded cache of the blocks read: a key destroyed by
// another instance may still be answered by one that read its block
// before. Only one instance destroys keys of a scope (the partition's
// runner); the others read a block after it was destroyed, or make their
// own. Blocks are read from the store's leader (CasStore::GetLatest), not
// from a replica that may lag behind the node that made a block or
// destroyed its keys; its "absent" answers kMissing. While the leader does
// not answer (an election), a replica's copy of a block is used for that
// read (not cached), never its absence. A store that does not answer is
// asked again for 15.5 s or more (~75 s over NATS, each ask waiting 1.5
// s) before Get answers kError (sealing then fails its append, reading
// fails). Destroy reads its blocks from the leader only.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "storage/cas_store.h"
#include "storage/key_store.h"

namespace dfm {

inline constexpr int kSharedKeyStoreFormat = 1;

class SharedKeyStore : public KeyStore {
 public:
  static constexpr uint64_t kKeysPerBlock = 256;

  // Opens scope `scope` ([A-Za-z0-9_-], e.g. "p3") of `store`, making its
  // hash secret when it has none. `store_key`: 32 bytes. InvalidArgument
  // for a bad key or scope; Corruption when the scope's entries do not
  // open with this key (another cluster.state_key).
  static Status Open(std::shared_ptr<CasStore> store, std::string store_key, std::string scope,
                     std::unique_ptr<SharedKeyStore>* out);

  Status NewKey(uint64_t* no, std::string* key) override;
  Found Get(uint64_t no, std::string* key) const override;
  Status Destroy(const std::vector<uint64_t>& nos) override;
  std::string HashKey() const override { return hash_key_; }
  uint64_t ErasuresThrough() const override;
  Status SetErasuresThrough(uint64_t seq) override;

  // The pure parts, for tests and tools.
  static std::string BlockEntry(const std::string& scope, uint64_t block);
  struct Block {
    std::array<std::string, kKeysPerBlock> keys;  // empty: destroyed
  };
  static std::string SealBlock(const std::string& store_key, const std::string& entry, const Block& b);
  static bool OpenBlock(const std::string& store_key, const std::string& entry, const std::string& sealed,
                        Block* b);

 private:
  SharedKeyStore(std::shared_ptr<CasStore> store, std::string store_key, std::string scope);
  Status LoadHashKey();
  // Creates the next free block and makes it current. REQUIRES: mu_ held.
  Status NewBlock();
  // The block from the cache; nullptr when not there. REQUIRES: mu_ held.
  const Block* CachedBlock(uint64_t block) const;
  // The block from the store's leader (a replica's copy while it does not
  // answer: *from_leader false), asked again until one answers: kKey (*b),
  // kMissing when the leader has no such block, kError when none answers
  // or the block does not open.
  Found FetchBlock(uint64_t block, Block* b, bool* from_leader) const;
  Status DestroyInBlock(uint64_t block, const std::vector<uint64_t>& slots);

  const std::shared_ptr<CasStore> store_;
  const std::string key_, scope_;
  std::string hash_key_;  // set by Open

  mutable std::mutex mu_;
  bool has_current_ = false;  // GUARDED_BY(mu_), and the three below
  uint64_t current_ = 0;      // the block this instance hands keys out of
  Block mine_;                // its keys
  uint64_t next_slot_ = 0;    // the next slot of it to hand out
  uint64_t hint_ = 0;         // no block below it is free, as far as we know
  mutable std::map<uint64_t, Block> cache_;  // GUARDED_BY(mu_)
};

}  // namespace dfm
