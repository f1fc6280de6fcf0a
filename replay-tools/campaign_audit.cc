#include "replay-tools/campaign_audit.h"

#include <map>

#include "campaigns/task.h"
#include "replay-tools/tool_log.h"
#include "sync/consent.h"
#include "sync/domain_event.h"
#include "sync/fact.h"

namespace dfm {

CampaignHoursOptions CampaignHoursFrom(const CampaignSettings& settings,
                                       const std::string& tenant) {
  CampaignHoursOptions o;
  (void)ParseQuietHours(settings.quiet_hours, &o.hours);  // checked when read: else the default
  o.default_zone = settings.default_zone;
  o.zones = SystemRecipientZones().get();  // kept for the process's life
  o.tenant = tenant;
  return o;
}

Status FindCampaignQuietHourSends(const EventLog& log, const CampaignHoursOptions& o,
                                  std::vector<Violation>* out) {
  // contact -> its phone and time zone field then (the zones the agent read)
  std::map<std::string, std::string> phone_of, email_of, zone_of;
  return ScanEvents(log, 1, 0, [&](const Event& e) {
    if (!o.tenant.empty() && e.tenant != o.tenant) return true;
    if (e.type != ev::kContactCreated && e.type != ev::kContactChanged &&
        e.type != ev::kPushSucceeded)
      return true;
    DomainEvent d;
    if (!DecodeDomainEvent(e.type, e.payload, &d).ok()) return true;
    if (e.type == ev::kContactCreated) {
      if (auto p = d.fields.find(fields::kPhone); p != d.fields.end())
        phone_of[d.contact_id] = p->second;
      if (auto m = d.fields.find(fields::kEmail); m != d.fields.end())
        email_of[d.contact_id] = m->second;
      if (auto z = d.fields.find(fields::kTimezone); z != d.fields.end())
        zone_of[d.contact_id] = z->second;
      return true;
    }
    if (e.type == ev::kContactChanged) {
      for (const auto& c : d.changes) {
        if (c.field == fields::kPhone) phone_of[d.contact_id] = c.new_value;
        if (c.field == fields::kEmail) email_of[d.contact_id] = c.new_value;
        if (c.field == fields::kTimezone) zone_of[d.contact_id] = c.new_value;
      }
      return true;
    }
    std::string campaign, contact;
    int step = 0;
    // (A draft request reaches the model, not the person.)
    if (d.op != "send" || ParseCampaignDraftKey(d.message_key, &campaign, &step, &contact) ||
        !ParseCampaignMessageKey(d.message_key, &campaign, &step, &contact))
      return true;
    const std::string& phone = phone_of[d.contact_id];
    ZoneChoice zones;
    if (!o.zones->For(zone_of[d.contact_id], phone, o.default_zone, &zones).ok()) return true;
    if (AllowedAt(o.hours, zones.Raw(), e.recorded_at_us / 1000000)) return true;
    Violation v;
    v.kind = "campaign_quiet_hours";
    v.tenant = e.tenant;
    v.contact_id = d.contact_id;
    v.phone = phone;
    v.channel = d.channel.empty() ? "sms" : d.channel;
    if (v.channel == channels::kEmail) v.email = email_of[d.contact_id];
    v.at_us = e.recorded_at_us;
    v.message_key = d.message_key;
    v.systems = {d.system};
    v.how = "campaign " + campaign + " step " + std::to_string(step) + " (" + v.channel +
            ") sent outside " + FormatQuietHours(o.hours) + " in the person's time (" + zones.how +
            ")";
    v.event_id = e.id.ToString();
    out->push_back(std::move(v));
    return true;
  });
}

}  // namespace dfm
