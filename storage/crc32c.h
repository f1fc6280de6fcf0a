// CRC-32C (Castagnoli, as in iSCSI, RFC 3720), the checksum RocksDB puts
// on every WAL record and table block.
//
// Debian's librocksdb is built portable: on x86-64 its own CRC-32C is the
// table-driven one even on CPUs with the SSE4.2 `crc32` instruction, and
// it was ~7% of the log writer's CPU at full ingest (bench/README.md (b)).
// On x86-64, crc32c.cc therefore also defines `rocksdb::crc32c::Extend`,
// which the library calls through its PLT for every WAL record, table
// block and checksum check; the dynamic linker binds those calls to the
// definition in the executable (it is exported: storage/CMakeLists.txt).
// Both compute the same function, so the files on disk do not change. A
// RocksDB whose Extend has another signature, or that binds its own calls
// to its own definition, keeps its own; Crc32cServesRocksDb() tells.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dfm {

// The CRC-32C of `n` bytes at `data` continued from `crc`, the CRC of the
// bytes before them (0 for none): Extend(Extend(0, a), b) == Extend(0, ab).
// Unmasked, as RocksDB's crc32c::Extend.
uint32_t Crc32cExtend(uint32_t crc, const char* data, size_t n);

// The same, always by the portable table (the reference the tests hold the
// hardware path to).
uint32_t Crc32cExtendPortable(uint32_t crc, const char* data, size_t n);

// True when Crc32cExtend uses the CPU's CRC-32C instruction.
bool Crc32cHardware();

// True once RocksDB has called the interposed rocksdb::crc32c::Extend
// (every open writes checksummed records, so an open log tells). False
// where it is not interposed (not x86-64, not linked in, not exported, or
// a library bound to its own), which then runs on RocksDB's own.
bool Crc32cServesRocksDb();

}  // namespace dfm
