// The built-in send agents (campaigns/README.md), "sms", "email" and "call": what
// they append for a running campaign's texts and emails at a tick, decided
// from the tasks, what is known of each person now, and what became of the
// sends they asked for. The planner (planner.h) makes, skips and releases
// tasks; these claim and end them.
//
// For each task, in the tasks' order:
//   - held by its channel's agent under its current claim, with an outcome
//     (SendOutcome): sent -> task.done (the channel); refused by the
//     consent gate refusal_settle_us ago or more (a refusal not dated: at
//     once) -> task.skipped "opted_out"; dead-lettered, or refused
//     with nobody to deliver it (kNotDeliverableRule) -> task.failed
//     "send_failed"; no outcome yet: it waits (a lease that
//     runs out is the planner's to release; claimed again, the same
//     message key is not sent again), unless it is a text, email or call
//     (not yet on the dialer) claimed kRepliedGraceUs ago or more and the step stops on a
//     reply (a later step) and the person replied since the campaign
//     reached them -> task.skipped "replied", or on a payment and they
//     paid since the campaign started -> task.skipped "paid", naming the
//     claim (the send still at the connector is withdrawn if it has not
//     gone, actors/router.cc); an outcome that cannot be read now: it
//     waits for a later tick;
//   - waiting and due, the campaign running, claimed before (its lease
//     lapsed) and its text or email taken by the vendor since -> claimed
//     again at once (the same message key: not sent again; done at the
//     next tick), whatever CheckSend would say; refused less than
//     refusal_settle_us ago -> it waits;
//   - waiting and due, the campaign running: CheckSend (send_check.h) at
//     this moment: skip -> task.skipped with its reason (naming the
//     task's claims so far: what an earlier one asked for and is still on
//     its way is withdrawn, actors/router.cc); wait ->
//     task.deferred until then; a text or email whose template renders
//     empty -> task.skipped "empty_message"; send -> task.claimed with the step's text
//     (and an email's subject) rendered for the person and an email's
//     unsubscribe link (the send request the router hands to the person's
//     contact). Texts go while the sender's pacer has room; past it, the
//     rest wait for the next tick.
// A step drafted by AI (CampaignStep::ai_draft) goes through the AI agent
// first: at the moment of sending (CheckSend says send) with no draft yet,
// it claims the task (agent "ai", channel "draft", the brief rendered for
// the person as its body: a request the router hands to the person's
// contact, and the contact to the tenant's classifier model). When the
// model answered (draft): its whole text -> task.released "drafted", and
// the channel's agent then claims it (CheckSend again) with that text as
// the body and "<prompt version> <model>" as its detail; no text in full
// -> task.failed "draft_failed" (skipped so, when it answered after the
// claim lapsed; a text's draft longer than kMaxDraftedTextChars too). At
// most max_drafting drafts are asked for at once. A text the model did not
// return in full is never sent.
// A call step's send puts the person on the tenant's dialer (a human
// agent calls): its claim holds for the step's window at least, and its
// task is done when a call to the person ends after the claim (call_ended:
// the disposition), not when the dialer took the request.
//
// Pure. Times are Unix microseconds.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "campaigns/campaign_view.h"
#include "campaigns/send_check.h"
#include "campaigns/task.h"

namespace dfm {

inline constexpr char kSmsAgent[] = "sms";
inline constexpr char kEmailAgent[] = "email";
inline constexpr char kCallAgent[] = "call";
inline constexpr char kAiAgent[] = "ai";
// The agent that sends (or dials) a step of `channel`.
inline const char* SendAgentOf(Channel c) {
  return c == Channel::kEmail ? kEmailAgent : c == Channel::kCall ? kCallAgent : kSmsAgent;
}
// The longest drafted text a text step sends (its prompt asks for under
// 300): a longer one fails the task "draft_failed".
inline constexpr size_t kMaxDraftedTextChars = 320;
// How long after its claim a later step's send still on its way is looked
// at for a reply (PlanAgentEvents).
inline constexpr int64_t kRepliedGraceUs = 30LL * 1000000;
// How long a send's refusal is not taken as its end. An opt-out decided
// while the send is on its way refuses it (message.refused), and the
// vendor may take it all the same: its push.succeeded then replaces the
// refusal (the o/ row, projections/campaign_projections.h). Longer than a
// vendor request's default timeout (request_timeout_ms: 10 s, SMTP's 20 s);
// RefusalSettleFor lengthens it for a tenant whose systems are given
// longer ones.
inline constexpr int64_t kRefusalSettleUs = 30LL * 1000000;
// The settle time when the longest request of the tenant's systems may
// take `longest_request_timeout_us` (the campaign actor passes the longest
// request_timeout_ms configured now): that and 10 s more, never below
// kRefusalSettleUs.
inline int64_t RefusalSettleFor(int64_t longest_request_timeout_us) {
  const int64_t wanted = longest_request_timeout_us + 10LL * 1000000;
  return wanted > kRefusalSettleUs ? wanted : kRefusalSettleUs;
}

// What is known of a person when their task is due: the check's facts,
// and the fields their step's template may name.
struct Person {
  Recipient recipient;
  std::map<std::string, std::string> fields;
};

struct AgentInput {
  const CampaignView* campaign = nullptr;
  const std::vector<Task>* tasks = nullptr;  // every task of the campaign
  // A task this tick leaves alone (e.g. one the planner's events already
  // change); none when unset.
  std::function<bool(const Task& task)> left_alone;
  int64_t now_us = 0;
  QuietHours hours;
  FrequencyCaps caps;
  int64_t lease_us = 600LL * 1000000;  // how long a claim holds
  // How long a send's refusal is not taken as its end (RefusalSettleFor).
  int64_t refusal_settle_us = kRefusalSettleUs;
  // The person `task` is for, as of now; nullopt when that cannot be read
  // now (their task waits for the next tick).
  std::function<std::optional<Person>(const Task& task)> person;
  // What became of the send `task` asked for: OK with *out set, NotFound
  // while nothing is known (Corruption read the same), any other error
  // when it cannot be read now (the task waits for a later tick).
  std::function<Status(const Task& task, SendOutcome* out)> outcome;
  // Whether `task`'s person replied since the campaign reached them, for a
  // send still on its way (two reads, not all of person's); false when
  // unknown or unset.
  std::function<bool(const Task& task)> replied;
  // Whether `task`'s person paid since the campaign started, for a send
  // still on its way (one read); false when unknown or unset.
  std::function<bool(const Task& task)> paid;
  // How a call to the person of a call task ended since its claim (the
  // disposition); nullopt while none did.
  std::function<std::optional<std::string>(const Task& task)> call_ended;
  // What the model drafted for `task` (an AI draft step); nullopt while
  // it has not answered. Needed when a step is drafted by AI (without it,
  // such a step asks for its draft until its window passes).
  std::function<std::optional<Draft>(const Task& task)> draft;
  // An email's one-click unsubscribe link for the person ("" for none).
  std::function<std::string(const Task& task, const Person& person)> unsubscribe_link;
  SenderPacer* pacer = nullptr;  // REQUIRES: not null
  size_t max_claims = 1000;      // claims in one tick, at most
  // Draft requests of the campaign in flight, at most: the model also
  // classifies replies (docs/classifier.md), and its queue, rate limit and
  // quota are shared; the other tasks wait their turn.
  size_t max_drafting = 20;
};

struct AgentPlan {
  std::vector<TaskEvent> events;  // to append, in this order
  int64_t wake_us = 0;            // when the pacer has room again (0: not waiting on it)
};

AgentPlan PlanAgentEvents(const AgentInput& in);

}  // namespace dfm
