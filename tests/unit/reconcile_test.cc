// `dfm reconcile` (app/reconcile.h): the plan read from the projections'
// documented layouts, the reads paced and retried, the drift, the
// re-application items the service accepts, and the daily schedule's time.
#include "app/reconcile.h"

#include <gtest/gtest.h>

#include <deque>

#include "app/reconcile_schedule.h"
#include "replay-tools/redrive_items.h"
#include "storage/memory_event_log.h"
#include "sync/consent.h"
#include "sync/domain_event.h"
#include "sync/redrive.h"

namespace dfm {
namespace {

constexpr int64_t kMinute = 60LL * 1000000;
constexpr int64_t kDay = 1440 * kMinute;

// A log whose projections hold: c1 opted out of sms and email (by its
// phone and email), c2 opted in again, c3 opted out with no contact mapped,
// c4 deleted; c1 known to ghl as g1.
struct Fixture {
  MemoryEventLog log;
  uint64_t cause_seq = 0;
  std::string cause_id;

  Fixture() {
    AppendOutcome o = Webhook("{}");
    cause_seq = o.seq;
    cause_id = o.id.ToString();
    auto row = [&](const char* status, int64_t when) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%s %020lld %llu ghl", status, static_cast<long long>(when),
                    static_cast<unsigned long long>(cause_seq));
      return std::string(buf);
    };
    Commit("opt_outs", {{"o/default/+12055550142/sms", row("out", 100)},
                        {"o/default/ann@example.com/email", row("out", 300)},
                        {"o/default/+12055550143/sms", row("in", 200)},
                        {"o/default/+12055550144/sms", row("out", 200)},
                        {"o/default/+12055550145/sms", row("out", 200)},
                        {"o/other/+12055550146/sms", row("out", 200)}});
    Commit("mappings", {{"p/default/+12055550142", "c1"},
                        {"e/default/ann@example.com", "c1"},
                        {"p/default/+12055550143", "c2"},
                        {"p/default/+12055550145", "c4"},
                        {"c/c1/ghl", "g1"}});
    Commit("contacts", {{"f/c1/phone", "ghl +12055550142"},
                        {"f/c1/email", "ghl ann@example.com"},
                        {"f/c4/phone", "ghl +12055550145"},
                        {"d/c4", "1"}});
  }
  // A webhook on c1's stream, `payload` its body, appended.
  AppendOutcome Webhook(const std::string& payload) {
    AppendOutcome o;
    EventDraft d;
    d.tenant = "default";
    d.stream = ContactStream("c1");
    d.type = "webhook.received";
    d.payload = payload;
    EXPECT_TRUE(log.Append(d, &o).ok());
    return o;
  }
  void Commit(const char* consumer, std::vector<std::pair<std::string, std::string>> rows) {
    std::vector<StateOp> ops;
    for (auto& [k, v] : rows) ops.push_back({k, v, false});
    EXPECT_TRUE(log.CommitConsumer(consumer, log.LastSequence(), ops).ok());
  }
};

std::map<std::string, ReconcileSystem> Systems() {
  return {{"ghl", {{"email", "sms"}, ""}}, {"aloware", {{"sms", "voice"}, "phone"}}};
}

TEST(ReconcilePlan, OneCheckPerOptedOutContactAndSystemThatKeepsTheChannel) {
  Fixture f;
  ReconcilePlan plan;
  ASSERT_TRUE(PlanReconcile(f.log, "default", 0, Systems(), &plan).ok());
  EXPECT_EQ(plan.opted_out_people, 4) << "two of c1's, c3's phone, deleted c4's";
  EXPECT_EQ(plan.without_contact, 1);
  ASSERT_EQ(plan.checks.size(), 2u) << "c2 opted in; c4 deleted; other tenant not read";
  const ReconcileCheck& alo = plan.checks[0];
  const ReconcileCheck& ghl = plan.checks[1];
  EXPECT_EQ(alo.system, "aloware");
  EXPECT_EQ(alo.channels, std::vector<std::string>{"sms"});
  EXPECT_EQ(alo.external_id, "");
  EXPECT_EQ(ghl.system, "ghl");
  EXPECT_EQ(ghl.contact_id, "c1");
  EXPECT_EQ(ghl.external_id, "g1");
  EXPECT_EQ(ghl.channels, (std::vector<std::string>{"email", "sms"}));
  EXPECT_EQ(ghl.fields.at("phone"), "+12055550142");
  EXPECT_EQ(ghl.fields.at("email"), "ann@example.com");
  EXPECT_EQ(ghl.cause, f.cause_id);
  EXPECT_EQ(ghl.opted_out_at_us, 300) << "the newest opt-out's time";

  ASSERT_TRUE(PlanReconcile(f.log, "default", 250, Systems(), &plan).ok());
  ASSERT_EQ(plan.checks.size(), 1u) << "--since leaves only the email opt-out";
  EXPECT_EQ(plan.checks[0].system, "ghl");
  EXPECT_EQ(plan.checks[0].channels, std::vector<std::string>{"email"});
}

// c1 opted out of sms (the fixture's webhook) and later of email (another
// one): a re-application of sms answers the sms opt-out, one of both is
// one item per opt-out, so the audit counts each for its own statement.
TEST(ReconcilePlan, EachChannelsReApplicationAnswersThatChannelsOptOut) {
  Fixture f;
  const AppendOutcome email = f.Webhook("{\"later\":1}");
  char row[64];
  std::snprintf(row, sizeof row, "out %020lld %llu ghl", 300LL,
                static_cast<unsigned long long>(email.seq));
  f.Commit("opt_outs", {{"o/default/ann@example.com/email", row}});
  ReconcilePlan plan;
  ASSERT_TRUE(PlanReconcile(f.log, "default", 0, Systems(), &plan).ok());
  ASSERT_EQ(plan.checks.size(), 2u);
  const ReconcileCheck& ghl = plan.checks[1];
  ASSERT_EQ(ghl.system, "ghl");
  EXPECT_EQ(ghl.cause, email.id.ToString()) << "the newest";
  EXPECT_EQ(ghl.cause_of.at("sms"), f.cause_id);
  EXPECT_EQ(ghl.cause_of.at("email"), email.id.ToString());
  // The drift report names the opt-out of the channels shown in.
  EXPECT_EQ(NewestOf(ghl, {"sms"}), std::make_pair(int64_t{100}, f.cause_id));
  EXPECT_EQ(NewestOf(ghl, {"sms", "email"}), std::make_pair(int64_t{300}, email.id.ToString()));

  ReconcileDrift sms{ghl, {"sms"}, "", ""};
  ReplayRequest r = ReapplyRequest({sms}, "daily reconcile", 1'795'000'000'000'000);
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.items[0].cause, f.cause_id);
  EXPECT_EQ(r.items[0].push.channel, "sms");
  ReconcileDrift both{ghl, {"email", "sms"}, "", ""};
  r = ReapplyRequest({both}, "daily reconcile", 1'795'000'000'000'000);
  ASSERT_EQ(r.items.size(), 2u);
  std::map<std::string, std::string> channel_of;
  for (const auto& item : r.items) channel_of[item.cause] = item.push.channel;
  EXPECT_EQ(channel_of.at(f.cause_id), "sms");
  EXPECT_EQ(channel_of.at(email.id.ToString()), "email");
}

// A person with no contact (erased) opted out of two channels is one
// person without a contact, as they are one opted-out person.
TEST(ReconcilePlan, APersonWithoutAContactIsCountedOnceWhateverTheChannels) {
  Fixture f;
  f.Commit("opt_outs", {{"o/default/+12055550144/call", "out 00000000000000000200 1 aloware"}});
  ReconcilePlan plan;
  ASSERT_TRUE(PlanReconcile(f.log, "default", 0, Systems(), &plan).ok());
  EXPECT_EQ(plan.opted_out_people, 4);
  EXPECT_EQ(plan.without_contact, 1) << "+12055550144's sms and call rows";
}

TEST(ReconcilePlan, ASystemThatNeedsAKeyTheContactLacksIsNotAsked) {
  Fixture f;
  f.Commit("contacts", {{"f/c1/phone", ""}});  // unreadable: no phone
  ReconcilePlan plan;
  ASSERT_TRUE(PlanReconcile(f.log, "default", 0, Systems(), &plan).ok());
  ASSERT_EQ(plan.checks.size(), 1u);
  EXPECT_EQ(plan.checks[0].system, "ghl");
}

// A vendor played in memory: each answer from the queue, else held.sms "in"
// for ids in `lifted`, "out" otherwise.
class FakeReader : public VendorClient {
 public:
  std::deque<PushResult> scripted;
  std::vector<PushRequest> asked;
  std::set<std::string> lifted;
  void Push(const PushRequest& req, const Credentials&, std::function<void(PushResult)> done) override {
    asked.push_back(req);
    if (!scripted.empty()) {
      PushResult r = scripted.front();
      scripted.pop_front();
      return done(r);
    }
    PushResult r;
    r.http_status = 200;
    r.requests = 1;
    for (const auto& ch : SplitChannels(req.channel))
      r.answered["held." + ch] = lifted.count(req.contact_id) ? "in" : "out";
    done(r);
  }
};

ReconcilePlan ManyChecks(int n, const std::string& system) {
  ReconcilePlan plan;
  for (int i = 0; i < n; ++i) {
    ReconcileCheck c;
    c.contact_id = "c" + std::to_string(i);
    c.system = system;
    c.channels = {"sms"};
    c.cause = "cause" + std::to_string(i);
    plan.checks.push_back(c);
  }
  return plan;
}

TEST(ReconcileRun, ReadsAtItsShareOfTheRateLimitAndListsTheDrift) {
  FakeReader ghl;
  ghl.lifted = {"c3", "c7"};
  int64_t now = 0;
  ReconcileDeps deps;
  deps.readers["ghl"] = {&ghl, {}, 10, 1000000, 0.5};  // 10 a second; reconcile takes 5
  deps.now_us = [&] { return now; };
  deps.sleep_us = [&](int64_t us) { now += us; };
  int progress_calls = 0;
  deps.progress = [&](const ReconcileProgress&) { ++progress_calls; };
  ReconcileReport r;
  RunReconcile(ManyChecks(20, "ghl"), deps, &r);
  EXPECT_EQ(r.progress.checked, 20);
  EXPECT_EQ(r.progress.requests, 20);
  EXPECT_EQ(progress_calls, 20);
  EXPECT_GE(now, 3 * 1000000) << "20 reads at 5 a second take at least 3 s";
  ASSERT_EQ(r.drift.size(), 2u);
  EXPECT_EQ(r.drift[0].check.contact_id, "c3");
  EXPECT_EQ(r.drift[0].shown_in, std::vector<std::string>{"sms"});
  EXPECT_EQ(ghl.asked[0].op, "read_consent");
}

TEST(ReconcileRun, A429WaitsAndAsksAgainARefusedCredentialStopsThatSystem) {
  FakeReader ghl, alo;
  PushResult throttled;
  throttled.http_status = 429;
  throttled.retry_after_us = 7 * 1000000;
  ghl.scripted = {throttled};
  ghl.lifted = {"c0"};
  PushResult refused;
  refused.http_status = 401;
  refused.auth_rejected = true;
  alo.scripted = {refused};
  int64_t now = 0;
  ReconcileDeps deps;
  deps.readers["ghl"] = {&ghl, {}, 100, 10000000, 0.5};
  deps.readers["aloware"] = {&alo, {}, 100, 10000000, 0.5};
  deps.now_us = [&] { return now; };
  deps.sleep_us = [&](int64_t us) { now += us; };
  ReconcilePlan plan = ManyChecks(2, "ghl");
  for (auto& c : ManyChecks(3, "aloware").checks) plan.checks.push_back(c);
  ReconcileReport r;
  RunReconcile(plan, deps, &r);
  EXPECT_GE(now, 7 * 1000000) << "waited as the 429 said";
  ASSERT_EQ(r.drift.size(), 1u) << "the throttled read was asked again and answered";
  EXPECT_EQ(r.drift[0].check.contact_id, "c0");
  EXPECT_EQ(alo.asked.size(), 1u) << "refused credentials are not tried for every check";
  EXPECT_EQ(r.progress.failed, 3);
  EXPECT_EQ(r.unread.at("aloware"), "3 unread (credentials refused)");
}

TEST(ReconcileRun, StopsWhenCancelled) {
  FakeReader ghl;
  int64_t now = 0;
  ReconcileDeps deps;
  deps.readers["ghl"] = {&ghl, {}, 100, 10000000, 0.5};
  deps.now_us = [&] { return now; };
  deps.sleep_us = [&](int64_t us) { now += us; };
  deps.cancelled = [&] { return ghl.asked.size() >= 3; };
  ReconcileReport r;
  RunReconcile(ManyChecks(10, "ghl"), deps, &r);
  EXPECT_EQ(r.progress.checked, 3);
}

// c1's sms opt-out shown lifted by GoHighLevel's record g1.
ReconcileDrift SmsShownInAtGhl(const Fixture& f) {
  ReconcileDrift d;
  d.check.contact_id = "c1";
  d.check.system = "ghl";
  d.check.external_id = "g1";
  d.check.cause = f.cause_id;
  d.shown_in = {"sms"};
  return d;
}

// The daily run finds the same opt-out lifted again two days after it set
// it: its request is a new one, not the first's duplicate (which the log
// would answer with the first's sequence number, appending nothing); a
// retry of one run is still one request.
TEST(ReconcileExecute, TheSameDriftFoundByALaterRunIsAskedAgain) {
  Fixture f;
  const ReconcileDrift d = SmsShownInAtGhl(f);
  const int64_t day1 = 1'795'000'000'000'000, day3 = day1 + 2 * 86'400'000'000;
  AppendOutcome first, retry, later;
  ASSERT_TRUE(
      f.log
          .Append(ReplayRequestDraft("default", ReapplyRequest({d}, "daily reconcile", day1)),
                  &first)
          .ok());
  ASSERT_TRUE(
      f.log
          .Append(ReplayRequestDraft("default", ReapplyRequest({d}, "daily reconcile", day1)),
                  &retry)
          .ok());
  ASSERT_TRUE(
      f.log
          .Append(ReplayRequestDraft("default", ReapplyRequest({d}, "daily reconcile", day3)),
                  &later)
          .ok());
  EXPECT_TRUE(retry.duplicate) << "a retry of the same run";
  EXPECT_FALSE(later.duplicate) << "a later run's request was taken for the first's";
  EXPECT_NE(later.seq, first.seq);
}

TEST(ReconcileExecute, TheServiceRebuildsTheItemsAndTheContactDecidesThem) {
  Fixture f;
  const ReconcileDrift d = SmsShownInAtGhl(f);
  ReplayRequest posted = ReapplyRequest({d}, "dfm reconcile --execute", 1'795'000'000'000'000);
  ASSERT_EQ(posted.items.size(), 1u);
  // Posted through the admin endpoint: rebuilt from the log.
  ReplayRequest rebuilt;
  ASSERT_TRUE(RebuildRedriveItems(f.log, "default", posted, ReplayOptions(), &rebuilt).ok());
  ASSERT_EQ(rebuilt.items.size(), 1u);
  EXPECT_EQ(rebuilt.items[0].push.op, "opt_out");
  EXPECT_EQ(rebuilt.items[0].push.channel, "sms");
  EXPECT_EQ(rebuilt.items[0].cause, f.cause_id);
  const RedriveItem item = rebuilt.items[0];
  // A contact with no stream, or an item without channels, is refused.
  ReplayRequest bad = posted, ignored;
  bad.items[0].contact_id = "c9";
  EXPECT_EQ(RebuildRedriveItems(f.log, "default", bad, ReplayOptions(), &ignored).code(),
            Status::Code::kInvalidArgument);
  bad = posted;
  bad.items[0].push.channel.clear();
  EXPECT_EQ(RebuildRedriveItems(f.log, "default", bad, ReplayOptions(), &ignored).code(),
            Status::Code::kInvalidArgument);

  // The contact's actor: sent only while opted out, to every record (the
  // phone and email ride along).
  ContactState s;
  s.contact_id = "c1";
  s.exists = true;
  s.fields["phone"] = {"+12055550142", "ghl", 1};
  s.fields["email"] = {"ann@example.com", "ghl", 1};
  s.links["ghl"] = "g1";
  SyncContext ctx;
  ctx.targets["ghl"] = {"phone", "email"};
  ctx.channels["ghl"] = {"sms", "email"};
  auto out = DecideRedrive(s, {{0, item}}, 90, ctx);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, ev::kRedriveSkipped) << "opted in now: never opted out by a reconcile";
  s.consent["sms"] = {true, 5, false, ""};
  out = DecideRedrive(s, {{0, item}}, 91, ctx);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, ev::kPushRequested);
  EXPECT_EQ(out[0].op, "opt_out");
  EXPECT_EQ(out[0].external_id, "g1");
  EXPECT_EQ(out[0].fields.at("phone"), "+12055550142");
  EXPECT_EQ(out[0].fields.at("email"), "ann@example.com");
}

TEST(ReconcileSchedule, RunsOnceADayAtTheMinute) {
  const int64_t midnight = 20000 * kDay;
  const int at = 4 * 60 + 30;  // 04:30
  EXPECT_EQ(NextDailyRun(midnight, at, 0), midnight + at * kMinute);
  EXPECT_EQ(NextDailyRun(midnight + at * kMinute + 5, at, 0), midnight + at * kMinute + 5)
      << "within the minute: now";
  EXPECT_EQ(NextDailyRun(midnight + at * kMinute + 5, at, midnight + at * kMinute + 1),
            midnight + kDay + at * kMinute)
      << "ran in it already";
  EXPECT_EQ(NextDailyRun(midnight + 5 * 60 * kMinute, at, 0), midnight + kDay + at * kMinute);
}

}  // namespace
}  // namespace dfm
