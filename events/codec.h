// The stored form of an event record (docs/event-format.md, "record").
//
// A record is self-describing: its first byte is the record format version,
// so a reader knows how to decode any record the log ever stored. The hash
// chain covers the record bytes exactly as stored.
#pragma once

#include <string>
#include <string_view>

#include "events/event.h"
#include "util/status.h"

namespace dfm {

inline constexpr uint8_t kRecordFormatVersion = 1;

// Encodes `e` as a record of the current format. A sealed event's payload
// (e.sealing != kClear) must hold the sealed bytes.
std::string EncodeRecord(const Event& e);

// Decodes any record format this build knows. Corruption on truncated or
// malformed input, or on an unknown format version; *e is then unspecified.
Status DecodeRecord(std::string_view record, Event* e);
// The same, except the payload: *payload views it inside `record` and
// e->payload is left as it was (for readers that skip most payloads).
Status DecodeRecord(std::string_view record, Event* e, std::string_view* payload);

// SHA-256 of the record bytes: what the next record stores as prev_hash.
inline Sha256Digest RecordHash(std::string_view record) { return Sha256(record); }

}  // namespace dfm
