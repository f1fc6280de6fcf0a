// An erasure at the connectors (contact.erased): the person's pushes still
// waiting never go, their consent pushes still land.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "actors/router.h"
#include "actors/status_board.h"
#include "app/erase.h"
#include "projections/runner.h"
#include "projections/sync_projections.h"
#include "storage/key_store.h"
#include "storage/memory_event_log.h"
#include "sync/erasure.h"
#include "tests/support/actor_fixture.h"

namespace dfm {
namespace {

using testing::ActorTest;
using testing::kStart;
using testing::ScriptedClient;

constexpr char kPhone[] = "+12055550142";

// A person known from GoHighLevel and synced to Aloware, erased just after
// their STOP reached the log, before the sync read it.
class ErasureRaceTest : public ActorTest {
 protected:
  void SetUp() override {
    log_.SetKeyStore(keys_);
    env_->subject_hash_key = keys_->HashKey();
    router_ = StartPeopleSync(client_);
    DeliverWebhook(
        router_, "ghl", "ghl/ContactCreate.json",
        {{"webhookId", "w1"}, {"id", "g-1"}, {"phone", "(205) 555-0142"}, {"firstName", "Ada"}},
        "w1");
    ASSERT_EQ(client_->pushes.size(), 1u);
    contact_ = client_->pushes[0].req.contact_id;
    client_->Answer(0, 200, "alo-1");
    sched_->run();
    stop_seq_ = AppendUnrouted("verity", "v-stop", "verity/message.stop.json",
                               {{"messageId", "v1"},
                                {"from", kPhone},
                                {"body", "STOP"},
                                {"timestamp", "2026-11-20T18:05:00.000Z"}});
  }

  // `system`'s webhook `id` (`fixture`, some values replaced) appended, not
  // routed: its sequence number.
  uint64_t AppendUnrouted(const std::string& system, const std::string& id,
                          const std::string& fixture,
                          const std::vector<std::pair<std::string, std::string>>& values) {
    WebhookReceived w;
    w.system = system;
    w.provider_event_id = id;
    AppendOutcome out;
    EXPECT_TRUE(log_.Append(WebhookDraft("default", w, GhlBody(fixture, values)), &out).ok());
    return out.seq;
  }

  EraseRequest Request() {
    EraseRequest r{"default", contact_, "test", "test", &env_->mapper};
    return r;
  }

  // The person's sms consent as the erasure kept it, null when it kept none.
  const ErasedSubject* SmsSubject(const Erasure& e) {
    const std::string hash = SubjectHash(keys_->HashKey(), "default", kPhone);
    for (const ErasedSubject& s : e.subjects)
      if (s.hash == hash && s.channel == "sms") return &s;
    return nullptr;
  }

  bool OptOutPushed() {
    for (const auto& call : client_->pushes)
      if (call.req.op == "opt_out") return true;
    return false;
  }

  std::shared_ptr<MemoryKeyStore> keys_ = std::make_shared<MemoryKeyStore>();
  std::shared_ptr<ScriptedClient> client_ = std::make_shared<ScriptedClient>();
  caf::actor router_;
  std::string contact_;
  uint64_t stop_seq_ = 0;
};

// With the sync running, the erasure waits for it to decide the STOP: the
// opt-out is the person's standing consent and reaches Aloware (which the
// erasure waits for too: ErasureTest.AnErasureWaitsForTheConsentPushesOnTheirWay).
TEST_F(ErasureRaceTest, AStopJustReceivedIsDecidedBeforeTheErasure) {
  int waits = 0;
  EraseRequest r = Request();
  r.wait_decided = [&](const std::vector<uint64_t>& seqs) {
    ++waits;
    EXPECT_EQ(seqs, std::vector<uint64_t>{stop_seq_});
    const uint64_t seq = seqs.back();
    caf::anon_send(router_, poll_atom::value);
    sched_->run();
    Advance(1'000'000);  // the router commits its checkpoint
    uint64_t at = 0;
    EXPECT_TRUE(log_.ReadCheckpoint(kRouterConsumer, &at).ok());
    return at >= seq ? Status::OK() : Status::Unavailable("not decided");
  };
  EraseOutcome erased;
  EXPECT_TRUE(EraseContact(&log_, keys_.get(), r, &erased).IsFailedPrecondition())
      << "the opt-out to Aloware is on its way";
  ASSERT_EQ(client_->pushes.size(), 2u);
  client_->Answer(1, 200, "alo-1");  // it lands
  sched_->run();
  ASSERT_TRUE(EraseContact(&log_, keys_.get(), r, &erased).ok());
  EXPECT_EQ(waits, 1) << "decided at the first erasure's wait";
  const ErasedSubject* sms = SmsSubject(erased.erasure);
  ASSERT_NE(sms, nullptr) << "the STOP is not among the person's consent";
  EXPECT_TRUE(sms->out);
  EXPECT_NE(sms->seq, stop_seq_) << "kept from the decision, not the webhook";
  EXPECT_TRUE(OptOutPushed()) << "Aloware was not told";
}

// Without the sync ([sync] enabled = false), the STOP's opt-out is kept as
// it stands in the webhook: its key goes with the person's.
TEST_F(ErasureRaceTest, WithoutTheSyncAStopNotDecidedIsStillKept) {
  EraseOutcome erased;
  ASSERT_TRUE(EraseContact(&log_, keys_.get(), Request(), &erased).ok());
  const ErasedSubject* sms = SmsSubject(erased.erasure);
  ASSERT_NE(sms, nullptr) << "the STOP is not among the person's consent";
  EXPECT_TRUE(sms->out);
  EXPECT_EQ(sms->seq, stop_seq_);
  EXPECT_EQ(sms->system, "verity");
}

// The same for a record found by its id alone (no phone or email in it):
// its opt-out is kept for the person's phone, as the sync would decide it.
TEST_F(ErasureRaceTest, WithoutTheSyncAnOptOutOfARecordWithNoPhoneIsKeptForThePersons) {
  const uint64_t dnd = AppendUnrouted("ghl", "w-dnd", "ghl/ContactDndUpdate.json",
                                      {{"webhookId", "w-dnd"},
                                       {"id", "g-1"},
                                       {"phone", ""},
                                       {"email", ""},
                                       {"timestamp", "2026-11-20T19:00:00.000Z"}});
  EraseOutcome erased;
  ASSERT_TRUE(EraseContact(&log_, keys_.get(), Request(), &erased).ok());
  const ErasedSubject* sms = SmsSubject(erased.erasure);
  ASSERT_NE(sms, nullptr);
  EXPECT_TRUE(sms->out);
  EXPECT_EQ(sms->seq, dnd) << "the later opt-out, GoHighLevel's";
  EXPECT_EQ(sms->system, "ghl");
}

// A sync that does not decide in time refuses the erasure with nothing
// done: the STOP is still there to decide.
TEST_F(ErasureRaceTest, AnErasureTheSyncDoesNotCatchUpWithIsRefusedWholly) {
  EraseRequest r = Request();
  r.wait_decided = [](const std::vector<uint64_t>&) {
    return Status::Unavailable("the sync is behind");
  };
  EraseOutcome erased;
  Status s = EraseContact(&log_, keys_.get(), r, &erased);
  EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
  for (const std::string& type : TypesIn("contact:")) EXPECT_NE(type, "contact.erased");
  caf::anon_send(router_, poll_atom::value);
  sched_->run();
  EXPECT_TRUE(OptOutPushed()) << "the STOP was lost";
}

// An upsert waiting for its retry (the vendor answered 503) when the
// person is erased: it never goes (it would make the person again in the
// vendor, whose webhook would bring them back here).
TEST_F(ActorTest, AnErasedPersonsPushWaitingForItsRetryNeverGoes) {
  auto keys = std::make_shared<MemoryKeyStore>();
  log_.SetKeyStore(keys);
  env_->subject_hash_key = keys->HashKey();
  auto client = std::make_shared<ScriptedClient>();
  caf::actor router = StartPeopleSync(client);
  DeliverWebhook(
      router, "ghl", "ghl/ContactCreate.json",
      {{"webhookId", "w1"}, {"id", "g-1"}, {"phone", "(205) 555-0142"}, {"firstName", "Ada"}},
      "w1");
  ASSERT_EQ(client->pushes.size(), 1u);
  const std::string contact = client->pushes[0].req.contact_id;
  client->Answer(0, 503);  // retried after a backoff
  sched_->run();
  EraseOutcome erased;
  ASSERT_TRUE(
      EraseContact(&log_, keys.get(), {"default", contact, "test", "test", {}}, &erased).ok());
  caf::anon_send(router, poll_atom::value);
  sched_->run();
  Advance(Backoff().max_us + 10'000'000);
  EXPECT_EQ(client->pushes.size(), 1u) << "the erased person's upsert went again";
}

// What an erased person said of their consent still lands: only their
// other pushes are dropped.
TEST_F(ActorTest, AnErasureDropsThePersonsPushesButTheirConsent) {
  auto client = std::make_shared<ScriptedClient>();
  auto c = Connector(client);
  PushOrder out = Order("p-out", "c1", /*priority=*/10);
  out.request.op = "opt_out";
  out.request.channel = "sms";
  caf::anon_send(c, Order("p-up", "c1"));
  caf::anon_send(c, Order("p-other", "c2"));
  caf::anon_send(c, out);
  sched_->run();
  size_t answered = 0;  // every attempt so far answered `status`
  auto answer = [&](int status) {
    for (; answered < client->pushes.size(); ++answered) client->Answer(answered, status, "x-1");
    sched_->run();
  };
  answer(503);
  answer(503);  // the opt-out, gone ahead of the upsert's retry: the breaker opens
  const size_t before = client->pushes.size();
  caf::anon_send(c, PushCancel{"default", "", "the contact was erased", "c1"});
  sched_->run();
  Advance(Backoff().max_us + 10'000'000);
  answer(200);  // the breaker's trial: the rest go
  Advance(Backoff().max_us + 10'000'000);
  std::set<std::string> after;
  for (size_t i = before; i < client->pushes.size(); ++i)
    after.insert(client->pushes[i].req.push_id);
  EXPECT_EQ(after.count("p-up"), 0u) << "the erased person's upsert went";
  EXPECT_EQ(after.count("p-out"), 1u) << "their opt-out is kept";
  EXPECT_EQ(after.count("p-other"), 1u) << "another person's push is kept";
}

// The erasure reaches the contact's actor while its append is under way:
// the pushes that append asks for are not ordered once it lands (the
// router's cancel may have reached the connector before them).
TEST_F(ActorTest, PushesDecidedBeforeAnErasureButDurableAfterItAreNotOrdered) {
  env_->ctx.targets = {{"aloware", {"first_name", "phone"}}};
  auto client = std::make_shared<ScriptedClient>();
  env_->connectors[{"default", "aloware"}] = Connector(client);
  auto answers = std::make_shared<std::vector<uint64_t>>();
  auto contact = LoneContact(answers);
  ContactFact f;
  f.tenant = "default";
  f.system = "ghl";
  f.external_id = "g-1";
  f.fields = {{"first_name", "Ada"}, {"phone", "+12055550142"}};
  f.source_time_us = kStart;
  f.webhook_seq = 1;
  log_.StallWrites(true);
  caf::anon_send(contact, RoutedFact{f, 1});
  sched_->run();
  ASSERT_EQ(log_.Stalled(), 1u) << "the decision's append under way";
  caf::anon_send(contact, erase_atom::value);
  sched_->run();
  log_.StallWrites(false);
  ASSERT_TRUE(log_.ReleaseStalled());
  sched_->run();
  EXPECT_TRUE(client->pushes.empty()) << "an erased person's upsert was ordered";
  EXPECT_EQ(answers->size(), 1u) << "the fact is still answered";
}

// The service's wait: until the router's checkpoint reaches the webhook,
// within one budget for the whole erasure.
TEST(RouterWaiterTest, WaitsForTheCheckpointWithinItsBudget) {
  MemoryEventLog log;
  auto wait = RouterWaiter(&log, std::chrono::seconds(5));
  std::thread router([&log] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    EXPECT_TRUE(log.CommitConsumer(kRouterConsumer, 7, {}).ok());
  });
  EXPECT_TRUE(wait({3, 7}).ok());
  router.join();
  auto short_wait = RouterWaiter(&log, std::chrono::milliseconds(120));
  const auto start = std::chrono::steady_clock::now();
  Status s = short_wait({5, 8});
  EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
  EXPECT_NE(s.message().find("webhook 8"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("decided up to 7"), std::string::npos) << s.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));

  // By the router's word: a webhook held for a contact waits, the others
  // up to where it has decided do not.
  DecidedView view;
  view.now.through = 9;
  view.now.held = std::make_shared<std::set<uint64_t>>(std::set<uint64_t>{5, 8});
  auto by_router = RouterWaiter([&view] { return view; }, std::chrono::milliseconds(60));
  EXPECT_TRUE(by_router({3, 6, 9}).ok());
  s = by_router({3, 5});
  EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
  EXPECT_NE(s.message().find("webhook 5"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("a contact the sync holds"), std::string::npos) << s.ToString();
  view.AddCheckpoint(5);  // the router's checkpoint passed it meanwhile
  EXPECT_TRUE(view.Has(5));
  EXPECT_FALSE(view.Has(8));
  // Its reading begun again from the checkpoint: what the reading before
  // decided stays decided, what it held does not.
  view.before = view.now;
  view.now = {};
  view.now.through = 6;
  EXPECT_TRUE(view.Has(9)) << "decided by the reading before";
  EXPECT_FALSE(view.Has(8));
  EXPECT_FALSE(view.Has(10));
}

// A contact the router holds (its stream cannot be read) keeps the
// router's checkpoint before its webhooks, but not another person's
// erasure: the webhooks about that person (one that changed nothing, so
// their stream does not name it) are decided, by the router's own word,
// and the erasure goes on.
TEST_F(ActorTest, AContactHeldDoesNotHoldBackAnotherPersonsErasure) {
  auto keys = std::make_shared<MemoryKeyStore>();
  log_.SetKeyStore(keys);
  env_->subject_hash_key = keys->HashKey();
  auto client = std::make_shared<ScriptedClient>();
  auto router = StartPeopleSync(client);
  const std::vector<std::string> streams = AnnAndBoSyncedThenIdle(router, client.get());
  ASSERT_EQ(streams.size(), 2u);
  SyncProjections proj;
  ProjectionRunner projections(&log_, proj.All());
  ASSERT_TRUE(projections.CatchUp().ok());
  log_.FailStreamReadsOf(streams[0], true);
  const uint64_t ann_edit = AppendPersonWebhook("a", "1", "Anna");
  const uint64_t bo_again = AppendPersonWebhook("b", "1", "Bo");  // the same again: no change
  caf::anon_send(router, poll_atom::value);
  sched_->run();
  Advance(env_->append_retry_us);  // the first failure read again at once; the second holds
  ASSERT_EQ(env_->board->router.contacts_held.load(), 1u);
  Advance(env_->append_retry_us);  // the others read again (Ann's hold lasts 1 s)
  Advance(250'000);                // the router commits its checkpoint
  uint64_t checkpoint = 0;
  ASSERT_TRUE(log_.ReadCheckpoint(kRouterConsumer, &checkpoint).ok());
  ASSERT_LT(checkpoint, ann_edit);
  ASSERT_GT(bo_again, ann_edit);

  auto request = [&](const std::string& stream) {
    EraseRequest r{"default", stream.substr(std::string("contact:").size()), "test", "test",
                   &env_->mapper};
    r.decided = [this] {
      DecidedView v = env_->board->router.Decided();
      v.AddCheckpoint(CheckpointView(&log_).checkpoint);
      return v;
    };
    r.wait_decided = RouterWaiter(r.decided, std::chrono::milliseconds(100));
    return r;
  };
  const DecidedView view = env_->board->router.Decided();
  EXPECT_FALSE(view.Has(ann_edit)) << "Ann's webhook waits for her";
  EXPECT_TRUE(view.Held(ann_edit));
  EXPECT_TRUE(view.Has(bo_again));
  EraseRequest by_checkpoint = request(streams[1]);
  by_checkpoint.decided = nullptr;
  by_checkpoint.wait_decided = RouterWaiter(&log_, std::chrono::milliseconds(100));
  EraseOutcome erased;
  Status s = EraseContact(&log_, keys.get(), by_checkpoint, &erased);
  EXPECT_TRUE(s.IsUnavailable()) << "the checkpoint alone waits for Ann: " << s.ToString();
  EXPECT_NE(s.message().find("webhook " + std::to_string(bo_again)), std::string::npos)
      << s.ToString();

  s = EraseContact(&log_, keys.get(), request(streams[1]), &erased);
  EXPECT_TRUE(s.ok()) << s.ToString();

  // Ann's hold ends, her stream still unreadable: the router reads again
  // from its checkpoint, before Bo's webhook, and holds her again; what it
  // decided stays so all along.
  const uint64_t reads = log_.StreamReads(streams[0]);
  for (int i = 0; i < 30; ++i) {
    Advance(100'000);
    ASSERT_TRUE(env_->board->router.Decided().Has(bo_again)) << i * 100 << " ms";
    ASSERT_FALSE(env_->board->router.Decided().Has(ann_edit));
  }
  EXPECT_GT(log_.StreamReads(streams[0]), reads) << "read again";
}

// The router's readings merged at each read again: what either decided
// stays decided (a webhook the newer one holds that the older decided, and
// the other way), what both hold or neither read does not.
TEST(RouterStatusTest, WhatAnyReadingDecidedStaysDecided) {
  RouterStatus b;
  b.SetDecided(9, 1, std::map<uint64_t, int>{{5, 1}});
  b.ReadAgain();
  b.SetDecided(12, 2, std::map<uint64_t, int>{{7, 1}, {11, 1}});
  b.ReadAgain();
  b.SetDecided(3, 3, std::map<uint64_t, int>{});
  const DecidedView v = b.Decided();
  EXPECT_TRUE(v.Has(5)) << "decided by the second reading";
  EXPECT_TRUE(v.Has(7)) << "decided by the first";
  EXPECT_FALSE(v.Has(11)) << "held, and past the first";
  EXPECT_TRUE(v.Has(12));
  EXPECT_FALSE(v.Has(13));
}

// Facts routed before the erasure, waiting behind an append, are decided
// against the person as they were (then forgotten), not against nobody.
TEST_F(ActorTest, FactsRoutedBeforeAnErasureAreDecidedBeforeItsForgetting) {
  env_->ctx.targets = {{"aloware", {"first_name", "phone"}}};
  auto client = std::make_shared<ScriptedClient>();
  env_->connectors[{"default", "aloware"}] = Connector(client);
  auto answers = std::make_shared<std::vector<uint64_t>>();
  auto contact = LoneContact(answers);
  auto fact = [](uint64_t n, std::map<std::string, std::string> fields) {
    ContactFact f;
    f.tenant = "default";
    f.system = "ghl";
    f.external_id = "g-1";
    f.fields = std::move(fields);
    f.source_time_us = kStart + static_cast<int64_t>(n);
    f.webhook_seq = n;
    return RoutedFact{f, n};
  };
  caf::anon_send(contact, fact(1, {{"first_name", "Ada"}, {"phone", "+12055550142"}}));
  sched_->run();
  log_.StallWrites(true);
  caf::anon_send(contact, fact(2, {{"first_name", "Adele"}}));
  sched_->run();
  ASSERT_EQ(log_.Stalled(), 1u) << "the second decision's append under way";
  caf::anon_send(contact, fact(3, {{"phone", "+12055550142"}}));  // nothing new
  caf::anon_send(contact, erase_atom::value);
  sched_->run();
  log_.StallWrites(false);
  ASSERT_TRUE(log_.ReleaseStalled());
  sched_->run();
  std::vector<Event> all;
  ASSERT_TRUE(log_.Read(1, 1000, &all).ok());
  int third = 0;
  for (const Event& e : all) {
    DomainEvent d;
    if (e.type != ev::kContactChanged || !AsDomainEvent(e, &d) || d.webhook_seq != 3) continue;
    ++third;
    EXPECT_TRUE(d.changes.empty()) << "the third fact was decided against nobody: " << e.payload;
  }
  EXPECT_EQ(third, 1);
  EXPECT_EQ(answers->size(), 3u);
}

}  // namespace
}  // namespace dfm
