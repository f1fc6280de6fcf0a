#include "storage/crc32c.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <random>
#include <string>

#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

using testing::TempDir;

// RFC 3720, B.4 (iSCSI's CRC-32C examples), and the CRC catalogue's check
// value ("123456789").
TEST(Crc32cTest, KnownAnswers) {
  const std::string zeros(32, '\0');
  const std::string ones(32, '\xff');
  std::string up, down;
  for (int i = 0; i < 32; ++i) {
    up.push_back(static_cast<char>(i));
    down.push_back(static_cast<char>(31 - i));
  }
  for (auto* f : {&Crc32cExtend, &Crc32cExtendPortable}) {
    EXPECT_EQ(f(0, zeros.data(), zeros.size()), 0x8a9136aau);
    EXPECT_EQ(f(0, ones.data(), ones.size()), 0x62a8ab43u);
    EXPECT_EQ(f(0, up.data(), up.size()), 0x46dd794eu);
    EXPECT_EQ(f(0, down.data(), down.size()), 0x113fdb5cu);
    EXPECT_EQ(f(0, "123456789", 9), 0xe3069283u);
    EXPECT_EQ(f(0, "", 0), 0u);
    EXPECT_EQ(f(0x12345678u, "", 0), 0x12345678u);
  }
}

// Every length and alignment around the 8-byte steps, and continuation
// from any split point, agree with the table.
TEST(Crc32cTest, HardwarePathMatchesTheTable) {
  std::mt19937_64 rng(7);
  std::string buf(4096 + 16, '\0');
  for (char& c : buf) c = static_cast<char>(rng());
  for (size_t off = 0; off < 9; ++off) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{15}, size_t{16},
                     size_t{17}, size_t{63}, size_t{1500}, size_t{4096}}) {
      const char* p = buf.data() + off;
      const uint32_t want = Crc32cExtendPortable(0, p, n);
      EXPECT_EQ(Crc32cExtend(0, p, n), want) << off << " " << n;
      for (size_t cut : {size_t{0}, n / 3, n / 2, n}) {
        EXPECT_EQ(Crc32cExtend(Crc32cExtend(0, p, cut), p + cut, n - cut), want)
            << off << " " << n << " " << cut;
      }
    }
  }
}

// RocksDB's own Extend, the one the interposer hides (the next definition
// after the executable's), computes the same values: logs written before
// the interposer, or by another RocksDB program, read back, and the other
// way round.
TEST(Crc32cTest, SameAsRocksDbsOwn) {
  using ExtendFn = uint32_t (*)(uint32_t, const char*, size_t);
  void* sym = dlsym(RTLD_NEXT, "_ZN7rocksdb6crc32c6ExtendEjPKcm");
  ASSERT_NE(sym, nullptr);
  Dl_info where{};
  ASSERT_NE(dladdr(sym, &where), 0);
  EXPECT_NE(std::string(where.dli_fname).find("librocksdb"), std::string::npos) << where.dli_fname;
  auto theirs = reinterpret_cast<ExtendFn>(sym);
  std::mt19937_64 rng(11);
  std::string buf(8192, '\0');
  for (char& c : buf) c = static_cast<char>(rng());
  for (size_t n = 0; n < 300; ++n) {
    const size_t off = rng() % 64;
    const size_t len = n < 100 ? n : rng() % (buf.size() - off);
    const auto seed = static_cast<uint32_t>(rng());
    ASSERT_EQ(Crc32cExtend(seed, buf.data() + off, len), theirs(seed, buf.data() + off, len))
        << off << " " << len;
  }
}

// The test binary is linked as dfm is: on x86-64 RocksDB's calls reach
// the interposer, and what it writes with them it reads back and verifies.
TEST(Crc32cTest, ServesRocksDb) {
  TempDir dir;
  rocksdb::Options opts;
  opts.create_if_missing = true;
  opts.paranoid_checks = true;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(opts, dir.path(), &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions sync;
  sync.sync = true;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(db->Put(sync, "k" + std::to_string(i), std::string(100 + i, 'v')).ok());
  }
  ASSERT_TRUE(db->Flush(rocksdb::FlushOptions()).ok());
  db.reset();
  ASSERT_TRUE(rocksdb::DB::Open(opts, dir.path(), &raw).ok());
  db.reset(raw);
  rocksdb::ReadOptions verify;
  verify.verify_checksums = true;
  std::string v;
  ASSERT_TRUE(db->Get(verify, "k999", &v).ok());
  EXPECT_EQ(v.size(), 1099u);
  EXPECT_TRUE(db->VerifyChecksum().ok());
#if defined(__x86_64__)
  EXPECT_TRUE(Crc32cServesRocksDb()) << "RocksDB's calls did not reach the interposer";
#endif
}

}  // namespace
}  // namespace dfm
