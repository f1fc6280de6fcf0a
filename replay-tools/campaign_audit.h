// `dfm audit violations`, for campaigns (docs/campaigns.md): a campaign's
// send (a text, an email, a place on a dialer) the vendor took while quiet
// hours held for the person. (A campaign's
// text sent while the person was opted out is found with every other text:
// replay-tools/audit.h, "outbound_while_opted_out".)
#pragma once

#include <string>
#include <vector>

#include "campaigns/quiet_hours.h"
#include "campaigns/recipient_zones.h"
#include "config/config.h"
#include "replay-tools/audit.h"
#include "storage/event_log.h"

namespace dfm {

struct CampaignHoursOptions {
  QuietHours hours;                       // configuration [campaigns]
  std::string default_zone = "UTC";       // a person whose phone says no zone
  const RecipientZones* zones = nullptr;  // REQUIRES: not null
  std::string tenant;                     // empty: every tenant
};

// The options [campaigns] gives, with this machine's zones
// (SystemRecipientZones: kept for the process's life).
CampaignHoursOptions CampaignHoursFrom(const CampaignSettings& settings, const std::string& tenant);

// Every push.succeeded of a send whose message key is a campaign's
// (CampaignMessageKey), recorded outside `hours` in any zone of the
// person's phone as it was then: kind "campaign_quiet_hours".
Status FindCampaignQuietHourSends(const EventLog& log, const CampaignHoursOptions& options,
                                  std::vector<Violation>* out);

}  // namespace dfm
