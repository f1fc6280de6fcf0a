// The send agent (campaigns/agent.h): what it claims, defers, skips and
// ends, and the projection rows it reads (a send's outcome, a reply).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <ctime>

#include "campaigns/agent.h"
#include "campaigns/planner.h"
#include "campaigns/recipient_zones.h"
#include "campaigns/task.h"
#include "projections/campaign_projections.h"
#include "projections/runner.h"
#include "replay-tools/campaign_audit.h"
#include "storage/memory_event_log.h"
#include "sync/consent.h"
#include "sync/domain_event.h"
#include "sync/fact.h"
#include "util/clock.h"

namespace dfm {
namespace {

constexpr int64_t kS = 1000000;
constexpr int64_t kNoonUtc = 1782907200LL * kS;  // 2026-07-01 12:00:00 UTC

TEST(CampaignMessageKey, NamesOneTaskAndReadsBack) {
  const std::string key = CampaignMessageKey("spring-1", 2, "c_9/x");
  EXPECT_EQ(key, "campaign:spring-1/2/c_9/x");
  std::string campaign, contact;
  int step = -1;
  ASSERT_TRUE(ParseCampaignMessageKey(key, &campaign, &step, &contact));
  EXPECT_EQ(campaign + "|" + std::to_string(step) + "|" + contact, "spring-1|2|c_9/x");
  for (const char* bad :
       {"ghl:spring-1/2/c", "campaign:spring-1/x/c", "campaign:/2/c", "campaign:spring-1/2/",
        "campaign:spring-1", "campaign:s//c", "campaign:s/-1/c", "campaign:s/2x/c"})
    EXPECT_FALSE(ParseCampaignMessageKey(bad, &campaign, &step, &contact)) << bad;
}

TEST(CampaignMessageKey, AClaimCarriesItsTextAndReadsBack) {
  TaskEvent e;
  e.type = std::string(kTaskClaimed);
  e.campaign = "spring-1";
  e.contact = "c-1";
  e.agent = kSmsAgent;
  e.claim = 2;
  e.lease_until_us = 7;
  e.channel = "sms";
  e.body = "Hi \"Ann\"";
  e.subject = "Spring";
  e.unsubscribe = "https://x/u?u=t";
  TaskEvent back;
  ASSERT_TRUE(DecodeTaskEvent(kTaskClaimed, EncodeTaskEvent(e), &back));
  EXPECT_EQ(back.channel + "|" + back.body + "|" + back.subject + "|" + back.unsubscribe + "|" +
                std::to_string(back.claim),
            "sms|Hi \"Ann\"|Spring|https://x/u?u=t|2");
  SendOutcome o{SendOutcome::Kind::kRefused, "sms opted out (keyword STOP)"}, read;
  ASSERT_TRUE(DecodeSendOutcome(EncodeSendOutcome(o), &read));
  EXPECT_EQ(EncodeSendOutcome(read), "refused sms opted out (keyword STOP)");
  EXPECT_FALSE(DecodeSendOutcome("lost x", &read));
  // A sent one is dated (when the vendor took it); a row written before
  // sends were dated reads as undated.
  ASSERT_TRUE(DecodeSendOutcome("sent@1790000000000123 verity", &read));
  EXPECT_EQ(read.at_us, 1790000000000123);
  EXPECT_EQ(read.detail, "verity");
  EXPECT_EQ(EncodeSendOutcome(read), "sent@1790000000000123 verity");
  ASSERT_TRUE(DecodeSendOutcome("sent verity", &read));
  EXPECT_EQ(read.at_us, 0);
  EXPECT_FALSE(DecodeSendOutcome("sent@12x verity", &read));
}

class SendAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RecipientZones zones(nullptr);
    ASSERT_TRUE(zones.Zone("UTC", &utc_).ok());
    ASSERT_TRUE(zones.Zone("+12:00", &night_).ok());  // midnight at noon UTC
    v_.spec.id = "spring-1";
    CampaignStep sms;
    sms.template_text = "Hi {{first_name|there}}, from {{customer_name}}";
    CampaignStep email;
    email.channel = Channel::kEmail;
    email.template_text = "Hello {{first_name}}";
    email.subject = "From {{customer_name}}";
    CampaignStep call;
    call.channel = Channel::kCall;
    call.template_text = "Ask {{first_name}} about spring";
    call.window_s = 7200;
    v_.spec.steps = {sms, email, call};
    v_.state = CampaignState::kRunning;
    v_.started_us = kNoonUtc - 60 * kS;
  }

  Task Make(const std::string& contact, int step, TaskState state) {
    Task t;
    t.campaign = "spring-1";
    t.contact = contact;
    t.step = step;
    t.due_us = kNoonUtc - kS;
    t.state = state;
    if (state == TaskState::kInProgress) {
      t.agent = step == 2 ? kCallAgent : kSmsAgent;
      t.claims = 1;
      t.lease_until_us = kNoonUtc + 600 * kS;
    }
    return t;
  }

  std::string Plan(const std::vector<Task>& tasks, double per_second, int64_t* wake = nullptr,
                   std::vector<int64_t>* claims_until = nullptr) {
    SenderPacer pacer(per_second);
    AgentInput in;
    in.campaign = &v_;
    in.tasks = &tasks;
    in.now_us = kNoonUtc;
    in.pacer = &pacer;
    in.lease_us = lease_;
    in.refusal_settle_us = refusal_settle_;
    in.person = [this](const Task& t) -> std::optional<Person> {
      if (t.contact == "unreadable") return std::nullopt;
      Person p;
      p.fields = {{"first_name", t.contact == "ann" ? "Ann" : ""}, {"customer_name", "Acme"}};
      p.recipient.zones = {t.contact == "far" ? night_.get() : utc_.get()};
      p.recipient.opted_out = t.contact == "stopped" || t.contact == "went";
      return p;
    };
    in.unsubscribe_link = [](const Task& t, const Person&) { return "https://u/" + t.contact; };
    in.draft = draft_;
    in.max_drafting = max_drafting_;
    in.left_alone = left_alone_;
    in.call_ended = [](const Task& t) -> std::optional<std::string> {
      if (t.contact == "called") return "Interested";
      return std::nullopt;
    };
    in.replied = [](const Task& t) { return t.contact.rfind("answered", 0) == 0; };
    in.paid = [](const Task& t) { return t.contact.rfind("paid", 0) == 0; };
    in.outcome = [](const Task& t, SendOutcome* o) {
      if (t.contact == "took" || t.contact == "called" || t.contact == "queued" ||
          t.contact == "went" || t.contact == "answered-took" || t.contact == "paid-took")
        *o = SendOutcome{SendOutcome::Kind::kSent, "verity"};
      else if (t.contact == "refused")
        *o = SendOutcome{SendOutcome::Kind::kRefused, "sms opted out"};
      else if (t.contact == "refused-now")
        *o = SendOutcome{SendOutcome::Kind::kRefused, "sms opted out", kNoonUtc - kS};
      else if (t.contact == "refused-earlier")
        *o = SendOutcome{SendOutcome::Kind::kRefused, "sms opted out", kNoonUtc - kRefusalSettleUs};
      else if (t.contact == "dead")
        *o = SendOutcome{SendOutcome::Kind::kFailed, "HTTP 400"};
      else if (t.contact == "answered-unreadable" || t.contact == "paid-unreadable")
        return Status::IOError("the outcome cannot be read now");
      else if (t.contact == "answered-corrupt")
        return Status::Corruption("a damaged outcome row");
      else
        return Status::NotFound("no outcome yet");
      return Status::OK();
    };
    AgentPlan plan = PlanAgentEvents(in);
    if (wake) *wake = plan.wake_us;
    std::string out;
    for (const auto& e : plan.events)
      out += e.type + " " + e.contact + (e.reason.empty() ? "" : " " + e.reason) +
             (e.agent.empty() ? (e.claim > 0 ? " claims " + std::to_string(e.claim) : "")
                              : " " + e.agent + "#" + std::to_string(e.claim)) +
             (e.body.empty() ? "" : " \"" + e.body + "\"") +
             (e.subject.empty() ? "" : " [" + e.subject + " " + e.unsubscribe + "]") +
             (e.detail.empty() ? "" : " (" + e.detail + ")") + "; ";
    if (claims_until) {
      claims_until->clear();
      for (const auto& e : plan.events)
        if (e.type == kTaskClaimed) claims_until->push_back(e.lease_until_us - kNoonUtc);
    }
    return out;
  }

  CampaignView v_;
  std::function<std::optional<Draft>(const Task&)> draft_;
  size_t max_drafting_ = 20;
  std::function<bool(const Task&)> left_alone_;
  int64_t lease_ = 600 * kS;
  int64_t refusal_settle_ = kRefusalSettleUs;
  std::shared_ptr<const ZoneRules> utc_, night_;
};

TEST_F(SendAgentTest, ChecksEachDueTextAtTheMomentItWouldGoAndEndsWhatWent) {
  std::vector<Task> tasks = {
      Make("ann", 0, TaskState::kPending),         // sent now
      Make("stopped", 0, TaskState::kPending),     // opted out since it was made
      Make("far", 0, TaskState::kPending),         // midnight where they are
      Make("unreadable", 0, TaskState::kPending),  // waits for the next tick
      Make("took", 0, TaskState::kInProgress),     // the vendor took it
      Make("refused", 0, TaskState::kInProgress),  // the consent gate refused it
      Make("dead", 0, TaskState::kInProgress),     // dead-lettered
      Make("waiting", 0, TaskState::kInProgress),  // no outcome yet
      Make("ann", 1, TaskState::kPending),         // an email, with its link
  };
  Task later = Make("later", 0, TaskState::kPending);
  later.due_us = kNoonUtc + kS;
  tasks.push_back(later);
  EXPECT_EQ(Plan(tasks, 100),
            "task.claimed ann sms#1 \"Hi Ann, from Acme\"; task.skipped stopped opted_out; "
            "task.deferred far quiet_hours; task.done took sms#1 (verity); "
            "task.skipped refused opted_out (sms opted out); "
            "task.failed dead send_failed sms#1 (HTTP 400); "
            "task.claimed ann email#1 \"Hello Ann\" [From Acme https://u/ann]; ");
  v_.state = CampaignState::kPaused;
  EXPECT_EQ(Plan(tasks, 100),
            "task.done took sms#1 (verity); task.skipped refused opted_out (sms opted out); "
            "task.failed dead send_failed sms#1 (HTTP 400); ")
      << "a paused campaign sends nothing new but ends what went";
}

// An opt-out decided while a send was on its way refuses it, and the
// vendor may take it all the same (its success then replaces the refusal
// in the o/ row): the refusal ends the task only kRefusalSettleUs after it
// was recorded (one not dated, above, at once).
TEST_F(SendAgentTest, ARefusalEndsATaskOnlyOnceItsSendCannotStillGo) {
  Task email = Make("refused-now", 1, TaskState::kInProgress);
  email.agent = "email";
  EXPECT_EQ(Plan({Make("refused-now", 0, TaskState::kInProgress), email}, 100), "");
  EXPECT_EQ(Plan({Make("refused-earlier", 0, TaskState::kInProgress)}, 100),
            "task.skipped refused-earlier opted_out (sms opted out); ");
  // Its lease lapsed meanwhile (the task waits again): not claimed again
  // nor checked anew until the refusal stands.
  Task released = Make("refused-now", 0, TaskState::kPending);
  released.claims = 1;
  EXPECT_EQ(Plan({released}, 100), "");
  released.contact = "refused-earlier";
  EXPECT_EQ(Plan({released}, 100), "task.claimed refused-earlier sms#2 \"Hi there, from Acme\"; ");
}

// A sender given a longer request_timeout_ms lengthens the wait: its
// request may still be on its way when the default settle time is up.
TEST_F(SendAgentTest, ALongerRequestTimeoutLengthensTheRefusalsSettleTime) {
  EXPECT_EQ(RefusalSettleFor(10 * kS), kRefusalSettleUs) << "the default timeouts: the floor";
  EXPECT_EQ(RefusalSettleFor(20 * kS), kRefusalSettleUs) << "SMTP's 20 s: the floor";
  EXPECT_EQ(RefusalSettleFor(25 * kS), 35 * kS);
  EXPECT_EQ(RefusalSettleFor(60 * kS), 70 * kS);
  refusal_settle_ = RefusalSettleFor(60 * kS);
  EXPECT_EQ(Plan({Make("refused-earlier", 0, TaskState::kInProgress)}, 100), "")
      << "refused 30 s ago, its request may take 60 s: it waits";
  refusal_settle_ = kRefusalSettleUs;
  EXPECT_EQ(Plan({Make("refused-earlier", 0, TaskState::kInProgress)}, 100),
            "task.skipped refused-earlier opted_out (sms opted out); ");
}

// The person replied while a later step's email or call waits at the
// connector (no outcome yet, claimed a while ago): withdrawn, not sent
// after the reply. Not the first step's send (nothing reached them before
// it), a call the dialer took (withdrawing it would refuse nothing), one
// claimed a moment ago (it may be going now), one whose outcome is known
// (done), nor a step that goes on after a reply.
TEST_F(SendAgentTest, AReplyWithdrawsALaterStepStillOnItsWay) {
  Task email = Make("answered", 1, TaskState::kInProgress);
  email.agent = "email";
  email.changed_us = kNoonUtc - kRepliedGraceUs;
  Task first = Make("answered", 0, TaskState::kInProgress),
       call = Make("answered", 2, TaskState::kInProgress);
  first.changed_us = call.changed_us = email.changed_us;
  Task took = email;
  took.contact = "answered-took";
  Task just_claimed = email;
  just_claimed.contact = "answered";
  just_claimed.step = 1;
  just_claimed.changed_us = kNoonUtc - kS;
  Task on_dialer = call;
  on_dialer.contact = "answered-took";
  EXPECT_EQ(Plan({email, first, call, took, on_dialer}, 100),
            "task.skipped answered replied email#1; task.skipped answered replied call#1; "
            "task.done answered-took email#1 (verity); ");
  EXPECT_EQ(Plan({just_claimed}, 100), "");
  v_.spec.steps[1].stop_on_reply = false;
  EXPECT_EQ(Plan({email}, 100), "");
}

// The person paid while a step's text, email or call waits at the
// connector (the step stops on a payment, as steps do unless told
// otherwise): what its claim asked for is withdrawn, the first step's
// too; an outcome still wins, a call the dialer took and a send claimed a
// moment ago are left alone.
TEST_F(SendAgentTest, APaymentWithdrawsASendStillOnItsWay) {
  Task text = Make("paid", 0, TaskState::kInProgress);
  text.changed_us = kNoonUtc - kRepliedGraceUs;
  Task email = Make("paid", 1, TaskState::kInProgress);
  email.agent = "email";
  email.changed_us = text.changed_us;
  Task call = Make("paid", 2, TaskState::kInProgress);
  call.changed_us = text.changed_us;
  Task took = text;
  took.contact = "paid-took";
  Task just_claimed = text;
  just_claimed.changed_us = kNoonUtc - kS;
  Task on_dialer = call;
  on_dialer.contact = "paid-took";
  EXPECT_EQ(Plan({text, email, call, took, on_dialer}, 100),
            "task.skipped paid paid sms#1; task.skipped paid paid email#1; "
            "task.skipped paid paid call#1; task.done paid-took sms#1 (verity); ");
  EXPECT_EQ(Plan({just_claimed}, 100), "");
  v_.spec.steps[1].stop_on_payment = false;
  EXPECT_EQ(Plan({email}, 100), "");
}

// An outcome that cannot be read now is not taken for "none yet": the
// send waits for a later tick rather than being withdrawn for a reply or
// a payment (the vendor may have taken it); a damaged row reads as none.
TEST_F(SendAgentTest, AnUnreadableOutcomeWaitsRatherThanEndsTheTask) {
  Task email = Make("answered-unreadable", 1, TaskState::kInProgress);
  email.agent = "email";
  email.changed_us = kNoonUtc - kRepliedGraceUs;
  Task text = Make("paid-unreadable", 0, TaskState::kInProgress);
  text.changed_us = email.changed_us;
  Task corrupt = email;
  corrupt.contact = "answered-corrupt";
  EXPECT_EQ(Plan({email, text}, 100), "");
  EXPECT_EQ(Plan({corrupt}, 100), "task.skipped answered-corrupt replied email#1; ");
  Task corrupt_call = Make("answered-corrupt", 2, TaskState::kInProgress);
  corrupt_call.changed_us = email.changed_us;
  EXPECT_EQ(Plan({corrupt_call}, 100), "") << "a damaged row may hide a call the dialer took";
  Task released = Make("paid-unreadable", 0, TaskState::kPending);  // its lease lapsed
  released.claims = 1;
  EXPECT_EQ(Plan({released}, 100), "") << "not checked again while its outcome cannot be read";
}

// A task claimed and released before, deferred: the deferral names its
// claims, so one refused on a stale view is not asked again as the same
// event (TaskEventDraft).
TEST_F(SendAgentTest, ADeferralNamesTheClaimsTheTaskHad) {
  Task released = Make("far", 0, TaskState::kPending);
  released.claims = 1;
  EXPECT_EQ(Plan({released}, 100), "task.deferred far quiet_hours claims 1; ");
}

// What the tick leaves alone (ended, or changed by the planner's events
// this tick: actors/campaign_actor.cc) is neither claimed, answered nor
// counted among the drafts in flight.
TEST_F(SendAgentTest, ATaskLeftAloneIsNeitherClaimedNorAnswered) {
  std::vector<Task> tasks = {Make("ann", 0, TaskState::kPending),
                             Make("bob", 0, TaskState::kPending),
                             Make("took", 0, TaskState::kInProgress)};
  left_alone_ = [](const Task& t) { return t.contact == "bob" || t.contact == "took"; };
  EXPECT_EQ(Plan(tasks, 100), "task.claimed ann sms#1 \"Hi Ann, from Acme\"; ");
  left_alone_ = nullptr;
  EXPECT_EQ(Plan(tasks, 100),
            "task.claimed ann sms#1 \"Hi Ann, from Acme\"; task.claimed bob sms#1 \"Hi there, from "
            "Acme\"; task.done took sms#1 (verity); ");
}

TEST_F(SendAgentTest, ACallIsDoneWhenItEndsNotWhenTheDialerTookIt) {
  lease_ = 600 * kS;
  std::vector<Task> tasks = {Make("called", 2, TaskState::kInProgress),
                             Make("queued", 2, TaskState::kInProgress),  // on the dialer still
                             Make("ann", 2, TaskState::kPending)};
  std::vector<int64_t> until;
  EXPECT_EQ(Plan(tasks, 1, nullptr, &until),
            "task.done called call#1 (Interested); "
            "task.claimed ann call#1 \"Ask Ann about spring\"; ");
  EXPECT_EQ(until, std::vector<int64_t>{7200 * kS}) << "held for the step's window, not the lease";
  Task held = Make("queued", 2, TaskState::kInProgress);
  held.changed_us = kNoonUtc;
  held.lease_until_us = kNoonUtc + 7200 * kS;  // the step's window
  EXPECT_FALSE(TaskStuck(held, kNoonUtc + 3601 * kS)) << "a call claimed an hour ago still waits";
  EXPECT_TRUE(TaskStuck(held, kNoonUtc + 7200 * kS)) << "past its lease it is stuck";
}

TEST_F(SendAgentTest, ATextThatRendersEmptyIsSkippedNotSent) {
  v_.spec.steps[0].template_text = "{{title}}";  // nobody has one here
  EXPECT_EQ(Plan({Make("ann", 0, TaskState::kPending)}, 100), "task.skipped ann empty_message; ");
}

TEST_F(SendAgentTest, TheSendersPaceHoldsTheRestForLater) {
  std::vector<Task> tasks = {Make("ann", 0, TaskState::kPending),
                             Make("bo", 0, TaskState::kPending),
                             Make("cy", 0, TaskState::kPending)};
  tasks[1].claims = 1;  // its lease lapsed once: the next claim is its second
  int64_t wake = 0;
  EXPECT_EQ(Plan(tasks, 2, &wake),
            "task.claimed ann sms#1 \"Hi Ann, from Acme\"; "
            "task.claimed bo sms#2 \"Hi there, from Acme\"; ");
  EXPECT_GT(wake, kNoonUtc);
  EXPECT_LE(wake, kNoonUtc + kS);
}

// A claim's lease lapsed (a vendor outage past lease_s) and the task waits
// again. Its text went meanwhile: it was skipped ("replied": the person
// answered it), counted as never sent. Or it is still queued when the
// person pays: skipped "paid", and the "please pay" text went out after.
TEST_F(SendAgentTest, AfterALapsedClaimASentTextIsTheTasksAndAQueuedOneIsWithdrawn) {
  // "went": its text went, and a skip is due now (opted out since);
  // "stopped": nothing went yet, and a skip is due.
  std::vector<Task> tasks = {Make("went", 0, TaskState::kPending),
                             Make("stopped", 0, TaskState::kPending)};
  tasks[0].claims = 1;
  tasks[1].claims = 1;
  EXPECT_EQ(
      Plan(tasks, 100),
      "task.claimed went sms#2 \"Hi there, from Acme\"; task.skipped stopped opted_out claims 1; ");
  tasks[0].claims = 0;  // never claimed: checked as any task
  tasks[1].claims = 0;
  EXPECT_EQ(Plan(tasks, 100), "task.skipped went opted_out; task.skipped stopped opted_out; ");
}

// A step's window (how long it may wait) runs from when its task first
// became due: each deferral (quiet hours, a frequency cap) moved the task's
// due time, and the window with it, so a text went hours past it.
TEST_F(SendAgentTest, DeferralsDoNotStretchTheStepsWindow) {
  Task t = Make("ann", 2, TaskState::kPending);  // the call step: a two-hour window
  t.first_due_us = kNoonUtc - 7201 * kS;         // first due just over two hours ago
  t.due_us = kNoonUtc - kS;                      // deferred to a minute ago
  EXPECT_EQ(Plan({t}, 100), "task.skipped ann window_passed; ");
  t.first_due_us = kNoonUtc - 7000 * kS;  // within it: called
  EXPECT_EQ(Plan({t}, 100), "task.claimed ann call#1 \"Ask Ann about spring\"; ");
  // Paused for two days since it first became due (resumed an hour ago):
  // the window counts only the time the campaign ran.
  t.first_due_us = kNoonUtc - (2 * 86400 + 5000) * kS;
  v_.pauses = {{kNoonUtc - (2 * 86400 + 3600) * kS, kNoonUtc - 3600 * kS}};
  EXPECT_EQ(Plan({t}, 100), "task.claimed ann call#1 \"Ask Ann about spring\"; ");
  v_.pauses.clear();

  // The first due time: set at creation, kept by deferrals and in the row.
  Task made;
  TaskEvent created = TaskEventFor(t, kTaskCreated), deferred = TaskEventFor(t, kTaskDeferred);
  created.due_us = 100;
  deferred.until_us = 500;
  ASSERT_TRUE(ApplyTaskEvent(created, &made).ok());
  ASSERT_TRUE(ApplyTaskEvent(deferred, &made).ok());
  EXPECT_EQ(made.due_us, 500);
  EXPECT_EQ(made.first_due_us, 100);
  Task back;
  ASSERT_TRUE(DecodeTaskRow(EncodeTaskRow(made), &back));
  EXPECT_EQ(back.first_due_us, 100);
}

TEST_F(SendAgentTest, AnAiDraftIsAskedForThenSentWholeOrNotAtAll) {
  v_.spec.steps[0].ai_draft = true;
  v_.spec.steps[0].template_text = "Invite {{first_name|them}} to {{customer_name}}'s spring sale";
  draft_ = [](const Task& t) -> std::optional<Draft> {
    if (t.contact == "ann" || t.contact == "stopped" || t.contact == "cy")
      return std::nullopt;  // not asked yet
    if (t.contact == "cut" || t.contact == "late")
      return Draft{false, "", "", "", "incomplete draft: answer ended by length"};
    if (t.contact == "long") return Draft{true, std::string(321, 'x'), "gpt-x", "campaign-draft-v1", ""};
    return Draft{true, "Hi Bo! Our spring sale starts Friday.", "gpt-x", "campaign-draft-v1", ""};
  };
  auto ai = [this](const std::string& contact) {
    Task t = Make(contact, 0, TaskState::kInProgress);
    t.agent = kAiAgent;
    return t;
  };
  std::vector<Task> tasks = {
      Make("ann", 0, TaskState::kPending),      // no draft yet: asked for, with the brief
      Make("stopped", 0, TaskState::kPending),  // opted out: no draft asked for
      ai("answered"),                           // the model answered in full
      ai("cut"),                                // the model's answer was cut
      Make("bo", 0, TaskState::kPending),       // drafted: the text goes
      Make("late", 0, TaskState::kPending),     // the model answered, cut, after a lapse
      ai("long"),                               // whole, but too long for a text
  };
  tasks[4].claims = 1;
  EXPECT_EQ(Plan(tasks, 100),
            "task.claimed ann ai#1 \"Invite Ann to Acme's spring sale\"; "
            "task.skipped stopped opted_out; "
            "task.released answered drafted ai#1; "
            "task.failed cut draft_failed ai#1 (incomplete draft: answer ended by length); "
            "task.claimed bo sms#2 \"Hi Bo! Our spring sale starts Friday.\" "
            "(campaign-draft-v1 gpt-x); "
            "task.skipped late draft_failed (incomplete draft: answer ended by length); "
            "task.failed long draft_failed ai#1 (the draft has 321 characters, more than 320 for "
            "a text); ");
  // The model's share: at most max_drafting drafts asked for at once
  // (the tasks it holds count).
  max_drafting_ = 4;
  tasks.push_back(Make("cy", 0, TaskState::kPending));
  const std::string planned = Plan(tasks, 100);
  EXPECT_NE(planned.find("task.claimed ann ai#1"), std::string::npos) << planned;
  EXPECT_EQ(planned.find("task.claimed cy"), std::string::npos) << planned;
}

TEST(CampaignDraft, KeysAndRowsReadBack) {
  const std::string key = CampaignDraftKey("spring-1", 1, "c-9");
  EXPECT_EQ(key, "campaign:spring-1/1/c-9/draft");
  std::string campaign, contact;
  int step = -1;
  ASSERT_TRUE(ParseCampaignDraftKey(key, &campaign, &step, &contact));
  EXPECT_EQ(campaign + "|" + std::to_string(step) + "|" + contact, "spring-1|1|c-9");
  EXPECT_FALSE(ParseCampaignDraftKey(CampaignMessageKey("spring-1", 1, "c-9"), &campaign, &step,
                                     &contact));
  EXPECT_FALSE(ParseCampaignDraftKey("campaign:/draft", &campaign, &step, &contact));
  Draft d{true, "Hi \"Ann\"", "gpt-x", "campaign-draft-v1", ""}, back;
  ASSERT_TRUE(DecodeDraft(EncodeDraft(d), &back));
  EXPECT_EQ(back.text + "|" + back.model + "|" + back.prompt_version, "Hi \"Ann\"|gpt-x|campaign-draft-v1");
  Draft failed{false, "", "", "", "incomplete draft"};
  ASSERT_TRUE(DecodeDraft(EncodeDraft(failed), &back));
  EXPECT_FALSE(back.ok);
  EXPECT_EQ(back.reason, "incomplete draft");
  EXPECT_FALSE(DecodeDraft(R"({"v":1,"ok":true})", &back)) << "a draft with no text";
  EXPECT_FALSE(DecodeDraft(R"({"v":2,"ok":false})", &back));
}

TEST(CampaignTasksProjection, KeepsEachDraftsFirstAnswer) {
  MemoryEventLog log;
  auto answer = [](std::string_view type, const std::string& contact, int step, const char* text) {
    DomainEvent d;
    d.type = std::string(type);
    d.contact_id = contact;
    d.system = "openai";
    d.op = "send";
    d.channel = "draft";
    d.message_key = CampaignDraftKey("spring-1", step, contact);
    d.reason = "incomplete draft: answer ended by length";
    if (text) d.fields = {{"answer.text", text}, {"answer.model", "gpt-x"},
                          {"answer.prompt_version", "campaign-draft-v1"}};
    return ToDraft(d, "acme", "contact:" + contact, EventId(), EventId());
  };
  std::vector<EventDraft> drafts = {
      answer(ev::kPushSucceeded, "c-1", 0, "Hi Ann!"),
      answer(ev::kPushDeadLettered, "c-1", 0, nullptr),  // later: ignored
      answer(ev::kPushDeadLettered, "c-2", 0, nullptr),
      answer(ev::kPushSucceeded, "c-3", 0, ""),  // no text: not a draft
  };
  std::vector<AppendOutcome> out;
  ASSERT_TRUE(log.Append(std::move(drafts), &out).ok());
  CampaignTasksProjection tasks;
  ASSERT_TRUE(ProjectionRunner(&log, &tasks).CatchUp().ok());
  std::string seen;
  for (const char* c : {"c-1", "c-2", "c-3", "c-4"}) {
    Draft d;
    Status s = ReadDraft(log, "acme", "spring-1", 0, c, &d);
    seen += std::string(c) + "=" +
            (s.IsNotFound() ? "none" : !s.ok() ? "error" : d.ok ? d.text + " " + d.prompt_version : "no: " + d.reason) +
            "; ";
    SendOutcome o;
    EXPECT_TRUE(ReadSendOutcome(log, "acme", "spring-1", 0, c, &o).IsNotFound()) << "a draft is not a send";
  }
  EXPECT_EQ(seen,
            "c-1=Hi Ann! campaign-draft-v1; "
            "c-2=no: incomplete draft: answer ended by length; "
            "c-3=no: the model returned no text; c-4=none; ");
}

TEST(CampaignPlanner, AResetGivesBackTheTasksStuckThenAndNoOther) {
  CampaignView v;
  v.spec.id = "spring-1";
  v.spec.steps.resize(1);
  v.state = CampaignState::kRunning;
  v.started_us = kNoonUtc - 7200 * kS;
  CampaignChange reset;
  ASSERT_TRUE(PlanCampaignChange(v, CampaignAction::kResetTasks, kNoonUtc, "ops", "", &reset).ok());
  EXPECT_EQ(reset.state, CampaignState::kRunning) << "a reset keeps the state";
  v.reset_us = kNoonUtc;
  auto held = [](const std::string& contact, int64_t claimed_us) {
    Task t;
    t.campaign = "spring-1";
    t.contact = contact;
    t.state = TaskState::kInProgress;
    t.agent = kSmsAgent;
    t.claims = 1;
    t.lease_until_us = kNoonUtc + 3 * 3600 * kS;  // a long lease: not lapsed
    t.changed_us = claimed_us;
    return t;
  };
  PlanInput in;
  in.campaign = &v;
  in.audience = {"old", "new"};
  in.tasks = {held("old", kNoonUtc - 3601 * kS), held("new", kNoonUtc - 60 * kS)};
  in.now_us = kNoonUtc + kS;
  CampaignPlan plan = PlanNextTaskEvents(in);
  ASSERT_EQ(plan.events.size(), 1u);
  EXPECT_EQ(plan.events[0].type + " " + plan.events[0].contact + " " + plan.events[0].reason,
            "task.released old reset");
  v.state = CampaignState::kCompleted;
  EXPECT_FALSE(
      PlanCampaignChange(v, CampaignAction::kResetTasks, kNoonUtc, "ops", "", &reset).ok());
}

// What the contact's events say of a campaign's sends, and a person's
// replies, folded as the live projection does and as a rebuild does: the
// first outcome, but a send's success over a refusal (an opt-out decided
// while it was on its way: the vendor took it all the same).
TEST(CampaignTasksProjection, FoldsEachSendsFirstOutcomeAndRepliesAndARebuildGivesTheSame) {
  ManualClock clock(1'790'000'000'000'000);  // an outcome is dated when it was recorded
  MemoryEventLog log(&clock);
  auto ev = [](std::string_view type, const std::string& contact, const std::string& key) {
    DomainEvent d;
    d.type = std::string(type);
    d.contact_id = contact;
    d.system = "verity";
    d.op = "send";
    d.message_key = key;
    d.reason = "HTTP 400";
    return ToDraft(d, "acme", "contact:" + contact, EventId(), EventId());
  };
  DomainEvent in;
  in.type = std::string(ev::kMessageLogged);
  in.contact_id = "c-1";
  in.message_key = "verity:in-1";
  in.fields["direction"] = "inbound";
  auto call = [](const std::string& contact, const std::string& key, const char* field,
                 const char* value) {
    DomainEvent d;
    d.type = std::string(ev::kMessageLogged);
    d.contact_id = contact;
    d.channel = "call";
    d.message_key = key;
    d.fields[field] = value;
    return ToDraft(d, "acme", "contact:" + contact, EventId(), EventId());
  };
  // Nobody to deliver it (no sender configured): the send failed, no
  // consent refused it.
  DomainEvent nobody;
  nobody.type = std::string(ev::kMessageRefused);
  nobody.contact_id = "c-5";
  nobody.message_key = CampaignMessageKey("spring-1", 0, "c-5");
  nobody.rule = std::string(kNotDeliverableRule);
  nobody.reason = "no system plays the sender role";
  const EventDraft undeliverable = ToDraft(nobody, "acme", "contact:c-5", EventId(), EventId());
  std::vector<EventDraft> drafts = {
      call("c-1", "aloware:940868001", "disposition", "Interested"),
      call("c-2", "aloware:940868002", "status", "ringing"),                       // not ended
      call("c-3", CampaignMessageKey("spring-1", 2, "c-3"), "status", "pending"),  // the request
      ev(ev::kPushSucceeded, "c-1", CampaignMessageKey("spring-1", 0, "c-1")),
      ev(ev::kPushDeadLettered, "c-1", CampaignMessageKey("spring-1", 0, "c-1")),  // later: ignored
      ev(ev::kMessageRefused, "c-2", CampaignMessageKey("spring-1", 0, "c-2")),
      ev(ev::kPushDeadLettered, "c-3", CampaignMessageKey("spring-1", 1, "c-3")),
      ev(ev::kPushSucceeded, "c-4", "ghl:m-1"),  // not a campaign's
      undeliverable,
      ev(ev::kMessageRefused, "c-6", CampaignMessageKey("spring-1", 0, "c-6")),
      ev(ev::kPushSucceeded, "c-6", CampaignMessageKey("spring-1", 0, "c-6")),   // it went
      ev(ev::kMessageRefused, "c-6", CampaignMessageKey("spring-1", 0, "c-6")),  // later: ignored
      ToDraft(in, "acme", "contact:c-1", EventId(), EventId())};
  std::vector<AppendOutcome> out;
  ASSERT_TRUE(log.Append(std::move(drafts), &out).ok());
  CampaignTasksProjection tasks;
  ASSERT_TRUE(ProjectionRunner(&log, &tasks).CatchUp().ok());
  auto look = [&log]() {
    std::string text;
    for (const auto& [step, contact] : std::vector<std::pair<int, std::string>>{
             {0, "c-1"}, {0, "c-2"}, {1, "c-3"}, {0, "c-4"}, {0, "c-5"}, {0, "c-6"}}) {
      SendOutcome o;
      Status s = ReadSendOutcome(log, "acme", "spring-1", step, contact, &o);
      text += contact + "=" +
              (s.ok()           ? EncodeSendOutcome(o)
               : s.IsNotFound() ? "none"
                                : "error") +
              "; ";
    }
    for (const char* c : {"c-1", "c-2", "c-3"}) {
      bool ended = false;
      std::string how;
      EXPECT_TRUE(ReadCallEndedSince(log, "acme", c, 0, &ended, &how).ok());
      text += std::string(c) + (ended ? " called: " + how : " not called") + "; ";
    }
    bool replied = false, later = true;
    EXPECT_TRUE(ReadRepliedSince(log, "acme", "c-1", 0, &replied).ok());
    EXPECT_TRUE(ReadRepliedSince(log, "acme", "c-1", INT64_MAX, &later).ok());
    return text + "replied=" + std::to_string(replied) + std::to_string(later);
  };
  const std::string live = look();
  EXPECT_EQ(live,
            "c-1=sent@1790000000000000 verity; c-2=refused@1790000000000000 HTTP 400; "
            "c-3=failed HTTP 400; c-4=none; c-5=failed@1790000000000000 no system plays the sender "
            "role; c-6=sent@1790000000000000 verity; "
            "c-1 called: Interested; c-2 not called; c-3 not called; replied=10");
  ASSERT_TRUE(ProjectionRunner(&log, &tasks).Rebuild().ok());
  EXPECT_EQ(look(), live);
}

// "Stop on reply" reads one row per person, the time of their last text,
// whatever how many they sent.
TEST(CampaignTasksProjection, KeepsEachPersonsLastReplyInOneRow) {
  ManualClock clock(1'790'000'000'000'000);
  MemoryEventLog log(&clock);
  auto inbound = [](const std::string& key) {
    DomainEvent d;
    d.type = std::string(ev::kMessageLogged);
    d.contact_id = "c-1";
    d.message_key = key;
    d.fields["direction"] = "inbound";
    return ToDraft(d, "acme", "contact:c-1", EventId(), EventId());
  };
  AppendOutcome out;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(log.Append(inbound("verity:in-" + std::to_string(i)), &out).ok());
    clock.Advance(1'000'000);
  }
  const int64_t last = 1'790'000'000'000'000 + 2'000'000;
  CampaignTasksProjection tasks;
  ASSERT_TRUE(ProjectionRunner(&log, &tasks).CatchUp().ok());
  int rows = 0;
  ASSERT_TRUE(log.ScanConsumerState(CampaignTasksProjection::kName, "i/acme/c-1/",
                                    [&rows](std::string_view, std::string_view) {
                                      ++rows;
                                      return true;
                                    })
                  .ok());
  EXPECT_EQ(rows, 1);
  bool replied = false;
  ASSERT_TRUE(ReadRepliedSince(log, "acme", "c-1", last, &replied).ok());
  EXPECT_TRUE(replied) << "the last text, at the moment asked";
  ASSERT_TRUE(ReadRepliedSince(log, "acme", "c-1", last + 1, &replied).ok());
  EXPECT_FALSE(replied);
  ASSERT_TRUE(ReadRepliedSince(log, "acme", "c-2", 0, &replied).ok());
  EXPECT_FALSE(replied) << "never texted";
}

// `dfm audit violations` for campaigns: a campaign's text the vendor took
// in the person's quiet hours, and none for one it took inside them or for
// another text.
TEST(CampaignAudit, FindsACampaignsTextSentInQuietHours) {
  MemoryEventLog log;
  DomainEvent created;
  created.type = std::string(ev::kContactCreated);
  created.contact_id = "c-1";
  created.fields["phone"] = "+12055550101";
  DomainEvent sent;
  sent.type = std::string(ev::kPushSucceeded);
  sent.contact_id = "c-1";
  sent.system = "verity";
  sent.op = "send";
  sent.message_key = CampaignMessageKey("spring-1", 0, "c-1");
  DomainEvent other = sent;
  other.message_key = "ghl:m-1";
  DomainEvent drafted = sent;  // a draft reaches the model, not the person
  drafted.system = "openai";
  drafted.channel = channels::kDraft;
  drafted.message_key = CampaignDraftKey("spring-1", 1, "c-1");
  std::vector<AppendOutcome> out;
  ASSERT_TRUE(log.Append({ToDraft(created, "acme", "contact:c-1", EventId(), EventId()),
                          ToDraft(sent, "acme", "contact:c-1", EventId(), EventId()),
                          ToDraft(other, "acme", "contact:c-1", EventId(), EventId()),
                          ToDraft(drafted, "acme", "contact:c-1", EventId(), EventId())},
                         &out)
                  .ok());
  RecipientZones zones(nullptr);  // no phone map: the default zone, UTC
  CampaignHoursOptions o;
  o.zones = &zones;
  auto window = [](int64_t from_h, int64_t to_h) {  // hours from now, UTC
    const int64_t now_min = std::time(nullptr) / 60 % 1440;
    auto at = [now_min](int64_t h) {
      const int64_t m = ((now_min + h * 60) % 1440 + 1440) % 1440;
      char buf[8];
      std::snprintf(buf, sizeof buf, "%02d:%02d", static_cast<int>(m / 60),
                    static_cast<int>(m % 60));
      return std::string(buf);
    };
    QuietHours q;
    EXPECT_TRUE(ParseQuietHours(at(from_h) + "-" + at(to_h), &q));
    return q;
  };
  std::vector<Violation> found;
  o.hours = window(-2, 2);  // open now
  ASSERT_TRUE(FindCampaignQuietHourSends(log, o, &found).ok());
  EXPECT_TRUE(found.empty());
  o.hours = window(3, 4);  // closed now
  ASSERT_TRUE(FindCampaignQuietHourSends(log, o, &found).ok());
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].kind + " " + found[0].phone + " " + found[0].message_key,
            "campaign_quiet_hours +12055550101 campaign:spring-1/0/c-1");
  EXPECT_NE(found[0].how.find("campaign spring-1 step 0"), std::string::npos) << found[0].how;
  o.tenant = "other";
  found.clear();
  ASSERT_TRUE(FindCampaignQuietHourSends(log, o, &found).ok());
  EXPECT_TRUE(found.empty()) << "another tenant's texts are not its";
  // A contact whose own time zone field says it is twelve hours on: the
  // audit reads their hours there, as the agent does.
  created.contact_id = sent.contact_id = "c-2";
  created.fields[fields::kTimezone] = "+12:00";
  sent.message_key = CampaignMessageKey("spring-1", 0, "c-2");
  ASSERT_TRUE(log.Append({ToDraft(created, "acme", "contact:c-2", EventId(), EventId()),
                          ToDraft(sent, "acme", "contact:c-2", EventId(), EventId())},
                         &out)
                  .ok());
  o.tenant = "acme";
  o.hours = window(-2, 2);  // open now in UTC, closed twelve hours on
  found.clear();
  ASSERT_TRUE(FindCampaignQuietHourSends(log, o, &found).ok());
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].message_key, "campaign:spring-1/0/c-2");
  EXPECT_NE(found[0].how.find("contact field"), std::string::npos) << found[0].how;
}

}  // namespace
}  // namespace dfm
