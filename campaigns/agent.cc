#include "campaigns/agent.h"

#include <algorithm>

#include "campaigns/message_template.h"

namespace dfm {

namespace {

const char* AgentOf(Channel c) {
  return c == Channel::kEmail ? kEmailAgent : c == Channel::kCall ? kCallAgent : kSmsAgent;
}

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
    e.agent = AgentOf(channel);
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
    const char* agent = AgentOf(step.channel);
    if (t.state == TaskState::kInProgress && t.agent == agent) {
      std::optional<SendOutcome> o = in.outcome(t);
      if (o && o->kind == SendOutcome::Kind::kSent && step.channel == Channel::kCall) {
        // On the dialer: done when the call ends.
        o = std::nullopt;
        if (std::optional<std::string> how = in.call_ended ? in.call_ended(t) : std::nullopt)
          o = SendOutcome{SendOutcome::Kind::kSent, *how};
      }
      if (o) plan.events.push_back(Answer(t, step.channel, *o));
      continue;
    }
    if (!running || t.state != TaskState::kPending || t.due_us > in.now_us) continue;
    if (claims >= in.max_claims || (plan.wake_us != 0 && step.channel == Channel::kSms)) continue;
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
    } else if (const int64_t at = in.pacer->NextAt(in.now_us);
               step.channel == Channel::kSms && at > in.now_us) {
      plan.wake_us = at;  // the sender's cap: the rest wait
    } else {
      if (step.channel == Channel::kSms) in.pacer->Take(in.now_us);
      TaskEvent e = TaskEventFor(t, kTaskClaimed);
      e.agent = agent;
      e.claim = t.claims + 1;
      e.lease_until_us = in.now_us + (step.channel == Channel::kCall
                                          ? std::max(in.lease_us, step.window_s * 1000000)
                                          : in.lease_us);
      e.channel = std::string(ChannelName(step.channel));
      e.body = RenderTemplate(step.template_text, p->fields);
      if (e.body.empty() && step.channel != Channel::kCall) {
        TaskEvent skip = TaskEventFor(t, kTaskSkipped);  // nothing to send
        skip.reason = "empty_message";
        plan.events.push_back(std::move(skip));
        continue;
      }
      if (step.channel == Channel::kEmail) {
        e.subject = RenderTemplate(step.subject, p->fields);
        if (in.unsubscribe_link) e.unsubscribe = in.unsubscribe_link(t, *p);
      }
      plan.events.push_back(std::move(e));
      ++claims;
    }
  }
  return plan;
}

}  // namespace dfm
