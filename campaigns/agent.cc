#include "campaigns/agent.h"

#include <algorithm>

#include "campaigns/message_template.h"
#include "sync/consent.h"

namespace dfm {

namespace {

// The end of a send an agent asked for, once its outcome is known.
TaskEvent Answer(const Task& t, Channel channel, const SendOutcome& o) {
  TaskEvent e;
  switch (o.kind) {
    case SendOutcome::Kind::kSent:
      e = TaskEventFor(t, kTaskDone);
      e.channel = std::string(ChannelName(channel));
      break;
    case SendOutcome::Kind::kRefused:
      e = TaskEventFor(t, kTaskSkipped);
      e.reason = "opted_out";
      break;
    case SendOutcome::Kind::kFailed:
      e = TaskEventFor(t, kTaskFailed);
      e.reason = "send_failed";
      break;
  }
  if (e.type != kTaskSkipped) {
    e.agent = SendAgentOf(channel);
    e.claim = t.claims;
  }
  e.detail = o.detail;
  return e;
}

// The claim of a due task by `agent`: a send of the step's text rendered
// for the person (or `draft`'s text), or, by the AI agent, a draft
// request with the brief.
TaskEvent Claim(const Task& t, const CampaignStep& step, const Person& p, const AgentInput& in,
                const char* agent, const Draft* draft) {
  TaskEvent e = TaskEventFor(t, kTaskClaimed);
  e.agent = agent;
  e.claim = t.claims + 1;
  e.lease_until_us = in.now_us + (step.channel == Channel::kCall
                                      ? std::max(in.lease_us, step.window_s * 1000000)
                                      : in.lease_us);
  const bool drafting = agent == std::string_view(kAiAgent);
  e.channel = drafting ? channels::kDraft : std::string(ChannelName(step.channel));
  e.body = draft ? draft->text : RenderTemplate(step.template_text, p.fields);
  if (draft) e.detail = draft->prompt_version + " " + draft->model;
  if (step.channel == Channel::kEmail && !drafting) {
    e.subject = RenderTemplate(step.subject, p.fields);
    if (in.unsubscribe_link) e.unsubscribe = in.unsubscribe_link(t, p);
  }
  return e;
}

size_t Utf8Chars(const std::string& text) {
  size_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

// Why a whole draft still may not go ("" when it may): a text longer than
// kMaxDraftedTextChars (the prompt asks for less) would go as many parts.
std::string DraftRefused(const Draft& d, Channel channel) {
  if (!d.ok) return d.reason;
  const size_t n = Utf8Chars(d.text);
  if (channel == Channel::kSms && n > kMaxDraftedTextChars)
    return "the draft has " + std::to_string(n) + " characters, more than " +
           std::to_string(kMaxDraftedTextChars) + " for a text";
  return "";
}

// The AI agent's answer to its draft request, once the model answered:
// the task goes back to waiting, its text drafted, or fails.
TaskEvent DraftAnswered(const Task& t, const Draft& d, Channel channel) {
  const std::string refused = DraftRefused(d, channel);
  TaskEvent e = TaskEventFor(t, refused.empty() ? kTaskReleased : kTaskFailed);
  e.agent = kAiAgent;
  e.claim = t.claims;
  e.reason = refused.empty() ? "drafted" : "draft_failed";
  e.detail = refused;
  return e;
}

// Whether `o` is a refusal recorded less than in.refusal_settle_us before
// now: the send it refused may still have gone.
bool RefusalMayNotStand(const SendOutcome& o, const AgentInput& in) {
  return o.kind == SendOutcome::Kind::kRefused && o.at_us != 0 &&
         in.now_us - o.at_us < in.refusal_settle_us;
}

// A text or email an earlier claim of `t` asked for (its lease lapsed since,
// the task waits again) that the vendor took: the task is its, whatever
// CheckSend would say now. kUnread: its outcome cannot be read now, or is
// a refusal younger than in.refusal_settle_us (the task waits for a later
// tick: the vendor may have taken it).
enum class Went { kNo, kYes, kUnread };
Went ClaimedTextWent(const Task& t, const CampaignStep& step, const AgentInput& in) {
  if (t.claims == 0 || step.channel == Channel::kCall) return Went::kNo;
  SendOutcome o;
  const Status read = in.outcome(t, &o);
  if (!read.ok()) return read.IsNotFound() || read.IsCorruption() ? Went::kNo : Went::kUnread;
  if (RefusalMayNotStand(o, in)) return Went::kUnread;
  return o.kind == SendOutcome::Kind::kSent ? Went::kYes : Went::kNo;
}

// Why a text, email or call claimed a while ago, its outcome not known
// yet (a call not yet on the dialer: `on_dialer` false), should not go
// (nullptr: it may): its person replied since the campaign reached them (a
// later step that stops on a reply: nothing reached them before the
// first), or paid since the campaign started (a step that stops on a
// payment). Looked at only once the send has had time to go (most go
// within a second), so a tick does not read every send in flight. A call
// the dialer took is not withdrawn (docs/campaigns.md).
const char* StoppedWhileSending(const Task& t, const CampaignStep& step, const AgentInput& in,
                                bool on_dialer) {
  if (on_dialer || in.now_us - t.changed_us < kRepliedGraceUs) return nullptr;
  if (step.stop_on_reply && t.step != 0 && in.replied && in.replied(t)) return "replied";
  if (step.stop_on_payment && in.paid && in.paid(t)) return "paid";
  return nullptr;
}

// A send claimed and in progress at its agent: its answer when it came
// (a call's when it ended on the dialer), else withdrawn when the person
// replied or paid since (StoppedWhileSending).
void FollowSend(const Task& t, const CampaignStep& step, const AgentInput& in, AgentPlan* plan) {
  SendOutcome got;
  const Status read = in.outcome(t, &got);
  if (!read.ok() && !read.IsNotFound() && !read.IsCorruption()) return;  // a later tick
  std::optional<SendOutcome> o;
  if (read.ok()) o = got;
  // (a damaged row may hide a call the dialer took: not withdrawn)
  const bool on_dialer = step.channel == Channel::kCall &&
                         (read.IsCorruption() || (o && o->kind == SendOutcome::Kind::kSent));
  if (on_dialer) {
    // On the dialer: done when the call ends.
    o = std::nullopt;
    if (std::optional<std::string> how = in.call_ended ? in.call_ended(t) : std::nullopt)
      o = SendOutcome{SendOutcome::Kind::kSent, *how};
  }
  if (o && RefusalMayNotStand(*o, in)) return;  // it may have gone: a later tick
  if (o) {
    plan->events.push_back(Answer(t, step.channel, *o));
  } else if (const char* why = StoppedWhileSending(t, step, in, on_dialer)) {
    // Still waiting at the connector (an outage, a rate limit): what
    // the claim asked for is withdrawn rather than sent after the
    // reply or the payment.
    TaskEvent e = TaskEventFor(t, kTaskSkipped);
    e.reason = why;
    e.agent = t.agent;
    e.claim = t.claims;
    plan->events.push_back(std::move(e));
  }
}

// The claims made so far in one plan: sends, and drafts asked of the model.
struct ClaimCounts {
  size_t claims = 0;
  size_t drafting = 0;
};

// A pending task due now, its person `p`: claimed (by its channel's agent,
// or by the AI agent for its draft first), deferred, or skipped, as its
// step's checks (CheckSend), the model's share (max_drafting) and the
// sender's pace allow.
void PlanDue(const Task& t, const CampaignStep& step, const char* agent, const Person& p,
             const AgentInput& in, ClaimCounts* counts, AgentPlan* plan) {
  const Went went = ClaimedTextWent(t, step, in);
  if (went == Went::kUnread) return;
  if (went == Went::kYes) {  // claimed again unchecked: the same key, not sent again
    const std::optional<Draft> drafted = step.ai_draft && in.draft ? in.draft(t) : std::nullopt;
    plan->events.push_back(Claim(t, step, p, in, agent, drafted ? &*drafted : nullptr));
    ++counts->claims;
    return;
  }
  // The step's window runs from when the task first became due, however
  // often it was deferred since, but not while the campaign was paused.
  const int64_t first_due = t.first_due_us != 0 ? t.first_due_us : t.due_us;
  const int64_t window_from = first_due + PausedBetween(*in.campaign, first_due, in.now_us);
  const SendDecision d = CheckSend(step, p.recipient, in.hours, in.caps, window_from, in.now_us);
  if (d.verdict == SendDecision::Verdict::kSkip) {
    TaskEvent e = TaskEventFor(t, kTaskSkipped);
    e.reason = d.reason;
    e.claim = t.claims;  // what an earlier claim asked for, still on its way: withdrawn
    plan->events.push_back(std::move(e));
  } else if (d.verdict == SendDecision::Verdict::kWait) {
    TaskEvent e = TaskEventFor(t, kTaskDeferred);
    e.until_us = d.until_us;
    e.claim = t.claims;  // its key's (TaskEventDraft)
    e.reason = d.reason;
    plan->events.push_back(std::move(e));
  } else if (const std::optional<Draft> drafted =
                 step.ai_draft && in.draft ? in.draft(t) : std::nullopt;
             step.ai_draft && (!drafted || !DraftRefused(*drafted, step.channel).empty())) {
    if (drafted) {  // the model answered after the AI agent's claim lapsed
      TaskEvent skip = TaskEventFor(t, kTaskSkipped);
      skip.reason = "draft_failed";
      skip.detail = DraftRefused(*drafted, step.channel);
      plan->events.push_back(std::move(skip));
      return;
    }
    if (counts->drafting >= in.max_drafting) return;  // the model's share: the rest wait
    ++counts->drafting;
    TaskEvent e = Claim(t, step, p, in, kAiAgent, nullptr);  // the draft, asked for
    if (e.body.empty()) {
      e = TaskEventFor(t, kTaskSkipped);
      e.reason = "empty_message";
    } else {
      ++counts->claims;
    }
    plan->events.push_back(std::move(e));
  } else if (const int64_t at = in.pacer->NextAt(in.now_us);
             step.channel == Channel::kSms && at > in.now_us) {
    plan->wake_us = at;  // the sender's cap: the rest wait
  } else {
    TaskEvent e = Claim(t, step, p, in, agent, drafted ? &*drafted : nullptr);
    if (e.body.empty() && step.channel != Channel::kCall) {
      TaskEvent skip = TaskEventFor(t, kTaskSkipped);  // nothing to send
      skip.reason = "empty_message";
      plan->events.push_back(std::move(skip));
      return;
    }
    if (step.channel == Channel::kSms) in.pacer->Take(in.now_us);
    plan->events.push_back(std::move(e));
    ++counts->claims;
  }
}

}  // namespace

AgentPlan PlanAgentEvents(const AgentInput& in) {
  AgentPlan plan;
  const CampaignView& v = *in.campaign;
  const bool running = v.state == CampaignState::kRunning;
  ClaimCounts counts;
  auto alone = [&in](const Task& t) { return in.left_alone && in.left_alone(t); };
  for (const Task& t : *in.tasks)
    counts.drafting += t.state == TaskState::kInProgress && t.agent == kAiAgent && !alone(t);
  for (const Task& t : *in.tasks) {
    if (t.step < 0 || static_cast<size_t>(t.step) >= v.spec.steps.size() || alone(t)) continue;
    const CampaignStep& step = v.spec.steps[static_cast<size_t>(t.step)];
    const char* agent = SendAgentOf(step.channel);
    if (t.state == TaskState::kInProgress && t.agent == kAiAgent) {
      if (std::optional<Draft> d = in.draft ? in.draft(t) : std::nullopt)
        plan.events.push_back(DraftAnswered(t, *d, step.channel));
      continue;
    }
    if (t.state == TaskState::kInProgress && t.agent == agent) {
      FollowSend(t, step, in, &plan);
      continue;
    }
    if (!running || t.state != TaskState::kPending || t.due_us > in.now_us) continue;
    if (counts.claims >= in.max_claims || (plan.wake_us != 0 && step.channel == Channel::kSms))
      continue;
    if (std::optional<Person> p = in.person(t)) PlanDue(t, step, agent, *p, in, &counts, &plan);
  }
  return plan;
}

}  // namespace dfm
