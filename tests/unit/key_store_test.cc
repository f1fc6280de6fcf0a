// The key store's layout 2 (storage/key_block.h) and the move of a layout 1
// store into it (storage/key_store.h).
#include "storage/key_store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "storage/key_block.h"
#include "tests/support/temp_dir.h"
#include "util/coding.h"
#include "util/crypto.h"

namespace dfm {
namespace {

std::string Key(char c) { return std::string(KeyBlock::kKeyBytes, c); }

TEST(KeyBlockTest, ARowGivesBackItsKeysAndDestroyedNumbers) {
  KeyBlock a;
  a.Put(512, Key('a'));  // slot 0 of block 2
  a.Put(700, Key('b'));
  a.Destroy(701);
  const std::string row = a.Encode();
  ASSERT_EQ(row.size(), KeyBlock::kRowBytes);
  EXPECT_EQ(row[0], 1) << "the row's version byte";
  KeyBlock b;
  ASSERT_TRUE(b.Decode(row));
  EXPECT_TRUE(b.Present(512));
  EXPECT_EQ(b.Key(512), Key('a'));
  EXPECT_EQ(b.Key(700), Key('b'));
  EXPECT_TRUE(b.Destroyed(701));
  EXPECT_FALSE(b.Present(701));
  EXPECT_FALSE(b.Present(513));
  EXPECT_FALSE(b.Destroyed(513));
  EXPECT_EQ(row.find(Key('c')), std::string::npos);
}

TEST(KeyBlockTest, ADestroyedNumberNeverComesBack) {
  KeyBlock a;
  a.Put(3, Key('a'));
  a.Destroy(3);
  a.Put(3, Key('a'));
  EXPECT_FALSE(a.Present(3)) << "Put after Destroy";
  EXPECT_EQ(a.Encode().find(Key('a')), std::string::npos) << "its bytes are gone";
  KeyBlock live;
  live.Put(3, Key('a'));
  live.Put(4, Key('b'));
  live.Merge(a);
  EXPECT_TRUE(live.Destroyed(3)) << "a merge takes the other's destroyed numbers";
  EXPECT_FALSE(live.Present(3));
  EXPECT_EQ(live.Key(4), Key('b'));
  EXPECT_EQ(live.Encode().find(Key('a')), std::string::npos);
  KeyBlock gone;
  gone.Destroy(4);
  gone.Merge(live);
  EXPECT_TRUE(gone.Destroyed(4)) << "and keeps its own over the other's keys";
  EXPECT_TRUE(gone.Destroyed(3));
}

TEST(KeyBlockTest, ANonRowIsRefusedAndChangesNothing) {
  KeyBlock a;
  a.Put(1, Key('a'));
  std::string row = a.Encode();
  KeyBlock b;
  b.Put(9, Key('z'));
  EXPECT_FALSE(b.Decode(row.substr(1))) << "short";
  std::string v2 = row;
  v2[0] = 2;
  EXPECT_FALSE(b.Decode(v2)) << "another version";
  std::string bad = row;
  bad[1 + 5 * (1 + KeyBlock::kKeyBytes)] = 7;
  EXPECT_FALSE(b.Decode(bad)) << "an unknown slot kind";
  EXPECT_TRUE(b.Present(9));
  EXPECT_FALSE(b.Present(1));
}

// A store in layout 1 as an older build left it: a row per key ("k"), one
// per destroyed number ("d"), and its metadata.
struct V1Store {
  std::map<uint64_t, std::string> keys;
  std::vector<uint64_t> destroyed;
  uint64_t next = 0;

  void Write(const std::string& path) const {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, path, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::WriteBatch wb;
    wb.Put("m:version", "1");
    wb.Put("m:hash", Key('h'));
    wb.Put("m:next", EncodeFixed64BE(next));
    wb.Put("m:erasures", EncodeFixed64BE(0));
    for (const auto& [no, key] : keys) wb.Put("k" + EncodeFixed64BE(no), key);
    for (uint64_t no : destroyed) wb.Put("d" + EncodeFixed64BE(no), "");
    ASSERT_TRUE(db->Write(rocksdb::WriteOptions(), &wb).ok());
    ASSERT_TRUE(db->Close().ok());
  }
};

V1Store MakeV1() {
  V1Store v1;
  // Numbers 1-600 made, over three blocks; 5 and 300 destroyed.
  // Random keys: the store's files are compressed, and a key of repeated
  // bytes could be in one without its bytes showing.
  for (uint64_t no = 1; no <= 600; ++no) {
    std::string key = Key('\0');
    RandomBytes(reinterpret_cast<uint8_t*>(key.data()), key.size());
    v1.keys[no] = key;
  }
  for (uint64_t no : {5, 300}) {
    v1.keys.erase(no);
    v1.destroyed.push_back(no);
  }
  v1.next = 769;  // the last pool's numbers 601-768 made but not handed out
  return v1;
}

void ExpectHolds(KeyStore* ks, const V1Store& v1) {
  std::string got;
  for (const auto& [no, key] : v1.keys) {
    ASSERT_EQ(ks->Get(no, &got), KeyStore::Found::kKey) << no;
    EXPECT_EQ(got, key) << no;
  }
  for (uint64_t no : v1.destroyed) EXPECT_EQ(ks->Get(no, &got), KeyStore::Found::kDestroyed);
  EXPECT_EQ(ks->Get(5000, &got), KeyStore::Found::kMissing);
}

// Every file of the store's directory, as bytes.
std::string Files(const std::string& path) {
  std::string all;
  for (const auto& f : std::filesystem::directory_iterator(path)) {
    std::ifstream in(f.path(), std::ios::binary);
    all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return all;
}

// Keys are made a block at a time from one draw of the generator: each
// is 32 bytes of its own, across blocks too, and reads back as made.
TEST(KeyStoreTest, EveryKeyOfABlockIsItsOwn) {
  testing::TempDir dir;
  std::unique_ptr<RocksDbKeyStore> ks;
  ASSERT_TRUE(RocksDbKeyStore::Open(dir.Sub("keys"), false, &ks).ok());
  std::set<std::string> seen;
  std::map<uint64_t, std::string> made;
  for (int i = 0; i < 600; ++i) {  // past two blocks
    uint64_t no = 0;
    std::string key;
    ASSERT_TRUE(ks->NewKey(&no, &key).ok());
    ASSERT_EQ(key.size(), 32u);
    EXPECT_NE(key, std::string(32, '\0'));
    EXPECT_TRUE(seen.insert(key).second) << "key " << no << " repeats another";
    made[no] = key;
  }
  for (const auto& [no, key] : made) {
    std::string got;
    ASSERT_EQ(ks->Get(no, &got), KeyStore::Found::kKey);
    EXPECT_EQ(got, key);
  }
}

TEST(KeyStoreTest, ALayoutOneStoreIsReadAsItIsThenMovedIntoBlocks) {
  testing::TempDir dir;
  const std::string path = dir.Sub("keys");
  const V1Store v1 = MakeV1();
  v1.Write(path);
  {
    std::unique_ptr<RocksDbKeyStore> ro;  // a tool beside an older service
    ASSERT_TRUE(RocksDbKeyStore::Open(path, true, &ro).ok());
    ExpectHolds(ro.get(), v1);
    EXPECT_EQ(ro->HashKey(), Key('h'));
  }
  std::unique_ptr<RocksDbKeyStore> ks;
  ASSERT_TRUE(RocksDbKeyStore::Open(path, false, &ks).ok());
  ExpectHolds(ks.get(), v1);
  std::string version;
  bool old_rows = false;
  ASSERT_TRUE(ks->WithDb([&](rocksdb::DB* db) {
                  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
                  for (it->SeekToFirst(); it->Valid(); it->Next()) {
                    const char kind = it->key()[0];
                    if (kind == 'k' || kind == 'd') old_rows = true;
                  }
                  return db->Get(rocksdb::ReadOptions(), "m:version", &version).ok()
                             ? Status::OK()
                             : Status::IOError("no version");
                }).ok());
  EXPECT_EQ(version, "2");
  EXPECT_FALSE(old_rows) << "layout 1's rows are gone";
  uint64_t no = 0;
  std::string key;
  ASSERT_TRUE(ks->NewKey(&no, &key).ok());
  EXPECT_EQ(no, 769u) << "numbers made before are never handed out again";
  ASSERT_TRUE(ks->Destroy({1, 769}).ok());
  EXPECT_EQ(Files(path).find(v1.keys.at(1)), std::string::npos);
  EXPECT_EQ(Files(path).find(key), std::string::npos);
  ks.reset();
  ASSERT_TRUE(RocksDbKeyStore::Open(path, false, &ks).ok());
  std::string got;
  EXPECT_EQ(ks->Get(1, &got), KeyStore::Found::kDestroyed);
  EXPECT_EQ(ks->Get(769, &got), KeyStore::Found::kDestroyed);
  ASSERT_EQ(ks->Get(2, &got), KeyStore::Found::kKey);
  EXPECT_EQ(got, v1.keys.at(2));
  EXPECT_EQ(ks->Get(300, &got), KeyStore::Found::kDestroyed);
}

// A tool opened read-only beside an older service goes on reading once a
// newer service has moved the rows into blocks (a restart on upgrade).
TEST(KeyStoreTest, AReaderOfLayoutOneFollowsTheMoveIntoBlocks) {
  testing::TempDir dir;
  const std::string path = dir.Sub("keys");
  const V1Store v1 = MakeV1();
  v1.Write(path);
  std::unique_ptr<RocksDbKeyStore> ro;
  ASSERT_TRUE(RocksDbKeyStore::Open(path, true, &ro).ok());
  std::unique_ptr<RocksDbKeyStore> ks;
  ASSERT_TRUE(RocksDbKeyStore::Open(path, false, &ks).ok());
  uint64_t no = 0;
  std::string key, got;
  ASSERT_TRUE(ks->NewKey(&no, &key).ok());
  ASSERT_EQ(ro->Get(no, &got), KeyStore::Found::kKey) << "made in layout 2 since";
  EXPECT_EQ(got, key);
  ExpectHolds(ro.get(), v1);
}

// A move stopped before its last write (the version "moving to 2", some
// blocks written) is read as layout 1 and made again from its rows by the
// next writer, whatever the blocks held.
TEST(KeyStoreTest, AMoveStoppedHalfWayIsMadeAgain) {
  testing::TempDir dir;
  const std::string path = dir.Sub("keys");
  const V1Store v1 = MakeV1();
  v1.Write(path);
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), path, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    KeyBlock stale;
    stale.Put(2, Key('x'));  // not what layout 1 holds for number 2
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "b" + EncodeFixed64BE(0), stale.Encode()).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "m:version", "moving to 2").ok());
    ASSERT_TRUE(db->Close().ok());
  }
  {
    std::unique_ptr<RocksDbKeyStore> ro;
    ASSERT_TRUE(RocksDbKeyStore::Open(path, true, &ro).ok());
    ExpectHolds(ro.get(), v1);
  }
  std::unique_ptr<RocksDbKeyStore> ks;
  ASSERT_TRUE(RocksDbKeyStore::Open(path, false, &ks).ok());
  ExpectHolds(ks.get(), v1);
}

// New keys come a block at a time: every synced write makes the numbers
// up to the end of a block of 256, so it writes that block's row alone.
TEST(KeyStoreTest, NewKeysComeABlockAtATime) {
  testing::TempDir dir;
  const std::string path = dir.Sub("keys");
  std::unique_ptr<RocksDbKeyStore> ks;
  ASSERT_TRUE(RocksDbKeyStore::Open(path, false, &ks).ok());
  uint64_t no = 0;
  std::string key;
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(ks->NewKey(&no, &key).ok());
  EXPECT_EQ(no, 300u) << "numbered from 1, none skipped within a run";
  std::string next;
  ASSERT_TRUE(ks->WithDb([&](rocksdb::DB* db) {
                  return db->Get(rocksdb::ReadOptions(), "m:next", &next).ok()
                             ? Status::OK()
                             : Status::IOError("no m:next");
                }).ok());
  ASSERT_EQ(next.size(), 8u);
  EXPECT_EQ(DecodeFixed64BE(next.data()), 512u) << "made through the end of block 1";
  ks.reset();
  ASSERT_TRUE(RocksDbKeyStore::Open(path, false, &ks).ok());
  ASSERT_TRUE(ks->NewKey(&no, &key).ok());
  EXPECT_EQ(no, 512u) << "301-511 made before the restart are left unused";
  std::string got;
  ASSERT_EQ(ks->Get(512, &got), KeyStore::Found::kKey);
  EXPECT_EQ(got, key);
}

// A block row that does not decode is an error to be asked again, not a
// key never made (which sealing would take as "seal under a key nobody
// keeps").
TEST(KeyStoreTest, ABlockThatDoesNotDecodeIsAnErrorNotAMissingKey) {
  testing::TempDir dir;
  std::unique_ptr<RocksDbKeyStore> ks;
  ASSERT_TRUE(RocksDbKeyStore::Open(dir.Sub("keys"), false, &ks).ok());
  ASSERT_TRUE(ks->WithDb([](rocksdb::DB* db) {
                  return db->Put(rocksdb::WriteOptions(), "b" + EncodeFixed64BE(3), "not a row").ok()
                             ? Status::OK()
                             : Status::IOError("put");
                }).ok());
  std::string got;
  EXPECT_EQ(ks->Get(3 * 256 + 1, &got), KeyStore::Found::kError);
  EXPECT_EQ(ks->Get(9 * 256 + 1, &got), KeyStore::Found::kMissing) << "no row: never made";
}

// A number destroyed before it was made (an erasure carried out again on
// a store restored from an older copy) is never handed out: NewKey goes
// on to the next.
TEST(KeyStoreTest, ANumberDestroyedBeforeItWasMadeIsSkipped) {
  testing::TempDir dir;
  std::unique_ptr<RocksDbKeyStore> ks;
  ASSERT_TRUE(RocksDbKeyStore::Open(dir.Sub("keys"), false, &ks).ok());
  ASSERT_TRUE(ks->Destroy({3, 300}).ok());
  std::set<uint64_t> made;
  for (int i = 0; i < 400; ++i) {
    uint64_t no = 0;
    std::string key;
    Status s = ks->NewKey(&no, &key);
    ASSERT_TRUE(s.ok()) << s.ToString();
    made.insert(no);
  }
  EXPECT_EQ(made.size(), 400u);
  EXPECT_EQ(made.count(3), 0u);
  EXPECT_EQ(made.count(300), 0u);
  EXPECT_EQ(*made.rbegin(), 402u) << "1-402 but the two destroyed";
  std::string got;
  EXPECT_EQ(ks->Get(300, &got), KeyStore::Found::kDestroyed);
}

// Get on several threads while keys are destroyed and the cache fills and
// empties: a made key reads as itself until its Destroy, and as destroyed
// once its Destroy has returned; never as missing or an error.
TEST(KeyStoreTest, ReadsRacingDestroysSeeEachKeyOrItsDestruction) {
  testing::TempDir dir;
  std::unique_ptr<RocksDbKeyStore> ks;
  ASSERT_TRUE(RocksDbKeyStore::Open(dir.Sub("keys"), false, &ks).ok());
  constexpr uint64_t kMade = 512, kDestroys = 30;
  std::vector<std::string> keys(kMade + 1);
  for (uint64_t i = 1; i <= kMade; ++i) {
    uint64_t no = 0;
    ASSERT_TRUE(ks->NewKey(&no, &keys[i]).ok());
    ASSERT_EQ(no, i);
  }
  std::vector<uint64_t> far;  // a row each in 300 blocks, more than the cache holds
  for (uint64_t b = 1000; b < 1300; ++b) far.push_back(b * 256 + 1);
  ASSERT_TRUE(ks->Destroy(far).ok());
  std::atomic<uint64_t> destroyed_through{0};  // numbers 7, 14, ..., 7 * this are destroyed
  std::atomic<uint64_t> reads{0}, far_rounds{0};
  std::atomic<bool> done{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  threads.emplace_back([&] {  // the erasures, each after some reads and a round of the cache
    for (uint64_t k = 1; k <= kDestroys; ++k) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while ((reads.load() < 50 * k || far_rounds.load() < k) &&
             std::chrono::steady_clock::now() < until)
        std::this_thread::yield();
      if (!ks->Destroy({7 * k}).ok()) wrong++;
      destroyed_through.store(k);
    }
    done.store(true);
  });
  threads.emplace_back([&] {  // far blocks read in turn: the cache fills and is emptied
    std::string got;
    while (!done.load()) {
      for (uint64_t n : far)
        if (ks->Get(n, &got) != KeyStore::Found::kDestroyed) wrong++;
      far_rounds++;
    }
  });
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      std::string got;
      uint64_t n = 1 + t;
      while (!done.load()) {
        n = n * 6364136223846793005ULL + 1442695040888963407ULL;
        const uint64_t no = 1 + (n >> 33) % kMade;
        const uint64_t before = destroyed_through.load();
        const KeyStore::Found f = ks->Get(no, &got);
        reads++;
        const bool mine = no % 7 == 0 && no / 7 <= kDestroys;
        if (mine && no / 7 <= before) {
          if (f != KeyStore::Found::kDestroyed) wrong++;
        } else if (f == KeyStore::Found::kKey) {
          if (got != keys[no]) wrong++;
        } else if (!(mine && f == KeyStore::Found::kDestroyed)) {
          wrong++;
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GE(reads.load(), 50 * kDestroys);
  EXPECT_GE(far_rounds.load(), kDestroys) << "the cache went round between erasures";
  std::string got;
  EXPECT_EQ(ks->Get(7 * kDestroys, &got), KeyStore::Found::kDestroyed);
  ASSERT_EQ(ks->Get(8, &got), KeyStore::Found::kKey);
  EXPECT_EQ(got, keys[8]);
}

TEST(KeyStoreTest, AnUnknownVersionIsRefused) {
  testing::TempDir dir;
  const std::string path = dir.Sub("keys");
  V1Store v1 = MakeV1();
  v1.Write(path);
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), path, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "m:version", "3").ok());
    ASSERT_TRUE(db->Close().ok());
  }
  std::unique_ptr<RocksDbKeyStore> ks;
  Status s = RocksDbKeyStore::Open(path, false, &ks);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find("unknown version 3"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace dfm
