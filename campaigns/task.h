// A campaign's task: one per contact per step, carried out by an agent
// under a lease (campaigns/README.md). Its life is its events, on the
// stream "campaign-tasks:<campaign id>" (apart from the campaign's own
// stream, which stays small enough to fold at each request); the task is
// their fold.
//
//   pending --claimed--> in_progress --done|failed--> (ended)
//      ^  \--deferred (due moved on)      |--released (lease lapsed, the
//      |                                  |   agent gave it back, or the
//      |                                  |   AI agent drafted its text)
//      +----------------------------------+
//   pending or in_progress --skipped--> (ended)
//
// A done, failed or released names the claim it answers (the task's
// claims so far): one from an agent that no longer holds the lease, or
// from its own earlier claim, is refused. Ended tasks take nothing.
//
// Payload grammar (JSON, version 1), every type:
//   {"v":1, "campaign", "contact", "step": 0.., and per type:
//    task.created  "due_us"
//    task.deferred "until_us", "reason"
//    task.claimed  "agent", "claim" (1 for the first), "lease_until_us",
//                  "channel"?, "body"?, and for an email "subject"? and
//                  "unsubscribe"? (its one-click link) (a send's agent:
//                  what it sends; a claim with a body is the campaign's
//                  send request, routed to the person's contact:
//                  CampaignMessageKey), "detail"? (a drafted text's
//                  "<prompt version> <model>"); the AI agent's claim has
//                  channel "draft" and the brief as its body (a draft
//                  request: CampaignDraftKey)
//    task.released "agent", "claim", "reason" ("lease_lapsed" | "reset" |
//                  "given_back" | "drafted")
//    task.done     "agent", "claim", "channel" ("sms" | "email" | "call"),
//                  "detail"?
//    task.failed   "agent", "claim", "reason", "detail"?
//    task.skipped  "reason", "detail"?, and for a cancel's skip
//                  (planner.h) of a task claimed before "claim" (its
//                  claims so far: what they asked for is withdrawn,
//                  Activity::Kind::kWithdraw), with "agent" when one
//                  holds it}
//
// Pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "events/event.h"
#include "util/status.h"

namespace dfm {

enum class TaskState { kPending, kInProgress, kDone, kFailed, kSkipped };
std::string_view TaskStateName(TaskState s);
bool ParseTaskState(std::string_view name, TaskState* out);  // false for another name

struct Task {
  std::string campaign, contact;
  int step = 0;
  int64_t due_us = 0;
  // When it first became due (task.created's due_us; a deferral moves
  // due_us, never this): its step's window runs from here. 0 in a row of an
  // earlier build: due_us.
  int64_t first_due_us = 0;
  TaskState state = TaskState::kPending;
  std::string agent;           // in_progress: who holds it
  int64_t lease_until_us = 0;  // in_progress: until when
  int claims = 0;              // how many times it was claimed
  std::string reason, detail;  // why it was skipped or failed, or last deferred
  // When its last event was recorded (an ended task: when it ended). Kept
  // by the projection's fold (the event's time), not by ApplyTaskEvent.
  int64_t changed_us = 0;
  bool ended() const {
    return state == TaskState::kDone || state == TaskState::kFailed || state == TaskState::kSkipped;
  }
};

struct TaskEvent {
  std::string type;  // one of the kTask* names
  std::string campaign, contact;
  int step = 0;
  int64_t due_us = 0, until_us = 0, lease_until_us = 0;
  // claimed: its number; released, done, failed: the claim answered;
  // deferred: the task's claims so far (its key's only, not in the payload)
  int claim = 0;
  std::string agent, reason, detail;
  std::string channel;  // task.done: what went (the frequency caps count texts and emails)
  std::string body;     // task.claimed by a send's agent: the text it sends
  std::string subject, unsubscribe;  // ... an email's subject and unsubscribe link
};

inline constexpr std::string_view kTaskCreated = "task.created";
inline constexpr std::string_view kTaskDeferred = "task.deferred";
inline constexpr std::string_view kTaskClaimed = "task.claimed";
inline constexpr std::string_view kTaskReleased = "task.released";
inline constexpr std::string_view kTaskDone = "task.done";
inline constexpr std::string_view kTaskFailed = "task.failed";
inline constexpr std::string_view kTaskSkipped = "task.skipped";

// An event of `type` about `t` (its campaign, contact and step), the rest
// to fill in.
TaskEvent TaskEventFor(const Task& t, std::string_view type);

std::string EncodeTaskEvent(const TaskEvent& e);
// False when `payload` is not a version-1 payload of `type`.
bool DecodeTaskEvent(std::string_view type, std::string_view payload, TaskEvent* e);

// The draft of `e` for `tenant`'s log, with an idempotency key that makes
// the same step of the same task one event however often it is asked:
// "<campaign>/<step>/<contact>/<type>/<n>", n the claim (claimed,
// released, done, failed), the new time (deferred), else 0 (a skip, even
// one naming the claim it ends: a task is skipped once). A deferral of a
// task claimed before also names how many claims it had ("/<until>/<claims>",
// `claim`, not in the payload): one refused on a stale view (the task
// claimed meanwhile) is asked anew, not as a duplicate, once that claim
// is released.
EventDraft TaskEventDraft(const std::string& tenant, const TaskEvent& e);

// The engine's key of the message a task sends ("campaign:<campaign>/<step>/
// <contact>"): one per task however often it is claimed, so a send asked
// again after a lapsed lease is the same message, sent once (sync/
// contact_model: a send of a known key is not asked again). The contact
// model makes it from the fact's system (kCampaignSystem) and the message
// id CampaignMessageId gives.
std::string CampaignMessageId(const std::string& campaign, int step, const std::string& contact);
std::string CampaignMessageKey(const std::string& campaign, int step, const std::string& contact);
// False when `key` is not one CampaignMessageKey makes.
bool ParseCampaignMessageKey(std::string_view key, std::string* campaign, int* step,
                             std::string* contact);
// The same for the request to draft a task's text (an AI draft step,
// agent.h): "<message id>/draft", its key "campaign:<message id>/draft"
// (ParseCampaignMessageKey reads it too, as a contact "<contact>/draft":
// ask ParseCampaignDraftKey first; the engine's contact ids have no '/').
// Its claim and push are on channel channels::kDraft (sync/consent.h).
std::string CampaignDraftId(const std::string& campaign, int step, const std::string& contact);
std::string CampaignDraftKey(const std::string& campaign, int step, const std::string& contact);
bool ParseCampaignDraftKey(std::string_view key, std::string* campaign, int* step,
                           std::string* contact);

// What the model drafted for a task (projections/campaign_projections.h,
// a/ rows): its whole text, or why there is none (the model did not
// return it in full, or the request failed). Row grammar (JSON, version
// 1): {"v":1, "ok": bool, "text"?, "model"?, "prompt_version"?, "reason"?}.
struct Draft {
  bool ok = false;
  std::string text, model, prompt_version;
  std::string reason;  // !ok: why
};
std::string EncodeDraft(const Draft& d);
bool DecodeDraft(std::string_view row, Draft* d);

// What became of a task's send, as the person's contact events say
// (projections/campaign_projections.h, o/ rows): the vendor took it, the
// consent gate refused it, or it was dead-lettered.
struct SendOutcome {
  enum class Kind { kSent, kRefused, kFailed };
  Kind kind = Kind::kSent;
  std::string detail;  // the system that took it, or why not
  int64_t at_us = 0;   // when the vendor took it, or it was refused (0: not recorded)
};
std::string EncodeSendOutcome(const SendOutcome& o);
bool DecodeSendOutcome(std::string_view row, SendOutcome* o);

// Folds `e` into `t` (a task not created yet has an empty campaign).
// InvalidArgument, saying why, when the lifecycle does not allow it; `t`
// is then unchanged.
Status ApplyTaskEvent(const TaskEvent& e, Task* t);

// Whether `t` is held by an agent whose lease ran out at `now_us`.
bool LeaseLapsed(const Task& t, int64_t now_us);
// Whether `t` is stuck (the guide's "tasks not executing"): in progress
// with its lease run out, or claimed kStuckAfterUs ago or more (not a
// call's claim, agent "call", which holds for its step's window while a
// person works the dialer).
inline constexpr int64_t kStuckAfterUs = 3600LL * 1000000;
bool TaskStuck(const Task& t, int64_t now_us);

}  // namespace dfm
