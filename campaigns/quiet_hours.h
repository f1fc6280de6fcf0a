// Quiet hours: the part of each day a campaign may reach a person, in the
// person's local time (campaigns/README.md), checked at the moment of
// sending (send_check.h). A number that may be in several zones (libphonenumber maps
// some area codes to more than one) is reached only when every one of them
// is inside the window: the most restrictive reading.
//
// Pure. Times are Unix seconds; zones come as ZoneRules (zone_rules.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "campaigns/zone_rules.h"

namespace dfm {

struct QuietHours {
  int start_min = 8 * 60;  // the first minute of the day a send may go
  int end_min = 21 * 60;   // the first minute it may not (before start: the window spans midnight)
  bool operator==(const QuietHours& o) const {
    return start_min == o.start_min && end_min == o.end_min;
  }
};

// "HH:MM-HH:MM" (e.g. "08:00-21:00"); false when malformed or empty.
bool ParseQuietHours(std::string_view text, QuietHours* out);
std::string FormatQuietHours(const QuietHours& q);

// Whether `unix_s` is inside the window in every one of `zones` (none:
// false: nobody is reached at an unknown time).
bool AllowedAt(const QuietHours& q, const std::vector<const ZoneRules*>& zones, int64_t unix_s);

// The first minute at or after `unix_s` that AllowedAt accepts, looking at
// most `horizon_s` ahead; nullopt when there is none (no zones, or their
// windows never overlap).
std::optional<int64_t> NextAllowed(const QuietHours& q, const std::vector<const ZoneRules*>& zones,
                                   int64_t unix_s, int64_t horizon_s = 8 * 86400);

}  // namespace dfm
