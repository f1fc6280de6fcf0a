#include <cstring>

#include "events/event.h"

namespace dfm {

namespace {
const char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int CrockfordValue(char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  if (c == 'O') c = '0';
  if (c == 'I' || c == 'L') c = '1';
  const char* p = std::strchr(kCrockford, c);
  return (p == nullptr || c == '\0') ? -1 : static_cast<int>(p - kCrockford);
}
}  // namespace

bool EventId::IsZero() const {
  for (uint8_t b : bytes)
    if (b != 0) return false;
  return true;
}

// 128 bits as 26 base32 digits: the first digit holds the top 3 bits (the
// 130-bit number is left-padded with two zero bits).
std::string EventId::ToString() const {
  uint64_t hi = 0, lo = 0;
  for (int i = 0; i < 8; ++i) hi = (hi << 8) | bytes[static_cast<size_t>(i)];
  for (int i = 8; i < 16; ++i) lo = (lo << 8) | bytes[static_cast<size_t>(i)];
  std::string out(26, '0');
  for (int i = 25; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kCrockford[lo & 31];
    lo = (lo >> 5) | (hi << 59);
    hi >>= 5;
  }
  return out;
}

std::optional<EventId> EventId::Parse(std::string_view text) {
  if (text.size() != 26) return std::nullopt;
  EventId id;
  for (int i = 0; i < 26; ++i) {
    int v = CrockfordValue(text[static_cast<size_t>(i)]);
    if (v < 0) return std::nullopt;
    if (i == 0 && v > 7) return std::nullopt;  // would overflow 128 bits
    int bit = (25 - i) * 5;
    for (int k = 0; k < 5; ++k) {
      int b = bit + k;
      if (b >= 128) break;
      if (v & (1 << k)) id.bytes[static_cast<size_t>(15 - b / 8)] |= static_cast<uint8_t>(1u << (b % 8));
    }
  }
  return id;
}

EventId EventId::FromBytes(std::string_view b) {
  EventId id;
  std::memcpy(id.bytes.data(), b.data(), 16);
  return id;
}

int64_t EventId::TimestampMillis() const {
  int64_t ms = 0;
  for (int i = 0; i < 6; ++i) ms = (ms << 8) | bytes[static_cast<size_t>(i)];
  return ms;
}

EventId EventIdGenerator::Next(int64_t now_millis) {
  if (now_millis <= last_millis_) {
    // Same (or earlier: the wall clock stepped back) millisecond: keep the
    // previous timestamp and increment the random part, so ids stay sorted.
    for (int i = 15; i >= 6; --i) {
      if (++last_.bytes[static_cast<size_t>(i)] != 0) break;
    }
    return last_;
  }
  last_millis_ = now_millis;
  auto ms = static_cast<uint64_t>(now_millis);
  for (int i = 5; i >= 0; --i) {
    last_.bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(ms & 0xFF);
    ms >>= 8;
  }
  uint64_t hi = Random(), lo = Random();
  for (int i = 0; i < 2; ++i) last_.bytes[static_cast<size_t>(6 + i)] = static_cast<uint8_t>(hi >> (8 * i));
  for (int i = 0; i < 8; ++i) last_.bytes[static_cast<size_t>(8 + i)] = static_cast<uint8_t>(lo >> (8 * i));
  last_.bytes[6] &= 0x7F;  // leave room to increment within a millisecond
  return last_;
}

uint64_t EventIdGenerator::Random() {
  if (!seeded_) {
    RandomBytes(reinterpret_cast<uint8_t*>(&state_), sizeof(state_));
    seeded_ = true;
  }
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace dfm
