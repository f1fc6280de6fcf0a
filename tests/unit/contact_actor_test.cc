// A contact actor's start from its snapshot (actors/contact_actor.h,
// sync/contact_snapshot.h), on CAF's test coordinator.
#include "events/sealing.h"
#include "storage/snapshot_store.h"
#include "sync/contact_snapshot.h"
#include "tests/support/actor_fixture.h"

namespace dfm {
namespace {

using testing::ActorTest;
using testing::ScriptedClient;

class ContactSnapshotActorTest : public ActorTest {
 protected:
  ContactSnapshotActorTest() {
    env_->ctx.targets["aloware"] = {"first_name", "last_name", "email", "phone"};
    env_->snapshots = &store_;
  }
  ~ContactSnapshotActorTest() override { env_->snapshots = nullptr; }

  // The one contact stream's contact id.
  std::string OnlyContact() {
    std::vector<Event> all;
    EXPECT_TRUE(log_.Read(1, 100000, &all).ok());
    for (const auto& e : all)
      if (e.stream.rfind("contact:", 0) == 0) return e.stream.substr(8);
    return "";
  }

  // A contact actor started as the router starts one at service start
  // (`redrive`: it hands its unsettled pushes to their connectors).
  caf::actor SpawnContact(const std::string& contact_id) {
    auto sink = ReportSink();
    auto a = Keep(sys_->spawn(ContactActor, std::shared_ptr<const SyncEnv>(env_), sink,
                              std::string("default"), contact_id, /*redrive=*/true));
    sched_->run();
    return a;
  }

  SnapshotStore store_{&log_, std::string(kContactSnapshotConsumer)};
};

// The passivation flow of ActorTest.ContactsArePassivatedWhenIdleAndRecover-
// FromTheirStream, with snapshots: the same events, and the contact that
// comes back after passivation starts from the snapshot it left.
TEST_F(ContactSnapshotActorTest, PassivatedContactLeavesASnapshotAndDecidesAsBefore) {
  auto client = std::make_shared<ScriptedClient>();
  auto router = StartSyncTo(client);
  RouteGhlWebhook(router, "w-1", "John");
  ASSERT_EQ(client->pushes.size(), 1u);
  store_.Flush();
  EXPECT_EQ(store_.written(), 0u) << "512 events are not reached: no snapshot yet";
  Advance(env_->contact_idle_us);  // passivated: a snapshot is put
  store_.Flush();
  EXPECT_EQ(store_.written(), 1u);
  std::string bytes;
  ASSERT_TRUE(store_.Get(ContactSnapshotKey("default", OnlyContact()), &bytes).ok());
  ContactState s;
  std::vector<OutstandingPush> outstanding;
  ASSERT_TRUE(DecodeContactSnapshot(bytes, &s, &outstanding).ok());
  EXPECT_TRUE(s.exists);
  EXPECT_EQ(s.last_event_seq, log_.LastSequence());
  ASSERT_EQ(outstanding.size(), 1u) << "the push not yet answered";
  EXPECT_EQ(outstanding[0].request.system, "aloware");

  client->Answer(0, 201, "7000001");
  sched_->run();
  AppendGhlWebhook("ghl/ContactCreate.json", "w-2", "Johnny");
  caf::anon_send(router, poll_atom::value);
  sched_->run();
  EXPECT_EQ(TypesIn("contact:"),
            (std::vector<std::string>{"contact.created", "push.requested", "push.attempted",
                                      "push.succeeded", "contact.changed", "push.requested"}));
}

// What a start takes from the snapshot: the state and the pushes to hand
// on again (here a contact with no stream at all: everything it knows is
// the snapshot's). A snapshot past the log's head (the log was recovered
// shorter since) or a damaged one is not used.
TEST_F(ContactSnapshotActorTest, StartTakesStateAndUnsettledPushesFromTheSnapshot) {
  auto client = std::make_shared<ScriptedClient>();
  env_->connectors[{"default", "aloware"}] = Connector(client);
  AppendGhlWebhook("ghl/ContactCreate.json", "w-0", "Ada");  // the log's head: seq 1
  auto put = [&](const std::string& contact, uint64_t seq, const std::string& push_id) {
    ContactState s;
    s.contact_id = contact;
    s.exists = true;
    s.last_event_seq = seq;
    OutstandingPush o;
    o.request.type = std::string(ev::kPushRequested);
    o.request.contact_id = contact;
    o.request.system = "aloware";
    o.request.op = "upsert";
    o.request.push_id = push_id;
    o.request.fields = {{"phone", "+12055550142"}};
    s.pending["aloware"]["phone"] = "+12055550142";
    store_.Put(ContactSnapshotKey("default", contact), seq, EncodeContactSnapshot(s, {o}));
  };
  put("c-snap", 1, "c-snap:aloware:1:upsert");
  put("c-ahead", 2, "c-ahead:aloware:2:upsert");
  store_.Put(ContactSnapshotKey("default", "c-damaged"), 1, "DFCS\x01");
  store_.Flush();
  SpawnContact("c-snap");
  SpawnContact("c-ahead");
  SpawnContact("c-damaged");
  ASSERT_EQ(client->pushes.size(), 1u) << "only the usable snapshot's push is handed on";
  EXPECT_EQ(client->pushes[0].req.push_id, "c-snap:aloware:1:upsert");
}

// A mark_dnc an earlier build asked of a system that takes no marks
// (HaloPSA, Genesys: refused there, and an opt-out push is never given up
// on) is settled at the start instead of handed on: push.dead_lettered,
// outcome "withdrawn". A mark to a system that takes them goes as before.
// The settling is the actor's own work: the contact still passivates
// (the router's handshake counts only what the router sent it), leaving
// the open Aloware mark alone in its snapshot.
TEST_F(ContactSnapshotActorTest, AStartWithdrawsAMarkItsSystemTakesNoneOf) {
  env_->ctx.targets["halopsa"] = {"email"};
  env_->ctx.marks_dnc = {"aloware"};
  env_->ctx.takes_no_marks = {"halopsa"};
  auto aloware = std::make_shared<ScriptedClient>();
  auto halopsa = std::make_shared<ScriptedClient>();
  env_->connectors[{"default", "aloware"}] = Connector(aloware);
  env_->connectors[{"default", "halopsa"}] = Connector(halopsa);
  AppendGhlWebhook("ghl/ContactCreate.json", "w-0", "Ada");  // seq 1
  ContactState s;
  s.contact_id = "c-del";
  s.exists = true;
  s.deleted = true;
  s.last_event_seq = 1;
  auto mark = [](const std::string& system) {
    OutstandingPush o;
    o.request.type = std::string(ev::kPushRequested);
    o.request.contact_id = "c-del";
    o.request.system = system;
    o.request.op = "mark_dnc";
    o.request.external_id = "77";
    o.request.push_id = "c-del:" + system + ":1:0";
    return o;
  };
  store_.Put(ContactSnapshotKey("default", "c-del"), 1,
             EncodeContactSnapshot(s, {mark("aloware"), mark("halopsa")}));
  store_.Flush();
  // A router that agrees to every passivation, keeping what it was told.
  auto told = std::make_shared<std::vector<uint64_t>>();
  auto router = Keep(sys_->spawn(
      [](caf::event_based_actor*, std::shared_ptr<std::vector<uint64_t>> t) -> caf::behavior {
        return {[](started_atom) {},
                [t](passivate_atom, const std::string&, const std::string&, uint64_t received) {
                  t->push_back(received);
                  return true;
                }};
      },
      told));
  Keep(sys_->spawn(ContactActor, std::shared_ptr<const SyncEnv>(env_), router,
                   std::string("default"), std::string("c-del"), /*redrive=*/true));
  sched_->run();
  ASSERT_EQ(aloware->pushes.size(), 1u);
  EXPECT_EQ(aloware->pushes[0].req.op, "mark_dnc");
  EXPECT_TRUE(halopsa->pushes.empty()) << "HaloPSA is not asked the mark again";
  std::vector<Event> all;
  ASSERT_TRUE(log_.Read(1, 100000, &all).ok());
  std::vector<DomainEvent> dead;
  for (const auto& e : all) {
    if (e.type != ev::kPushDeadLettered) continue;
    DomainEvent d;
    ASSERT_TRUE(DecodeDomainEvent(e.type, e.payload, &d).ok());
    EXPECT_EQ(e.stream, ContactStream("c-del"));
    dead.push_back(d);
  }
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].push_id, "c-del:halopsa:1:0");
  EXPECT_EQ(dead[0].outcome, "withdrawn");

  const uint64_t written = store_.written();
  Advance(env_->contact_idle_us + 1);
  store_.Flush();
  EXPECT_EQ(*told, (std::vector<uint64_t>{0})) << "nothing came from the router";
  ASSERT_EQ(store_.written(), written + 1) << "passivated, its snapshot put";
  std::string bytes;
  ASSERT_TRUE(store_.Get(ContactSnapshotKey("default", "c-del"), &bytes).ok());
  ContactState after;
  std::vector<OutstandingPush> open;
  ASSERT_TRUE(DecodeContactSnapshot(bytes, &after, &open).ok());
  ASSERT_EQ(open.size(), 1u) << "the withdrawn mark is settled";
  EXPECT_EQ(open[0].request.system, "aloware");
}

// A snapshot older than the person's erasure (restored with a backup, or
// written by an actor that had not heard of it yet) is not their state:
// the start meets contact.erased after it and forgets them, their pushes
// included, and makes no snapshot of them again.
TEST_F(ContactSnapshotActorTest, AStartThatMeetsTheErasureAfterItsSnapshotForgetsThePerson) {
  auto client = std::make_shared<ScriptedClient>();
  env_->connectors[{"default", "aloware"}] = Connector(client);
  AppendGhlWebhook("ghl/ContactCreate.json", "w-0", "Ada");  // seq 1
  ContactState s;
  s.contact_id = "c-gone";
  s.exists = true;
  s.last_event_seq = 1;
  OutstandingPush o;
  o.request.type = std::string(ev::kPushRequested);
  o.request.contact_id = "c-gone";
  o.request.system = "aloware";
  o.request.op = "upsert";
  o.request.push_id = "c-gone:aloware:1:upsert";
  o.request.fields = {{"phone", "+12055550142"}};
  store_.Put(ContactSnapshotKey("default", "c-gone"), 1, EncodeContactSnapshot(s, {o}));
  store_.Flush();
  EventDraft erased;
  erased.tenant = "default";
  erased.stream = ContactStream("c-gone");
  erased.type = std::string(kContactErasedType);
  erased.payload = "{}";
  AppendOutcome out;
  ASSERT_TRUE(log_.Append(std::move(erased), &out).ok());
  const uint64_t written = store_.written();
  SpawnContact("c-gone");
  EXPECT_TRUE(client->pushes.empty()) << "the erased person's push is not handed on";
  Advance(env_->contact_idle_us + 1);  // idle: it would passivate with a snapshot
  store_.Flush();
  EXPECT_EQ(store_.written(), written) << "no snapshot of an erased person is made";
}

// A contact that applies snapshot_every events keeps a snapshot without
// passivating, and the one it keeps reads back as its state.
TEST_F(ContactSnapshotActorTest, ABusyContactKeepsSnapshotsAsItGoes) {
  env_->snapshot_every = 4;
  auto client = std::make_shared<ScriptedClient>();
  auto router = StartSyncTo(client);
  RouteGhlWebhook(router, "w-1", "John");
  client->Answer(0, 201, "7000001");
  sched_->run();
  store_.Flush();
  EXPECT_GE(store_.written(), 1u);
  std::string bytes;
  ASSERT_TRUE(store_.Get(ContactSnapshotKey("default", OnlyContact()), &bytes).ok());
  ContactState s;
  std::vector<OutstandingPush> outstanding;
  ASSERT_TRUE(DecodeContactSnapshot(bytes, &s, &outstanding).ok());
  EXPECT_EQ(s.links.at("aloware"), "7000001");
  EXPECT_TRUE(outstanding.empty());
  EXPECT_EQ(s.last_event_seq, log_.LastSequence());
}

// A contact that falls idle after each of many facts keeps one idle timer
// on CAF's clock, not one per fact (each held its message until due), and
// still passivates exactly contact_idle_us after its last work.
TEST_F(ContactSnapshotActorTest, AContactKeepsOneIdleTimerAndPassivatesAfterItsLastWork) {
  auto client = std::make_shared<ScriptedClient>();
  auto router = StartSyncTo(client);
  RouteGhlWebhook(router, "w-0", "John");
  ASSERT_EQ(client->pushes.size(), 1u);
  client->Answer(0, 201, "7000001");
  sched_->run();
  const size_t timers = sched_->clock().schedule().size();
  for (int i = 1; i <= 20; ++i) {
    Advance(1'000'000);
    RouteGhlWebhook(router, "w-" + std::to_string(i), "John" + std::to_string(i));
    ASSERT_EQ(client->pushes.size(), static_cast<size_t>(i + 1));
    client->Answer(static_cast<size_t>(i), 200, "7000001");
    sched_->run();
  }
  EXPECT_LE(sched_->clock().schedule().size(), timers + 1)
      << "a timer per fact: the clock holds every one until it is due";
  // The one timer, set 20 s before the last work, comes due 40 s after it
  // and is set again for the 20 s left.
  Advance(40'000'000);
  store_.Flush();
  EXPECT_EQ(store_.written(), 0u) << "passivated 40 s idle of 60";
  Advance(20'000'000 - 1);
  store_.Flush();
  EXPECT_EQ(store_.written(), 0u) << "passivated before it was idle long enough";
  Advance(1);
  store_.Flush();
  EXPECT_EQ(store_.written(), 1u) << "passivated (its snapshot put) once idle long enough";
}

// A timer that comes due while the contact is busy (its append refused by
// the log and tried again) passivates nothing; the idle time counts from
// the end of that work.
TEST_F(ContactSnapshotActorTest, AContactBusyWhenItsTimerComesDueCountsIdleFromItsWorksEnd) {
  auto client = std::make_shared<ScriptedClient>();
  auto router = StartSyncTo(client);
  RouteGhlWebhook(router, "w-0", "John");
  client->Answer(0, 201, "7000001");
  sched_->run();
  AppendGhlWebhook("ghl/ContactCreate.json", "w-1", "Johnny");
  log_.FailWrites(true);  // its decision cannot be appended: busy
  caf::anon_send(router, poll_atom::value);
  sched_->run();
  Advance(env_->contact_idle_us + 10'000'000);  // its timer came due meanwhile
  store_.Flush();
  EXPECT_EQ(store_.written(), 0u) << "passivated while its append was under way";
  log_.FailWrites(false);
  Advance(env_->append_retry_us);  // the append goes through, the push goes out
  ASSERT_EQ(client->pushes.size(), 2u);
  client->Answer(1, 200, "7000001");
  sched_->run();  // idle from here
  Advance(env_->contact_idle_us - 1);
  store_.Flush();
  EXPECT_EQ(store_.written(), 0u) << "passivated before it was idle long enough";
  Advance(1);
  store_.Flush();
  EXPECT_EQ(store_.written(), 1u) << "not passivated once idle long enough";
}

}  // namespace
}  // namespace dfm
