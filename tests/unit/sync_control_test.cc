// An operator's pause and resume (sync/sync_control.h, issue 47): the fold
// of sync.paused / sync.resumed, the request bodies, a connector that holds
// its pushes while paused and sends them in order on resume, at most the
// concurrency a resume gives, and the status page's words.
#include <gtest/gtest.h>

#include "console/status_view.h"
#include "sync/sync_control.h"
#include "tests/support/actor_fixture.h"

namespace dfm {
namespace {

Event AsEvent(const EventDraft& d, uint64_t seq) {
  Event e;
  e.tenant = d.tenant;
  e.stream = d.stream;
  e.type = d.type;
  e.payload = d.payload;
  e.seq = seq;
  e.recorded_at_us = 1;
  return e;
}

SyncControlRequest Scope(std::string tenant, std::string system, int concurrency = 0) {
  SyncControlRequest r;
  r.scope.tenant = std::move(tenant);
  r.scope.system = std::move(system);
  r.concurrency = concurrency;
  return r;
}

TEST(SyncControlTest, BodiesAreCheckedAndAnEmptyOneMeansEverything) {
  SyncControlRequest r;
  ASSERT_TRUE(DecodeSyncControlRequest("", false, &r).ok());
  EXPECT_EQ(r.scope.tenant, "*");
  EXPECT_EQ(r.scope.system, "*");
  ASSERT_TRUE(DecodeSyncControlRequest(R"({"tenant":"acme","system":"ghl","reason":"vendor bug"})", false, &r).ok());
  EXPECT_EQ(r.scope.tenant, "acme");
  EXPECT_EQ(r.reason, "vendor bug");
  ASSERT_TRUE(DecodeSyncControlRequest(R"({"concurrency":2})", true, &r).ok());
  EXPECT_EQ(r.concurrency, 2);
  EXPECT_FALSE(DecodeSyncControlRequest(R"({"concurrency":2})", false, &r).ok()) << "a pause takes none";
  EXPECT_FALSE(DecodeSyncControlRequest(R"({"concurrency":0})", true, &r).ok());
  EXPECT_FALSE(DecodeSyncControlRequest(R"({"concurrency":1001})", true, &r).ok());
  EXPECT_FALSE(DecodeSyncControlRequest(R"({"tenant":7})", false, &r).ok());
  EXPECT_FALSE(DecodeSyncControlRequest(R"({"tenant":)", false, &r).ok());
  EXPECT_FALSE(DecodeSyncControlRequest(R"({"reason":")" + std::string(201, 'x') + "\"}", false, &r).ok());
}

TEST(SyncControlTest, AResumeLiftsThePausesInsideItsScopeOnly) {
  SyncControl c;
  c.Apply(AsEvent(SyncPausedDraft(Scope("*", "*"), "key:a", "r1", 100), 1));
  c.Apply(AsEvent(SyncPausedDraft(Scope("acme", "ghl"), "key:a", "r2", 200), 2));
  ASSERT_TRUE(c.PausedBy("acme", "ghl"));
  EXPECT_EQ(c.PausedBy("acme", "ghl")->since_us, 100) << "the oldest pause covering it";
  c.Apply(AsEvent(SyncResumedDraft(Scope("acme", "*"), "key:a", "r3", 300), 3));
  EXPECT_TRUE(c.PausedBy("acme", "ghl")) << "the pause of every tenant is not inside tenant acme";
  EXPECT_EQ(c.Pauses().size(), 1u);
  c.Apply(AsEvent(SyncResumedDraft(Scope("*", "*", 2), "key:a", "r4", 400), 4));
  EXPECT_FALSE(c.PausedBy("acme", "ghl"));
  EXPECT_EQ(c.Limit("acme", "ghl"), 2);
  EXPECT_EQ(c.Limit("other", "aloware"), 2);
  c.Apply(AsEvent(SyncResumedDraft(Scope("*", "*"), "key:a", "r5", 500), 5));
  EXPECT_EQ(c.Limit("acme", "ghl"), 0) << "a resume without a concurrency lifts the limit";
}

TEST(SyncControlTest, APauseKeepsItsFirstTimeAndTheFoldFollowsTheLog) {
  std::vector<Event> events = {
      AsEvent(SyncResumedDraft(Scope("acme", "ghl"), "cli", "b", 300), 7),
      AsEvent(SyncPausedDraft(Scope("acme", "ghl"), "cli", "a", 100), 3),
      AsEvent(SyncPausedDraft(Scope("acme", "ghl"), "cli", "c", 900), 9),
      AsEvent(SyncPausedDraft(Scope("acme", "ghl"), "cli", "d", 950), 10),
  };
  SyncControl c;
  c.Fold(events);
  ASSERT_TRUE(c.PausedBy("acme", "ghl"));
  EXPECT_EQ(c.PausedBy("acme", "ghl")->since_us, 900) << "folded by sequence, not by arrival";
  EXPECT_NE(c.Json().find("\"paused\":true"), std::string::npos);
  SyncControl again;
  again.Fold(events);
  EXPECT_EQ(again.Json(), c.Json()) << "a rebuild gives the same state";
}

TEST(SyncControlTest, EveryTenantsEventsGoOnTheDefaultStream) {
  EventDraft d = SyncPausedDraft(Scope("*", "ghl"), "cli", "x", 1);
  EXPECT_EQ(d.tenant, "default");
  EXPECT_EQ(d.stream, kSyncControlStream);
  EXPECT_EQ(SyncPausedDraft(Scope("acme", "*"), "cli", "x", 1).tenant, "acme");
}

TEST(SyncControlTest, TheStatusPageSaysPausedByAnOperatorSince) {
  ConnectorSnapshot c;
  c.tenant = "default";
  c.system = "ghl";
  c.name = "GoHighLevel";
  c.held = 3;
  const int64_t now = 1'764'000'000'000'000;
  c.paused_since_us = now - 5 * 60'000'000LL;
  ServiceCard card = DescribeConnector(c, now);
  EXPECT_EQ(card.state, CardState::kPaused);
  EXPECT_EQ(card.headline.rfind("Paused by an operator since ", 0), 0u) << card.headline;
  EXPECT_NE(card.headline.find("5 minutes ago"), std::string::npos) << card.headline;
  EXPECT_NE(card.detail.find("webhooks are still taken and recorded"), std::string::npos);
  EXPECT_NE(card.detail.find("3 changes wait"), std::string::npos);
  StatusView v = BuildStatusView({c}, EngineSnapshot{}, {}, 0, now);
  EXPECT_FALSE(v.all_well);
  EXPECT_EQ(v.summary, "Sync paused by an operator: 1 system waits");
  c.paused_since_us = 0;
  c.concurrency_limit = 2;
  EXPECT_NE(DescribeConnector(c, now).detail.find("limits it to 2 requests at once"), std::string::npos);
}

class PausedConnector : public testing::ActorTest {
 protected:
  // Pauses aloware through `control` while the push.sending of the text
  // "p-send" to c1, sent to `connector`, is being recorded; then lets it
  // be written. The text's push.held stays unwritten when `stall_hold`.
  PushOrder HoldASendAsThePauseComes(const caf::actor& connector, SyncControl& control,
                                     bool stall_hold = false) {
    PushOrder send = Order("p-send", "c1");
    send.request.op = "send";
    log_.StallWrites(true);
    caf::anon_send(connector, send);
    sched_->run();
    EXPECT_EQ(log_.Stalled(), 1u) << "its push.sending being recorded";
    control.Apply(AsEvent(SyncPausedDraft(Scope("default", "aloware"), "cli", "p", 1), 1));
    if (!stall_hold) log_.StallWrites(false);
    EXPECT_TRUE(log_.ReleaseStalled());
    sched_->run();
    return send;
  }
};

// Paused, a connector sends nothing and holds what comes; resumed with a
// concurrency of 1, it sends the held pushes in order, one at a time.
TEST_F(PausedConnector, HoldsItsPushesUntilResumedThenSendsThemAtTheGivenConcurrency) {
  auto control = std::make_shared<SyncControl>();
  env_->control = control;
  control->Apply(AsEvent(SyncPausedDraft(Scope("default", "aloware"), "cli", "p", 1), 1));
  auto client = std::make_shared<testing::ScriptedClient>();
  ConnectorSettings s = Settings(client);
  s.concurrency = 4;
  auto aloware = Connector(s);
  for (int i = 0; i < 3; ++i) caf::anon_send(aloware, Order("p" + std::to_string(i), "c" + std::to_string(i)));
  sched_->run();
  Advance(60'000'000);
  EXPECT_TRUE(client->pushes.empty()) << "nothing goes while paused";

  control->Apply(AsEvent(SyncResumedDraft(Scope("*", "*", 1), "cli", "r", 2), 2));
  caf::anon_send(aloware, wake_atom::value);  // what SyncEngine::WakeConnectors sends
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 1u) << "a concurrency of 1";
  EXPECT_EQ(client->pushes[0].req.push_id, "p0");
  PushResult ok;
  ok.http_status = 200;
  client->pushes[0].done(ok);
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 2u);
  EXPECT_EQ(client->pushes[1].req.push_id, "p1") << "in the order they came";
}

// A text whose push.sending is being recorded as the operator pauses:
// it waits, recorded, and goes once on the resume (docs/operations.md:
// "requests already on the wire finish"; this one was not on it yet).
TEST_F(PausedConnector, HoldsASendBeingRecordedAsThePauseCame) {
  auto control = std::make_shared<SyncControl>();
  env_->control = control;
  auto client = std::make_shared<testing::ScriptedClient>();
  client->sends_not_idempotent = true;
  ConnectorSettings settings = Settings(client);
  settings.pair_burst = 1;  // one push per person an hour: held, it is spent once, as it goes
  settings.pair_interval_us = 3'600'000'000;
  auto aloware = Connector(settings);
  HoldASendAsThePauseComes(aloware, *control);
  Advance(60'000'000);
  EXPECT_TRUE(client->pushes.empty()) << "a text went out after the pause was answered";

  control->Apply(AsEvent(SyncResumedDraft(Scope("*", "*", 1), "cli", "r", 2), 2));
  caf::anon_send(aloware, wake_atom::value);
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 1u);
  EXPECT_EQ(client->pushes[0].req.push_id, "p-send");
  EXPECT_EQ(log_.Stalled(), 0u);
  EXPECT_EQ(TypesIn("contact:c1"),
            (std::vector<std::string>{"push.sending", "push.held", "push.sending"}))
      << "held, then recorded again under its next generation as it went";
}

// The text held as the pause came (above), then the service restarts
// before the resume: push.held says it never went, so the next run sends
// it once on the resume; a run after that finds that sending recorded
// without a hold and does not risk it twice.
TEST_F(PausedConnector, ASendHeldByAPauseGoesOnceAfterARestartAndTheResume) {
  auto control = std::make_shared<SyncControl>();
  env_->control = control;
  auto first = std::make_shared<testing::ScriptedClient>();
  first->sends_not_idempotent = true;
  auto aloware = Connector(Settings(first));
  PushOrder send = HoldASendAsThePauseComes(aloware, *control);
  ASSERT_EQ(TypesIn("contact:c1"), (std::vector<std::string>{"push.sending", "push.held"}));
  caf::anon_send_exit(aloware, caf::exit_reason::kill);  // the service restarts, still paused
  sched_->run();

  auto second = std::make_shared<testing::ScriptedClient>();
  auto next = Rerun(second, send);
  EXPECT_TRUE(second->pushes.empty()) << "still paused";
  control->Apply(AsEvent(SyncResumedDraft(Scope("*", "*"), "cli", "r", 2), 2));
  caf::anon_send(next, wake_atom::value);
  sched_->run();
  ASSERT_EQ(second->pushes.size(), 1u) << "held, it never went: it goes on the resume";
  EXPECT_EQ(second->pushes[0].req.push_id, "p-send");
  EXPECT_EQ(DeadLetterReason(), "");
  EXPECT_EQ(TypesIn("contact:c1"),
            (std::vector<std::string>{"push.sending", "push.held", "push.sending"}));

  caf::anon_send_exit(next, caf::exit_reason::kill);  // killed before its answer
  sched_->run();
  auto third = std::make_shared<testing::ScriptedClient>();
  Rerun(third, send);
  EXPECT_TRUE(third->pushes.empty()) << "the second run may have sent it";
  EXPECT_NE(DeadLetterReason().find("begun before a restart"), std::string::npos);
}

// A push.held the log refuses (a disk full a moment) is written again
// before the text may go: once the resume comes, it goes under its next
// generation only after its hold is on record, so a restart after it
// still finds the hold.
TEST_F(PausedConnector, AHoldTheLogRefusedIsWrittenBeforeTheSendGoes) {
  auto control = std::make_shared<SyncControl>();
  env_->control = control;
  auto client = std::make_shared<testing::ScriptedClient>();
  client->sends_not_idempotent = true;
  auto aloware = Connector(Settings(client));
  log_.FailWritesAfter(1);  // the push.sending is written, its push.held refused
  HoldASendAsThePauseComes(aloware, *control);
  ASSERT_EQ(TypesIn("contact:c1"), (std::vector<std::string>{"push.sending"}));
  control->Apply(AsEvent(SyncResumedDraft(Scope("*", "*"), "cli", "r", 2), 2));
  caf::anon_send(aloware, wake_atom::value);
  Advance(env_->append_retry_us);
  EXPECT_TRUE(client->pushes.empty()) << "it went with its hold not on record";
  log_.FailWrites(false);
  Advance(env_->append_retry_us);
  ASSERT_EQ(client->pushes.size(), 1u);
  EXPECT_EQ(TypesIn("contact:c1"),
            (std::vector<std::string>{"push.sending", "push.held", "push.sending"}));
  std::vector<Event> all;
  ASSERT_TRUE(log_.Read(1, 100, &all).ok());
  EXPECT_NE(all.at(1).payload.find("paused by an operator"), std::string::npos) << all.at(1).payload;
}

// A push.held refused while the pause lasts is written again while it
// lasts, so a restart before the resume still finds the text held: it
// goes once on the resume.
TEST_F(PausedConnector, AHoldRefusedDuringThePauseIsWrittenBeforeTheResume) {
  auto control = std::make_shared<SyncControl>();
  env_->control = control;
  auto first = std::make_shared<testing::ScriptedClient>();
  first->sends_not_idempotent = true;
  auto aloware = Connector(Settings(first));
  log_.FailWritesAfter(1);
  PushOrder send = HoldASendAsThePauseComes(aloware, *control);
  ASSERT_EQ(TypesIn("contact:c1"), (std::vector<std::string>{"push.sending"}));
  log_.FailWrites(false);
  Advance(env_->append_retry_us);
  ASSERT_EQ(TypesIn("contact:c1"), (std::vector<std::string>{"push.sending", "push.held"}))
      << "written again while paused";
  caf::anon_send_exit(aloware, caf::exit_reason::kill);
  sched_->run();
  auto second = std::make_shared<testing::ScriptedClient>();
  auto next = Rerun(second, send);
  control->Apply(AsEvent(SyncResumedDraft(Scope("*", "*"), "cli", "r", 2), 2));
  caf::anon_send(next, wake_atom::value);
  sched_->run();
  EXPECT_EQ(second->pushes.size(), 1u);
  EXPECT_EQ(DeadLetterReason(), "");
}

// A hold whose push.held was lost (killed before it was written) is
// taken for a send that may have gone: dead-lettered, not sent; a log
// that cannot say whether it was held makes the push wait.
TEST_F(PausedConnector, ASendWhoseHoldWasNotRecordedIsNotRisked) {
  auto control = std::make_shared<SyncControl>();
  env_->control = control;
  auto first = std::make_shared<testing::ScriptedClient>();
  first->sends_not_idempotent = true;
  auto aloware = Connector(Settings(first));
  PushOrder send = HoldASendAsThePauseComes(aloware, *control, /*stall_hold=*/true);
  ASSERT_EQ(log_.Stalled(), 1u) << "its push.held being written";
  log_.DropStalled();
  log_.StallWrites(false);
  caf::anon_send_exit(aloware, caf::exit_reason::kill);
  sched_->run();
  control->Apply(AsEvent(SyncResumedDraft(Scope("*", "*"), "cli", "r", 2), 2));

  auto second = std::make_shared<testing::ScriptedClient>();
  log_.FailLookupsOf("r/p-send/held/", true);
  Rerun(second, send);
  EXPECT_TRUE(second->pushes.empty());
  EXPECT_TRUE(reports_->empty()) << "the log could not say: it waits";
  log_.FailLookupsOf("r/p-send/held/", false);
  Advance(env_->append_retry_us);
  EXPECT_TRUE(second->pushes.empty()) << "no hold recorded: it may have gone";
  EXPECT_NE(DeadLetterReason().find("begun before a restart"), std::string::npos);
}

// The same when another push's failure opens the breaker meanwhile: the
// text waits for the breaker, then goes once.
TEST_F(PausedConnector, AnOpenedBreakerHoldsASendBeingRecorded) {
  auto client = std::make_shared<testing::ScriptedClient>();
  client->sends_not_idempotent = true;
  ConnectorSettings settings = Settings(client);
  settings.breaker_threshold = 1;
  auto aloware = Connector(settings);
  log_.StallWrites(true);
  caf::anon_send(aloware, Order("p-up", "c2"));
  PushOrder send = Order("p-send", "c1");
  send.request.op = "send";
  caf::anon_send(aloware, send);
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 1u) << "the upsert went at once";
  ASSERT_EQ(log_.Stalled(), 1u) << "the text's push.sending being recorded";
  client->Answer(0, 503);  // the breaker opens
  sched_->run();
  log_.StallWrites(false);
  ASSERT_TRUE(log_.ReleaseStalled());
  sched_->run();
  EXPECT_EQ(client->pushes.size(), 1u) << "the text went into an open breaker";
  Advance(settings.breaker_open_us + 1'000'000);
  int texts = 0;
  for (const auto& call : client->pushes) texts += call.req.push_id == "p-send";
  EXPECT_EQ(texts, 1);
}

}  // namespace
}  // namespace dfm
