#include "campaigns/recipient_zones.h"

#include <phonenumbers/phonenumberutil.h>

namespace dfm {

std::vector<const ZoneRules*> ZoneChoice::Raw() const {
  std::vector<const ZoneRules*> out;
  for (const auto& z : zones) out.push_back(z.get());
  return out;
}

bool ParseFixedOffset(std::string_view text, int32_t* offset_s) {
  if (text.empty()) return false;
  if (text.rfind("UTC", 0) == 0) text.remove_prefix(3);
  if (text.empty()) {
    *offset_s = 0;
    return true;
  }
  if (text[0] != '+' && text[0] != '-') return false;
  const int sign = text[0] == '-' ? -1 : 1;
  text.remove_prefix(1);
  auto two = [](std::string_view s, int* v) {
    if (s.size() < 1 || s.size() > 2) return false;
    *v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
      *v = *v * 10 + (c - '0');
    }
    return true;
  };
  int h = 0, m = 0;
  const size_t colon = text.find(':');
  if (!two(text.substr(0, colon), &h) ||
      (colon != std::string_view::npos && !two(text.substr(colon + 1), &m)) || h > 14 || m > 59)
    return false;
  *offset_s = sign * (h * 3600 + m * 60);
  return true;
}

RecipientZones::RecipientZones(std::shared_ptr<const PhoneZones> phone_map,
                               std::string zoneinfo_dir)
    : map_(std::move(phone_map)), dir_(std::move(zoneinfo_dir)) {}

Status RecipientZones::Zone(const std::string& name, std::shared_ptr<const ZoneRules>* out) const {
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = loaded_.find(name);
    if (it != loaded_.end()) {
      *out = it->second;
      return Status::OK();
    }
  }
  std::shared_ptr<const ZoneRules> z;
  int32_t fixed = 0;
  if (ParseFixedOffset(name, &fixed)) {
    z = ZoneRules::Fixed(fixed, name);
  } else {
    Status s = LoadZone(dir_, name, &z);
    if (!s.ok()) return s;
  }
  std::lock_guard<std::mutex> lk(mu_);
  *out = loaded_.emplace(name, z).first->second;  // another thread's, when it came first
  return Status::OK();
}

std::vector<std::string> RecipientZones::PhoneZoneNames(std::string_view e164) const {
  using i18n::phonenumbers::PhoneNumber;
  using i18n::phonenumbers::PhoneNumberUtil;
  if (!map_ || e164.empty()) return {};
  const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
  PhoneNumber n;
  if (util.Parse(std::string(e164), "ZZ", &n) != PhoneNumberUtil::NO_PARSING_ERROR) return {};
  const PhoneNumberUtil::PhoneNumberType type = util.GetNumberType(n);
  if (type == PhoneNumberUtil::UNKNOWN) return {};
  std::string national;
  util.GetNationalSignificantNumber(n, &national);
  const std::string cc = std::to_string(n.country_code());
  // As the mapper: a geographical number by its area, another by its country.
  std::vector<std::string> zones =
      map_->ZonesFor(util.IsNumberGeographical(type, n.country_code()) ? cc + national : cc);
  std::vector<std::string> known;
  for (auto& z : zones)
    if (z != "Etc/Unknown") known.push_back(std::move(z));
  return known;
}

Status RecipientZones::For(std::string_view contact_zone, std::string_view e164,
                           const std::string& default_zone, ZoneChoice* out) const {
  *out = ZoneChoice{};
  std::shared_ptr<const ZoneRules> z;
  if (!contact_zone.empty() && Zone(std::string(contact_zone), &z).ok()) {
    out->zones.push_back(z);
    out->how = "contact field";
    return Status::OK();
  }
  for (const auto& name : PhoneZoneNames(e164)) {
    if (Zone(name, &z).ok()) out->zones.push_back(z);
  }
  if (!out->zones.empty()) {
    out->how = "phone number";
    return Status::OK();
  }
  Status s = Zone(default_zone, &z);
  if (!s.ok()) return Status::InvalidArgument("the tenant's default time zone: " + s.ToString());
  out->zones.push_back(z);
  out->how = "tenant default";
  return Status::OK();
}

std::shared_ptr<const RecipientZones> SystemRecipientZones(Status* map_status) {
  struct Loaded {
    Status map_status;
    std::shared_ptr<const RecipientZones> zones;
  };
  static const Loaded* const kLoaded = [] {  // never destroyed: threads may outlive main
    auto* l = new Loaded;
    std::unique_ptr<PhoneZones> map;
    l->map_status = PhoneZones::Load(kPhoneZonesJar, &map);
    l->zones = std::make_shared<RecipientZones>(std::shared_ptr<const PhoneZones>(std::move(map)));
    return l;
  }();
  if (map_status) *map_status = kLoaded->map_status;
  return kLoaded->zones;
}

}  // namespace dfm
