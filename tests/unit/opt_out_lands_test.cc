// Issue 46: an opt-out push is never given up on (actors/connector_actor.h):
// a refusal or exhausted retries keep it open, shown on the status board,
// until it lands or the person's own opt-in supersedes it.
#include "actors/status_board.h"
#include "connectors/ghl/every_record.h"
#include "console/status_view.h"
#include "tests/support/actor_fixture.h"

namespace dfm {
namespace {

using testing::ActorTest;
using testing::ScriptedClient;

PushOrder OptOut(PushOrder o, const std::string& op = "opt_out") {
  o.request.op = op;
  o.request.channel = "sms";
  o.request.priority = 10;
  return o;
}

std::vector<DomainEvent> Events(const std::vector<PushReport>& reports, std::string_view type) {
  std::vector<DomainEvent> out;
  for (const auto& r : reports)
    for (const auto& e : r.events)
      if (e.type == type) out.push_back(e);
  return out;
}

// "stop", the only push dead-lettered, was superseded, and "start" went
// at once, third to the vendor.
void ExpectStopSupersededAndStartSent(const std::vector<PushReport>& reports,
                                      const ScriptedClient& client) {
  auto dead = Events(reports, ev::kPushDeadLettered);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].push_id, "stop");
  EXPECT_EQ(dead[0].outcome, "superseded");
  ASSERT_EQ(client.pushes.size(), 3u) << "the opt-in goes at once";
  EXPECT_EQ(client.pushes[2].req.push_id, "start");
}

TEST_F(ActorTest, ARefusedOptOutIsKeptOpenAndTriedAgainUntilItLands) {
  auto client = std::make_shared<ScriptedClient>();
  auto status = std::make_shared<ConnectorStatus>();
  auto c = Connector(client, {}, status);
  caf::anon_send(c, OptOut(Order("stop", "c1")));
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 1u);
  const int64_t refused_at = clock_.NowMicros();
  client->Answer(0, 400);  // "This location does not allow duplicated contacts."
  sched_->run();
  EXPECT_TRUE(Events(*reports_, ev::kPushDeadLettered).empty()) << "never given up on";
  auto attempts = Events(*reports_, ev::kPushAttempted);
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].outcome, "refused");
  EXPECT_GT(attempts[0].next_attempt_us, clock_.NowMicros());
  EXPECT_EQ(status->opt_outs_refused.load(), 1u);
  EXPECT_EQ(status->opt_outs_refused_since_us.load(), refused_at);
  // Tried again, refused again, for as long as it takes: still one person.
  for (size_t i = 1; i < 6; ++i) {
    Advance(Backoff().max_us);
    ASSERT_EQ(client->pushes.size(), i + 1);
    client->Answer(i, 422);
    sched_->run();
  }
  EXPECT_EQ(status->opt_outs_refused.load(), 1u);
  EXPECT_EQ(status->opt_outs_refused_since_us.load(), refused_at) << "since the first refusal";
  Advance(Backoff().max_us);
  ASSERT_EQ(client->pushes.size(), 7u);
  client->Answer(6, 200, "ghl-1");  // the cause was fixed: it lands
  sched_->run();
  ASSERT_EQ(Events(*reports_, ev::kPushSucceeded).size(), 1u);
  EXPECT_EQ(status->opt_outs_refused.load(), 0u);
  EXPECT_EQ(status->opt_outs_refused_since_us.load(), 0);
  EXPECT_EQ(status->held.load(), 0u);
}

TEST_F(ActorTest, AnOptOutWhoseRetriesRunOutStaysOpenAnOrdinaryPushDoesNot) {
  auto client = std::make_shared<ScriptedClient>();
  ConnectorSettings s = Settings(client);
  s.backoff.max_attempts = 2;
  s.breaker_threshold = 1000;
  auto c = Connector(s);
  caf::anon_send(c, OptOut(Order("dnc", "c1"), "mark_dnc"));
  caf::anon_send(c, Order("up", "c2"));
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 2u);
  client->Answer(0, 503);
  client->Answer(1, 503);
  sched_->run();
  Advance(Backoff().max_us);
  ASSERT_EQ(client->pushes.size(), 4u);
  client->Answer(2, 503);
  client->Answer(3, 503);
  sched_->run();
  auto dead = Events(*reports_, ev::kPushDeadLettered);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].push_id, "up") << "the ordinary push is given up on";
  Advance(Backoff().max_us);
  ASSERT_EQ(client->pushes.size(), 5u) << "the opt-out is tried again";
  EXPECT_EQ(client->pushes[4].req.push_id, "dnc");
  client->Answer(4, 200, "ghl-1");
  sched_->run();
  EXPECT_EQ(Events(*reports_, ev::kPushSucceeded).size(), 1u);
}

TEST_F(ActorTest, AnOpenOptOutHoldsBackOnlyConsentAndAnOptInSupersedesIt) {
  auto client = std::make_shared<ScriptedClient>();
  auto status = std::make_shared<ConnectorStatus>();
  auto c = Connector(client, {}, status);
  caf::anon_send(c, OptOut(Order("stop", "c1")));
  sched_->run();
  client->Answer(0, 400);
  sched_->run();
  caf::anon_send(c, Order("name", "c1"));  // a later change of the same person
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 2u) << "an open refused opt-out does not hold back its other pushes";
  EXPECT_EQ(client->pushes[1].req.push_id, "name");
  client->Answer(1, 200, "ghl-1");
  sched_->run();
  PushOrder start = OptOut(Order("start", "c1"));
  start.request.op = "opt_in";
  caf::anon_send(c, start);
  sched_->run();
  ExpectStopSupersededAndStartSent(*reports_, *client);
  EXPECT_EQ(status->opt_outs_refused.load(), 0u);
  EXPECT_EQ(status->by_op[MetricPushOp("opt_out")].dead_lettered.load(), 0u) << "not given up: taken back";
}

// The person's START came while their STOP was still on its way (here in
// its backoff after a 503); the STOP is then refused for good. The opt-in
// supersedes it then, as it would have had it come after the refusal:
// before, it waited behind the open opt-out for ever.
TEST_F(ActorTest, AnOptInThatCameWhileTheOptOutWasOnItsWaySupersedesItsRefusal) {
  auto client = std::make_shared<ScriptedClient>();
  auto c = Connector(client);
  caf::anon_send(c, OptOut(Order("stop", "c1")));
  sched_->run();
  client->Answer(0, 503);  // tried again after its backoff
  sched_->run();
  PushOrder start = OptOut(Order("start", "c1"));
  start.request.op = "opt_in";
  caf::anon_send(c, start);
  sched_->run();
  EXPECT_EQ(client->pushes.size(), 1u) << "consent pushes stay in order";
  Advance(Backoff().max_us);
  ASSERT_EQ(client->pushes.size(), 2u);
  EXPECT_EQ(client->pushes[1].req.push_id, "stop");
  client->Answer(1, 400);  // refused for good
  sched_->run();
  ExpectStopSupersededAndStartSent(*reports_, *client);
}

// As the contact actor asks them: opt-outs and opt-ins urgent, a mark not.
PushOrder Consent(PushOrder o, const std::string& op, const std::string& channel) {
  o = OptOut(std::move(o), op);
  o.request.channel = channel;
  if (op == "mark_dnc") o.request.priority = 0;
  return o;
}

// Behind an open refused opt-out only what must follow it waits: an opt-in
// of one of its channels, and the person's statements after that opt-in
// that do not commute with it. A mark, or a statement about another
// channel, goes at once.
TEST_F(ActorTest, AnOpenOptOutHoldsBackOnlyTheStatementsThatMustFollowIt) {
  auto client = std::make_shared<ScriptedClient>();
  auto c = Connector(client);
  caf::anon_send(c, Consent(Order("stop", "c1"), "opt_out", "sms,call"));
  sched_->run();
  client->Answer(0, 400);  // refused: open
  sched_->run();
  caf::anon_send(c, Consent(Order("dnc", "c1"), "mark_dnc", ""));
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 2u) << "a further restriction passes the refused one";
  EXPECT_EQ(client->pushes[1].req.push_id, "dnc");
  client->Answer(1, 200, "ghl-1");
  sched_->run();
  caf::anon_send(c, Consent(Order("email-in", "c1"), "opt_in", "email"));
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 3u) << "an opt-in of another channel";
  EXPECT_EQ(client->pushes[2].req.push_id, "email-in");
  client->Answer(2, 200, "ghl-1");
  sched_->run();
  // An opt-in that does not cover "call" waits, and the STOP after it too.
  caf::anon_send(c, Consent(Order("start", "c1"), "opt_in", "sms"));
  caf::anon_send(c, Consent(Order("stop-again", "c1"), "opt_out", "sms"));
  caf::anon_send(c, Consent(Order("email-out", "c1"), "opt_out", "email"));
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 4u) << "only the email opt-out commutes with all before it";
  EXPECT_EQ(client->pushes[3].req.push_id, "email-out");
  client->Answer(3, 200, "ghl-1");
  sched_->run();
  Advance(Backoff().max_us);
  ASSERT_EQ(client->pushes.size(), 5u);
  EXPECT_EQ(client->pushes[4].req.push_id, "stop");
  client->Answer(4, 200, "ghl-1");  // it lands: the rest follow in order
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 6u);
  EXPECT_EQ(client->pushes[5].req.push_id, "start");
  client->Answer(5, 200, "ghl-1");
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 7u);
  EXPECT_EQ(client->pushes[6].req.push_id, "stop-again");
  EXPECT_TRUE(Events(*reports_, ev::kPushDeadLettered).empty());
}

// A deletion's mark the vendor refuses (no opt-in or STOP supersedes a
// mark) kept the person's later STOP there out for as long as it stayed
// refused: the STOP now goes at once, and an opt-in still waits for it.
TEST_F(ActorTest, ARefusedMarkNeverKeepsALaterOptOutOut) {
  auto client = std::make_shared<ScriptedClient>();
  auto c = Connector(client);
  caf::anon_send(c, Consent(Order("dnc", "c1"), "mark_dnc", ""));
  sched_->run();
  client->Answer(0, 422);
  sched_->run();
  caf::anon_send(c, Consent(Order("stop", "c1"), "opt_out", "sms"));
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 2u);
  EXPECT_EQ(client->pushes[1].req.push_id, "stop");
  client->Answer(1, 200, "ghl-1");
  sched_->run();
  EXPECT_EQ(Events(*reports_, ev::kPushSucceeded).size(), 1u);
  caf::anon_send(c, Consent(Order("start", "c1"), "opt_in", "sms"));
  sched_->run();
  EXPECT_EQ(client->pushes.size(), 2u) << "an opt-in waits for the mark of every channel";
  Advance(Backoff().max_us);
  ASSERT_EQ(client->pushes.size(), 3u);
  EXPECT_EQ(client->pushes[2].req.push_id, "dnc");
}

// A deletion's mark is asked for at the ordinary priority (MarkDnc), the
// person's opt-in after it at the urgent one: waiting together behind the
// contact's push in flight, the opt-in went first, and the mark then set
// do-not-contact over it. Every opt-out push waits with the urgent ones,
// in the order they were asked for.
TEST_F(ActorTest, AnOptInNeverPassesAnEarlierMarkOfItsContact) {
  auto client = std::make_shared<ScriptedClient>();
  auto c = Connector(client);
  caf::anon_send(c, Order("edit", "c1"));
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 1u);
  caf::anon_send(c, Consent(Order("dnc", "c1"), "mark_dnc", ""));
  caf::anon_send(c, Consent(Order("start", "c1"), "opt_in", "sms"));
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 1u) << "both wait for the push in flight";
  client->Answer(0, 200, "ghl-1");
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 2u);
  EXPECT_EQ(client->pushes[1].req.push_id, "dnc") << "asked for first: it goes first";
  client->Answer(1, 200, "ghl-1");
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 3u);
  EXPECT_EQ(client->pushes[2].req.push_id, "start");
}

// The same when the mark goes back to its queue (a 503: tried again after
// its backoff): it goes back with the urgent ones, still ahead of the
// opt-in.
TEST_F(ActorTest, AnOptInNeverPassesAMarkGoneBackToItsQueue) {
  auto client = std::make_shared<ScriptedClient>();
  auto c = Connector(client);
  caf::anon_send(c, Consent(Order("dnc", "c1"), "mark_dnc", ""));
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 1u);
  caf::anon_send(c, Consent(Order("start", "c1"), "opt_in", "sms"));
  sched_->run();
  client->Answer(0, 503);
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 1u) << "the opt-in waits for the mark's retry";
  Advance(Backoff().max_us);
  ASSERT_EQ(client->pushes.size(), 2u);
  EXPECT_EQ(client->pushes[1].req.push_id, "dnc");
  client->Answer(1, 200, "ghl-1");
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 3u);
  EXPECT_EQ(client->pushes[2].req.push_id, "start");
}

TEST_F(ActorTest, ARepeatedOptOutReplacesAnOpenRefusedOneAtOnce) {
  auto client = std::make_shared<ScriptedClient>();
  auto c = Connector(client);
  caf::anon_send(c, OptOut(Order("stop1", "c1")));
  sched_->run();
  client->Answer(0, 422);
  sched_->run();
  caf::anon_send(c, OptOut(Order("stop2", "c1")));  // the person texts STOP again
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 2u) << "not after the open one's long wait";
  EXPECT_EQ(client->pushes[1].req.push_id, "stop2");
  auto dead = Events(*reports_, ev::kPushDeadLettered);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].push_id, "stop1");
  EXPECT_EQ(dead[0].outcome, "superseded");
  client->Answer(1, 200, "ghl-1");
  sched_->run();
  EXPECT_EQ(Events(*reports_, ev::kPushSucceeded).size(), 1u);
}

TEST(OptOutCard, RefusedOptOutsNeedAttentionInPlainWords) {
  const int64_t now = 1'795'000'000'000'000;
  ConnectorSnapshot c;
  c.tenant = "default";
  c.system = "ghl";
  c.name = "GoHighLevel";
  c.held = 3;
  c.ok_hour = 12;
  c.opt_outs_refused = 3;
  c.opt_outs_refused_since_us = now - 20 * 60 * 1'000'000LL;
  c.oldest_opt_out_us = c.opt_outs_refused_since_us;
  const ServiceCard card = DescribeConnector(c, now);
  EXPECT_EQ(card.state, CardState::kAttention);
  EXPECT_EQ(card.headline, "Needs attention: opt-outs refused");
  EXPECT_NE(card.detail.find("3 people's opt-outs could not be set in GoHighLevel since "), std::string::npos)
      << card.detail;
  EXPECT_NE(card.detail.find("`dfm audit violations`"), std::string::npos) << card.detail;
  c.opt_outs_refused = 1;
  EXPECT_NE(DescribeConnector(c, now).detail.find("1 person's opt-out could not be set"),
            std::string::npos);
}

TEST(GhlEveryRecord, OneSearchByPhoneOrEmailAndEachRecordOnce) {
  PushRequest req;
  req.op = "opt_out";
  req.fields = {{"phone", "+12055550142"}, {"email", "ada@example.com"}, {"first_name", "Ada"}};
  EXPECT_EQ(ghl::EveryRecordQuery(req, "loc1"),
            R"({"locationId":"loc1","pageLimit":100,"filters":[{"group":"OR","filters":[)"
            R"({"field":"phone","operator":"eq","value":"+12055550142"},)"
            R"({"field":"email","operator":"eq","value":"ada@example.com"}]}]})");
  req.fields = {{"first_name", "Ada"}};
  EXPECT_EQ(ghl::EveryRecordQuery(req, "loc1"), "") << "nothing to search by";
  EXPECT_EQ(ghl::ContactIds(R"({"contacts":[{"id":"b"},{"id":"a"},{"name":"x"}],"total":3})"),
            (std::vector<std::string>{"b", "a"}));
  EXPECT_TRUE(ghl::ContactIds("not json").empty());
  EXPECT_EQ(ghl::RecordsToSet("a", {"b", "a", "c", "b"}), (std::vector<std::string>{"a", "b", "c"}))
      << "its own first, each once";
  EXPECT_EQ(ghl::RecordsToSet("", {}), std::vector<std::string>{});
  EXPECT_TRUE(ghl::IsConsentPush("mark_dnc"));
  EXPECT_FALSE(ghl::IsConsentPush("upsert"));
}

TEST(GhlEveryRecord, ReadBackHoldsAChannelOutOnlyWhereEveryRecordShowsIt) {
  const auto records = ghl::RecordsDnd(
      R"({"contacts":[{"id":"a","dnd":false,"dndSettings":{"SMS":{"status":"active"},"Call":{"status":"inactive"}}},)"
      R"({"id":"b","dnd":true},{"dndSettings":{}}],"total":3})");
  ASSERT_EQ(records.size(), 2u) << "a record without an id is left out";
  EXPECT_EQ(records[0].active, (std::set<std::string>{"sms"}));
  EXPECT_TRUE(records[1].dnd);
  EXPECT_EQ(ghl::HeldConsent(records, {"sms", "call"}),
            (std::map<std::string, std::string>{{"held.call", "in"}, {"held.sms", "out"}}));
  auto own = ghl::ContactDnd(R"({"contact":{"id":"c","dndSettings":{"SMS":{"status":"inactive"}}}})");
  ASSERT_TRUE(own.has_value());
  EXPECT_EQ(ghl::HeldConsent({*own}, {"sms"}), (std::map<std::string, std::string>{{"held.sms", "in"}}));
  EXPECT_TRUE(ghl::HeldConsent({}, {"sms"}).empty()) << "no record: nothing held";
}

}  // namespace
}  // namespace dfm
