// The event envelope: what every entry of the event log carries, whatever
// its type. See docs/event-format.md for the stored layout.
//
// Events are immutable once appended. The log assigns `seq`, `id`,
// `recorded_at_us` and `prev_hash`; producers fill in the rest (an
// EventDraft).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/crypto.h"

namespace dfm {

// A unique, sortable event id: 48 bits of milliseconds since the epoch then
// 80 bits that are random for the first id of a millisecond and incremented
// for the following ones (ULID layout). Ids made by one generator sort in the
// order they were made. Text form: 26 characters of Crockford base32.
struct EventId {
  std::array<uint8_t, 16> bytes{};

  bool IsZero() const;
  std::string ToString() const;
  std::string_view AsBytes() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  int64_t TimestampMillis() const;
  static std::optional<EventId> Parse(std::string_view text);
  static EventId FromBytes(std::string_view b);  // REQUIRES: b.size() == 16
  bool operator==(const EventId& o) const { return bytes == o.bytes; }
  bool operator!=(const EventId& o) const { return bytes != o.bytes; }
  bool operator<(const EventId& o) const { return bytes < o.bytes; }
};

// Makes monotonic EventIds. Not thread-safe: the log's single writer owns one.
// The random part of each new millisecond comes from a generator seeded once
// from the operating system: ids must be unique, not unpredictable, and
// asking OpenSSL for bytes every millisecond cost the writer 1% of its CPU.
class EventIdGenerator {
 public:
  EventId Next(int64_t now_millis);

 private:
  uint64_t Random();  // splitmix64

  EventId last_;
  int64_t last_millis_ = -1;
  uint64_t state_ = 0;
  bool seeded_ = false;
};

// Stream names (EventDraft::stream): a contact's own, and a source
// system's (its webhooks, and what the router records about them).
inline std::string ContactStream(std::string_view contact_id) {
  return "contact:" + std::string(contact_id);
}
inline std::string SourceStream(std::string_view system) {
  return "source:" + std::string(system);
}

// What a producer hands to the log.
struct EventDraft {
  std::string tenant;
  std::string stream;  // "source:ghl", "contact:<id>", "backfill:aloware", "replay"
  std::string type;    // "webhook.received", ...
  uint16_t schema_version = 1;
  std::optional<int64_t> source_time_us;  // when the source says it happened
  EventId causation_id;    // the event that caused this one; zero for none
  EventId correlation_id;  // the root of the chain; zero means "this event itself"
  std::string payload;     // encoded by the type's own codec
  // Zero (nearly always): the log gives the event its id. Cluster mode sets
  // it where the webhook is taken, so the id answered there is the one the
  // partition's log records (docs/scale-out.md).
  EventId id;

  // When set, the log appends the draft only if no event with the same
  // (tenant, idempotency_system, idempotency_key) exists; otherwise it answers
  // with the sequence number of the one that does.
  std::string idempotency_system;
  std::string idempotency_key;
};

struct Event {
  uint64_t seq = 0;
  EventId id;
  int64_t recorded_at_us = 0;
  std::optional<int64_t> source_time_us;
  std::string tenant;
  std::string stream;
  std::string type;
  uint16_t schema_version = 1;
  EventId causation_id;
  EventId correlation_id;
  Sha256Digest prev_hash{};  // SHA-256 of the previous record; zeros for seq 1
  std::string payload;
  // How `payload` was stored (events/sealing.h). kSealed: it still holds
  // the stored sealed bytes (read without the key store); kOpened: sealed
  // on disk, opened here; kErased: its key was destroyed (dfm erase), the
  // payload is gone and reads as empty.
  enum class Sealing : uint8_t { kClear, kSealed, kOpened, kErased };
  Sealing sealing = Sealing::kClear;
  uint64_t key_no = 0;  // the key a sealed payload names, once opened (else 0)
  bool erased() const { return sealing == Sealing::kErased; }
};

}  // namespace dfm
