// SharedKeyStore (storage/shared_key_store.h) over a CasStore in memory:
// the KeyStore contract, shared by instances that each make their own
// blocks, and never a key in clear in the shared store.
#include "storage/shared_key_store.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "storage/memory_event_log.h"

namespace dfm {
namespace {

class SharedKeyStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<SharedKeyStore> OpenStore(const std::string& scope = "p3", std::string key = "") {
    std::unique_ptr<SharedKeyStore> ks;
    EXPECT_TRUE(SharedKeyStore::Open(store_, key.empty() ? key_ : key, scope, &ks).ok());
    return ks;
  }
  MemoryEventLog log_;
  std::shared_ptr<CasStore> store_ = NewLogCasStore(&log_, "seal");
  std::string key_ = std::string(32, '\x07');
};

TEST_F(SharedKeyStoreTest, KeysMadeAreReadByEveryInstance) {
  auto a = OpenStore();
  uint64_t no = 0;
  std::string key;
  ASSERT_TRUE(a->NewKey(&no, &key).ok());
  EXPECT_EQ(no, 1u);
  EXPECT_EQ(key.size(), 32u);
  auto b = OpenStore();
  std::string got;
  ASSERT_EQ(b->Get(no, &got), KeyStore::Found::kKey);
  EXPECT_EQ(got, key);
  EXPECT_EQ(b->Get(999999, &got), KeyStore::Found::kMissing);
  EXPECT_EQ(b->Get(0, &got), KeyStore::Found::kMissing);
  // One hash secret for the scope, another for another scope.
  EXPECT_EQ(a->HashKey(), b->HashKey());
  EXPECT_EQ(a->HashKey().size(), 32u);
  EXPECT_NE(OpenStore("p4")->HashKey(), a->HashKey());
}

TEST_F(SharedKeyStoreTest, InstancesNeverHandOutTheSameNumber) {
  auto a = OpenStore();
  auto b = OpenStore();
  std::set<uint64_t> seen;
  std::mutex mu;
  auto take = [&](SharedKeyStore* ks) {
    for (int i = 0; i < 600; ++i) {
      uint64_t no = 0;
      std::string key;
      ASSERT_TRUE(ks->NewKey(&no, &key).ok());
      std::lock_guard<std::mutex> lk(mu);
      EXPECT_TRUE(seen.insert(no).second) << no;
    }
  };
  std::thread t1(take, a.get()), t2(take, b.get());
  t1.join();
  t2.join();
  EXPECT_EQ(seen.size(), 1200u);
  // A third instance, opened later, starts past every block taken.
  uint64_t no = 0;
  std::string key;
  ASSERT_TRUE(OpenStore()->NewKey(&no, &key).ok());
  EXPECT_GT(no, *seen.rbegin());
}

TEST_F(SharedKeyStoreTest, DestroyedKeysReadAsDestroyedEverywhere) {
  auto a = OpenStore();
  uint64_t k1 = 0, k2 = 0, k3 = 0;
  std::string key;
  ASSERT_TRUE(a->NewKey(&k1, &key).ok());
  ASSERT_TRUE(a->NewKey(&k2, &key).ok());
  ASSERT_TRUE(a->NewKey(&k3, &key).ok());
  ASSERT_TRUE(a->Destroy({k1, k3, 123456}).ok());
  EXPECT_EQ(a->Get(k1, &key), KeyStore::Found::kDestroyed);
  EXPECT_EQ(a->Get(k2, &key), KeyStore::Found::kKey);
  auto b = OpenStore();
  EXPECT_EQ(b->Get(k1, &key), KeyStore::Found::kDestroyed);
  EXPECT_EQ(b->Get(k3, &key), KeyStore::Found::kDestroyed);
  EXPECT_EQ(b->Get(k2, &key), KeyStore::Found::kKey);
  // Again: fine.
  ASSERT_TRUE(b->Destroy({k1}).ok());
  // The shared store's block opens to the same: the key's slot zeroed.
  CasStore::Entry e;
  ASSERT_TRUE(store_->Get(SharedKeyStore::BlockEntry("p3", 0), &e).ok());
  SharedKeyStore::Block blk;
  ASSERT_TRUE(SharedKeyStore::OpenBlock(key_, SharedKeyStore::BlockEntry("p3", 0), e.value, &blk));
  EXPECT_TRUE(blk.keys[k1 - 1].empty());
  EXPECT_FALSE(blk.keys[k2 - 1].empty());
}

TEST_F(SharedKeyStoreTest, NoKeyInClearInTheSharedStore) {
  auto a = OpenStore();
  std::vector<std::string> made;
  for (int i = 0; i < 300; ++i) {
    uint64_t no = 0;
    std::string key;
    ASSERT_TRUE(a->NewKey(&no, &key).ok());
    made.push_back(key);
  }
  std::vector<std::string> names;
  ASSERT_TRUE(store_->Keys(&names).ok());
  std::string all;
  for (const auto& n : names) {
    CasStore::Entry e;
    ASSERT_TRUE(store_->Get(n, &e).ok());
    all += e.value;
  }
  for (const auto& k : made) EXPECT_EQ(all.find(k), std::string::npos);
  EXPECT_EQ(all.find(a->HashKey()), std::string::npos);
}

TEST_F(SharedKeyStoreTest, AnotherStoreKeyIsRefused) {
  OpenStore();
  std::unique_ptr<SharedKeyStore> ks;
  EXPECT_TRUE(SharedKeyStore::Open(store_, std::string(32, '\x08'), "p3", &ks).IsCorruption());
  EXPECT_TRUE(SharedKeyStore::Open(store_, "short", "p3", &ks).IsInvalidArgument());
  EXPECT_TRUE(SharedKeyStore::Open(store_, key_, "p 3", &ks).IsInvalidArgument());
  // A block sealed for one entry does not open as another.
  SharedKeyStore::Block b;
  const std::string sealed = SharedKeyStore::SealBlock(key_, "b.p3.0", b);
  EXPECT_TRUE(SharedKeyStore::OpenBlock(key_, "b.p3.0", sealed, &b));
  EXPECT_FALSE(SharedKeyStore::OpenBlock(key_, "b.p3.1", sealed, &b));
}

// A block that does not open (sealed for another entry) is an error to
// be asked again, not a key never made.
TEST_F(SharedKeyStoreTest, ABlockThatDoesNotOpenIsAnErrorNotAMissingKey) {
  auto a = OpenStore();
  SharedKeyStore::Block b;
  const std::string entry = SharedKeyStore::BlockEntry("p3", 5);
  const std::string other = SharedKeyStore::BlockEntry("p3", 6);
  ASSERT_TRUE(store_->Create(entry, SharedKeyStore::SealBlock(key_, other, b)).ok());
  std::string got;
  EXPECT_EQ(a->Get(5 * 256 + 1, &got), KeyStore::Found::kError);
  EXPECT_EQ(a->Get(9 * 256 + 1, &got), KeyStore::Found::kMissing);
}

// A CasStore whose replica reads (Get) of the key blocks lag: each block
// reads as absent the first `lag` times, as from a replica behind the node
// that made it. GetLatest, the leader's read, never lags.
class LaggingReads : public CasStore {
 public:
  LaggingReads(std::shared_ptr<CasStore> inner, int lag) : inner_(std::move(inner)), lag_(lag) {}
  Status Get(const std::string& key, Entry* e) override {
    if (key.rfind("b.", 0) == 0 && seen_[key]++ < lag_) {
      *e = Entry();
      return Status::OK();
    }
    return inner_->Get(key, e);
  }
  Status GetLatest(const std::string& key, Entry* e) override {
    ++latest_reads_;
    if (leader_down_) return Status::Unavailable("no leader (test)");
    return inner_->Get(key, e);
  }
  void set_leader_down(bool down) { leader_down_ = down; }
  Status Create(const std::string& key, const std::string& value) override {
    return inner_->Create(key, value);
  }
  Status Update(const std::string& key, const std::string& value, uint64_t rev) override {
    return inner_->Update(key, value, rev);
  }
  Status Keys(std::vector<std::string>* keys) override { return inner_->Keys(keys); }
  int latest_reads() const { return latest_reads_; }

 private:
  std::shared_ptr<CasStore> inner_;
  int lag_;
  std::map<std::string, int> seen_;
  int latest_reads_ = 0;
  bool leader_down_ = false;
};

// A block another instance made a moment ago, read from a replica that
// has not got it yet (however long it lags), is read from the leader:
// sealing under it then keeps the event.
TEST_F(SharedKeyStoreTest, ABlockALaggingReplicaLacksIsReadFromTheLeader) {
  auto a = OpenStore();
  uint64_t no = 0;
  std::string key;
  ASSERT_TRUE(a->NewKey(&no, &key).ok());
  auto lagging = std::make_shared<LaggingReads>(store_, 1000);
  std::unique_ptr<SharedKeyStore> b;
  ASSERT_TRUE(SharedKeyStore::Open(lagging, key_, "p3", &b).ok());
  std::string got;
  ASSERT_EQ(b->Get(no, &got), KeyStore::Found::kKey);
  EXPECT_EQ(got, key);
  EXPECT_GE(lagging->latest_reads(), 1);
  EXPECT_EQ(b->Get(9 * 256 + 1, &got), KeyStore::Found::kMissing) << "the leader has no such block";
}

// While the store has no leader (an election), a replica's copy of a
// block is taken rather than holding every append and read up.
TEST_F(SharedKeyStoreTest, WithoutALeaderAReplicasCopyOfABlockIsTaken) {
  auto a = OpenStore();
  uint64_t no = 0;
  std::string key;
  ASSERT_TRUE(a->NewKey(&no, &key).ok());
  auto electing = std::make_shared<LaggingReads>(store_, 0);
  std::unique_ptr<SharedKeyStore> b;
  ASSERT_TRUE(SharedKeyStore::Open(electing, key_, "p3", &b).ok());
  electing->set_leader_down(true);
  std::string got;
  ASSERT_EQ(b->Get(no, &got), KeyStore::Found::kKey);
  EXPECT_EQ(got, key);
  // Not kept: once a leader answers, a destroy since is seen.
  ASSERT_TRUE(a->Destroy({no}).ok());
  electing->set_leader_down(false);
  EXPECT_EQ(b->Get(no, &got), KeyStore::Found::kDestroyed);
}

// A CasStore whose replica reads (Get) answer as the store stood when
// Freeze was called (a replica behind an erasure); GetLatest does not.
class StaleReads : public LaggingReads {
 public:
  explicit StaleReads(std::shared_ptr<CasStore> inner)
      : LaggingReads(inner, 0), inner_(std::move(inner)) {}
  void Freeze(const std::string& key) { ASSERT_TRUE(inner_->Get(key, &frozen_[key]).ok()); }
  Status Get(const std::string& key, Entry* e) override {
    auto it = frozen_.find(key);
    if (it == frozen_.end()) return inner_->Get(key, e);
    *e = it->second;
    return Status::OK();
  }

 private:
  std::shared_ptr<CasStore> inner_;
  std::map<std::string, Entry> frozen_;
};

// A replica still holding a block as it was before its key was destroyed
// never gives the key back: blocks are read from the leader.
TEST_F(SharedKeyStoreTest, AReplicaBehindAnErasureDoesNotGiveTheKeyBack) {
  auto a = OpenStore();
  uint64_t no = 0;
  std::string key;
  ASSERT_TRUE(a->NewKey(&no, &key).ok());
  auto stale = std::make_shared<StaleReads>(store_);
  stale->Freeze(SharedKeyStore::BlockEntry("p3", 0));
  ASSERT_TRUE(a->Destroy({no}).ok());
  std::unique_ptr<SharedKeyStore> b;
  ASSERT_TRUE(SharedKeyStore::Open(stale, key_, "p3", &b).ok());
  std::string got;
  EXPECT_EQ(b->Get(no, &got), KeyStore::Found::kDestroyed);
}

// An erasure through a replica that lacks the block still destroys the
// key: Destroy reads the blocks it rewrites from the leader.
TEST_F(SharedKeyStoreTest, ADestroyThroughALaggingReplicaDestroysTheKey) {
  auto a = OpenStore();
  uint64_t no = 0;
  std::string key;
  ASSERT_TRUE(a->NewKey(&no, &key).ok());
  std::unique_ptr<SharedKeyStore> b;
  ASSERT_TRUE(
      SharedKeyStore::Open(std::make_shared<LaggingReads>(store_, 1000), key_, "p3", &b).ok());
  ASSERT_TRUE(b->Destroy({no}).ok());
  std::string got;
  EXPECT_EQ(OpenStore()->Get(no, &got), KeyStore::Found::kDestroyed);
}

// A block's keys come from one draw of the generator: each its own.
TEST_F(SharedKeyStoreTest, EveryKeyOfABlockIsItsOwn) {
  auto a = OpenStore();
  std::set<std::string> seen;
  for (int i = 0; i < 300; ++i) {
    uint64_t no = 0;
    std::string key;
    ASSERT_TRUE(a->NewKey(&no, &key).ok());
    ASSERT_EQ(key.size(), 32u);
    EXPECT_TRUE(seen.insert(key).second) << "key " << no << " repeats another";
  }
}

TEST_F(SharedKeyStoreTest, ErasuresThroughOnlyMovesForward) {
  auto a = OpenStore();
  EXPECT_EQ(a->ErasuresThrough(), 0u);
  ASSERT_TRUE(a->SetErasuresThrough(40).ok());
  ASSERT_TRUE(a->SetErasuresThrough(12).ok());
  EXPECT_EQ(OpenStore()->ErasuresThrough(), 40u);
}

}  // namespace
}  // namespace dfm
