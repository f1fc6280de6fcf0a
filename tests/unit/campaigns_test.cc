// Campaigns' pure rules (campaigns/): the spec and its validation details,
// the lifecycle, templates, the check at the moment of sending, the pacer,
// and the task's life as the fold of its events.
#include <gtest/gtest.h>

#include <cstdint>

#include "campaigns/audience.h"
#include "campaigns/campaign.h"
#include "campaigns/campaign_view.h"
#include "campaigns/check.h"
#include "campaigns/customer.h"
#include "campaigns/message_template.h"
#include "campaigns/planner.h"
#include "campaigns/recipient_zones.h"
#include "campaigns/send_check.h"
#include "campaigns/task.h"
#include "projections/audience_index.h"
#include "projections/campaign_projections.h"
#include "projections/runner.h"
#include "projections/sync_projections.h"
#include "storage/key_store.h"
#include "storage/memory_event_log.h"
#include "sync/domain_event.h"
#include "util/clock.h"

namespace dfm {
namespace {

constexpr int64_t kS = 1000000;
// 2026-07-01 12:00:00 UTC: 08:00 in New York (EDT).
constexpr int64_t kNoonUtc = 1782907200LL * kS;

const char kSpec[] =
    R"({"v":1,"id":"spring-1","customer":"acme","name":"Spring","audience":{"tags":["lead"]},
  "start_at":"2026-07-01T12:00:00Z","sender":"+12055550100",
  "steps":[{"channel":"sms","template":"Hi {{first_name|there}}, from {{customer_name}}"},
           {"channel":"email","subject":"About {{company_name}}","template":"Hello {{ first_name }}","delay_s":86400},
           {"channel":"call","delay_s":172800,"stop_on_payment":false}]})";

TEST(CampaignSpec, ReadsAValidSpecAndWritesItBackTheSame) {
  CampaignSpec s;
  std::vector<ValidationDetail> d;
  DecodeCampaignSpec(kSpec, &s, &d);
  ASSERT_TRUE(d.empty()) << ValidationDetailsJson(d);
  EXPECT_EQ(s.id, "spring-1");
  EXPECT_EQ(s.audience.tags, std::vector<std::string>{"lead"});
  ASSERT_EQ(s.steps.size(), 3u);
  EXPECT_EQ(s.steps[1].channel, Channel::kEmail);
  EXPECT_EQ(s.steps[1].delay_s, 86400);
  EXPECT_EQ(s.steps[2].window_s, 86400) << "the default window";
  EXPECT_FALSE(s.steps[2].stop_on_payment);
  EXPECT_EQ(s.start_at_us, kNoonUtc);
  CampaignSpec again;
  DecodeCampaignSpec(EncodeCampaignSpec(s), &again, &d);
  ASSERT_TRUE(d.empty()) << ValidationDetailsJson(d);
  EXPECT_EQ(EncodeCampaignSpec(again), EncodeCampaignSpec(s));
}

TEST(CampaignSpec, SaysEveryProblemWithItsField) {
  CampaignSpec s;
  std::vector<ValidationDetail> d;
  DecodeCampaignSpec(R"({"id":"bad id!","audience":{},"start_at":"tomorrow",
    "steps":[{"channel":"fax"},{"channel":"email","template":"{{favourite_colour}}","delay_s":-1},
             {"channel":"sms","template":"Hi {{first_name"}]})",
                     &s, &d);
  auto has = [&d](const std::string& field, const std::string& part) {
    for (const auto& x : d)
      if (x.field == field && x.problem.find(part) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("id", "letters")) << ValidationDetailsJson(d);
  EXPECT_TRUE(has("customer", "required"));
  EXPECT_TRUE(has("audience", "names nobody"));
  EXPECT_TRUE(has("start_at", "RFC 3339"));
  EXPECT_TRUE(has("steps[0].channel", "sms, email or call"));
  EXPECT_TRUE(has("steps[1].subject", "required"));
  EXPECT_TRUE(has("steps[1].template", "unknown field \"favourite_colour\""));
  EXPECT_TRUE(has("steps[1].delay_s", "from 0"));
  EXPECT_TRUE(has("steps[2].template", "never closed"));
  // A time without its zone (read as UTC, hours off), or a day past its
  // month's end, is refused; with a zone or Z it is taken.
  for (const char* at : {"2026-12-24T09:00:00", "2026-12-24 09:00:00.5", "2026-02-31T09:00:00Z"}) {
    d.clear();
    DecodeCampaignSpec(std::string(R"({"id":"c","customer":"k","audience":{"tags":["vip"]},)") +
                           R"("steps":[{"channel":"sms","template":"Hi"}],"start_at":")" + at +
                           R"("})",
                       &s, &d);
    EXPECT_TRUE(has("start_at", "RFC 3339")) << at;
  }
  for (const char* at :
       {"2026-12-24T09:00:00Z", "2026-12-24T09:00:00-05:00", "2026-12-24T09:00:00.5+01:00"}) {
    d.clear();
    DecodeCampaignSpec(std::string(R"({"id":"c","customer":"k","audience":{"tags":["vip"]},)") +
                           R"("steps":[{"channel":"sms","template":"Hi"}],"start_at":")" + at +
                           R"("})",
                       &s, &d);
    EXPECT_FALSE(has("start_at", "RFC 3339")) << at << ValidationDetailsJson(d);
  }
  d.clear();
  DecodeCampaignSpec("not json", &s, &d);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].field, "");
  d.clear();
  DecodeCampaignSpec(R"({"id":"a","customer":"b","audience":{"members":["c1"]},"steps":[]})", &s,
                     &d);
  EXPECT_TRUE(has("steps", "1 to 20"));
  d.clear();
  DecodeCampaignSpec(R"({"id":"a","customer":"b","audience":{"members":["c1"]},"steps":[
      {"channel":"call","draft":"ai"},{"channel":"sms","template":"x","draft":"yes"},
      {"channel":"sms","template":"Invite {{first_name}}","draft":"ai"}]})",
                     &s, &d);
  EXPECT_TRUE(has("steps[0].draft", "sms and email only")) << ValidationDetailsJson(d);
  EXPECT_TRUE(has("steps[1].draft", "must be \"ai\""));
  EXPECT_EQ(d.size(), 2u) << ValidationDetailsJson(d);
  ASSERT_EQ(s.steps.size(), 3u);
  EXPECT_TRUE(s.steps[2].ai_draft);
  CampaignSpec again;
  d.clear();
  DecodeCampaignSpec(EncodeCampaignSpec(s), &again, &d);
  EXPECT_TRUE(again.steps[2].ai_draft) << "written back with its draft";
  EXPECT_FALSE(again.steps[1].ai_draft);
}

TEST(CampaignLifecycle, AllowsOnlyItsTransitions) {
  CampaignState to;
  ASSERT_TRUE(
      NextState(CampaignState::kDraft, CampaignAction::kStart, kNoonUtc, kNoonUtc - 1, &to).ok());
  EXPECT_EQ(to, CampaignState::kScheduled) << "a start date ahead";
  ASSERT_TRUE(NextState(CampaignState::kDraft, CampaignAction::kStart, 0, kNoonUtc, &to).ok());
  EXPECT_EQ(to, CampaignState::kRunning);
  ASSERT_TRUE(NextState(CampaignState::kScheduled, CampaignAction::kBegin, 0, 0, &to).ok());
  ASSERT_TRUE(NextState(CampaignState::kRunning, CampaignAction::kPause, 0, 0, &to).ok());
  EXPECT_EQ(to, CampaignState::kPaused);
  ASSERT_TRUE(NextState(CampaignState::kPaused, CampaignAction::kResume, 0, 0, &to).ok());
  ASSERT_TRUE(NextState(CampaignState::kPaused, CampaignAction::kCancel, 0, 0, &to).ok());
  Status s = NextState(CampaignState::kScheduled, CampaignAction::kPause, 0, 0, &to);
  EXPECT_EQ(s.message(), "cannot pause a campaign that is scheduled");
  EXPECT_FALSE(NextState(CampaignState::kCompleted, CampaignAction::kCancel, 0, 0, &to).ok());
  EXPECT_FALSE(NextState(CampaignState::kCancelled, CampaignAction::kResume, 0, 0, &to).ok());
  EXPECT_FALSE(NextState(CampaignState::kRunning, CampaignAction::kStart, 0, 0, &to).ok());
}

TEST(MessageTemplate, FillsFieldsAndFallsBackWhenOneIsEmpty) {
  const std::map<std::string, std::string> ada{{"first_name", "Ada"}, {"customer_name", "Acme"}};
  EXPECT_EQ(RenderTemplate("Hi {{first_name|there}}, from {{ customer_name }}.", ada),
            "Hi Ada, from Acme.");
  EXPECT_EQ(RenderTemplate("Hi {{first_name|there}}, {{last_name}}.", {}), "Hi there, .");
  EXPECT_EQ(RenderTemplate("no fields }} at all", {}), "no fields }} at all");
  EXPECT_TRUE(CheckTemplate("Hi {{first_name}}").ok());
  EXPECT_FALSE(CheckTemplate("Hi {{first_name").ok());
  EXPECT_FALSE(CheckTemplate("Hi {{ {{first_name}} }}").ok());
  EXPECT_FALSE(CheckTemplate("{{password}}").ok());
}

class SendCheckTest : public testing::Test {
 protected:
  SendCheckTest() {
    EXPECT_TRUE(LoadZone(kZoneInfoDir, "America/New_York", &ny_).ok());
    who_.zones = {ny_.get()};
    step_.window_s = 6 * 3600;
  }
  SendDecision At(int64_t now_us, int64_t due_us = kNoonUtc) {
    return CheckSend(step_, who_, QuietHours{}, caps_, due_us, now_us);
  }
  std::shared_ptr<const ZoneRules> ny_;
  CampaignStep step_;
  Recipient who_;
  FrequencyCaps caps_;
};

TEST_F(SendCheckTest, ConsentRepliesAndPaymentsStopAPersonsSteps) {
  EXPECT_EQ(At(kNoonUtc).verdict, SendDecision::Verdict::kSend);
  who_.paid = true;
  EXPECT_EQ(At(kNoonUtc).reason, "paid");
  step_.stop_on_payment = false;
  EXPECT_EQ(At(kNoonUtc).verdict, SendDecision::Verdict::kSend);
  who_.replied = true;
  EXPECT_EQ(At(kNoonUtc).reason, "replied");
  who_.opted_out = true;
  step_.stop_on_reply = false;
  EXPECT_EQ(At(kNoonUtc).reason, "opted_out") << "never optional";
  who_ = Recipient{};
  who_.zones = {ny_.get()};
  who_.has_address = false;
  EXPECT_EQ(At(kNoonUtc).reason, "no_address");
}

TEST_F(SendCheckTest, QuietHoursWaitForTheWindowOrSkipPastTheStepsWindow) {
  // 06:00 in New York: wait until 08:00, inside the step's six hours.
  const SendDecision early = At(kNoonUtc - 2 * 3600 * kS, kNoonUtc - 2 * 3600 * kS);
  EXPECT_EQ(early.verdict, SendDecision::Verdict::kWait);
  EXPECT_EQ(early.until_us, kNoonUtc);
  EXPECT_EQ(early.reason, "quiet_hours");
  // 22:00: the window opens ten hours later, past the step's six.
  const int64_t late = kNoonUtc + 14 * 3600 * kS;
  EXPECT_EQ(At(late, late).reason, "quiet_hours");
  EXPECT_EQ(At(late, late).verdict, SendDecision::Verdict::kSkip);
  who_.zones.clear();
  EXPECT_EQ(At(kNoonUtc).reason, "quiet_hours") << "no zone at all: nobody is reached";
  who_.zones = {ny_.get()};
  EXPECT_EQ(At(kNoonUtc + 7 * 3600 * kS).reason, "window_passed") << "looked at after its window";
}

TEST_F(SendCheckTest, FrequencyCapsCountAnyCampaignsSendsAndWaitForTheOldestToAge) {
  caps_ = FrequencyCaps{2, 3};
  const int64_t now = kNoonUtc + 3600 * kS;
  who_.recent_sends_us = {now - 23 * 3600 * kS, now - 60 * kS};  // two in the last 24 hours
  SendDecision d = At(now, now);
  EXPECT_EQ(d.verdict, SendDecision::Verdict::kWait);
  EXPECT_EQ(d.until_us, now + 3600 * kS) << "when the first of them is a day old";
  EXPECT_EQ(d.reason, "frequency_cap");
  who_.recent_sends_us = {now - 6 * 86400 * kS, now - 3 * 86400 * kS,
                          now - 2 * 86400 * kS};  // three this week
  d = At(now, now);
  EXPECT_EQ(d.verdict, SendDecision::Verdict::kSkip) << "a day away, past the six hours";
  EXPECT_EQ(d.reason, "frequency_cap");
  step_.channel = Channel::kCall;
  EXPECT_EQ(At(now, now).verdict, SendDecision::Verdict::kSend) << "calls are not capped";
  step_.channel = Channel::kSms;
  caps_ = FrequencyCaps{0, 0};
  EXPECT_EQ(At(now, now).verdict, SendDecision::Verdict::kSend);
}

TEST(SenderPacer, SpacesTextsToTheSendersRate) {
  SenderPacer p(2.0);  // two a second
  int64_t t = 1000 * kS;
  int sent = 0;
  for (int64_t now = t; now < t + 10 * kS;) {
    const int64_t at = p.NextAt(now);
    if (at > now) {
      now = at;
      continue;
    }
    p.Take(now);
    ++sent;
  }
  EXPECT_GE(sent, 20);
  EXPECT_LE(sent, 22) << "a second's burst, then two a second";
}

TaskEvent Ev(std::string_view type, const std::string& agent = "", int64_t at = 0, int claim = 1) {
  TaskEvent e;
  e.claim = claim;
  e.type = std::string(type);
  e.campaign = "spring-1";
  e.contact = "c-1";
  e.step = 1;
  e.agent = agent;
  e.due_us = at;
  e.until_us = at;
  e.lease_until_us = at;
  if (type == kTaskReleased) e.reason = "lease_lapsed";
  if (type == kTaskDone) e.channel = "sms";
  if (type == kTaskSkipped || type == kTaskFailed || type == kTaskDeferred)
    e.reason = "quiet_hours";
  return e;
}

TEST(CampaignTask, LivesByItsEventsAndRefusesWhatItsLifeDoesNotAllow) {
  Task t;
  ASSERT_TRUE(ApplyTaskEvent(Ev(kTaskCreated, "", 100), &t).ok());
  EXPECT_EQ(t.state, TaskState::kPending);
  EXPECT_FALSE(ApplyTaskEvent(Ev(kTaskCreated, "", 100), &t).ok()) << "once";
  ASSERT_TRUE(ApplyTaskEvent(Ev(kTaskDeferred, "", 200), &t).ok());
  EXPECT_EQ(t.due_us, 200);
  EXPECT_FALSE(ApplyTaskEvent(Ev(kTaskClaimed, "sms-1", 500, 2), &t).ok()) << "not its next claim";
  ASSERT_TRUE(ApplyTaskEvent(Ev(kTaskClaimed, "sms-1", 500, 1), &t).ok());
  EXPECT_FALSE(ApplyTaskEvent(Ev(kTaskClaimed, "sms-2", 600, 2), &t).ok()) << "held";
  EXPECT_FALSE(LeaseLapsed(t, 499));
  EXPECT_TRUE(LeaseLapsed(t, 500));
  ASSERT_TRUE(ApplyTaskEvent(Ev(kTaskReleased, "sms-1", 0, 1), &t).ok());
  ASSERT_TRUE(ApplyTaskEvent(Ev(kTaskClaimed, "sms-1", 900, 2), &t).ok()) << "the same agent again";
  EXPECT_EQ(t.claims, 2);
  const Task before = t;
  EXPECT_FALSE(ApplyTaskEvent(Ev(kTaskDone, "sms-1", 0, 1), &t).ok())
      << "a late answer to the agent's own lapsed claim";
  EXPECT_FALSE(ApplyTaskEvent(Ev(kTaskDone, "sms-2", 0, 2), &t).ok()) << "another agent";
  EXPECT_EQ(t.state, before.state) << "unchanged";
  ASSERT_TRUE(ApplyTaskEvent(Ev(kTaskDone, "sms-1", 0, 2), &t).ok());
  EXPECT_TRUE(t.ended());
  EXPECT_FALSE(ApplyTaskEvent(Ev(kTaskSkipped), &t).ok()) << "ended";
  Task never;
  EXPECT_FALSE(ApplyTaskEvent(Ev(kTaskClaimed, "sms-1", 1), &never).ok());
}

TEST(CampaignTask, EventsReadBackAndTheirDraftsAreIdempotentPerClaim) {
  for (std::string_view type : {kTaskCreated, kTaskDeferred, kTaskClaimed, kTaskReleased, kTaskDone,
                                kTaskFailed, kTaskSkipped}) {
    TaskEvent e =
        Ev(type, type == kTaskCreated || type == kTaskDeferred || type == kTaskSkipped ? "" : "a-1",
           42);
    TaskEvent back;
    ASSERT_TRUE(DecodeTaskEvent(type, EncodeTaskEvent(e), &back)) << type;
    EXPECT_EQ(EncodeTaskEvent(back), EncodeTaskEvent(e)) << type;
  }
  TaskEvent e;
  EXPECT_FALSE(
      DecodeTaskEvent("task.claimed", R"({"v":1,"campaign":"x","contact":"y","step":0})", &e))
      << "a claim names its agent";
  EXPECT_FALSE(DecodeTaskEvent("task.created",
                               R"({"v":2,"campaign":"x","contact":"y","step":0,"due_us":1})", &e));
  EXPECT_FALSE(DecodeTaskEvent("task.other", R"({"v":1})", &e));
  const EventDraft first = TaskEventDraft("acme", Ev(kTaskClaimed, "a-1", 5, 1));
  const EventDraft second = TaskEventDraft("acme", Ev(kTaskClaimed, "a-1", 5, 2));
  EXPECT_NE(TaskEventDraft("acme", Ev(kTaskDeferred, "", 100)).idempotency_key,
            TaskEventDraft("acme", Ev(kTaskDeferred, "", 200)).idempotency_key)
      << "deferred again to a new time: its own event";
  // A deferral refused on a stale view (the task claimed meanwhile) is
  // asked anew once the claim is released: not a duplicate of the refused
  // one, which would leave the campaign's actor planning it forever.
  TaskEvent unclaimed = Ev(kTaskDeferred, "", 100, /*claim=*/0), after_a_claim = unclaimed;
  after_a_claim.claim = 1;
  EXPECT_EQ(TaskEventDraft("acme", unclaimed).idempotency_key, "spring-1/1/c-1/task.deferred/100");
  EXPECT_EQ(TaskEventDraft("acme", after_a_claim).idempotency_key, "spring-1/1/c-1/task.deferred/100/1");
  EXPECT_EQ(EncodeTaskEvent(after_a_claim), EncodeTaskEvent(unclaimed)) << "the payload is the same";
  EXPECT_EQ(first.stream, "campaign-tasks:spring-1");
  EXPECT_EQ(first.idempotency_key, "spring-1/1/c-1/task.claimed/1");
  EXPECT_NE(first.idempotency_key, second.idempotency_key);
  // A cancel's skip names the claim it ends; a task is skipped once.
  TaskEvent cancel = Ev(kTaskSkipped, "sms", 0, 3);
  cancel.reason = "cancelled";
  TaskEvent back;
  ASSERT_TRUE(DecodeTaskEvent(kTaskSkipped, EncodeTaskEvent(cancel), &back));
  EXPECT_EQ(back.agent + "#" + std::to_string(back.claim), "sms#3");
  cancel.agent.clear();  // released before the cancel: no agent holds it
  ASSERT_TRUE(DecodeTaskEvent(kTaskSkipped, EncodeTaskEvent(cancel), &back));
  EXPECT_EQ(back.agent + "#" + std::to_string(back.claim), "#3");
  EXPECT_EQ(TaskEventDraft("acme", cancel).idempotency_key, "spring-1/1/c-1/task.skipped/0");
  EXPECT_FALSE(DecodeTaskEvent(
      "task.skipped",
      R"({"v":1,"campaign":"x","contact":"y","step":0,"agent":"sms","reason":"cancelled"})", &e))
      << "a skip that names an agent names its claim";
  EXPECT_FALSE(DecodeTaskEvent(
      "task.skipped",
      R"({"v":1,"campaign":"x","contact":"y","step":0,"claim":0,"reason":"cancelled"})", &e));
}

TEST(Customer, RequestsAreCheckedAndItsEventsFoldIntoTheCustomerAndPayments) {
  Customer c;
  std::vector<ValidationDetail> d;
  DecodeCustomerRequest(R"({"id":"acme","name":"Acme Dental"})", &c, &d);
  ASSERT_TRUE(d.empty()) << ValidationDetailsJson(d);
  EXPECT_TRUE(c.active);
  DecodeCustomerRequest(R"({"id":"a b","active":"yes"})", &c, &d);
  EXPECT_EQ(
      ValidationDetailsJson(d),
      R"([{"field":"id","problem":"must be 1-64 letters, digits, '_', '-' or '.'"},)"
      R"({"field":"name","problem":"is required"},{"field":"active","problem":"must be true or false"}])");
  Payment p;
  d.clear();
  DecodePaymentRequest(
      R"({"amount":"120.50","currency":"USD","reference":"inv-7","contact":"c-1"})", &p, &d);
  ASSERT_TRUE(d.empty()) << ValidationDetailsJson(d);
  DecodePaymentRequest(R"({"amount":12.5,"currency":"USD","reference":"inv-8"})", &p, &d);
  EXPECT_EQ(p.amount, "12.50");
  for (const char* bad : {R"({"amount":"0","currency":"USD","reference":"r"})",
                          R"({"amount":"1.2345","currency":"USD","reference":"r"})",
                          R"({"amount":"5","currency":"usd","reference":"r"})",
                          R"({"amount":"5","currency":"USD"})"}) {
    d.clear();
    DecodePaymentRequest(bad, &p, &d);
    EXPECT_EQ(d.size(), 1u) << bad;
  }

  Customer folded;
  c = Customer{"acme", "Acme Dental", true, 0, {}};
  EventDraft made = CustomerDraft("t", c, true);
  ASSERT_TRUE(ApplyCustomerEvent(made.type, made.payload, 1, &folded));
  p = Payment{"120.50", "USD", "inv-7", "c-1", 0};
  EventDraft paid = PaymentDraft("t", "acme", p);
  EXPECT_EQ(paid.idempotency_key, "acme/inv-7") << "a reference is recorded once";
  ASSERT_TRUE(ApplyCustomerEvent(paid.type, paid.payload, 99, &folded));
  c.active = false;
  EventDraft off = CustomerDraft("t", c, false);
  ASSERT_TRUE(ApplyCustomerEvent(off.type, off.payload, 100, &folded));
  EXPECT_FALSE(folded.active);
  ASSERT_EQ(folded.payments.size(), 1u);
  EXPECT_EQ(folded.payments[0].contact, "c-1");
  EXPECT_EQ(folded.payments[0].at_us, 99);
  EXPECT_FALSE(ApplyCustomerEvent(kPaymentRecorded, "{}", 1, &folded));
}

TEST(CampaignCheck, SaysWhyACampaignWouldNotStartInTheGuidesOrder) {
  CampaignSpec spec;
  std::vector<ValidationDetail> problems;
  DecodeCampaignSpec(kSpec, &spec, &problems);
  Customer acme{"acme", "Acme Dental", false, 0, {}};
  CampaignCheckInput in;
  in.spec = &spec;
  in.customer = &acme;
  in.audience = 200;
  in.reachable = 0;
  in.now_us = kNoonUtc - 1;
  std::vector<CampaignCheckItem> items = CheckCampaign(in);
  ASSERT_EQ(items.size(), 6u);
  EXPECT_FALSE(CheckPasses(items));
  std::string said;
  for (const auto& i : items) said += i.what + "=" + (i.ok ? "ok" : "no") + "(" + i.detail + ") ";
  EXPECT_EQ(said,
            "customer=no(Acme Dental is not active) payment=no(no payment on record (POST "
            "/v1/customers/{id}/payments)) steps=ok(3 valid) start=ok(scheduled for "
            "2026-07-01T12:00:00.000Z) "
            "sender=no(the tenant has no sender for the first step's channel) audience=no(200 "
            "named, 0 reachable "
            "(not opted out)) ");
  acme.active = true;
  acme.payments.push_back({"120.50", "USD", "inv-7", "", 1});
  acme.payments_total = 1;
  in.sender_configured = true;
  in.reachable = 180;
  EXPECT_TRUE(CheckPasses(CheckCampaign(in)));
  in.customer = nullptr;
  EXPECT_EQ(CheckCampaign(in)[0].detail, "no such customer: create it (POST /v1/customers)");
  in.customer = &acme;
  spec.steps[0].ai_draft = true;  // drafted by AI: the tenant needs its model
  items = CheckCampaign(in);
  ASSERT_EQ(items.size(), 7u);
  EXPECT_EQ(items[5].what + "=" + (items[5].ok ? "ok" : "no"), "drafter=no");
  in.drafter_configured = true;
  EXPECT_TRUE(CheckPasses(CheckCampaign(in)));
}

TEST(CampaignView, IsTheFoldOfItsEventsAndRefusesWhatItsLifecycleDoesNot) {
  CampaignSpec spec;
  std::vector<ValidationDetail> problems;
  DecodeCampaignSpec(kSpec, &spec, &problems);
  ASSERT_TRUE(problems.empty());
  CampaignView v;
  EventDraft made = CampaignCreatedDraft("acme", spec);
  EXPECT_EQ(made.stream, "campaign:spring-1");
  ASSERT_TRUE(ApplyCampaignEvent(made.type, made.payload, 7, &v).ok());
  EXPECT_EQ(EncodeCampaignSpec(v.spec), EncodeCampaignSpec(spec));
  EXPECT_FALSE(ApplyCampaignEvent(made.type, made.payload, 8, &v).ok()) << "once";

  CampaignChange start;
  ASSERT_TRUE(
      PlanCampaignChange(v, CampaignAction::kStart, kNoonUtc - kS, "key:k1", "", &start).ok());
  EXPECT_EQ(start.state, CampaignState::kScheduled) << "its date is ahead";
  EventDraft started = CampaignChangedDraft("acme", start, v.changes);
  ASSERT_TRUE(ApplyCampaignEvent(started.type, started.payload, 9, &v).ok());
  CampaignChange pause;
  EXPECT_EQ(PlanCampaignChange(v, CampaignAction::kPause, kNoonUtc, "key:k1", "", &pause).message(),
            "cannot pause a campaign that is scheduled");
  CampaignChange begin;
  ASSERT_TRUE(
      PlanCampaignChange(v, CampaignAction::kBegin, kNoonUtc, "scheduler", "", &begin).ok());
  EventDraft begun = CampaignChangedDraft("acme", begin, v.changes);
  EXPECT_NE(begun.idempotency_key, started.idempotency_key);
  ASSERT_TRUE(ApplyCampaignEvent(begun.type, begun.payload, 10, &v).ok());
  EXPECT_EQ(v.state, CampaignState::kRunning);
  EXPECT_EQ(v.started_us, kNoonUtc);
  // A change the lifecycle refuses from where the campaign is changes nothing.
  EXPECT_FALSE(ApplyCampaignEvent(begun.type, begun.payload, 11, &v).ok());
  EXPECT_EQ(v.changes, 2);
  const std::string json = CampaignViewJson(v);
  EXPECT_NE(json.find("\"state\":\"running\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"started_at\":\"2026-07-01T12:00:00.000Z\""), std::string::npos) << json;

  // Its pauses are kept: a step's window does not run while it is paused.
  auto change = [&](CampaignAction action, int64_t at) {
    CampaignChange c;
    ASSERT_TRUE(PlanCampaignChange(v, action, at, "key:k1", "", &c).ok());
    EventDraft d = CampaignChangedDraft("acme", c, v.changes);
    ASSERT_TRUE(ApplyCampaignEvent(d.type, d.payload, at, &v).ok());
  };
  change(CampaignAction::kPause, kNoonUtc + 100 * kS);
  EXPECT_EQ(PausedBetween(v, kNoonUtc, kNoonUtc + 400 * kS), 300 * kS) << "still paused";
  change(CampaignAction::kResume, kNoonUtc + 200 * kS);
  EXPECT_EQ(PausedBetween(v, kNoonUtc, kNoonUtc + 400 * kS), 100 * kS);
  EXPECT_EQ(PausedBetween(v, kNoonUtc + 150 * kS, kNoonUtc + 400 * kS), 50 * kS);
  EXPECT_EQ(PausedBetween(v, kNoonUtc + 300 * kS, kNoonUtc + 400 * kS), 0);
}

TEST(Audience, NamesEachContactOnceThroughTheIdentityIndex) {
  AudienceIndex index;
  index.exists = [](const std::string& id) { return id == "c-1" || id == "c-2"; };
  index.by_phone = [](const std::string& e164) {
    return e164 == "+12055550101" ? std::optional<std::string>("c-2") : std::nullopt;
  };
  index.by_email = [](const std::string& email) {
    return email == "ada@example.com" ? std::optional<std::string>("c-3") : std::nullopt;
  };
  index.with_tag = [](const std::string& tag, const AudienceIndex::Each& each) {
    if (tag == "lead") {
      each("c-1");
      each("c-4");
    }
  };
  Audience a;
  a.tags = {"lead", "nobody"};
  a.members = {"c-1", "(205) 555-0101", "Ada@Example.com", "+12055550199", "c-9"};
  const ResolvedAudience r = ResolveAudience(a, index, Normalizer("US"));
  EXPECT_EQ(r.contacts, (std::vector<std::string>{"c-1", "c-2", "c-3", "c-4"}));
  EXPECT_EQ(r.unresolved, (std::vector<std::string>{"+12055550199", "c-9"}));
  // What a campaign keeps: the contacts' ids, the rest as given, each once.
  a.members.push_back("+1 205 555 0101");  // c-2 again
  EXPECT_EQ(MembersAsContacts(a.members, index, Normalizer("US")),
            (std::vector<std::string>{"c-1", "c-2", "c-3", "+12055550199", "c-9"}));
  // A log that seals: a phone or email that names nobody is kept as its
  // keyed hash, and a hash names whom the index says it is.
  const std::string h199(32, 'a'), hnobody(32, 'b'), hother(32, 'c');
  auto hash = [&](const std::string& identity) {
    return identity == "+12055550199" ? h199 : identity == "nobody@example.com" ? hnobody : hother;
  };
  a.members.push_back("Nobody@Example.com");
  EXPECT_EQ(MembersAsContacts(a.members, index, Normalizer("US"), hash),
            (std::vector<std::string>{"c-1", "c-2", "c-3", "#" + h199, "c-9", "#" + hnobody}));
  index.by_hash = [&](const std::string& hex) {
    return hex == h199 ? std::optional<std::string>("c-5") : std::nullopt;
  };
  Audience kept;
  kept.members = {"#" + h199, "#" + hnobody, "#" + h199.substr(1) + "x"};
  const ResolvedAudience later = ResolveAudience(kept, index, Normalizer("US"));
  EXPECT_EQ(later.contacts, std::vector<std::string>{"c-5"}) << "a contact since";
  EXPECT_EQ(later.unresolved, (std::vector<std::string>{"#" + hnobody, "#" + h199.substr(1) + "x"}))
      << "not a hash: 32 lowercase hex digits";
}

// The service's index: a hashed member is found through the tenant's
// mappings, under the log's own secret, and not in another tenant.
TEST(Audience, AHashedMemberIsFoundThroughTheTenantsMappings) {
  MemoryEventLog log;
  log.SetKeyStore(std::make_shared<MemoryKeyStore>());
  ASSERT_TRUE(log.CommitConsumer(MappingsProjection::kName, 1,
                                 {{"p/acme/+12055550199", "c-5"}, {"e/acme/ann@example.com", "c-6"},
                                  {"p/other/+12055550123", "c-7"}})
                  .ok());
  const MemberHash hash = MemberHashOf(log, "acme");
  ASSERT_TRUE(hash);
  EXPECT_NE(hash("+12055550199"), MemberHashOf(log, "other")("+12055550199")) << "per tenant";
  const AudienceIndex index = ProjectionAudienceIndex(log, "acme", {});
  ASSERT_TRUE(index.by_hash);
  EXPECT_EQ(index.by_hash(hash("+12055550199")), std::optional<std::string>("c-5"));
  EXPECT_EQ(index.by_hash(hash("ann@example.com")), std::optional<std::string>("c-6"));
  EXPECT_EQ(index.by_hash(hash("+12055550123")), std::nullopt) << "another tenant's";
  EXPECT_EQ(index.by_hash(hash("+12055550100")), std::nullopt);
  MemoryEventLog clear;  // no key store: members stay as given
  EXPECT_FALSE(MemberHashOf(clear, "acme"));
  EXPECT_FALSE(ProjectionAudienceIndex(clear, "acme", {}).by_hash);
}

TEST(CampaignsProjection, FoldsCampaignsCustomersAndWhoPaidAndARebuildGivesTheSame) {
  MemoryEventLog log;
  CampaignSpec spec;
  std::vector<ValidationDetail> problems;
  DecodeCampaignSpec(kSpec, &spec, &problems);
  CampaignView v;
  ASSERT_TRUE(
      ApplyCampaignEvent(kCampaignCreated, CampaignCreatedDraft("acme", spec).payload, 1, &v).ok());
  CampaignChange start;
  ASSERT_TRUE(
      PlanCampaignChange(v, CampaignAction::kStart, kNoonUtc + kS, "key:k1", "", &start).ok());
  std::vector<EventDraft> drafts{
      CampaignCreatedDraft("acme", spec), CampaignChangedDraft("acme", start, 0),
      CampaignChangedDraft("acme", start, 1)};  // refused by the fold: running already
  Customer acme{"acme", "Acme Dental", true, 0, {}};
  drafts.push_back(CustomerDraft("acme", acme, true));
  for (int i = 0; i < 12; ++i)
    drafts.push_back(
        PaymentDraft("acme", "acme",
                     Payment{"10.00", "USD", "inv-" + std::to_string(i), i == 11 ? "c-7" : "", 0}));
  std::vector<AppendOutcome> out;
  ASSERT_TRUE(log.Append(std::move(drafts), &out).ok());

  CampaignsProjection campaigns;
  auto look = [&log](std::string* text) {
    CampaignView got;
    Customer who;
    bool paid = false, paid_later = true;
    ASSERT_TRUE(ReadCampaign(log, "acme", "spring-1", &got).ok());
    ASSERT_TRUE(ReadCustomer(log, "acme", "acme", &who).ok());
    ASSERT_TRUE(ReadPaidSince(log, "acme", "c-7", 0, &paid).ok());
    ASSERT_TRUE(ReadPaidSince(log, "acme", "c-7", INT64_MAX, &paid_later).ok());
    *text = std::string(CampaignStateName(got.state)) + " changes=" + std::to_string(got.changes) +
            " payments=" + std::to_string(who.payments_total) + "/" +
            std::to_string(who.payments.size()) + " last=" + who.payments.back().reference +
            " paid=" + (paid ? "yes" : "no") + " later=" + (paid_later ? "yes" : "no");
  };
  ASSERT_TRUE(ProjectionRunner(&log, &campaigns).CatchUp().ok());
  std::string live;
  look(&live);
  EXPECT_EQ(live, "running changes=1 payments=12/10 last=inv-11 paid=yes later=no");
  CampaignView none;
  EXPECT_TRUE(ReadCampaign(log, "acme", "autumn", &none).IsNotFound());
  // The folds of the entities' own streams say the same, without the
  // projection; the listing holds the one campaign.
  CampaignView folded, read;
  ASSERT_TRUE(FoldCampaignStream(log, "acme", "spring-1", &folded).ok());
  ASSERT_TRUE(ReadCampaign(log, "acme", "spring-1", &read).ok());
  EXPECT_EQ(CampaignViewJson(folded), CampaignViewJson(read));
  EXPECT_EQ(folded.changes, 1);
  Customer acme_folded;
  ASSERT_TRUE(FoldCustomerStream(log, "acme", "acme", &acme_folded).ok());
  EXPECT_EQ(acme_folded.payments_total, 12);
  EXPECT_TRUE(FoldCampaignStream(log, "acme", "autumn", &none).IsNotFound());
  EXPECT_TRUE(FoldCustomerStream(log, "other", "acme", &acme_folded).IsNotFound()) << "a tenant's own";
  std::vector<CampaignView> listed;
  ASSERT_TRUE(ListCampaigns(log, "acme", &listed).ok());
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].spec.id, "spring-1");
  ASSERT_TRUE(ListCampaigns(log, "acm", &listed).ok());
  EXPECT_TRUE(listed.empty()) << "a tenant whose name begins another's sees none of its";
  ASSERT_TRUE(ProjectionRunner(&log, &campaigns).Rebuild().ok());
  std::string rebuilt;
  look(&rebuilt);
  EXPECT_EQ(rebuilt, live);
}

// Two campaigns' texts due for one person at once: each campaign's tick
// counted only the sends that ended done, so while one's text was on its
// way (seconds; hours in a vendor outage) the other's went too, past the
// person's per_day cap. A claimed text counts from its claim.
TEST(CampaignTasksProjection, ATextOnItsWayCountsAgainstTheCapsAcrossCampaigns) {
  MemoryEventLog log;
  auto task = [](std::string_view type, const std::string& campaign) {
    TaskEvent e = Ev(type, type == kTaskCreated ? "" : "sms", 5'000'000);
    e.campaign = campaign;
    if (type == kTaskClaimed) e.channel = "sms";
    return e;
  };
  CampaignTasksProjection tasks;
  auto sends_after = [&](std::vector<TaskEvent> events) {
    std::vector<EventDraft> drafts;
    for (const auto& e : events) drafts.push_back(TaskEventDraft("acme", e));
    std::vector<AppendOutcome> out;
    EXPECT_TRUE(log.Append(std::move(drafts), &out).ok());
    EXPECT_TRUE(ProjectionRunner(&log, &tasks).CatchUp().ok());
    std::vector<int64_t> sends;
    EXPECT_TRUE(ReadRecentSends(log, "acme", "c-1", 0, "", 0, &sends).ok());
    return sends.size();
  };
  EXPECT_EQ(sends_after({task(kTaskCreated, "spring-1"), task(kTaskCreated, "summer-1"),
                         task(kTaskClaimed, "spring-1")}),
            1u)
      << "spring's text on its way";
  EXPECT_EQ(sends_after({task(kTaskDone, "spring-1")}), 1u) << "sent: counted once";
  EXPECT_EQ(sends_after({task(kTaskClaimed, "summer-1")}), 2u);
  EXPECT_EQ(sends_after({task(kTaskReleased, "summer-1")}), 2u)
      << "its lease lapsed: it may still go";
  std::vector<int64_t> for_itself;  // summer's task looked at again: its own claim is no other send
  ASSERT_TRUE(ReadRecentSends(log, "acme", "c-1", 0, "summer-1", 1, &for_itself).ok());
  EXPECT_EQ(for_itself.size(), 1u);
  TaskEvent skipped = task(kTaskSkipped, "summer-1");
  skipped.agent.clear();
  EXPECT_EQ(sends_after({skipped}), 1u) << "ended: not on its way";
  std::vector<int64_t> live, rebuilt;
  ASSERT_TRUE(ReadRecentSends(log, "acme", "c-1", 0, "", 0, &live).ok());
  ASSERT_TRUE(ProjectionRunner(&log, &tasks).Rebuild().ok());
  ASSERT_TRUE(ReadRecentSends(log, "acme", "c-1", 0, "", 0, &rebuilt).ok());
  EXPECT_EQ(live, rebuilt);
}

// A text counts against the person's caps from when the vendor took it
// (its outcome row), not from its task.done, which may come much later (a
// cancel's, after a released claim); live and rebuilt alike.
TEST(CampaignTasksProjection, ASendCountsFromWhenTheVendorTookIt) {
  constexpr int64_t kSent = 1'790'000'000'000'000;
  ManualClock clock(kSent);
  MemoryEventLog log(&clock);
  DomainEvent took;
  took.type = std::string(ev::kPushSucceeded);
  took.contact_id = "c-1";
  took.system = "verity";
  took.op = "send";
  took.message_key = CampaignMessageKey("spring-1", 1, "c-1");
  std::vector<AppendOutcome> out;
  ASSERT_TRUE(log.Append({TaskEventDraft("acme", Ev(kTaskCreated)),
                          TaskEventDraft("acme", Ev(kTaskClaimed, "sms")),
                          ToDraft(took, "acme", "contact:c-1", EventId(), EventId())},
                         &out)
                  .ok());
  clock.Advance(3600'000'000LL);  // ended an hour later
  ASSERT_TRUE(log.Append({TaskEventDraft("acme", Ev(kTaskDone, "sms"))}, &out).ok());
  CampaignTasksProjection tasks;
  ASSERT_TRUE(ProjectionRunner(&log, &tasks).CatchUp().ok());
  std::vector<int64_t> live, rebuilt;
  ASSERT_TRUE(ReadRecentSends(log, "acme", "c-1", 0, "", 0, &live).ok());
  EXPECT_EQ(live, std::vector<int64_t>{kSent});
  ASSERT_TRUE(ProjectionRunner(&log, &tasks).Rebuild().ok());
  ASSERT_TRUE(ReadRecentSends(log, "acme", "c-1", 0, "", 0, &rebuilt).ok());
  EXPECT_EQ(rebuilt, live);
}

// A task skipped while its text was in flight (a cancel, a reply: the
// withdrawal came too late) ends without task.done, and the vendor took the
// text all the same: it counts against the person's caps from then, once,
// whichever of the skip and the vendor's answer the log holds first;
// claimed again after the text went (a lapsed lease), it is not counted
// twice; live and rebuilt alike.
TEST(CampaignTasksProjection, ATextThatWentAfterItsTaskWasSkippedCountsOnce) {
  constexpr int64_t kSent = 1'790'000'000'000'000;
  ManualClock clock(kSent);
  MemoryEventLog log(&clock);
  auto took = [](const std::string& campaign) {
    DomainEvent d;
    d.type = std::string(ev::kPushSucceeded);
    d.contact_id = "c-1";
    d.system = "verity";
    d.op = "send";
    d.channel = "sms";
    d.message_key = CampaignMessageKey(campaign, 1, "c-1");
    return ToDraft(d, "acme", "contact:c-1", EventId(), EventId());
  };
  auto task = [](std::string_view type, const std::string& campaign, int claim = 1) {
    TaskEvent e = Ev(type, "sms", 5'000'000, claim);
    e.campaign = campaign;
    if (type == kTaskClaimed) e.channel = "sms";
    if (type == kTaskSkipped) e.reason = "cancelled";
    return e;
  };
  CampaignTasksProjection tasks;
  auto sends_after = [&](std::vector<EventDraft> drafts) {
    std::vector<AppendOutcome> out;
    EXPECT_TRUE(log.Append(std::move(drafts), &out).ok());
    EXPECT_TRUE(ProjectionRunner(&log, &tasks).CatchUp().ok());
    std::vector<int64_t> sends;
    EXPECT_TRUE(ReadRecentSends(log, "acme", "c-1", 0, "", 0, &sends).ok());
    return sends;
  };
  // Skipped first, then the vendor's answer.
  EXPECT_EQ(sends_after({TaskEventDraft("acme", task(kTaskCreated, "spring-1")),
                         TaskEventDraft("acme", task(kTaskClaimed, "spring-1"))})
                .size(),
            1u);
  EXPECT_TRUE(sends_after({TaskEventDraft("acme", task(kTaskSkipped, "spring-1"))}).empty());
  clock.Advance(1'000'000);
  EXPECT_EQ(sends_after({took("spring-1")}), std::vector<int64_t>{kSent + 1'000'000}) << "it went";
  // The vendor's answer first, then the skip; and a claim again between.
  clock.Advance(1'000'000);
  sends_after({TaskEventDraft("acme", task(kTaskCreated, "summer-1")),
               TaskEventDraft("acme", task(kTaskClaimed, "summer-1"))});
  EXPECT_EQ(sends_after({took("summer-1")}).size(), 2u) << "counted once: no claim beside it";
  EXPECT_EQ(sends_after({TaskEventDraft("acme", task(kTaskReleased, "summer-1")),
                         TaskEventDraft("acme", task(kTaskClaimed, "summer-1", 2))})
                .size(),
            2u)
      << "claimed again after it went: still once";
  const std::vector<int64_t> skipped =
      sends_after({TaskEventDraft("acme", task(kTaskSkipped, "summer-1", 2))});
  EXPECT_EQ(skipped, (std::vector<int64_t>{kSent + 1'000'000, kSent + 2'000'000}));
  // Done after its text went, the wall clock stepped back meanwhile: the
  // same row, not a second one dated earlier.
  clock.Advance(1'000'000);
  sends_after({TaskEventDraft("acme", task(kTaskCreated, "autumn-1")),
               TaskEventDraft("acme", task(kTaskClaimed, "autumn-1"))});
  EXPECT_EQ(sends_after({took("autumn-1")}).size(), 3u);
  clock.Advance(-500'000);
  EXPECT_EQ(sends_after({TaskEventDraft("acme", task(kTaskDone, "autumn-1"))}),
            (std::vector<int64_t>{kSent + 1'000'000, kSent + 2'000'000, kSent + 3'000'000}))
      << "counted once, when the vendor took it";
  std::vector<int64_t> live;
  ASSERT_TRUE(ReadRecentSends(log, "acme", "c-1", 0, "", 0, &live).ok());
  ASSERT_TRUE(ProjectionRunner(&log, &tasks).Rebuild().ok());
  std::vector<int64_t> rebuilt;
  ASSERT_TRUE(ReadRecentSends(log, "acme", "c-1", 0, "", 0, &rebuilt).ok());
  EXPECT_EQ(rebuilt, live);
}

TEST(CampaignTasksProjection, FoldsTasksCountsAndSendsAndARebuildGivesTheSame) {
  MemoryEventLog log;
  auto task = [](std::string_view type, const std::string& contact, int step,
                 const std::string& agent = "") {
    TaskEvent e = Ev(type, agent, 5'000'000);
    e.contact = contact;
    e.step = step;
    return e;
  };
  std::vector<EventDraft> drafts;
  for (const auto& c : {"c-1", "c-2", "c-3"})
    drafts.push_back(TaskEventDraft("acme", task(kTaskCreated, c, 0)));
  drafts.push_back(TaskEventDraft("acme", task(kTaskClaimed, "c-1", 0, "sms-1")));
  drafts.push_back(TaskEventDraft("acme", task(kTaskDone, "c-1", 0, "sms-1")));
  drafts.push_back(TaskEventDraft("acme", task(kTaskSkipped, "c-2", 0)));
  drafts.push_back(
      TaskEventDraft("acme", task(kTaskDone, "c-3", 0, "sms-9")));  // never claimed: refused
  drafts.push_back(
      TaskEventDraft("acme", task(kTaskCreated, "c-1", 0)));  // the same created again
  std::vector<AppendOutcome> out;
  ASSERT_TRUE(log.Append(std::move(drafts), &out).ok());
  EXPECT_TRUE(out.back().duplicate) << "one event per step of a task";

  CampaignTasksProjection tasks;
  ASSERT_TRUE(ProjectionRunner(&log, &tasks).CatchUp().ok());
  auto look = [&log](std::string* text) {
    Task t;
    std::map<std::string, int64_t> by_state, skipped;
    std::vector<int64_t> sends;
    ASSERT_TRUE(ReadCampaignTask(log, "acme", "spring-1", 0, "c-1", &t).ok());
    ASSERT_TRUE(ReadCampaignCounts(log, "acme", "spring-1", &by_state, &skipped).ok());
    ASSERT_TRUE(ReadRecentSends(log, "acme", "c-1", 0, "", 0, &sends).ok());
    *text = EncodeTaskRow(t) + " done=" + std::to_string(by_state["done"]) +
            " pending=" + std::to_string(by_state["pending"]) +
            " skipped=" + std::to_string(by_state["skipped"]) +
            " quiet=" + std::to_string(skipped["quiet_hours"]) +
            " sends=" + std::to_string(sends.size());
  };
  std::string live;
  look(&live);
  EXPECT_NE(live.find("\"state\":\"done\""), std::string::npos) << live;
  EXPECT_NE(live.find("done=1 pending=1 skipped=1 quiet=1 sends=1"), std::string::npos) << live;
  Task none;
  EXPECT_TRUE(ReadCampaignTask(log, "acme", "spring-1", 1, "c-1", &none).IsNotFound());
  // Every task, by step then contact, each knowing when it last changed
  // (the planner dates a next step from it).
  std::vector<Task> all;
  ASSERT_TRUE(ReadCampaignTasks(log, "acme", "spring-1", &all).ok());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].contact + all[1].contact + all[2].contact, "c-1c-2c-3");
  std::vector<Event> events;
  ASSERT_TRUE(log.Read(1, 100, &events).ok());
  EXPECT_EQ(all[0].changed_us, events[4].recorded_at_us) << "c-1 ended with its task.done";
  ASSERT_TRUE(ReadCampaignTasks(log, "acme", "spring", &all).ok());
  EXPECT_TRUE(all.empty()) << "a campaign whose id begins another's holds none of its tasks";

  ASSERT_TRUE(ProjectionRunner(&log, &tasks).Rebuild().ok());
  std::string rebuilt;
  look(&rebuilt);
  EXPECT_EQ(rebuilt, live);
}


namespace planner {

CampaignView Running() {
  CampaignView v;
  std::vector<ValidationDetail> problems;
  DecodeCampaignSpec(kSpec, &v.spec, &problems);
  v.state = CampaignState::kRunning;
  v.started_us = kNoonUtc - kS;  // started a second before its date: due at the date
  return v;
}

Task Made(const std::string& contact, int step, TaskState state, int64_t changed_us = 0) {
  Task t;
  t.campaign = "spring-1";
  t.contact = contact;
  t.step = step;
  t.due_us = kNoonUtc;
  t.state = state;
  t.changed_us = changed_us;
  if (state == TaskState::kInProgress) {
    t.agent = "sms-agent";
    t.claims = 2;
    t.lease_until_us = kNoonUtc + 60 * kS;
  }
  return t;
}

std::string Said(const CampaignPlan& plan) {
  std::string out;
  for (const auto& e : plan.events)
    out += e.type + " " + e.contact + "/" + std::to_string(e.step) +
           (e.reason.empty() ? "" : " " + e.reason) +
           (e.type == kTaskCreated ? " due+" + std::to_string((e.due_us - kNoonUtc) / kS) : "") +
           (e.type == kTaskReleased || (e.type == kTaskSkipped && e.claim > 0)
                ? " " + e.agent + "#" + std::to_string(e.claim)
                : "") +
           "; ";
  return out;
}

// The planner's input for campaign `v` and `audience`, two minutes past noon.
PlanInput InputFor(const CampaignView* v, std::vector<std::string> audience) {
  PlanInput in;
  in.campaign = v;
  in.audience = std::move(audience);
  in.now_us = kNoonUtc + 120 * kS;
  return in;
}

}  // namespace planner

TEST(CampaignTask, IsStuckInProgressPastItsLeaseOrAnHourAfterItsClaim) {
  Task t = planner::Made("a", 0, TaskState::kInProgress, kNoonUtc);  // lease to +60 s
  EXPECT_FALSE(TaskStuck(t, kNoonUtc + 59 * kS));
  EXPECT_TRUE(TaskStuck(t, kNoonUtc + 60 * kS)) << "its lease ran out";
  t.lease_until_us = kNoonUtc + 7200 * kS;  // a long lease
  EXPECT_FALSE(TaskStuck(t, kNoonUtc + 3599 * kS));
  EXPECT_TRUE(TaskStuck(t, kNoonUtc + 3600 * kS)) << "claimed an hour ago";
  t.state = TaskState::kPending;
  EXPECT_FALSE(TaskStuck(t, kNoonUtc + 9000 * kS)) << "a waiting task is not stuck";
}

TEST(CampaignPlanner, MakesEachPersonsNextStepAndTendsWhatWaits) {
  using namespace planner;
  CampaignView v = Running();
  PlanInput in = InputFor(&v, {"a", "b", "c", "d", "e", "a"});
  in.opted_out = [](const std::string& c, Channel ch) { return c == "d" && ch == Channel::kSms; };
  in.tasks = {Made("a", 0, TaskState::kDone, kNoonUtc + 10 * kS),  // next: the email, a day on
              Made("b", 0, TaskState::kSkipped),                   // stopped: nothing after
              Made("c", 0, TaskState::kInProgress),                // its lease lapsed at +60 s
              Made("d", 0, TaskState::kPending),                   // opted out since
              Made("e", 2, TaskState::kDone)};                     // the last step done
  CampaignPlan plan = PlanNextTaskEvents(in);
  EXPECT_EQ(Said(plan),
            "task.created a/1 due+86410; task.released c/0 lease_lapsed sms-agent#2; "
            "task.skipped d/0 opted_out; ");
  EXPECT_FALSE(plan.complete);
  EXPECT_EQ(plan.wake_us, kNoonUtc + 86410 * kS);

  // Everyone new is made a first task, due at the campaign's date, once.
  in.tasks.clear();
  plan = PlanNextTaskEvents(in);
  EXPECT_EQ(Said(plan),
            "task.created a/0 due+0; task.created b/0 due+0; task.created c/0 due+0; "
            "task.created d/0 due+0; task.created e/0 due+0; ");
  v.spec.steps[0].delay_s = 30;  // the first step's delay counts from the start
  EXPECT_EQ(PlanNextTaskEvents(in).events[0].due_us, kNoonUtc + 30 * kS);
  v.spec.steps[0].delay_s = 0;
  // Applied, the same state asks for nothing more (the runner may tick
  // as often as it likes) but the opted-out person's skip.
  for (const auto& e : plan.events) {
    Task t;
    ASSERT_TRUE(ApplyTaskEvent(e, &t).ok());
    in.tasks.push_back(t);
  }
  EXPECT_EQ(Said(PlanNextTaskEvents(in)), "task.skipped d/0 opted_out; ");
  // Claimed before (its lease lapsed): the send agent's to end, which
  // knows whether its text went (SendAgentTest.AfterALapsedClaim...).
  for (Task& t : in.tasks) t.claims = t.contact == "d" ? 1 : t.claims;
  EXPECT_EQ(Said(PlanNextTaskEvents(in)), "");
}

// Each person's next step follows their highest step made, in whatever
// order the tasks come; of two tasks of one step, the first is theirs.
TEST(CampaignPlanner, EachPersonsLatestTaskIsTheirHighestStepInAnyOrder) {
  using namespace planner;
  CampaignView v = Running();
  PlanInput in = InputFor(&v, {"d", "c", "b", "a"});
  in.tasks = {Made("b", 0, TaskState::kDone, kNoonUtc), Made("a", 1, TaskState::kPending),
              Made("a", 0, TaskState::kDone, kNoonUtc), Made("d", 0, TaskState::kDone, kNoonUtc),
              Made("d", 0, TaskState::kPending),        Made("c", 1, TaskState::kDone, kNoonUtc),
              Made("c", 0, TaskState::kDone, kNoonUtc)};
  EXPECT_EQ(Said(PlanNextTaskEvents(in)),
            "task.created b/1 due+86400; task.created c/2 due+172800; "
            "task.created d/1 due+86400; ");
}

TEST(CampaignPlanner, PausedReleasesOnlyCancelledSkipsAndTheEndIsComplete) {
  using namespace planner;
  CampaignView v = Running();
  PlanInput in = InputFor(&v, {"a", "c", "d", "f"});
  in.opted_out = [](const std::string& c, Channel) { return c == "d"; };
  in.tasks = {Made("a", 0, TaskState::kDone, kNoonUtc), Made("c", 0, TaskState::kInProgress),
              Made("d", 0, TaskState::kPending), Made("f", 0, TaskState::kPending)};
  in.tasks.back().claims = 1;  // released since (its lease lapsed while the sender was down)
  v.state = CampaignState::kPaused;
  EXPECT_EQ(Said(PlanNextTaskEvents(in)), "task.released c/0 lease_lapsed sms-agent#2; ")
      << "paused: nobody new, no skip, but a lapsed lease goes back";
  v.state = CampaignState::kCancelled;
  EXPECT_EQ(Said(PlanNextTaskEvents(in)),
            "task.skipped c/0 cancelled sms-agent#2; task.skipped d/0 cancelled; "
            "task.skipped f/0 cancelled #1; ")
      << "the skip of a task claimed before names its claims, whose sends are withdrawn";
  EXPECT_FALSE(PlanNextTaskEvents(in).complete) << "a cancelled campaign does not complete";
  // A text that went before the cancel is done (it counts against the
  // caps), not skipped.
  in.outcome = [](const Task& t, SendOutcome* o) {
    if (t.contact != "c") return Status::NotFound("nothing known");
    *o = SendOutcome{SendOutcome::Kind::kSent, "verity"};
    return Status::OK();
  };
  const std::string went = Said(PlanNextTaskEvents(in));
  EXPECT_EQ(went.rfind("task.done c/0", 0), 0u) << went;
  EXPECT_NE(went.find("task.skipped f/0 cancelled #1"), std::string::npos) << went;
  // An outcome that cannot be read now is no "did not go": the task
  // waits for a later plan rather than being skipped for good.
  in.outcome = [](const Task& t, SendOutcome*) {
    return t.contact == "c" ? Status::IOError("read failed") : Status::NotFound("nothing known");
  };
  CampaignPlan unread = PlanNextTaskEvents(in);
  EXPECT_EQ(Said(unread), "task.skipped d/0 cancelled; task.skipped f/0 cancelled #1; ");
  EXPECT_EQ(unread.wake_us, in.now_us + 1000000);
  // An earlier claim's text went, the claim released since (its lease
  // lapsed): done too, its step's agent claiming it again (nothing sent)
  // to end it, as only the holder may.
  in.outcome = [](const Task& t, SendOutcome* o) {
    if (t.contact != "f") return Status::NotFound("nothing known");
    *o = SendOutcome{SendOutcome::Kind::kSent, "verity"};
    return Status::OK();
  };
  CampaignPlan f_went = PlanNextTaskEvents(in);
  ASSERT_EQ(f_went.events.size(), 3u) << Said(f_went);
  const TaskEvent& again = f_went.events[2];
  EXPECT_EQ(again.type, kTaskClaimed);
  EXPECT_EQ(again.agent, "sms");
  EXPECT_EQ(again.claim, 2);
  EXPECT_GT(again.lease_until_us, in.now_us) << "not stuck meanwhile";
  EXPECT_TRUE(again.body.empty() && again.channel.empty()) << "nothing is sent again";
  EXPECT_EQ(f_went.wake_us, in.now_us + 1000000);
  Task f = in.tasks.back();
  TaskEvent back;  // as the projection folds it: decoded
  ASSERT_TRUE(DecodeTaskEvent(again.type, EncodeTaskEvent(again), &back));
  ASSERT_TRUE(ApplyTaskEvent(back, &f).ok());
  in.tasks.back() = f;  // the next plan: its holder ends it done
  CampaignPlan f_done = PlanNextTaskEvents(in);
  ASSERT_EQ(f_done.events.size(), 3u) << Said(f_done);
  const TaskEvent& done = f_done.events[2];
  EXPECT_EQ(done.type, kTaskDone);
  EXPECT_EQ(done.channel, "sms");
  EXPECT_EQ(done.detail, "verity");
  ASSERT_TRUE(DecodeTaskEvent(done.type, EncodeTaskEvent(done), &back));
  ASSERT_TRUE(ApplyTaskEvent(back, &f).ok());
  EXPECT_EQ(f.state, TaskState::kDone);
  EXPECT_EQ(f.claims, 2);
  in.outcome = nullptr;

  v.state = CampaignState::kRunning;
  in.audience = {"a", "b"};
  in.tasks = {Made("a", 2, TaskState::kDone), Made("b", 1, TaskState::kFailed)};
  CampaignPlan plan = PlanNextTaskEvents(in);
  EXPECT_EQ(Said(plan), "");
  EXPECT_TRUE(plan.complete) << "every task ended, none left to make";
  in.tasks[0].step = 1;
  EXPECT_FALSE(PlanNextTaskEvents(in).complete) << "a's last step is still to make";
}

}  // namespace
}  // namespace dfm
