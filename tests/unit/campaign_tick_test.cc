// The campaign actor's tick (actors/campaign_actor.h) over an in-memory
// log, its projection folded when the test says.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "actors/campaign_actor.h"
#include "actors/sync_env.h"
#include "campaigns/agent.h"
#include "campaigns/campaign_view.h"
#include "campaigns/customer.h"
#include "campaigns/task.h"
#include "config/config.h"
#include "projections/campaign_projections.h"
#include "projections/runner.h"
#include "storage/memory_event_log.h"
#include "sync/domain_event.h"
#include "util/clock.h"

namespace dfm {
namespace {

constexpr char kCampaign[] = "spring";

class CampaignTickTest : public ::testing::Test {
 protected:
  CampaignTickTest() : clock_(1'790'000'000'000'000), log_(&clock_) {
    env_.log = &log_;
    ApplyBuiltinDefaults(&env_.ctx);
    env_.now_us = [this] { return clock_.NowMicros(); };
  }

  void Append(std::vector<EventDraft> drafts) {
    std::vector<AppendOutcome> out;
    ASSERT_TRUE(log_.Append(std::move(drafts), &out).ok());
  }

  // A running one-step campaign whose text to c1 was claimed by its agent.
  void RunningWithAClaimedText() {
    Customer c;
    c.id = "cu";
    c.name = "Co";
    CampaignSpec spec;
    spec.id = kCampaign;
    spec.customer = c.id;
    spec.audience.members = {"+12055550142"};
    CampaignStep step;
    step.template_text = "Hi";
    step.window_s = 3600;
    spec.steps = {step};
    CampaignView draft;
    draft.spec = spec;
    CampaignChange start;
    ASSERT_TRUE(PlanCampaignChange(draft, CampaignAction::kStart, clock_.NowMicros(), "t", "", &start)
                    .ok());
    Task t;
    t.campaign = kCampaign;
    t.contact = "c1";
    TaskEvent created = TaskEventFor(t, kTaskCreated);
    created.due_us = clock_.NowMicros();
    TaskEvent claimed = TaskEventFor(t, kTaskClaimed);
    claimed.agent = SendAgentOf(Channel::kSms);
    claimed.claim = 1;
    claimed.lease_until_us = clock_.NowMicros() + 600'000'000;
    claimed.channel = "sms";
    claimed.body = "Hi";
    Append({CustomerDraft("default", c, true),
            PaymentDraft("default", c.id, {"10.00", "USD", "r-1", "", clock_.NowMicros()}),
            CampaignCreatedDraft("default", spec), CampaignChangedDraft("default", start, 0),
            TaskEventDraft("default", created), TaskEventDraft("default", claimed)});
  }

  void Cancel() {
    CampaignView v;
    ASSERT_TRUE(FoldCampaignStream(log_, "default", kCampaign, &v).ok());
    CampaignChange cancel;
    ASSERT_TRUE(
        PlanCampaignChange(v, CampaignAction::kCancel, clock_.NowMicros(), "t", "", &cancel).ok());
    Append({CampaignChangedDraft("default", cancel, v.changes)});
  }

  // The task events appended since `from`, as "<type> <reason>".
  std::vector<std::string> TaskEventsAfter(uint64_t from) {
    std::vector<Event> all;
    EXPECT_TRUE(log_.Read(from + 1, 1000, &all).ok());
    std::vector<std::string> out;
    for (const Event& e : all) {
      TaskEvent t;
      if (e.type.rfind("task.", 0) == 0 && DecodeTaskEvent(e.type, e.payload, &t))
        out.push_back(e.type + " " + t.reason);
    }
    return out;
  }

  ManualClock clock_;
  MemoryEventLog log_;
  SyncEnv env_;
  CampaignTasksProjection tasks_;
};

// A cancel ends each task by what its send did. A text the vendor took
// just before the cancel, its success logged but not yet folded by the
// tasks' projection, was skipped "cancelled": not counted against the
// person's frequency caps, so another campaign could text them past them.
TEST_F(CampaignTickTest, ACancelWaitsForTheOutcomesLoggedBeforeIt) {
  RunningWithAClaimedText();
  ASSERT_TRUE(ProjectionRunner(&log_, &tasks_).CatchUp().ok());
  DomainEvent sent;
  sent.type = std::string(ev::kPushSucceeded);
  sent.contact_id = "c1";
  sent.system = "verity";
  sent.op = "send";
  sent.push_id = "p-1";
  sent.message_key = CampaignMessageKey(kCampaign, 0, "c1");
  Append({ToDraft(sent, "default", "contact:c1", EventId(), EventId())});
  Cancel();
  const uint64_t before = log_.LastSequence();
  CampaignTickState state;
  EXPECT_EQ(TickCampaign(env_, "default", kCampaign, &state), 50'000) << "the fold waited for";
  EXPECT_EQ(TaskEventsAfter(before), std::vector<std::string>{}) << "not before the fold";
  ASSERT_TRUE(ProjectionRunner(&log_, &tasks_).CatchUp().ok());
  TickCampaign(env_, "default", kCampaign, &state);
  EXPECT_EQ(TaskEventsAfter(before), std::vector<std::string>{"task.done "});
}

// A plan whose every event is in the log already, folded and refused by
// the tasks' lifecycle (here a skip recorded before its task was made,
// under the key the cancel's skip has), would be asked for again every
// 50 ms for ever: the tick goes back to its usual pace.
TEST_F(CampaignTickTest, APlanTheTasksRefusedIsNotAskedForAtOnceAgain) {
  Task t;
  t.campaign = kCampaign;
  t.contact = "c1";
  TaskEvent early = TaskEventFor(t, kTaskSkipped);
  early.reason = "cancelled";
  Append({TaskEventDraft("default", early)});
  RunningWithAClaimedText();
  Cancel();
  ASSERT_TRUE(ProjectionRunner(&log_, &tasks_).CatchUp().ok());
  CampaignTickState state;
  const uint64_t before = log_.LastSequence();
  TickCampaign(env_, "default", kCampaign, &state);
  ASSERT_TRUE(ProjectionRunner(&log_, &tasks_).CatchUp().ok());
  EXPECT_EQ(log_.LastSequence(), before) << "the same skip: a duplicate";
  EXPECT_EQ(TickCampaign(env_, "default", kCampaign, &state), 1'000'000);
}

// The send agent waits out a refusal for the longest request any of the
// tenant's systems may make (campaigns/agent.h RefusalSettleFor): read
// from the tables as configured now, another tenant's not counted.
TEST_F(CampaignTickTest, TheLongestRequestTimeoutIsTheTenantsOwn) {
  EXPECT_EQ(env_.LongestRequestTimeoutUs("default"), 0) << "none configured";
  SystemSettings verity = {{"request_timeout_ms", "10000"}};
  SystemSettings smtp = {{"request_timeout_ms", "60000"}};
  SystemSettings other = {{"request_timeout_ms", "900000"}};
  SystemSettings none = {{"api_key", "k"}};
  env_.system_tables[{"default", "verity"}] = &verity;
  env_.system_tables[{"default", "smtp"}] = &smtp;
  env_.system_tables[{"default", "apollo"}] = &none;
  env_.system_tables[{"other", "verity"}] = &other;
  EXPECT_EQ(env_.LongestRequestTimeoutUs("default"), 60'000'000);
  EXPECT_EQ(RefusalSettleFor(env_.LongestRequestTimeoutUs("default")), 70'000'000);
  EXPECT_EQ(env_.LongestRequestTimeoutUs("other"), 900'000'000);
  EXPECT_EQ(env_.LongestRequestTimeoutUs("nobody"), 0);
}

}  // namespace
}  // namespace dfm
