#include "campaigns/agent.h"

#include "campaigns/message_template.h"

namespace dfm {

namespace {

// The end of a send this agent asked for, once its outcome is known.
TaskEvent Answer(const Task& t, const SendOutcome& o) {
  TaskEvent e;
  switch (o.kind) {
    case SendOutcome::Kind::kSent:
      e = TaskEventFor(t, kTaskDone);
      e.channel = "sms";
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
    e.agent = kSmsAgent;
    e.claim = t.claims;
  }
  e.detail = o.detail;
  return e;
}

}  // namespace

AgentPlan PlanAgentEvents(const AgentInput& in) {
  AgentPlan plan;
  const CampaignView& v = *in.campaign;
  const bool running = v.state == CampaignState::kRunning;
  size_t claims = 0;
  for (const Task& t : *in.tasks) {
    if (t.step < 0 || static_cast<size_t>(t.step) >= v.spec.steps.size()) continue;
    const CampaignStep& step = v.spec.steps[static_cast<size_t>(t.step)];
    if (step.channel != Channel::kSms) continue;
    if (t.state == TaskState::kInProgress && t.agent == kSmsAgent) {
      if (std::optional<SendOutcome> o = in.outcome(t)) plan.events.push_back(Answer(t, *o));
      continue;
    }
    if (!running || t.state != TaskState::kPending || t.due_us > in.now_us) continue;
    if (claims >= in.max_claims || plan.wake_us != 0) continue;
    std::optional<Person> p = in.person(t);
    if (!p) continue;
    const SendDecision d = CheckSend(step, p->recipient, in.hours, in.caps, t.due_us, in.now_us);
    if (d.verdict == SendDecision::Verdict::kSkip) {
      TaskEvent e = TaskEventFor(t, kTaskSkipped);
      e.reason = d.reason;
      plan.events.push_back(std::move(e));
    } else if (d.verdict == SendDecision::Verdict::kWait) {
      TaskEvent e = TaskEventFor(t, kTaskDeferred);
      e.until_us = d.until_us;
      e.reason = d.reason;
      plan.events.push_back(std::move(e));
    } else if (const int64_t at = in.pacer->NextAt(in.now_us); at > in.now_us) {
      plan.wake_us = at;  // the sender's cap: the rest wait
    } else {
      in.pacer->Take(in.now_us);
      TaskEvent e = TaskEventFor(t, kTaskClaimed);
      e.agent = kSmsAgent;
      e.claim = t.claims + 1;
      e.lease_until_us = in.now_us + in.lease_us;
      e.channel = "sms";
      e.body = RenderTemplate(step.template_text, p->fields);
      plan.events.push_back(std::move(e));
      ++claims;
    }
  }
  return plan;
}

}  // namespace dfm
