// What a campaign's runner appends next (campaigns/README.md, step 2),
// decided from the campaign as its events make it, its audience, its tasks
// so far and the time. The same state gives the same events, and each
// event's draft is made once per step of a task (task.h's idempotency
// keys), so a runner that restarts, or two at once while a partition
// moves, append each once.
//
// For a running campaign, in this order:
//   - a person of the audience with no task: their first step's task, due
//     the step's delay_s after the campaign's start (when it first ran, or
//     its start_at when later);
//   - a person whose last task ended done: their next step's task, due the
//     step's delay_s after that one ended; none after a step that ended
//     skipped or failed (their sequence stopped), none after the last step;
//   - a waiting task of a person who opted out of its channel: skipped
//     "opted_out", at once rather than when due (a STOP ends the person's
//     remaining steps within a runner's tick);
//   - a task whose agent's lease ran out: released "lease_lapsed" for the
//     agent and claim that held it (it waits again; the release recorded);
//     one that was stuck (TaskStuck) when the campaign's tasks were last
//     reset (CampaignView::reset_us): released "reset".
// A paused campaign makes no task and skips none, but its lapsed leases
// are released. A cancelled one skips every task not ended, reason
// "cancelled"; the skip of a task claimed before names its claims (and
// its agent, while one holds it), and the router withdraws what they asked
// for if it has not gone (actors/router.h). A text or email a claim sent
// before the cancel (PlanInput::outcome) ends its task done instead; one
// released since is first claimed again by its step's agent, with nothing
// to send, and ended done by the next plan (only the holder ends a task). A running one whose every
// task ended with none left to make is complete (the caller appends the change).
//
// Pure. Times are Unix microseconds.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "campaigns/campaign_view.h"
#include "campaigns/task.h"
#include "util/status.h"

namespace dfm {

struct PlanInput {
  const CampaignView* campaign = nullptr;
  std::vector<std::string> audience;  // contact ids, each once
  std::vector<Task> tasks;            // every task of the campaign, any order
  // Whether the person is opted out of `channel` now (the registry).
  std::function<bool(const std::string& contact, Channel channel)> opted_out;
  // What became of the send a task in progress asked for: OK with *out
  // set, NotFound while nothing is known (unset: never known; Corruption
  // read the same), any other error when it cannot be read now. A cancel ends a text or email that
  // went as done, not skipped: it counts against the frequency caps. A
  // task whose outcome cannot be read is left for a later plan.
  std::function<Status(const Task& task, SendOutcome* out)> outcome;
  int64_t now_us = 0;
};

struct CampaignPlan {
  std::vector<TaskEvent> events;  // to append, in this order
  bool complete = false;
  // The earliest due time of a waiting task, or lease end, after now
  // (0: none): when to look again at the latest.
  int64_t wake_us = 0;
};

CampaignPlan PlanNextTaskEvents(const PlanInput& in);

}  // namespace dfm
