// The high-water mark: a sequence number the log is known to have made
// durable, kept in a file of its own beside RocksDB's, so that a WAL that
// lost acknowledged events (a truncated or deleted file) is found at the
// next open instead of trusted.
//
// File `<data dir>/HIGH_WATER`, written whole (a temporary file, synced,
// renamed over the old one, the directory synced), mode 0600:
//
//   high_water := "dfm-high-water" SP version LF seq LF
//   version    := "1"
//   seq        := 1*DIGIT          ; decimal, the highest durable sequence
//
// A missing file reads as 0 (a log written before the mark existed, or a
// new one). Pure file I/O: no RocksDB inside.
#pragma once

#include <cstdint>
#include <string>

#include "util/status.h"

namespace dfm {

inline constexpr char kHighWaterFile[] = "HIGH_WATER";

// *seq = the mark in `dir`, 0 when there is none. Corruption when the file
// does not read as the grammar above (an unknown version included).
Status ReadHighWater(const std::string& dir, uint64_t* seq);

// Replaces the mark in `dir` with `seq`, durably, before returning.
Status WriteHighWater(const std::string& dir, uint64_t seq);

}  // namespace dfm
