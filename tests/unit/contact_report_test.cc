// What a contact actor decides from its connectors' reports
// (actors/contact_actor.h, DecideReport), on CAF's test coordinator.
#include "tests/support/actor_fixture.h"

namespace dfm {
namespace {

using testing::ActorTest;
using testing::ScriptedClient;

class ContactReportTest : public ActorTest {
 protected:
  // Texts are recorded in Aloware here (the conversations system), the
  // scripted client playing it.
  ContactReportTest() {
    env_->ctx.targets["aloware"] = {"first_name", "last_name", "email", "phone"};
    env_->ctx.conversations = "aloware";
  }

  // Ann's GoHighLevel text `id`, routed.
  void AnnTexts(const caf::actor& router, const std::string& id) {
    DeliverWebhook(router, "ghl", "ghl/InboundMessage.json",
                   {{"webhookId", "t-" + id}, {"contactId", "ghl-a"}, {"messageId", id}},
                   "t-" + id);
  }

  std::vector<DomainEvent> Decoded(const std::string& type) {
    std::vector<Event> all;
    EXPECT_TRUE(log_.Read(1, 100000, &all).ok());
    std::vector<DomainEvent> out;
    for (const auto& e : all) {
      DomainEvent d;
      if (e.type == type && DecodeDomainEvent(e.type, e.payload, &d).ok()) out.push_back(d);
    }
    return out;
  }
};

// The record a text's push found anew (its client's answer.contact_id,
// the link that answered "not found" in answer.gone) becomes the contact's
// link, as an event in its stream: the next text goes there at once.
TEST_F(ContactReportTest, ARecordATextFoundAnewIsLinkedAndTheNextTextGoesThere) {
  auto client = std::make_shared<ScriptedClient>();
  auto router = StartSyncTo(client);
  AppendPersonWebhook("a", "0", "Ann");
  caf::anon_send(router, poll_atom::value);
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 1u);
  client->Answer(0, 200, "alo-a");
  sched_->run();

  AnnTexts(router, "m-1");
  ASSERT_EQ(client->pushes.size(), 2u);
  ASSERT_EQ(client->pushes[1].req.op, "message");
  ASSERT_EQ(client->pushes[1].req.external_id, "alo-a");
  PushResult found;
  found.http_status = 200;
  found.requests = 3;
  found.external_id = "alo-msg-1";
  found.answered = {{"contact_id", "alo-new"}, {"gone", "alo-a"}};
  client->pushes[1].done(found);
  sched_->run();

  auto linked = Decoded(std::string(ev::kContactLinked));
  ASSERT_EQ(linked.size(), 1u);
  EXPECT_EQ(linked[0].system, "aloware");
  EXPECT_EQ(linked[0].external_id, "alo-new");
  EXPECT_EQ(linked[0].via, "search");

  AnnTexts(router, "m-2");
  ASSERT_EQ(client->pushes.size(), 3u);
  EXPECT_EQ(client->pushes[2].req.op, "message");
  EXPECT_EQ(client->pushes[2].req.external_id, "alo-new");
}

// Staff deleted Ann's Aloware contact after her STOP; her next GoHighLevel
// edit's upsert made another by her number (Aloware answers its id), with
// no DNC flag: the report's decision tells it, as an order to that record.
TEST_F(ContactReportTest, ARecordAnUpsertMadeIsToldTheHeldOptOut) {
  env_->ctx.channels["aloware"] = {"sms", "call"};  // as its registration says
  env_->ctx.one_flag = {"aloware"};
  auto client = std::make_shared<ScriptedClient>();
  auto router = StartSyncTo(client);
  size_t answered = 0;
  auto answer_all = [&](const std::string& record) {
    while (answered < client->pushes.size()) {
      client->Answer(answered++, 200, record);
      sched_->run();
    }
  };
  AppendPersonWebhook("a", "0", "Ann");
  caf::anon_send(router, poll_atom::value);
  sched_->run();
  answer_all("alo-a");
  DeliverWebhook(
      router, "ghl", "ghl/InboundMessage.json",
      {{"webhookId", "t-s"}, {"contactId", "ghl-a"}, {"messageId", "m-s"}, {"body", "STOP"}},
      "t-s");
  ASSERT_GT(client->pushes.size(), answered);
  answer_all("alo-a");
  bool stopped = false;
  for (const auto& c : client->pushes) stopped = stopped || c.req.op == "opt_out";
  ASSERT_TRUE(stopped);

  AppendPersonWebhook("a", "1", "Annie");
  caf::anon_send(router, poll_atom::value);
  sched_->run();
  ASSERT_EQ(client->pushes.size(), answered + 1);
  ASSERT_EQ(client->pushes.back().req.op, "upsert");
  ASSERT_EQ(client->pushes.back().req.external_id, "alo-a");
  client->Answer(answered++, 200, "alo-new");
  sched_->run();

  ASSERT_EQ(client->pushes.size(), answered + 1) << "the new record is told";
  const PushRequest& told = client->pushes.back().req;
  EXPECT_EQ(told.op, "opt_out");
  EXPECT_EQ(told.external_id, "alo-new");
  EXPECT_EQ(told.channel, "call,sms");
  EXPECT_NE(told.push_id.find(":0:opt_out:record:"), std::string::npos) << told.push_id;
  client->Answer(answered++, 200, "alo-new");
  sched_->run();
  EXPECT_EQ(client->pushes.size(), answered) << "asked once";
}

// An opt-in a reading system took is read back from the record it set
// (a staff opt-out made there meanwhile would otherwise be lost:
// read_back_rules.cc): the contact actor decides opt_in reports too.
TEST_F(ContactReportTest, AnOptInTakenIsReadBackFromTheRecordItSet) {
  env_->ctx.channels["aloware"] = {"sms"};  // the scripted vendor keeps channels apart
  env_->ctx.reads_consent = {"aloware"};
  auto client = std::make_shared<ScriptedClient>();
  auto router = StartSyncTo(client);
  size_t answered = 0;
  auto answer_all = [&] {
    while (answered < client->pushes.size()) {
      client->Answer(answered++, 200, "alo-a");
      sched_->run();
    }
  };
  AppendPersonWebhook("a", "0", "Ann");
  caf::anon_send(router, poll_atom::value);
  sched_->run();
  answer_all();
  for (const char* word : {"STOP", "START"}) {  // the START a minute later
    const std::string id = std::string("t-") + word;
    const std::string at = word == std::string("STOP") ? "15:19" : "15:20";
    DeliverWebhook(router, "ghl", "ghl/InboundMessage.json",
                   {{"webhookId", id},
                    {"contactId", "ghl-a"},
                    {"messageId", id},
                    {"body", word},
                    {"dateAdded", "2026-11-20T" + at + ":58.750Z"}},
                   id);
    answer_all();
  }
  std::vector<PushRequest> consent;  // the texts themselves are recorded too
  for (const auto& c : client->pushes)
    if (c.req.op != "message") consent.push_back(c.req);
  std::vector<std::string> ops;
  for (const auto& r : consent) ops.push_back(r.op);
  ASSERT_EQ(ops, (std::vector<std::string>{"upsert", "opt_out", "read_consent", "opt_in",
                                           "read_consent"}));
  EXPECT_EQ(consent[2].Field("after"), "opt_out");
  const PushRequest& read = consent.back();
  EXPECT_EQ(read.external_id, "alo-a");
  EXPECT_EQ(read.Field("after"), "opt_in");
  EXPECT_EQ(read.push_id, consent[3].push_id + ":read");
}

}  // namespace
}  // namespace dfm
