// Time as the engine sees it. Everything that reads the time takes a Clock,
// so tests can run on simulated time.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <optional>
#include <string_view>

namespace dfm {

class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds since the Unix epoch (UTC).
  virtual int64_t NowMicros() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMicros() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  static SystemClock* Instance() {
    static SystemClock clock;
    return &clock;
  }
};

// A clock that moves only when told to. Not thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_us = 0) : now_us_(now_us) {}
  int64_t NowMicros() const override { return now_us_; }
  void Set(int64_t now_us) { now_us_ = now_us; }
  void Advance(int64_t us) { now_us_ += us; }

 private:
  int64_t now_us_;
};

// Parses an RFC 3339 / ISO 8601 UTC time such as "2026-11-20T15:04:05.123Z"
// or "2026-11-20T15:04:05+02:00" to microseconds since the epoch. Also takes
// the zone-less "2026-11-20 21:00:06" (read as UTC).
std::optional<int64_t> ParseIso8601Micros(std::string_view text);

// "2026-11-20T15:04:05.123456Z".
std::string FormatIso8601Micros(int64_t micros);
// "2026-11-20T15:04:05.123Z" (yyyy-MM-ddTHH:mm:ss.SSSZ, as Genesys Cloud
// documents its times): the microseconds cut to milliseconds, not rounded.
std::string FormatIso8601Millis(int64_t micros);

}  // namespace dfm
