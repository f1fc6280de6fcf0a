// `dfm campaigns check ID` (and the API's validate): why a campaign would
// not start, in one list, in the order the campaign API's troubleshooting
// guide asks (campaigns/README.md): the customer exists and is active, a
// payment is on record, the steps are valid, the start date, the sender,
// and the audience left once the opted-out are taken out.
//
// Pure: the caller gathers what it names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "campaigns/campaign.h"
#include "campaigns/customer.h"

namespace dfm {

struct CampaignCheckInput {
  const CampaignSpec* spec = nullptr;
  std::vector<ValidationDetail> spec_problems;  // DecodeCampaignSpec's
  CampaignState state = CampaignState::kDraft;
  const Customer* customer = nullptr;  // null: no such customer
  bool sender_configured = false;      // the tenant can send on the first step's channel
  bool drafter_configured = false;     // the tenant has a classifier model (AI draft steps)
  int64_t audience = 0;                // people the audience names
  int64_t reachable = 0;               // of them, not opted out of the first step's channel
  int64_t now_us = 0;
};

struct CampaignCheckItem {
  // "customer", "payment", "steps", "start", "sender", "drafter" (only when
  // a step is drafted by AI), "audience"
  std::string what;
  bool ok = false;
  std::string detail;  // in words
};

std::vector<CampaignCheckItem> CheckCampaign(const CampaignCheckInput& in);
// Whether every item is ok.
bool CheckPasses(const std::vector<CampaignCheckItem>& items);

}  // namespace dfm
