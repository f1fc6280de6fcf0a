// RecipientZones: the time zones a campaign's quiet hours are read in for
// one person (campaigns/README.md): the zone the contact's own field names,
// else those of their phone number (libphonenumber's map, phone_zones.h: a
// geographical number by its area code, another by its country), else the
// tenant's default zone. How it was chosen is said, for `dfm campaigns
// check` and the task's record.
//
// Thread-safety: every method may be called from any thread (the zone
// files read are kept).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "campaigns/phone_zones.h"
#include "campaigns/zone_rules.h"
#include "util/status.h"

namespace dfm {

inline constexpr char kZoneInfoDir[] = "/usr/share/zoneinfo";

struct ZoneChoice {
  std::vector<std::shared_ptr<const ZoneRules>> zones;
  std::string how;  // "contact field", "phone number", "tenant default"
  std::vector<const ZoneRules*> Raw() const;
};

class RecipientZones {
 public:
  // `phone_map` may be null (no map installed: phones say nothing).
  RecipientZones(std::shared_ptr<const PhoneZones> phone_map,
                 std::string zoneinfo_dir = kZoneInfoDir);

  // `contact_zone`: the contact's time zone field ("" when it has none);
  // `e164`: its phone ("" when none); `default_zone`: the tenant's.
  // InvalidArgument when even the default names no zone.
  Status For(std::string_view contact_zone, std::string_view e164, const std::string& default_zone,
             ZoneChoice* out) const;

  // A zone by name ("America/Denver", or a fixed "+05:30"/"UTC-3"), kept:
  // every call for a name gives the one this object keeps, so a raw
  // pointer to it (ZoneChoice::Raw) stays valid as long as this object,
  // also when two threads load the name at once.
  Status Zone(const std::string& name, std::shared_ptr<const ZoneRules>* out) const;

  // The zone names libphonenumber gives `e164` (none when unknown).
  std::vector<std::string> PhoneZoneNames(std::string_view e164) const;

 private:
  std::shared_ptr<const PhoneZones> map_;
  std::string dir_;
  mutable std::mutex mu_;
  mutable std::map<std::string, std::shared_ptr<const ZoneRules>> loaded_;
};

// This machine's zones: kZoneInfoDir and libphonenumber's map from
// kPhoneZonesJar, read once per process. Without the map (not installed,
// unreadable; *map_status says why), phones say nothing.
std::shared_ptr<const RecipientZones> SystemRecipientZones(Status* map_status = nullptr);

// "+05:30", "-03", "UTC+2", "UTC" as a fixed offset in seconds; false for
// anything else.
bool ParseFixedOffset(std::string_view text, int32_t* offset_s);

}  // namespace dfm
