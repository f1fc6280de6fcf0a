// ZoneRules: a time zone's offset from UTC at any instant, read from the
// system's tz database (tzdata, /usr/share/zoneinfo), for the quiet hours of
// campaigns (campaigns/README.md): the recipient's local time.
//
// A zone file is TZif (RFC 8536), version 1 to 4: its transitions, then,
// past the last one, the rule of its footer, a POSIX TZ string such as
// "EST5EDT,M3.2.0,M11.1.0" (RFC 8536 section 3.3; POSIX.1-2017 section 8.3,
// with the version-3 extension of hours from -167 to 167).
//
// Pure: parsing works on bytes; only LoadZone reads a file. Thread-safety:
// a ZoneRules is immutable once made; share it freely.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace dfm {

// A POSIX TZ rule (the footer): standard time, and optionally daylight
// time between two yearly transitions.
struct PosixZone {
  int32_t std_offset_s = 0;  // local minus UTC (the string's sign reversed)
  bool has_dst = false;
  int32_t dst_offset_s = 0;
  // A transition's day: kMonthWeekDay (Mm.w.d), kJulianNoLeap (Jn: 1-365,
  // February 29 never counted) or kZeroBased (n: 0-365).
  enum class DayKind { kMonthWeekDay, kJulianNoLeap, kZeroBased };
  struct When {
    DayKind kind = DayKind::kMonthWeekDay;
    int month = 0, week = 0, weekday = 0;  // Mm.w.d
    int day = 0;                           // Jn or n
    int32_t time_s = 7200;                 // local time of day, default 02:00
  };
  When start, end;  // into daylight time, out of it

  // Local minus UTC at `unix_s`.
  int32_t OffsetAt(int64_t unix_s) const;
};
// False when `text` is not a POSIX TZ string this reads.
bool ParsePosixZone(std::string_view text, PosixZone* out);

class ZoneRules {
 public:
  // Parses a TZif file's bytes; Corruption when they are not one.
  static Status Parse(std::string_view bytes, std::string name,
                      std::shared_ptr<const ZoneRules>* out);
  // A fixed offset (local minus UTC), e.g. for a contact's "+05:30".
  static std::shared_ptr<const ZoneRules> Fixed(int32_t offset_s, std::string name);

  const std::string& name() const { return name_; }
  // Local minus UTC at `unix_s`.
  int32_t OffsetAt(int64_t unix_s) const;

 private:
  std::string name_;
  std::vector<int64_t> transitions_;  // sorted
  std::vector<int32_t> offsets_;      // the offset from each transition on
  int32_t initial_offset_ = 0;        // before the first transition
  bool has_footer_ = false;
  PosixZone footer_;
};

// Reads zone `name` ("America/New_York") under `dir` (/usr/share/zoneinfo).
// InvalidArgument for a name that is not a zone name ("..", absolute,
// characters outside [A-Za-z0-9/_+-]); NotFound when there is no such file.
Status LoadZone(const std::string& dir, const std::string& name,
                std::shared_ptr<const ZoneRules>* out);

// Days from 1970-01-01 to the civil date (proleptic Gregorian).
int64_t DaysFromCivil(int64_t year, unsigned month, unsigned day);

}  // namespace dfm
