#include "actors/campaign_actor.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>
#include <vector>

#include "actors/messages.h"
#include "campaigns/agent.h"
#include "campaigns/audience.h"
#include "campaigns/planner.h"
#include "connectors/connector.h"
#include "projections/audience_index.h"
#include "projections/campaign_projections.h"
#include "projections/opt_out_watch.h"
#include "util/logging.h"

namespace dfm {

namespace {

constexpr int64_t kTickUs = 1000000;                 // at most this long between ticks
constexpr int64_t kSoonestUs = 10000;                // at least this long
constexpr int64_t kFoldWaitUs = 50000;               // while the projection folds what it appended
constexpr int kEmptyTicks = 30;                      // ticks an empty audience is resolved again
constexpr int64_t kFoldPatienceUs = 30LL * 1000000;  // then it goes on without the projection
constexpr size_t kAppendBatch = 2048;                // drafts per append

// Appends `drafts` in batches; false (logged) when the log refuses.
// *last: the highest sequence number of what it appended; *fresh (when
// given): how many were not in the log already.
bool AppendAll(EventLog* log, std::vector<EventDraft> drafts, const std::string& tenant,
               const std::string& campaign, uint64_t* last, size_t* fresh = nullptr) {
  for (size_t at = 0; at < drafts.size(); at += kAppendBatch) {
    const auto from = drafts.begin() + static_cast<std::ptrdiff_t>(at);
    const auto to =
        drafts.begin() + static_cast<std::ptrdiff_t>(std::min(drafts.size(), at + kAppendBatch));
    std::vector<EventDraft> some(std::make_move_iterator(from), std::make_move_iterator(to));
    std::vector<AppendOutcome> out;
    Status s = log->Append(std::move(some), &out);
    if (!s.ok()) {
      Logger("campaigns")
          ->warn("event=campaign_append_failed tenant={} campaign={} error=\"{}\"", tenant,
                 campaign, s.ToString());
      return false;
    }
    for (const auto& o : out) {
      *last = std::max(*last, o.seq);
      if (fresh && !o.duplicate) ++*fresh;
    }
  }
  return true;
}

// The change `action` makes, appended; false when the lifecycle refuses
// it now or the log does.
bool Change(const SyncEnv& env, const std::string& tenant, const CampaignView& v,
            CampaignAction action, int64_t now_us, uint64_t* last) {
  CampaignChange change;
  if (!PlanCampaignChange(v, action, now_us, "campaign-runner", "", &change).ok()) return false;
  if (!AppendAll(env.log, {CampaignChangedDraft(tenant, change, v.changes)}, tenant, v.spec.id,
                 last))
    return false;
  Logger("campaigns")
      ->info("event=campaign_{} tenant={} campaign={}", CampaignActionName(action), tenant,
             v.spec.id);
  return true;
}

// Whether the tasks' projection has folded everything this actor appended
// (before that, a plan would only ask for the same events again).
bool Folded(const EventLog& log, uint64_t appended) {
  uint64_t cp = 0;
  return appended == 0 ||
         (log.ReadCheckpoint(CampaignTasksProjection::kName, &cp).ok() && cp >= appended);
}

const CampaignRunSettings& RunSettings(const SyncEnv& env) {
  static const CampaignRunSettings* const kDefaults = [] {  // never destroyed
    auto* d = new CampaignRunSettings;
    d->zones = std::make_shared<RecipientZones>(nullptr);
    return d;
  }();
  return env.campaigns ? *env.campaigns : *kDefaults;
}

// What the send agent reads of the log at one tick (campaigns/agent.h).
class AgentReads {
 public:
  AgentReads(const SyncEnv& env, const std::string& tenant, const CampaignView& v,
             const std::vector<Task>& tasks, int64_t now_us)
      : env_(env), rs_(RunSettings(env)), tenant_(tenant), v_(v), now_us_(now_us) {
    Customer c;
    if (ReadCustomer(*env.log, tenant, v.spec.customer, &c).ok()) customer_name_ = c.name;
    for (const Task& t : tasks)  // the first done task of each person
      if (t.state == TaskState::kDone && t.changed_us != 0) {
        const Task*& first = reached_[t.contact].first;
        if (!first || t.changed_us < first->changed_us) first = &t;
      }
  }

  // When the campaign first reached the person: its first text's send (a
  // reply in the seconds before its task.done is one), else that task's
  // end (a call, a row written before sends were dated). 0: not reached;
  // nullopt: not readable now.
  std::optional<int64_t> ReachedAt(const std::string& contact) const {
    auto it = reached_.find(contact);
    if (it == reached_.end()) return 0;
    auto& [first, at] = it->second;
    if (at) return at;
    SendOutcome o;
    const Status s =
        ReadSendOutcome(*env_.log, tenant_, first->campaign, first->step, first->contact, &o);
    if (!s.ok() && !s.IsNotFound() && !s.IsCorruption()) return std::nullopt;
    const bool dated = s.ok() && o.kind == SendOutcome::Kind::kSent && o.at_us != 0;
    at = dated ? std::min(o.at_us, first->changed_us) : first->changed_us;
    return at;
  }

  std::optional<Person> PersonFor(const Task& t) const {
    const EventLog& log = *env_.log;
    Person p;
    if (!ReadMergedFields(log, t.contact, &p.fields).ok()) return std::nullopt;
    p.fields["customer_name"] = customer_name_;
    const CampaignStep& step = v_.spec.steps[static_cast<size_t>(t.step)];
    Recipient& r = p.recipient;
    r.opted_out = ContactOptedOut(log, tenant_, t.contact, std::string(ChannelName(step.channel)));
    const std::string& phone = p.fields[fields::kPhone];
    r.has_address = !(step.channel == Channel::kEmail ? p.fields[fields::kEmail] : phone).empty();
    const std::optional<int64_t> reached = ReachedAt(t.contact);
    if (!reached) return std::nullopt;
    if (*reached != 0 && !ReadRepliedSince(log, tenant_, t.contact, *reached, &r.replied).ok())
      return std::nullopt;
    if (v_.started_us != 0 && !ReadPaidSince(log, tenant_, t.contact, v_.started_us, &r.paid).ok())
      return std::nullopt;
    ZoneChoice zones;
    // The contact's own zone first (GoHighLevel's `timezone`), else the
    // phone's, else the tenant's default (recipient_zones.h).
    if (rs_.zones->For(p.fields[fields::kTimezone], phone, rs_.default_zone, &zones).ok())
      r.zones = zones.Raw();
    constexpr int64_t kWeekUs = 7 * 86400LL * 1000000;
    if (!ReadRecentSends(log, tenant_, t.contact, now_us_ - kWeekUs, t.campaign, t.step,
                         &r.recent_sends_us)
             .ok())
      return std::nullopt;
    return p;
  }

  // The one-click link (RFC 8058) that a connector making links
  // (Connector::make_link) gives the person's address for this campaign,
  // under the service's public address; "" when there is none.
  std::string UnsubscribeLink(const Task& t, const Person& p) const {
    auto email = p.fields.find(fields::kEmail);
    if (rs_.public_base_url.empty() || email == p.fields.end() || email->second.empty()) return "";
    const auto& tables = env_.Live() ? env_.Live()->system_tables : env_.system_tables;
    for (const Connector* c : Connectors()) {
      auto settings = tables.find({tenant_, c->system});
      if (!c->make_link || settings == tables.end() || !settings->second) continue;
      std::string token;
      if (!c->make_link(*settings->second, email->second, t.campaign, now_us_ / 1000000, &token).ok())
        continue;
      return rs_.public_base_url + (tenant_ == "default" ? "" : "/t/" + tenant_) + "/webhooks/" +
             c->system + "?u=" + token;
    }
    return "";
  }

  std::optional<std::string> CallEnded(const Task& t) const {
    bool ended = false;
    std::string how;
    if (!ReadCallEndedSince(*env_.log, tenant_, t.contact, t.changed_us, &ended, &how).ok() || !ended)
      return std::nullopt;
    return how;
  }

  std::optional<Draft> DraftOf(const Task& t) const {
    Draft d;
    if (!ReadDraft(*env_.log, tenant_, t.campaign, t.step, t.contact, &d).ok()) return std::nullopt;
    return d;
  }

  // Whether the person replied since the campaign reached them; false
  // when that cannot be read now.
  bool RepliedSince(const Task& t) const {
    const std::optional<int64_t> reached = ReachedAt(t.contact);
    bool replied = false;
    return reached && *reached != 0 &&
           ReadRepliedSince(*env_.log, tenant_, t.contact, *reached, &replied).ok() && replied;
  }

  Status OutcomeOf(const Task& t, SendOutcome* o) const {
    return ReadSendOutcome(*env_.log, tenant_, t.campaign, t.step, t.contact, o);
  }

  // Whether the person paid since the campaign started; false when that
  // cannot be read now.
  bool PaidSince(const Task& t) const {
    bool paid = false;
    return v_.started_us != 0 &&
           ReadPaidSince(*env_.log, tenant_, t.contact, v_.started_us, &paid).ok() && paid;
  }

 private:
  const SyncEnv& env_;
  const CampaignRunSettings& rs_;
  const std::string& tenant_;
  const CampaignView& v_;
  int64_t now_us_;
  std::string customer_name_;
  // contact -> its first done task, and when it reached them (0: not read yet)
  mutable std::map<std::string, std::pair<const Task*, int64_t>> reached_;
};

// The send agent's events at this tick, for the tasks the planner's
// `planned` events leave alone (a task it skips is not also claimed).
AgentPlan RunAgent(const SyncEnv& env, const std::string& tenant, const CampaignView& v,
                   const std::vector<Task>& all, const std::vector<TaskEvent>& planned,
                   int64_t now_us) {
  // Views of `planned`'s contacts: no copy per task looked up.
  std::set<std::pair<int, std::string_view>> touched;
  for (const TaskEvent& e : planned) touched.emplace(e.step, e.contact);
  const CampaignRunSettings& rs = RunSettings(env);
  AgentReads reads(env, tenant, v, all, now_us);
  AgentInput in;
  in.campaign = &v;
  in.tasks = &all;
  in.left_alone = [&touched](const Task& t) {
    return t.ended() ||
           (!touched.empty() && touched.count({t.step, std::string_view(t.contact)}) != 0);
  };
  in.now_us = now_us;
  in.hours = rs.hours;
  in.caps = rs.caps;
  in.lease_us = rs.lease_us;
  in.refusal_settle_us = RefusalSettleFor(env.LongestRequestTimeoutUs(tenant));
  in.person = [&reads](const Task& t) { return reads.PersonFor(t); };
  in.outcome = [&reads](const Task& t, SendOutcome* o) { return reads.OutcomeOf(t, o); };
  in.replied = [&reads](const Task& t) { return reads.RepliedSince(t); };
  in.paid = [&reads](const Task& t) { return reads.PaidSince(t); };
  in.call_ended = [&reads](const Task& t) { return reads.CallEnded(t); };
  in.draft = [&reads](const Task& t) { return reads.DraftOf(t); };
  in.unsubscribe_link = [&reads](const Task& t, const Person& p) {
    return reads.UnsubscribeLink(t, p);
  };
  const std::string sender =
      tenant + "/" + (v.spec.sender.empty() ? env.ContextFor(tenant).sender : v.spec.sender);
  std::lock_guard<std::mutex> lock(rs.pacers->mu);
  auto pacer = rs.pacers->by_sender.try_emplace(sender, rs.texts_per_second).first;
  in.pacer = &pacer->second;
  return PlanAgentEvents(in);
}

// Before a plan: a campaign not running yet (a draft, scheduled, begun
// now) or done, or one whose projection has not folded its last appends
// yet, is ticked again after the delay returned; nullopt: plan now.
std::optional<int64_t> BeforePlanning(const SyncEnv& env, const std::string& tenant,
                                      const std::string& campaign, const CampaignView& v,
                                      uint64_t changed_seq, int64_t now, CampaignTickState* state) {
  switch (v.state) {
    case CampaignState::kDraft:
    case CampaignState::kCompleted:
      return -1;
    case CampaignState::kScheduled:
      if (v.spec.start_at_us > now)
        return std::clamp(v.spec.start_at_us - now, kSoonestUs, kTickUs);
      return Change(env, tenant, v, CampaignAction::kBegin, now, &state->appended) ? kSoonestUs
                                                                                   : kTickUs;
    default:
      break;
  }
  // A cancel ends each task by what its send did (planner.cc
  // TendCancelled): read once the projection holds every outcome logged
  // before the cancel (a text that went is done, counted by the caps, not
  // skipped "cancelled"). The projection stores its checkpoint within about
  // a second when nothing it uses follows the cancel.
  const uint64_t through = v.state == CampaignState::kCancelled
                               ? std::max(state->appended, changed_seq)
                               : state->appended;
  if (!Folded(*env.log, through)) {
    if (state->fold_wait_since == 0) state->fold_wait_since = now;
    if (now - state->fold_wait_since < kFoldPatienceUs) return kFoldWaitUs;
    // Its appends are idempotent: planning again asks for nothing twice.
    Logger("campaigns")
        ->warn("event=campaign_projection_behind tenant={} campaign={} waited_s={}", tenant,
               campaign, (now - state->fold_wait_since) / 1000000);
  }
  state->fold_wait_since = 0;
  return std::nullopt;
}

// The plan's audience (resolved once while running, less the erased),
// tasks and opt-outs; a delay to tick again after when they cannot be
// read now, or nobody is there yet.
std::optional<int64_t> GatherPlanInput(const SyncEnv& env, const std::string& tenant,
                                       const std::string& campaign, const CampaignView& v,
                                       CampaignTickState* state, PlanInput* in) {
  if (v.state == CampaignState::kRunning && !state->resolved) {
    const SyncContext& ctx = env.ContextFor(tenant);
    auto failed = std::make_shared<bool>(false);
    state->audience =
        ResolveAudience(v.spec.audience,
                        ProjectionAudienceIndex(*env.log, tenant, ctx.tag_lists, failed),
                        *env.mapper.normalizer)
            .contacts;
    if (*failed) return kTickUs;  // resolved again at the next tick
    state->resolved = true;
  }
  if (v.state == CampaignState::kRunning) in->audience = state->audience;
  if (!in->audience.empty()) {
    // An erased person's tasks are gone (their events unreadable): not
    // waited for, nor planned again.
    std::set<std::string> erased;
    if (!ReadErasedContacts(*env.log, tenant, &erased).ok()) return kTickUs;
    in->audience.erase(std::remove_if(in->audience.begin(), in->audience.end(),
                                      [&](const std::string& c) { return erased.count(c) != 0; }),
                       in->audience.end());
  }
  if (!ReadCampaignTasks(*env.log, tenant, campaign, &in->tasks).ok()) return kTickUs;
  if (v.state == CampaignState::kRunning && in->audience.empty() && in->tasks.empty() &&
      ++state->empty_ticks < kEmptyTicks) {
    // Nobody yet (its contacts not folded?): looked for again a while
    // before the campaign completes with nobody.
    state->resolved = false;
    return kTickUs;
  }
  if (!state->opt_outs) state->opt_outs = std::make_unique<OptOutWatch>(env.log, tenant);
  OptOutWatch* opt_outs = state->opt_outs.get();
  if (!opt_outs->Refresh().ok()) return kTickUs;
  in->opted_out = [opt_outs](const std::string& contact, Channel channel) {
    return opt_outs->OptedOut(contact, ChannelName(channel));
  };
  in->outcome = [&env, &tenant](const Task& t, SendOutcome* o) {
    return ReadSendOutcome(*env.log, tenant, t.campaign, t.step, t.contact, o);
  };
  return std::nullopt;
}

// Appends what the plan and the agent asked for, completes the campaign
// when the plan says so, and returns when to tick again.
int64_t AfterPlanning(const SyncEnv& env, const std::string& tenant, const std::string& campaign,
                      const CampaignView& v, const std::vector<Task>& tasks,
                      const CampaignPlan& plan, const AgentPlan& agent, int64_t now,
                      CampaignTickState* state) {
  std::vector<EventDraft> drafts;
  drafts.reserve(plan.events.size() + agent.events.size());
  for (const TaskEvent& e : plan.events) drafts.push_back(TaskEventDraft(tenant, e));
  for (const TaskEvent& e : agent.events) drafts.push_back(TaskEventDraft(tenant, e));
  const size_t planned = drafts.size();
  size_t fresh = 0;
  if (!drafts.empty() &&
      !AppendAll(env.log, std::move(drafts), tenant, campaign, &state->appended, &fresh))
    return kTickUs;
  // Every event it asked for was in the log and folded already, and the
  // tasks did not take it (the lifecycle refused it when it was folded):
  // waiting 50 ms to see it folded would ask for the same again for ever.
  // Said once a minute; the next tick comes when its tasks are due.
  const bool repeats = planned > 0 && fresh == 0 && Folded(*env.log, state->appended);
  if (repeats && now - state->stuck_logged_us >= 60'000'000) {
    state->stuck_logged_us = now;
    Logger("campaigns")
        ->warn("event=campaign_plan_repeats tenant={} campaign={} events={}", tenant, campaign,
               planned);
  }
  if (plan.complete && !Change(env, tenant, v, CampaignAction::kComplete, now, &state->appended))
    return kTickUs;
  const bool open =
      std::any_of(tasks.begin(), tasks.end(), [](const Task& t) { return !t.ended(); });
  if (v.state == CampaignState::kCancelled && !open && plan.events.empty()) return -1;
  if (!repeats && (!plan.events.empty() || !agent.events.empty()))
    return kFoldWaitUs;  // see them folded
  int64_t wake = plan.wake_us;
  if (agent.wake_us != 0 && (wake == 0 || agent.wake_us < wake)) wake = agent.wake_us;
  return wake == 0 ? kTickUs : std::clamp(wake - now, kSoonestUs, kTickUs);
}

}  // namespace

int64_t TickCampaign(const SyncEnv& env, const std::string& tenant, const std::string& campaign,
                     CampaignTickState* state) {
  const int64_t now = env.now_us();
  CampaignView v;
  uint64_t changed_seq = 0;
  Status s = FoldCampaignStream(*env.log, tenant, campaign, &v, &changed_seq);
  if (s.IsNotFound()) return -1;
  if (!s.ok()) return kTickUs;  // the log cannot be read now: later
  if (auto later = BeforePlanning(env, tenant, campaign, v, changed_seq, now, state)) return *later;
  PlanInput in;
  in.campaign = &v;
  in.now_us = now;
  if (auto later = GatherPlanInput(env, tenant, campaign, v, state, &in)) return *later;
  CampaignPlan plan = PlanNextTaskEvents(in);
  AgentPlan agent;
  if (v.state == CampaignState::kRunning || v.state == CampaignState::kPaused)
    agent = RunAgent(env, tenant, v, in.tasks, plan.events, now);
  return AfterPlanning(env, tenant, campaign, v, in.tasks, plan, agent, now, state);
}

int64_t RestAfterTick(int64_t asked_us, int64_t took_us) {
  const int64_t rest = std::min(std::max<int64_t>(took_us, 0) * kRestPerTickTime, kTickUs);
  return std::max(asked_us, rest);
}

caf::behavior CampaignActor(caf::event_based_actor* self, std::shared_ptr<const SyncEnv> env,
                            std::string tenant, std::string campaign, caf::actor supervisor) {
  // Its supervisor's end, however it came, is its own.
  self->monitor(supervisor);
  self->set_down_handler([self](caf::down_msg& m) { self->quit(m.reason); });
  self->send(self, wake_atom::value);
  auto state = std::make_shared<CampaignTickState>();
  return {
      [self, env, tenant, campaign, state](wake_atom) {
        const auto began = std::chrono::steady_clock::now();
        const int64_t next = TickCampaign(*env, tenant, campaign, state.get());
        if (next < 0) {
          self->quit();
          return;
        }
        const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - began);
        self->delayed_send(self, std::chrono::microseconds(RestAfterTick(next, took.count())),
                           wake_atom::value);
      },
  };
}

caf::behavior CampaignSupervisor(caf::stateful_actor<CampaignSupervisorState>* self,
                                 std::shared_ptr<const SyncEnv> env) {
  self->state.env = std::move(env);
  // A campaign actor that ended is spawned again at the next look when
  // its campaign still needs one; one that failed is logged.
  self->set_down_handler([self](caf::down_msg& m) {
    auto& running = self->state.running;
    for (auto it = running.begin(); it != running.end(); ++it)
      if (it->second.address() == m.source) {
        if (m.reason)
          Logger("campaigns")
              ->error("event=campaign_actor_failed tenant={} campaign={} reason=\"{}\"",
                      it->first.first, it->first.second, caf::to_string(m.reason));
        running.erase(it);
        break;
      }
  });
  // Its end ends its campaign actors (they are not linked: one that fails
  // leaves the others running; each watches the supervisor, so a
  // supervisor that fails ends them too).
  self->set_exit_handler([self](caf::exit_msg& m) {
    for (auto& [key, a] : self->state.running) self->send_exit(a, m.reason);
    self->quit(m.reason);
  });
  self->send(self, wake_atom::value);
  return {
      [self](wake_atom) {
        const SyncEnv& e = *self->state.env;
        const auto& contexts = e.Live() ? e.Live()->contexts : e.contexts;
        for (const auto& [tenant, ctx] : contexts) {
          std::vector<CampaignView> all;
          if (!ListCampaigns(*e.log, tenant, &all).ok()) continue;
          for (const CampaignView& v : all) {
            const auto key = std::make_pair(tenant, v.spec.id);
            if (v.state == CampaignState::kDraft || v.state == CampaignState::kCompleted ||
                self->state.running.count(key))
              continue;
            if (v.state == CampaignState::kCancelled) {
              std::map<std::string, int64_t> by_state, skipped;
              if (!ReadCampaignCounts(*e.log, tenant, v.spec.id, &by_state, &skipped).ok() ||
                  by_state["pending"] + by_state["in_progress"] == 0)
                continue;
            }
            self->state.running[key] = self->spawn<caf::detached + caf::monitored>(
                CampaignActor, self->state.env, tenant, v.spec.id,
                caf::actor_cast<caf::actor>(self));
          }
        }
        self->delayed_send(self, std::chrono::microseconds(kTickUs), wake_atom::value);
      },
  };
}

}  // namespace dfm
