// libFuzzer target: the small parsers every webhook goes through: phone
// numbers (libphonenumber behind Normalizer), emails, ISO-8601 and HTTP
// dates, form bodies and %-escapes, the folded email key; and the time
// zone readers of campaigns' quiet hours (a contact's zone field, zone
// files, POSIX rules, libphonenumber's zone map and the jar holding it).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "campaigns/phone_zones.h"
#include "campaigns/quiet_hours.h"
#include "campaigns/recipient_zones.h"
#include "campaigns/zone_rules.h"
#include "connectors/common/probe.h"
#include "connectors/common/webhook_source.h"
#include "sync/identity.h"
#include "sync/normalize.h"
#include "util/clock.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const dfm::Normalizer us("US");
  const std::string in(reinterpret_cast<const char*>(data), size);
  (void)us.Phone(in);
  (void)dfm::Normalizer::Email(in);
  (void)dfm::ParseIso8601Micros(in);
  (void)dfm::ParseHttpDate(in);
  (void)dfm::ParseForm(in);
  bool ok = false;
  (void)dfm::UrlDecode(in, true, &ok);
  (void)dfm::FoldedEmail(in);
  (void)dfm::CompanyDomainOfEmail(in);
  dfm::PosixZone posix;
  if (dfm::ParsePosixZone(in, &posix)) (void)posix.OffsetAt(1'790'000'000);
  dfm::QuietHours quiet;
  (void)dfm::ParseQuietHours(in, &quiet);
  int32_t offset = 0;
  (void)dfm::ParseFixedOffset(in, &offset);
  std::shared_ptr<const dfm::ZoneRules> zone;
  if (dfm::ZoneRules::Parse(in, "fuzz", &zone).ok()) {
    (void)zone->OffsetAt(-4'000'000'000);
    (void)dfm::NextAllowed(quiet, {zone.get()}, 1'790'000'000);
  }
  std::unique_ptr<dfm::PhoneZones> phones;
  if (dfm::PhoneZones::FromMapData(in, &phones).ok()) (void)phones->ZonesFor("12055550101");
  std::string entry;
  (void)dfm::ReadZipEntry(in, dfm::kPhoneZonesEntry, &entry);
  return 0;
}
