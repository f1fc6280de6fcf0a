// A campaign as its events make it: the spec it was created with and where
// it is in its lifecycle (campaign.h), the fold of its events on
// "campaign:<id>" (its tasks' events are on a stream of their own, task.h).
//
// Events (JSON, version 1):
//   campaign.created  {"v":1, "spec": <spec, campaign.h>}
//   campaign.changed  {"v":1, "id", "action": "start"|"begin"|"pause"|
//                      "resume"|"complete"|"cancel"|"reset_tasks", "state":
//                      the state after, "at_us", "by", "reason"?}
// The state each change names is the one NextState gave when it was
// appended; the fold checks it again and refuses (changes nothing for) a
// change the lifecycle does not allow from the state it holds.
//
// Pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "campaigns/campaign.h"
#include "events/event.h"

namespace dfm {

inline constexpr std::string_view kCampaignCreated = "campaign.created";
inline constexpr std::string_view kCampaignChanged = "campaign.changed";

struct CampaignView {
  CampaignSpec spec;
  CampaignState state = CampaignState::kDraft;
  int64_t created_us = 0;
  int64_t started_us = 0;  // when it first ran (0: never)
  int64_t changed_us = 0;  // its last change
  int64_t reset_us = 0;    // its last reset_tasks (0: never)
  std::string changed_by, reason;
  int changes = 0;  // changes folded (the next one's position)
  // Its pauses, oldest first: {paused at, resumed or ended at (0: still
  // paused)}.
  std::vector<std::pair<int64_t, int64_t>> pauses;
};

// How long `v` was paused between `from_us` and `to_us`: a step's window
// does not run while its campaign is paused (campaigns/agent.h).
int64_t PausedBetween(const CampaignView& v, int64_t from_us, int64_t to_us);

struct CampaignChange {
  std::string id;
  CampaignAction action = CampaignAction::kStart;
  CampaignState state = CampaignState::kDraft;  // after it
  int64_t at_us = 0;
  std::string by, reason;
};

// The drafts; the created one is made once per campaign id (its
// idempotency key), a change once per (id, its position in the life: the
// number of changes before it, its action), so a request asked twice
// appends once, and two different ones asked at once both append (the
// fold then takes them in the log's order, refusing one the lifecycle no
// longer allows).
EventDraft CampaignCreatedDraft(const std::string& tenant, const CampaignSpec& spec);
EventDraft CampaignChangedDraft(const std::string& tenant, const CampaignChange& change,
                                int changes_before);
// The change `action` makes to `v` at `now_us`; InvalidArgument when the
// lifecycle does not allow it (campaign.h, NextState).
Status PlanCampaignChange(const CampaignView& v, CampaignAction action, int64_t now_us,
                          const std::string& by, const std::string& reason, CampaignChange* out);

// Folds one campaign.* event into `v` (`recorded_at_us`: the event's);
// InvalidArgument when it does not read or the lifecycle refuses it (`v`
// unchanged); task events and others: OK, nothing changed.
Status ApplyCampaignEvent(std::string_view type, std::string_view payload, int64_t recorded_at_us,
                          CampaignView* v);

// The view as the API answers it: {"spec":..., "state", "created_at",
// "started_at"?, "changed_at"?, "changed_by"?, "reason"?}.
std::string CampaignViewJson(const CampaignView& v);

}  // namespace dfm
