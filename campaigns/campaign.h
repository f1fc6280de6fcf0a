// A campaign as an operator asks for it (POST /v1/campaigns), its
// validation with details, and its lifecycle (campaigns/README.md).
//
// Spec grammar (JSON, version 1; what campaign.created carries):
//   spec     = {"v":1, "id", "customer", "name"?, "audience", "steps",
//               "start_at"? (RFC 3339; absent: when started), "sender"?}
//   audience = {"tags"?: [string], "list"?: string, "members"?: [string]}
//              ; members: contact ids, E.164 phones or emails; as
//              ; campaign.created keeps them (audience.h): contact ids,
//              ; "#" 32-hex keyed hashes of phones and emails that named
//              ; no contact, or as given by a log that seals nothing
//   step     = {"channel": "sms"|"email"|"call", "template"?, "subject"?,
//               "delay_s"?: 0.., "window_s"?: 60.., "stop_on_reply"?: bool,
//               "stop_on_payment"?: bool, "draft"?: "ai"}
//              ; draft "ai" (sms and email only): the template is a brief,
//              ; and the tenant's classifier model drafts the text from it
//              ; for each person (campaigns/agent.h)
// A person who opted out of a step's channel is never reached on it: that
// stop is not optional.
//
// Pure. Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace dfm {

enum class Channel { kSms, kEmail, kCall };
std::string_view ChannelName(Channel c);
// false for another name.
bool ParseChannel(std::string_view name, Channel* out);

struct CampaignStep {
  Channel channel = Channel::kSms;
  std::string template_text;  // sms and email; call: the note the agent sees
  std::string subject;        // email
  int64_t delay_s = 0;        // after the step before (the first: after the start)
  int64_t window_s = 86400;   // how long after it is due it may still go
  bool stop_on_reply = true;
  bool stop_on_payment = true;
  bool ai_draft = false;  // "draft": "ai"
};

struct Audience {
  std::vector<std::string> tags;
  std::string list;
  std::vector<std::string> members;
};

struct CampaignSpec {
  std::string id;
  std::string customer;
  std::string name;
  Audience audience;
  std::vector<CampaignStep> steps;
  int64_t start_at_us = 0;  // 0: when started
  std::string sender;       // the tenant's texting number or from address; "": the tenant's default
};

// One problem of a spec, as the API's 400 details say it:
// {"field": "steps[1].delay_s", "problem": "must be 0 or more"}.
struct ValidationDetail {
  std::string field;
  std::string problem;
  bool operator==(const ValidationDetail& o) const {
    return field == o.field && problem == o.problem;
  }
};

// Reads a spec; every problem found goes to *details (the spec is usable
// only when there is none). Malformed JSON is one detail, field "".
void DecodeCampaignSpec(std::string_view json, CampaignSpec* out,
                        std::vector<ValidationDetail>* details);
std::string EncodeCampaignSpec(const CampaignSpec& spec);
// [{"field","problem"}...]
std::string ValidationDetailsJson(const std::vector<ValidationDetail>& details);

// The lifecycle: draft -> scheduled (a start date ahead) or running;
// scheduled -> running (the date came); running <-> paused; running ->
// completed (every task ended); any but completed and cancelled ->
// cancelled.
enum class CampaignState { kDraft, kScheduled, kRunning, kPaused, kCompleted, kCancelled };
std::string_view CampaignStateName(CampaignState s);
bool ParseCampaignState(std::string_view name, CampaignState* out);

enum class CampaignAction { kStart, kBegin, kPause, kResume, kComplete, kCancel, kResetTasks };
std::string_view CampaignActionName(CampaignAction a);
bool ParseCampaignAction(std::string_view name, CampaignAction* out);  // false for another name
// The state after `a` from `from`; FailedPrecondition-like InvalidArgument
// ("cannot pause a campaign that is scheduled") when it does not apply.
// kStart goes to scheduled when `start_at_us` is after `now_us`, else
// running; kBegin is the scheduled date coming. kResetTasks ("reset_tasks",
// `dfm campaigns tasks ID --reset`) keeps a running or paused campaign's
// state: its runner gives back the tasks stuck at that moment
// (planner.h).
Status NextState(CampaignState from, CampaignAction a, int64_t start_at_us, int64_t now_us,
                 CampaignState* to);

}  // namespace dfm
