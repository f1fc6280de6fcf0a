#include "campaigns/check.h"

#include <algorithm>

#include "util/clock.h"

namespace dfm {

std::vector<CampaignCheckItem> CheckCampaign(const CampaignCheckInput& in) {
  std::vector<CampaignCheckItem> out;
  const Customer* c = in.customer;
  if (c == nullptr) {
    out.push_back({"customer", false, "no such customer: create it (POST /v1/customers)"});
  } else {
    out.push_back(
        {"customer", c->active, c->active ? c->name + " is active" : c->name + " is not active"});
  }
  const bool paid = c != nullptr && c->payments_total > 0 && !c->payments.empty();
  out.push_back({"payment", paid,
                 paid ? std::to_string(c->payments_total) + " on record, the last " +
                            c->payments.back().amount + " " + c->payments.back().currency
                      : "no payment on record (POST /v1/customers/{id}/payments)"});
  std::string problems;
  for (const auto& p : in.spec_problems)
    problems += (problems.empty() ? "" : "; ") + p.field + " " + p.problem;
  const size_t steps = in.spec ? in.spec->steps.size() : 0;
  out.push_back({"steps", in.spec_problems.empty() && steps > 0,
                 problems.empty() ? std::to_string(steps) + " valid" : problems});
  const int64_t start = in.spec ? in.spec->start_at_us : 0;
  if (in.state != CampaignState::kDraft && in.state != CampaignState::kScheduled) {
    out.push_back({"start",
                   in.state == CampaignState::kRunning || in.state == CampaignState::kPaused,
                   "the campaign is " + std::string(CampaignStateName(in.state))});
  } else if (start == 0) {
    out.push_back({"start", true, "starts when started"});
  } else {
    out.push_back({"start", true,
                   (start > in.now_us ? "scheduled for " : "its date passed: starts at once, ") +
                       FormatIso8601Millis(start)});
  }
  out.push_back({"sender", in.sender_configured,
                 in.sender_configured ? "configured"
                                      : "the tenant has no sender for the first step's channel"});
  const bool drafted = in.spec && std::any_of(in.spec->steps.begin(), in.spec->steps.end(),
                                               [](const CampaignStep& s) { return s.ai_draft; });
  if (drafted)
    out.push_back({"drafter", in.drafter_configured,
                   in.drafter_configured
                       ? "the classifier's model drafts the AI steps"
                       : "a step is drafted by AI and the tenant has no classifier model on "
                         "(openai, send_message_body = true)"});
  out.push_back({"audience", in.reachable > 0,
                 std::to_string(in.audience) + " named, " + std::to_string(in.reachable) +
                     " reachable (not opted out)"});
  return out;
}

bool CheckPasses(const std::vector<CampaignCheckItem>& items) {
  for (const auto& i : items)
    if (!i.ok) return false;
  return true;
}

}  // namespace dfm
