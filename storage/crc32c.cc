#include "storage/crc32c.h"

#include <dlfcn.h>

#include <array>
#include <atomic>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace dfm {

namespace {

constexpr uint32_t kPoly = 0x82f63b78;  // CRC-32C, reflected

struct Table {
  std::array<uint32_t, 256> t{};
  constexpr Table() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? kPoly : 0);
      t[i] = c;
    }
  }
};
constexpr Table kTable;

#if defined(__x86_64__)
// 8 bytes per `crc32q` (latency 3 cycles): ~2.6 bytes per cycle, about five
// times the table's pace on the log's 1.5-4 KiB records and blocks.
__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t crc, const char* data, size_t n) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  uint64_t c = ~crc;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<uint32_t>(c);
  while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}

// (Initialized before main; __builtin_cpu_init() may not have run yet.)
const bool kHasSse42 = (__builtin_cpu_init(), __builtin_cpu_supports("sse4.2"));

// Set by the first call RocksDB makes to the interposer: proof that its
// calls reach it (a library bound to its own definition never sets it).
std::atomic<bool> rocksdb_calls_seen{false};
#else
const bool kHasSse42 = false;
#endif

}  // namespace

uint32_t Crc32cExtendPortable(uint32_t crc, const char* data, size_t n) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
  while (n-- > 0) c = kTable.t[(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

uint32_t Crc32cExtend(uint32_t crc, const char* data, size_t n) {
#if defined(__x86_64__)
  if (kHasSse42) return ExtendSse42(crc, data, n);
#endif
  return Crc32cExtendPortable(crc, data, n);
}

bool Crc32cHardware() { return kHasSse42; }

#if defined(__x86_64__)
bool Crc32cServesRocksDb() { return rocksdb_calls_seen.load(std::memory_order_relaxed); }
#else
bool Crc32cServesRocksDb() { return false; }
#endif

}  // namespace dfm

#if defined(__x86_64__)
// RocksDB's entry point (util/crc32c.h in its sources), interposed: see
// crc32c.h. Not declared in any installed RocksDB header. Only on x86-64,
// where a portable RocksDB build lacks the instruction; elsewhere RocksDB
// picks its own (arm64's CRC instructions among them). On an x86-64 CPU
// without SSE4.2, RocksDB's own table code (several bytes per step) runs.
namespace rocksdb {
namespace crc32c {
uint32_t Extend(uint32_t init_crc, const char* buf, size_t size);
uint32_t Extend(uint32_t init_crc, const char* buf, size_t size) {
  if (!dfm::rocksdb_calls_seen.load(std::memory_order_relaxed))
    dfm::rocksdb_calls_seen.store(true, std::memory_order_relaxed);
  if (dfm::kHasSse42) return dfm::ExtendSse42(init_crc, buf, size);
  using ExtendFn = uint32_t (*)(uint32_t, const char*, size_t);
  static const ExtendFn library =
      reinterpret_cast<ExtendFn>(dlsym(RTLD_NEXT, "_ZN7rocksdb6crc32c6ExtendEjPKcm"));
  return library != nullptr ? library(init_crc, buf, size)
                            : dfm::Crc32cExtendPortable(init_crc, buf, size);
}
}  // namespace crc32c
}  // namespace rocksdb
#endif
