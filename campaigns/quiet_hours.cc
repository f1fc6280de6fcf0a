#include "campaigns/quiet_hours.h"

#include <cstdio>

namespace dfm {

namespace {

constexpr int64_t kDay = 86400;

int64_t FloorMod(int64_t a, int64_t b) { return ((a % b) + b) % b; }

int LocalMinute(const ZoneRules& z, int64_t unix_s) {
  return static_cast<int>(FloorMod(unix_s + z.OffsetAt(unix_s), kDay) / 60);
}

bool Inside(const QuietHours& q, int minute) {
  return q.start_min <= q.end_min ? (minute >= q.start_min && minute < q.end_min)
                                  : (minute >= q.start_min || minute < q.end_min);
}

// The next instant after `unix_s` when the window opens in `z`.
int64_t NextOpening(const QuietHours& q, const ZoneRules& z, int64_t unix_s) {
  const int64_t local = unix_s + z.OffsetAt(unix_s);
  int64_t opening = local - FloorMod(local, kDay) + q.start_min * 60;
  if (opening <= local) opening += kDay;
  // Local to UTC with the offset then in force (a change of offset between
  // now and then moves it; taken again at the result).
  int64_t t = opening - z.OffsetAt(unix_s);
  t = opening - z.OffsetAt(t);
  return t > unix_s ? t : unix_s + 60;
}

bool ReadClock(std::string_view s, int* minute) {
  if (s.size() != 5 || s[2] != ':') return false;
  for (size_t i : {0, 1, 3, 4})
    if (s[i] < '0' || s[i] > '9') return false;
  const int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
  if (h > 24 || m > 59 || (h == 24 && m != 0)) return false;
  *minute = h * 60 + m;
  return true;
}

}  // namespace

bool ParseQuietHours(std::string_view text, QuietHours* out) {
  const size_t dash = text.find('-');
  QuietHours q;
  if (dash == std::string_view::npos || !ReadClock(text.substr(0, dash), &q.start_min) ||
      !ReadClock(text.substr(dash + 1), &q.end_min) || q.start_min == q.end_min)
    return false;
  *out = q;
  return true;
}

std::string FormatQuietHours(const QuietHours& q) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%02d:%02d-%02d:%02d", q.start_min / 60, q.start_min % 60,
                q.end_min / 60, q.end_min % 60);
  return buf;
}

bool AllowedAt(const QuietHours& q, const std::vector<const ZoneRules*>& zones, int64_t unix_s) {
  if (zones.empty()) return false;
  for (const ZoneRules* z : zones)
    if (!Inside(q, LocalMinute(*z, unix_s))) return false;
  return true;
}

std::optional<int64_t> NextAllowed(const QuietHours& q, const std::vector<const ZoneRules*>& zones,
                                   int64_t unix_s, int64_t horizon_s) {
  if (zones.empty()) return std::nullopt;
  int64_t t = unix_s - FloorMod(unix_s, 60) + (FloorMod(unix_s, 60) ? 60 : 0);  // a whole minute
  const int64_t limit = unix_s + horizon_s;
  while (t <= limit) {
    const ZoneRules* closed = nullptr;
    for (const ZoneRules* z : zones) {
      if (!Inside(q, LocalMinute(*z, t))) {
        closed = z;
        break;
      }
    }
    if (closed == nullptr) return t;
    t = NextOpening(q, *closed, t);  // every zone is looked at again from there
  }
  return std::nullopt;
}

}  // namespace dfm
