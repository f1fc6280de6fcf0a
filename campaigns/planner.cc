#include "campaigns/planner.h"

#include <algorithm>
#include <string_view>
#include <unordered_set>

#include "campaigns/agent.h"

namespace dfm {

namespace {

// How soon a cancelled task whose send's outcome could not be read, or
// that was claimed again to be ended, is looked at again.
constexpr int64_t kUnreadableOutcomeRetryUs = 1000000;
// The lease of that claim: long enough not to read as stuck meanwhile.
constexpr int64_t kCancelClaimLeaseUs = 60 * 1000000LL;

void Wake(int64_t at_us, int64_t now_us, CampaignPlan* plan) {
  if (at_us <= now_us) return;
  if (plan->wake_us == 0 || at_us < plan->wake_us) plan->wake_us = at_us;
}

// The first step's due time: its delay after the campaign's start (when it
// first ran, or its date when later).
int64_t FirstDue(const CampaignView& v) {
  return std::max(v.started_us, v.spec.start_at_us) + v.spec.steps.front().delay_s * 1000000;
}

// A cancelled campaign's task not ended: done when its text or email went
// before the cancel (it counts against the frequency caps; a call is done
// when it ends, not when the dialer took it), else skipped "cancelled".
// One whose earlier claim was released since (its lease lapsed while the
// sender was down) and whose text went is claimed again by its step's
// agent, with nothing to send, and ended done by the next plan: only a
// task's holder ends it (campaigns/task.h).
void TendCancelled(const CampaignView& v, const PlanInput& in, const Task& t, CampaignPlan* plan) {
  const bool known_step = t.step >= 0 && static_cast<size_t>(t.step) < v.spec.steps.size();
  const Channel channel = known_step ? v.spec.steps[t.step].channel : Channel::kSms;
  if ((t.state == TaskState::kInProgress || t.claims > 0) && known_step &&
      channel != Channel::kCall && in.outcome) {
    SendOutcome o;
    const Status read = in.outcome(t, &o);
    // Not readable now (a passing error): no skip for good. A row that
    // does not read (Corruption) never will: as unknown.
    if (!read.ok() && !read.IsNotFound() && !read.IsCorruption()) {
      Wake(in.now_us + kUnreadableOutcomeRetryUs, in.now_us, plan);
      return;
    }
    if (read.ok() && o.kind == SendOutcome::Kind::kSent && t.state != TaskState::kInProgress) {
      // Claimed first; the next plan, seeing who holds it then (an agent's
      // claim not folded yet may have come first), ends it done.
      TaskEvent claim = TaskEventFor(t, kTaskClaimed);
      claim.agent = SendAgentOf(channel);
      claim.claim = t.claims + 1;
      claim.lease_until_us = in.now_us + kCancelClaimLeaseUs;
      plan->events.push_back(std::move(claim));
      Wake(in.now_us + kUnreadableOutcomeRetryUs, in.now_us, plan);
      return;
    }
    if (read.ok() && o.kind == SendOutcome::Kind::kSent) {
      TaskEvent done = TaskEventFor(t, kTaskDone);
      done.channel = std::string(ChannelName(channel));
      done.detail = o.detail;
      done.agent = t.agent;
      done.claim = t.claims;
      plan->events.push_back(std::move(done));
      return;
    }
  }
  TaskEvent e = TaskEventFor(t, kTaskSkipped);
  e.reason = "cancelled";
  // Claimed once: what its claims asked for is withdrawn if it has not
  // gone (a claim released since, its lease lapsed while the sender was
  // down, may have left its send waiting at the connector).
  e.claim = t.claims;
  if (t.state == TaskState::kInProgress) e.agent = t.agent;
  plan->events.push_back(std::move(e));
}

// The task events `t` needs now, whatever the campaign's state.
void Tend(const CampaignView& v, const PlanInput& in, const Task& t, CampaignPlan* plan) {
  if (t.ended()) return;
  if (v.state == CampaignState::kCancelled) {
    TendCancelled(v, in, t, plan);
    return;
  }
  if (t.state == TaskState::kInProgress) {
    const bool reset = v.reset_us != 0 && TaskStuck(t, v.reset_us);
    if (reset || LeaseLapsed(t, in.now_us)) {
      TaskEvent e = TaskEventFor(t, kTaskReleased);
      e.agent = t.agent;
      e.claim = t.claims;
      e.reason = reset ? "reset" : "lease_lapsed";
      plan->events.push_back(std::move(e));
    } else {
      Wake(t.lease_until_us, in.now_us, plan);
    }
    return;
  }
  if (v.state != CampaignState::kRunning) return;
  const bool known_step = t.step >= 0 && static_cast<size_t>(t.step) < v.spec.steps.size();
  // A task claimed before is the send agent's to end (agent.h): its text
  // may have gone (the task is then its), or wait at the connector (then
  // withdrawn with the skip).
  if (known_step && t.claims == 0 && in.opted_out &&
      in.opted_out(t.contact, v.spec.steps[t.step].channel)) {
    TaskEvent e = TaskEventFor(t, kTaskSkipped);
    e.reason = "opted_out";
    plan->events.push_back(std::move(e));
    return;
  }
  Wake(t.due_us, in.now_us, plan);
}

}  // namespace

CampaignPlan PlanNextTaskEvents(const PlanInput& in) {
  CampaignPlan plan;
  const CampaignView& v = *in.campaign;
  // Each person's latest task (the highest step made), by contact id: the
  // tasks sorted by contact, then step from the highest, the first of each
  // contact kept (no allocation per task: this runs at every tick).
  std::vector<const Task*> latest;
  latest.reserve(in.tasks.size());
  for (const Task& t : in.tasks) latest.push_back(&t);
  std::stable_sort(latest.begin(), latest.end(), [](const Task* a, const Task* b) {
    if (int c = a->contact.compare(b->contact); c != 0) return c < 0;
    return a->step > b->step;
  });
  latest.erase(std::unique(latest.begin(), latest.end(),
                           [](const Task* a, const Task* b) { return a->contact == b->contact; }),
               latest.end());
  auto has_task = [&latest](const std::string& contact) {
    auto it = std::lower_bound(latest.begin(), latest.end(), contact,
                               [](const Task* t, const std::string& c) { return t->contact < c; });
    return it != latest.end() && (*it)->contact == contact;
  };
  bool open = false;  // a task not ended, or one to make
  if (v.state == CampaignState::kRunning && !v.spec.steps.empty()) {
    std::unordered_set<std::string_view> seen;  // those with no task yet
    for (const std::string& c : in.audience) {
      if (has_task(c) || !seen.insert(c).second) continue;  // made, or named twice
      TaskEvent e;
      e.type = std::string(kTaskCreated);
      e.campaign = v.spec.id;
      e.contact = c;
      e.step = 0;
      e.due_us = FirstDue(v);
      Wake(e.due_us, in.now_us, &plan);
      plan.events.push_back(std::move(e));
      open = true;
    }
    for (const Task* t : latest) {
      const size_t next = static_cast<size_t>(t->step) + 1;
      if (t->state != TaskState::kDone || next >= v.spec.steps.size()) continue;
      TaskEvent e = TaskEventFor(*t, kTaskCreated);
      e.step = static_cast<int>(next);
      e.due_us = t->changed_us + v.spec.steps[next].delay_s * 1000000;
      Wake(e.due_us, in.now_us, &plan);
      plan.events.push_back(std::move(e));
      open = true;
    }
  }
  for (const Task& t : in.tasks) {
    open |= !t.ended();
    Tend(v, in, t, &plan);
  }
  plan.complete = v.state == CampaignState::kRunning && !open;
  return plan;
}

}  // namespace dfm
