// Messages, calls and tag lists: the mappers' reading of the vendors'
// message and call webhooks, and the contact model's decisions about them
// (docs/sync-rules.md, "Messages and calls", "Tags -> lists").
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "config/config.h"
#include "connectors/common/mapper.h"
#include "sync/contact_model.h"
#include "sync/domain_event.h"
#include "sync/normalize.h"
#include "tests/support/fixtures.h"
#include "tests/support/mapper_input.h"

namespace dfm {
namespace {

using testing::UsSettings;
using testing::Webhook;

TEST(MessageMappers, AlowareCallDirectionAsANumberOrAWord) {
  const std::string in = testing::Fixture("aloware/InboundPhoneCall-DispositionMissed.json");
  const std::string key = "\"direction\":1";
  ASSERT_NE(in.find(key), std::string::npos);
  for (const auto& [value, want] : std::vector<std::pair<std::string, std::string>>{
           {"\"1\"", "inbound"}, {"\"Inbound\"", "inbound"}, {"\"outbound\"", "outbound"},
           {"2", "outbound"}}) {
    std::string body = in;
    body.replace(body.find(key), key.size(), "\"direction\":" + value);
    std::vector<ContactFact> facts;
    ASSERT_TRUE(MapAlowareWebhook(Webhook("aloware", body), UsSettings(), &facts).ok()) << value;
    ASSERT_EQ(facts.size(), 1u);
    ASSERT_EQ(facts[0].activities.size(), 1u);
    EXPECT_EQ(facts[0].activities[0].direction, want) << value;
  }
}

TEST(MessageMappers, AlowareCallDispositionFixtures) {
  std::vector<ContactFact> facts;
  ASSERT_TRUE(MapAlowareWebhook(
                  Webhook("aloware",
                          testing::Fixture("aloware/OutboundPhoneCall-DispositionCompleted.json")),
                  UsSettings(), &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  const ContactFact& f = facts[0];
  EXPECT_EQ(f.external_id, "6896898");
  EXPECT_EQ(f.fields.at("phone"), "+12055550142");
  EXPECT_EQ(f.fields.at("email"), "john.deo@example.com");
  ASSERT_EQ(f.activities.size(), 1u);
  const Activity& a = f.activities[0];
  EXPECT_EQ(a.kind, Activity::Kind::kCall);
  EXPECT_EQ(a.message_id, "940868616");
  EXPECT_EQ(a.direction, "outbound");
  EXPECT_EQ(a.status, "completed");
  EXPECT_EQ(a.duration_s, 66);
  EXPECT_EQ(a.disposition, "Interested");
  EXPECT_EQ(a.our_number, "+12055550199");
  EXPECT_EQ(a.recording_url, "https://recordings.example.com/static/recording/abc.mp3");

  facts.clear();  // ids as strings, a missed inbound call, no disposition, no recording
  ASSERT_TRUE(MapAlowareWebhook(
                  Webhook("aloware",
                          testing::Fixture("aloware/InboundPhoneCall-DispositionMissed.json")),
                  UsSettings(), &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  ASSERT_EQ(facts[0].activities.size(), 1u);
  EXPECT_EQ(facts[0].fields.at("phone"), "+14155550111");
  EXPECT_EQ(facts[0].activities[0].direction, "inbound");
  EXPECT_EQ(facts[0].activities[0].status, "no-answer");
  EXPECT_TRUE(facts[0].activities[0].disposition.empty());
  EXPECT_TRUE(facts[0].activities[0].recording_url.empty());

  facts.clear();
  EXPECT_TRUE(MapAlowareWebhook(Webhook("aloware", R"({"event":"Call-Disposed","body":{
      "id":1,"lead_number":"not a phone"}})"),
                                UsSettings(), &facts)
                  .IsInvalidArgument());
}

TEST(MessageMappers, GhlProviderDeliveryAndConversationMessages) {
  std::vector<ContactFact> facts;
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", testing::Fixture("ghl/ProviderOutboundMessage.json")),
                            UsSettings(), &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].external_id, "nmFmQEsNgz6AVpgLVUJ0");
  EXPECT_EQ(facts[0].fields.at("phone"), "+12055550142");
  ASSERT_EQ(facts[0].activities.size(), 1u);
  EXPECT_EQ(facts[0].activities[0].kind, Activity::Kind::kSend);
  EXPECT_EQ(facts[0].activities[0].message_id, "qW2eR4tY6uI8oP0aS1dF");
  EXPECT_EQ(facts[0].activities[0].body, "Hi John, following up on your inquiry.");

  facts.clear();
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", testing::Fixture("ghl/OutboundMessage-call.json")),
                            UsSettings(), &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  ASSERT_EQ(facts[0].activities.size(), 1u);
  EXPECT_EQ(facts[0].activities[0].kind, Activity::Kind::kCall);
  EXPECT_EQ(facts[0].activities[0].duration_s, 120);
  EXPECT_EQ(facts[0].activities[0].status, "completed");

  facts.clear();
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", testing::Fixture("ghl/InboundMessage.json")),
                            UsSettings(), &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].activities[0].kind, Activity::Kind::kText);
  EXPECT_EQ(facts[0].activities[0].direction, "inbound");

  facts.clear();  // a provider delivery without the text is unreadable
  EXPECT_TRUE(MapGhlWebhook(Webhook("ghl", R"({"type":"SMS","messageId":"m","phone":"+12055550142"})"),
                            UsSettings(), &facts)
                  .IsInvalidArgument());
}

// A STOP texted to the location's own number (GoHighLevel's phone) is the
// person's opt-out, read from the text as a provider's is; a text the
// engine wrote there (its provider's id) is not read again, and an
// outbound one never is.
TEST(MessageMappers, AGhlInboundStopIsThePersonsUnlessTheEngineWroteIt) {
  const std::string in = testing::Fixture("ghl/InboundMessage.json");
  const std::string said = "\"body\":\"Is the call still on for 3pm?\"";
  ASSERT_NE(in.find(said), std::string::npos);
  std::string stop = in;
  stop.replace(stop.find(said), said.size(), "\"body\":\"Stop.\"");
  SystemSettings table = {{"conversation_provider_id", "cI08i1Bls3iTB9bKgFJh"}};
  MapperSettings ours = UsSettings();
  ours.system = &table;
  SystemSettings other_table = {{"conversation_provider_id", "our-provider"}};
  MapperSettings theirs = UsSettings();
  theirs.system = &other_table;

  std::vector<ContactFact> facts;
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", stop), theirs, &facts).ok());
  ASSERT_EQ(facts.size(), 1u);
  ASSERT_EQ(facts[0].consents.size(), 1u);
  const Consent& c = facts[0].consents[0];
  EXPECT_EQ(c.change, Consent::Change::kOptOut);
  EXPECT_EQ(c.actor, Consent::Actor::kPerson);
  EXPECT_EQ(c.channels, (std::vector<std::string>{"sms"}));
  EXPECT_EQ(c.message_id, "zP1qRbXw8yT4uVn2sK7m");
  EXPECT_EQ(facts[0].activities.size(), 1u) << "and still a text on the conversation";

  facts.clear();  // the engine's own record of a text from elsewhere
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", stop), ours, &facts).ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_TRUE(facts[0].consents.empty());

  facts.clear();  // an ordinary text
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", in), theirs, &facts).ok());
  EXPECT_TRUE(facts[0].consents.empty());

  std::string out = stop;  // staff texting "Stop." to the person
  const std::string inbound = "\"direction\":\"inbound\"";
  out.replace(out.find(inbound), inbound.size(), "\"direction\":\"outbound\"");
  facts.clear();
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", out), theirs, &facts).ok());
  EXPECT_TRUE(facts[0].consents.empty());
}

TEST(MessageMappers, VerityOutboundTextsCarryTheEnginesKey) {
  std::vector<ContactFact> facts;
  ASSERT_TRUE(MapVerityWebhook(Webhook("verity", R"({"eventType":"message.sent","messageId":"msg_1",
      "externalId":"ghl:m1","direction":"outbound","from":"+12055550100","to":"+12055550142",
      "body":"hi","status":"sent"})"),
                               UsSettings(), &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].fields.at("phone"), "+12055550142");  // the recipient
  EXPECT_EQ(facts[0].activities[0].message_key, "ghl:m1");
  EXPECT_EQ(facts[0].activities[0].our_number, "+12055550100");
  facts.clear();
  ASSERT_TRUE(MapVerityWebhook(Webhook("verity", R"({"eventType":"message.failed","messageId":"msg_1",
      "externalId":"ghl:m1","direction":"outbound","from":"+12055550100","to":"+12055550142"})"),
                               UsSettings(), &facts)
                  .ok());
  ASSERT_EQ(facts[0].activities.size(), 1u);
  EXPECT_EQ(facts[0].activities[0].kind, Activity::Kind::kStatus);
  EXPECT_EQ(facts[0].activities[0].status, "failed");
}

class MessageModelTest : public ::testing::Test {
 protected:
  MessageModelTest() {
    ApplyBuiltinDefaults(&ctx_);  // owners and roles, as the service defaults them
    ctx_.targets["ghl"] = {"first_name", "email", "phone", "tags"};
    ctx_.targets["aloware"] = {"first_name", "email", "phone", "tags"};
    ctx_.targets["verity"] = {"first_name", "email", "phone"};
    ctx_.channels["aloware"] = {"sms", "call"};
    ctx_.channels["verity"] = {"sms"};
    ctx_.one_flag = {"aloware"};
    ctx_.tag_lists = {{"hot", "101"}, {"call now", "102"}, {"vip", "101"}};
    ctx_.now_us = 1'000'000'000;
    state_.contact_id = "c1";
  }
  ContactFact Fact(const std::string& system, Activity a, int64_t t = 10) {
    ContactFact f;
    f.system = system;
    f.fields["phone"] = "+12055550142";
    f.source_time_us = t;
    f.webhook_seq = ++webhook_seq_;
    f.activities.push_back(std::move(a));
    return f;
  }
  static Activity Text(std::string id, std::string direction, std::string body) {
    Activity a;
    a.kind = Activity::Kind::kText;
    a.message_id = std::move(id);
    a.direction = std::move(direction);
    a.body = std::move(body);
    return a;
  }
  // The person's STOP by text through Twilio at `t`: an sms opt-out.
  ContactFact TwilioStop(std::string id, int64_t t) {
    ContactFact stop = Fact("twilio", Text(std::move(id), "inbound", "STOP"), t);
    Consent c;
    c.change = Consent::Change::kOptOut;
    c.channels = {"sms"};
    c.reason = "OptOutType STOP";
    stop.consents.push_back(c);
    return stop;
  }
  // A completed call with a disposition.
  static Activity Call(std::string id, std::string direction) {
    Activity a;
    a.kind = Activity::Kind::kCall;
    a.message_id = std::move(id);
    a.direction = std::move(direction);
    a.status = "completed";
    a.disposition = "Interested";
    return a;
  }
  std::vector<DomainEvent> Step(const ContactFact& f) {
    auto events = Decide(state_, f, ctx_);
    for (const auto& e : events) Apply(&state_, e, ++seq_, ctx_.now_us);
    return events;
  }
  // The connector's report: the push went, and the vendor's id is `id`.
  void Succeed(const DomainEvent& push, const std::string& id) {
    DomainEvent ok = push;
    ok.type = std::string(ev::kPushSucceeded);
    ok.external_id = id;
    Apply(&state_, ok, ++seq_, ctx_.now_us);
  }
  static std::vector<DomainEvent> Of(const std::vector<DomainEvent>& es, std::string_view type,
                                     std::string_view op = "") {
    std::vector<DomainEvent> out;
    for (const auto& e : es)
      if (e.type == type && (op.empty() || e.op == op)) out.push_back(e);
    return out;
  }
  ContactFact Known() {  // the contact, known to GoHighLevel
    ContactFact f;
    f.system = "ghl";
    f.external_id = "g1";
    f.fields["phone"] = "+12055550142";
    f.source_time_us = 1;
    f.webhook_seq = ++webhook_seq_;
    return f;
  }
  SyncContext ctx_;
  ContactState state_;
  uint64_t seq_ = 0;
  uint64_t webhook_seq_ = 100;
};

TEST_F(MessageModelTest, ATextFromVerityIsRecordedInGoHighLevelOnce) {
  auto es = Step(Fact("verity", Text("v1", "inbound", "See you at 3")));
  ASSERT_EQ(Of(es, ev::kContactCreated).size(), 1u);  // from a stranger: nothing dropped
  auto logged = Of(es, ev::kMessageLogged);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_EQ(logged[0].message_key, "verity:v1");
  EXPECT_EQ(logged[0].external_id, "v1");
  EXPECT_EQ(logged[0].fields.count("body"), 0u);  // the text stays in the webhook and the push
  auto pushes = Of(es, ev::kPushRequested, "message");
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].system, "ghl");
  EXPECT_EQ(pushes[0].message_key, "verity:v1");
  EXPECT_EQ(pushes[0].fields.at("body"), "See you at 3");
  EXPECT_EQ(pushes[0].fields.at("direction"), "inbound");
  EXPECT_EQ(pushes[0].fields.at("phone"), "+12055550142");
  {
    ContactState before = state_;  // the record's webhook before the push's answer
    auto early = Step(Fact("ghl", Text("ghl-msg-1", "inbound", "See you at 3")));
    EXPECT_TRUE(Of(early, ev::kMessageLogged).empty());
    ASSERT_EQ(Of(early, ev::kMessageStatus).size(), 1u);
    EXPECT_EQ(Of(early, ev::kMessageStatus)[0].message_key, "verity:v1");
    EXPECT_TRUE(Of(early, ev::kPushRequested).empty());
    state_ = before;
  }
  Succeed(pushes[0], "ghl-msg-1");
  EXPECT_EQ(state_.messages.at("verity:v1").ids.at("ghl"), "ghl-msg-1");
  EXPECT_TRUE(state_.links.find("ghl") == state_.links.end() ||
              state_.links.at("ghl") != "ghl-msg-1");  // a message id is not the contact's

  // Delivered twice, and GoHighLevel's webhook for the record we wrote: nothing new to send.
  EXPECT_TRUE(Of(Step(Fact("verity", Text("v1", "inbound", "See you at 3"))), ev::kPushRequested).empty());
  Activity echo = Text("ghl-msg-1", "inbound", "See you at 3");
  auto es2 = Step(Fact("ghl", echo));
  EXPECT_TRUE(Of(es2, ev::kPushRequested).empty());
  EXPECT_TRUE(Of(es2, ev::kMessageLogged).empty());
}

// GoHighLevel merged the contact's record away: its text's push found the
// person's record anew by phone (the client's answer.contact_id, beside
// answer.gone). That record becomes the contact's link, so the next text
// goes there at once rather than to the gone one first; not when the
// contact was linked anew meanwhile, nor when another contact holds it.
TEST_F(MessageModelTest, ARecordFoundAnewForATextBecomesTheContactsLink) {
  ContactFact known = Known();
  known.fields["first_name"] = "Ann";
  Step(known);
  auto push = Of(Step(Fact("verity", Text("v1", "inbound", "See you at 3"))), ev::kPushRequested,
                 "message");
  ASSERT_EQ(push.size(), 1u);
  ASSERT_EQ(push[0].external_id, "g1");
  DomainEvent ok = push[0];
  ok.type = std::string(ev::kPushSucceeded);
  ok.external_id = "ghl-msg-1";
  ok.fields["answer.contact_id"] = "g2";
  ok.fields["answer.gone"] = "g1";
  auto holders = std::make_shared<std::map<std::string, std::string>>();
  ctx_.record_holder = [holders](const std::string& system, const std::string& id) {
    auto it = holders->find(system + "/" + id);
    return it == holders->end() ? std::string() : it->second;
  };

  (*holders)["ghl/g2"] = "c2";  // a phone two people share: the other's record
  EXPECT_TRUE(DecideReport(state_, {ok}, ctx_).empty());
  (*holders)["ghl/g2"] = "c1";  // mapped to this person already (a consent push's answer.ids)
  ASSERT_EQ(DecideReport(state_, {ok}, ctx_).size(), 1u);
  holders->clear();
  {
    ContactState before = state_;  // linked anew before the report came: that link stands
    ContactFact relinked = Known();
    relinked.external_id = "g3";
    Step(relinked);
    EXPECT_TRUE(DecideReport(state_, {ok}, ctx_).empty());
    state_ = before;
  }
  DomainEvent consent = ok;  // a contact op's answer links by its own external id
  consent.op = "opt_out";
  EXPECT_TRUE(DecideReport(state_, {consent}, ctx_).empty());

  auto linked = DecideReport(state_, {ok}, ctx_);
  ASSERT_EQ(linked.size(), 1u);
  EXPECT_EQ(linked[0].type, ev::kContactLinked);
  EXPECT_EQ(linked[0].system, "ghl");
  EXPECT_EQ(linked[0].external_id, "g2");
  EXPECT_EQ(linked[0].via, "search");
  EXPECT_TRUE(linked[0].message_key.empty())
      << "the mappings projection skips message-keyed events";
  Apply(&state_, ok, ++seq_, ctx_.now_us);
  ASSERT_EQ(state_.known.at("ghl").at("phone"), "+12055550142");
  Apply(&state_, linked[0], ++seq_, ctx_.now_us);
  EXPECT_EQ(state_.links.at("ghl"), "g2");
  EXPECT_EQ(state_.known.count("ghl"), 0u) << "what the record found holds is not known";
  auto next =
      Of(Step(Fact("verity", Text("v2", "inbound", "On my way"))), ev::kPushRequested, "message");
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].external_id, "g2");
  EXPECT_TRUE(DecideReport(state_, {ok}, ctx_).empty()) << "reported again: linked already";
  ContactFact named = Known();  // the contact's next change: every field written there
  named.system = "aloware";
  named.external_id = "a1";
  named.fields["first_name"] = "Ann";
  named.fields["email"] = "ann@example.com";
  named.source_time_us = 20;
  auto upserts = Of(Step(named), ev::kPushRequested, "upsert");
  auto ghl = std::find_if(upserts.begin(), upserts.end(),
                          [](const DomainEvent& p) { return p.system == "ghl"; });
  ASSERT_NE(ghl, upserts.end());
  EXPECT_EQ(ghl->external_id, "g2");
  EXPECT_EQ(ghl->fields.count("email"), 1u);
  EXPECT_EQ(ghl->fields.count("first_name"), 1u) << "unchanged, but not known to be there";
}

TEST_F(MessageModelTest, AProviderDeliveryIsSentThroughVerityAndItsStatusesReportedBack) {
  Step(Known());
  Activity send;
  send.kind = Activity::Kind::kSend;
  send.message_id = "gm1";
  send.body = "Hi John";
  auto es = Step(Fact("ghl", send));
  auto sends = Of(es, ev::kPushRequested, "send");
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].system, "verity");
  EXPECT_EQ(sends[0].message_key, "ghl:gm1");
  EXPECT_EQ(sends[0].fields.at("body"), "Hi John");
  EXPECT_EQ(state_.pending_sends.count(sends[0].push_id), 1u);
  Succeed(sends[0], "vmsg1");
  EXPECT_TRUE(state_.pending_sends.empty());

  // Verity's webhooks: sent (links, nothing to send), delivered (told to GoHighLevel).
  Activity sent = Text("vmsg1", "outbound", "Hi John");
  sent.message_key = "ghl:gm1";
  sent.status = "sent";
  auto es2 = Step(Fact("verity", sent));
  EXPECT_TRUE(Of(es2, ev::kPushRequested).empty());
  Activity delivered;
  delivered.kind = Activity::Kind::kStatus;
  delivered.message_id = "vmsg1";
  delivered.direction = "outbound";
  delivered.status = "delivered";
  auto es3 = Step(Fact("verity", delivered));
  ASSERT_EQ(Of(es3, ev::kMessageStatus).size(), 1u);
  auto status = Of(es3, ev::kPushRequested, "message_status");
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0].system, "ghl");
  EXPECT_EQ(status[0].fields.at("message_id"), "gm1");
  EXPECT_EQ(status[0].fields.at("status"), "delivered");
  // The same status again changes nothing.
  EXPECT_TRUE(Step(Fact("verity", delivered)).empty());
}

// A provider delivery carries no time and no webhook id: it is sent only for
// a contact GoHighLevel had made known to the engine before it (linked, by
// the contactId it names), never for one it introduces (docs/security.md).
TEST_F(MessageModelTest, ASendForAContactGoHighLevelHadNotMadeKnownIsRefused) {
  Activity send;
  send.kind = Activity::Kind::kSend;
  send.message_id = "gm3";
  send.body = "Hi";
  ContactFact stranger = Fact("ghl", send);
  stranger.external_id = "g-new";
  auto es = Step(stranger);
  EXPECT_TRUE(Of(es, ev::kPushRequested, "send").empty());
  auto refused = Of(es, ev::kMessageRefused);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_NE(refused[0].reason.find("had not made known to the engine before"), std::string::npos)
      << refused[0].reason;
  auto told = Of(es, ev::kPushRequested, "message_status");
  ASSERT_EQ(told.size(), 1u);  // GoHighLevel learns the text failed
  EXPECT_EQ(told[0].fields.at("message_id"), "gm3");

  state_ = ContactState();
  state_.contact_id = "c1";
  Step(Known());  // GoHighLevel's contact g1
  send.message_id = "gm4";
  ContactFact same = Fact("ghl", send);
  same.external_id = "g1";
  EXPECT_EQ(Of(Step(same), ev::kPushRequested, "send").size(), 1u);
  send.message_id = "gm5";
  ContactFact other = Fact("ghl", send);
  other.external_id = "g2";  // another GoHighLevel contact than the one linked
  EXPECT_TRUE(Of(Step(other), ev::kPushRequested, "send").empty());
}

TEST_F(MessageModelTest, ASendIsMadeEvenWhenGoHighLevelsOwnWebhookOfTheTextCameFirst) {
  Step(Known());
  Activity seen = Text("gm7", "outbound", "Hi");
  seen.status = "pending";
  auto es = Step(Fact("ghl", seen));
  EXPECT_EQ(Of(es, ev::kMessageLogged).size(), 1u);
  EXPECT_TRUE(Of(es, ev::kPushRequested).empty());
  Activity send;
  send.kind = Activity::Kind::kSend;
  send.message_id = "gm7";
  send.body = "Hi";
  es = Step(Fact("ghl", send));
  EXPECT_TRUE(Of(es, ev::kMessageLogged).empty());  // logged once
  ASSERT_EQ(Of(es, ev::kPushRequested, "send").size(), 1u);
  EXPECT_TRUE(Of(Step(Fact("ghl", send)), ev::kPushRequested).empty());  // and sent once
}

TEST_F(MessageModelTest, ASendToAnOptedOutNumberIsRefusedAndMarkedFailed) {
  Step(Known());
  ContactFact stop = Fact("verity", Text("v9", "inbound", "STOP"));
  Consent c;
  c.change = Consent::Change::kOptOut;
  c.channels = {"sms"};
  c.reason = "keyword STOP";
  stop.consents.push_back(c);
  Step(stop);
  Activity send;
  send.kind = Activity::Kind::kSend;
  send.message_id = "gm2";
  send.body = "Special offer";
  auto es = Step(Fact("ghl", send, 20));
  EXPECT_TRUE(Of(es, ev::kPushRequested, "send").empty());
  auto refused = Of(es, ev::kMessageRefused);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].message_key, "ghl:gm2");
  EXPECT_EQ(refused[0].system, "verity");
  EXPECT_NE(refused[0].reason.find("sms opted out"), std::string::npos);
  EXPECT_EQ(refused[0].rule, "") << "the consent gate's refusal";
  auto failed = Of(es, ev::kPushRequested, "message_status");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].fields.at("status"), "failed");
  EXPECT_EQ(failed[0].fields.at("message_id"), "gm2");

  // The person's opt-in decided with a send in one fact: the send goes.
  ContactFact back = Fact("ghl", send, 30);
  back.activities[0].message_id = "gm3";
  Consent in;
  in.change = Consent::Change::kOptIn;
  in.channels = {"sms"};
  in.reason = "keyword START";
  back.consents.push_back(in);
  es = Step(back);
  EXPECT_EQ(Of(es, ev::kPushRequested, "send").size(), 1u);
  EXPECT_TRUE(Of(es, ev::kMessageRefused).empty());
}

// A campaign's send (campaigns/README.md) comes as a fact of the system
// "campaign" naming the contact by its id: no link to the campaign is
// asked, consent is, as for any send, at the moment it is decided.
TEST_F(MessageModelTest, ACampaignsSendGoesThroughTheSameConsentGate) {
  Step(Known());
  Activity send;
  send.kind = Activity::Kind::kSend;
  send.direction = "outbound";
  send.message_id = "spring-1/0/c1";
  send.body = "Hi John, from Acme";
  auto sends = Of(Step(Fact(kCampaignSystem, send)), ev::kPushRequested, "send");
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].system, "verity");
  EXPECT_EQ(sends[0].message_key, "campaign:spring-1/0/c1");
  EXPECT_EQ(sends[0].fields.at("body"), "Hi John, from Acme");
  // The same step asked again: one send.
  EXPECT_TRUE(Of(Step(Fact(kCampaignSystem, send)), ev::kPushRequested, "send").empty());

  Step(TwilioStop("SM7", 30));
  send.message_id = "spring-1/1/c1";
  auto es = Step(Fact(kCampaignSystem, send, 40));
  EXPECT_TRUE(Of(es, ev::kPushRequested, "send").empty());
  auto refused = Of(es, ev::kMessageRefused);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].message_key, "campaign:spring-1/1/c1");
  EXPECT_NE(refused[0].reason.find("sms opted out"), std::string::npos) << refused[0].reason;
}

// A campaign's email goes to the tenant's mailer with its subject and
// unsubscribe link, through the same gate; with no dialer, a call is
// refused, saying so.
TEST_F(MessageModelTest, ACampaignsEmailGoesToTheMailerAndACallNeedsADialer) {
  ContactFact known = Known();
  known.fields["email"] = "ann@example.com";
  Step(known);
  ctx_.targets["smtp"] = {"email"};
  ctx_.messages_only.insert("smtp");
  ctx_.mailer = "smtp";
  Activity mail;
  mail.kind = Activity::Kind::kSend;
  mail.direction = "outbound";
  mail.channel = "email";
  mail.message_id = "spring-1/1/c1";
  mail.body = "Hello Ann";
  mail.subject = "Spring";
  mail.list_unsubscribe = "https://dfm.example.com/webhooks/unsubscribe?u=t";
  auto sends = Of(Step(Fact(kCampaignSystem, mail)), ev::kPushRequested, "send");
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].system, "smtp");
  EXPECT_EQ(sends[0].channel, "email");
  EXPECT_EQ(sends[0].fields.at("email"), "ann@example.com");
  EXPECT_EQ(sends[0].fields.count("phone"), 0u) << "the mailer takes no phone";
  EXPECT_EQ(sends[0].fields.at("subject") + "|" + sends[0].fields.at("list_unsubscribe"),
            "Spring|https://dfm.example.com/webhooks/unsubscribe?u=t");

  Activity call;
  call.kind = Activity::Kind::kSend;
  call.direction = "outbound";
  call.channel = "call";
  call.message_id = "spring-1/2/c1";
  call.body = "Call about spring";
  auto es = Step(Fact(kCampaignSystem, call));
  EXPECT_TRUE(Of(es, ev::kPushRequested, "send").empty());
  auto refused = Of(es, ev::kMessageRefused);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].reason, "no system plays the dialer role");
  EXPECT_EQ(refused[0].rule, kNotDeliverableRule) << "nobody can deliver it: no consent refused it";
}

// A campaign's draft request (campaigns/agent.h) goes to the tenant's
// classifier model with the brief and nothing else of the person; only a
// campaign asks for one.
TEST_F(MessageModelTest, ACampaignsDraftRequestGoesToTheClassifierModel) {
  Step(Known());
  Activity draft;
  draft.kind = Activity::Kind::kSend;
  draft.direction = "outbound";
  draft.channel = "draft";
  draft.message_id = "spring-1/0/c1/draft";
  draft.body = "Invite John to the spring sale";
  auto none = Of(Step(Fact(kCampaignSystem, draft)), ev::kMessageRefused);
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].reason, "no system plays the classifier role");

  ctx_.classifier = "openai";  // holds no contacts: no target
  draft.message_id = "spring-1/1/c1/draft";
  auto sends = Of(Step(Fact(kCampaignSystem, draft)), ev::kPushRequested, "send");
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].system, "openai");
  EXPECT_EQ(sends[0].channel, "draft");
  EXPECT_EQ(sends[0].message_key, "campaign:spring-1/1/c1/draft");
  EXPECT_EQ(sends[0].fields, (std::map<std::string, std::string>{{"body", "Invite John to the spring sale"}}))
      << "no phone or email goes to the model";

  draft.message_id = "m-9";
  ContactFact vendor = Fact("ghl", draft);
  vendor.external_id = "g1";
  auto refused = Of(Step(vendor), ev::kMessageRefused);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].reason, "only a campaign asks for a draft");
}

// A cancelled campaign withdraws the sends its claims asked for
// (Activity::kWithdraw, actors/router.h): one still on its way is refused
// with its push id (the connector drops it); one that went, one never
// asked, or a withdrawal from another system changes nothing.
TEST_F(MessageModelTest, ACampaignsWithdrawalRefusesItsSendStillOnItsWay) {
  Step(Known());
  auto campaign = [this](Activity::Kind kind, const std::string& id) {
    Activity a;
    a.kind = kind;
    a.direction = "outbound";
    a.message_id = id;
    a.body = kind == Activity::Kind::kSend ? "Hi John" : "";
    a.status = kind == Activity::Kind::kWithdraw ? "campaign cancelled" : "";
    ContactFact f = Fact(kCampaignSystem, a);
    f.fields.clear();  // the router names the contact by id: no fields
    return f;
  };
  auto waiting =
      Of(Step(campaign(Activity::Kind::kSend, "spring-1/0/c1")), ev::kPushRequested, "send");
  auto sent =
      Of(Step(campaign(Activity::Kind::kSend, "spring-2/0/c1")), ev::kPushRequested, "send");
  ASSERT_EQ(waiting.size() + sent.size(), 2u);
  Succeed(sent[0], "vm-1");

  auto es = Step(campaign(Activity::Kind::kWithdraw, "spring-1/0/c1"));
  ASSERT_EQ(es.size(), 1u);
  EXPECT_EQ(es[0].type, ev::kMessageRefused);
  EXPECT_EQ(es[0].push_id, waiting[0].push_id);
  EXPECT_EQ(es[0].system, "verity");
  EXPECT_EQ(es[0].message_key, "campaign:spring-1/0/c1");
  EXPECT_EQ(es[0].reason, "withdrawn before it was sent (campaign cancelled)");
  EXPECT_TRUE(state_.pending_sends.empty());
  EXPECT_EQ(state_.messages.at("campaign:spring-1/0/c1").status, "withdrawn")
      << "never sent again, not even by a re-drive";
  EXPECT_TRUE(IsWithdrawal(es[0]));

  EXPECT_TRUE(Step(campaign(Activity::Kind::kWithdraw, "spring-1/0/c1")).empty()) << "settled now";
  EXPECT_TRUE(Step(campaign(Activity::Kind::kWithdraw, "spring-2/0/c1")).empty()) << "it went";
  EXPECT_TRUE(Step(campaign(Activity::Kind::kWithdraw, "spring-3/0/c1")).empty()) << "never asked";
  auto again =
      Of(Step(campaign(Activity::Kind::kSend, "spring-4/0/c1")), ev::kPushRequested, "send");
  ASSERT_EQ(again.size(), 1u);
  Activity vendor;
  vendor.kind = Activity::Kind::kWithdraw;
  vendor.message_id = "spring-4/0/c1";
  ContactFact ghl = Fact("ghl", vendor);
  ghl.external_id = "g1";
  EXPECT_TRUE(Of(Step(ghl), ev::kMessageRefused).empty()) << "only a campaign withdraws";
  EXPECT_EQ(state_.pending_sends.count(again[0].push_id), 1u);
  // The router withdraws a task's text and its draft request together:
  // whichever waits is refused.
  ContactFact both = campaign(Activity::Kind::kWithdraw, "spring-4/0/c1");
  both.activities.insert(both.activities.begin(), both.activities[0]);
  both.activities[0].message_id = "spring-4/0/c1/draft";
  auto refused = Of(Step(both), ev::kMessageRefused);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].push_id, again[0].push_id);
}

TEST_F(MessageModelTest, AnOptOutRefusesASendStillOnItsWay) {
  Step(Known());
  Activity send;
  send.kind = Activity::Kind::kSend;
  send.message_id = "gm3";
  send.body = "Reminder";
  auto sends = Of(Step(Fact("ghl", send)), ev::kPushRequested, "send");
  ASSERT_EQ(sends.size(), 1u);
  // Verity is down; the person replies STOP through Twilio meanwhile.
  auto es = Step(TwilioStop("SM1", 30));
  auto refused = Of(es, ev::kMessageRefused);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].push_id, sends[0].push_id);  // the connector drops that push
  EXPECT_TRUE(state_.pending_sends.empty());
  ASSERT_EQ(Of(es, ev::kPushRequested, "message_status").size(), 1u);
  // The opt-out itself is still pushed first.
  EXPECT_FALSE(Of(es, ev::kPushRequested, "opt_out").empty());
}

// The contact actor applies the decisions of facts decided together before
// they are durable (seq 0) and again with their sequence numbers after
// (actors/contact_actor.h). That must leave the state deciding exactly as
// applying them once does (Apply, sync/contact_model.h): every fact here,
// of every kind the model handles, decides the same against both states,
// and so do the probes after.
TEST_F(MessageModelTest, DecisionsAppliedTwiceDecideAsAppliedOnce) {
  ContactState twice = state_;
  Activity send;
  send.kind = Activity::Kind::kSend;
  send.message_id = "gm1";
  send.body = "Reminder";
  const Activity call = Call("940868616", "outbound");
  const ContactFact stop = TwilioStop("SM1", 30);
  ContactFact renamed = Known();
  renamed.fields["first_name"] = "Ada";
  renamed.fields["email"] = "ada@example.com";
  ContactFact start = Fact("twilio", Text("SM2", "inbound", "START"), 40);
  Consent in = stop.consents[0];
  in.change = Consent::Change::kOptIn;
  start.consents.push_back(in);
  std::vector<ContactFact> facts = {Known(),
                                    Fact("twilio", Text("SM0", "inbound", "hello")),
                                    Fact("ghl", send),
                                    stop,
                                    Fact("aloware", call),
                                    renamed,
                                    Fact("ghl", Text("gm2", "outbound", "hi")),
                                    start};
  std::set<std::string> kinds;
  for (const auto& f : facts) {
    std::vector<DomainEvent> events = Decide(state_, f, ctx_);
    ASSERT_EQ(Decide(twice, f, ctx_), events) << "fact " << f.webhook_seq;
    for (const auto& e : events) kinds.insert(e.type + (e.op.empty() ? "" : " " + e.op));
    for (const auto& e : events) Apply(&twice, e, 0, ctx_.now_us - 5);  // before durable
    for (const auto& e : events) {
      ++seq_;
      Apply(&state_, e, seq_, ctx_.now_us);
      Apply(&twice, e, seq_, ctx_.now_us);  // and again once durable
    }
  }
  std::string all;
  for (const auto& k : kinds) all += k + ", ";
  EXPECT_GE(kinds.size(), 8u) << all;
  for (const auto& probe : {Known(), Fact("ghl", send), Fact("aloware", call), renamed})
    EXPECT_EQ(Decide(twice, probe, ctx_), Decide(state_, probe, ctx_));
  EXPECT_EQ(twice.last_fact_seq, state_.last_fact_seq);
  EXPECT_EQ(twice.last_event_seq, state_.last_event_seq);
  EXPECT_EQ(twice.messages.size(), state_.messages.size());
  EXPECT_EQ(twice.pending_sends.size(), state_.pending_sends.size());
  EXPECT_EQ(twice.pending.size(), state_.pending.size());
}

TEST_F(MessageModelTest, ACallBecomesACallRecordANoteAndADispositionTag) {
  Activity call;
  call.kind = Activity::Kind::kCall;
  call.message_id = "940868616";
  call.direction = "outbound";
  call.status = "completed";
  call.duration_s = 66;
  call.disposition = "Interested";
  call.recording_url = "https://rec.example/abc.mp3";
  call.our_number = "+12055550199";
  call.transcript = "Hello?";
  auto es = Step(Fact("aloware", call));
  ASSERT_EQ(Of(es, ev::kContactCreated).size(), 1u);  // GoHighLevel gets the contact first
  std::vector<std::string> order;
  for (const auto& e : Of(es, ev::kPushRequested))
    if (e.system == "ghl") order.push_back(e.op);
  EXPECT_EQ(order, (std::vector<std::string>{"upsert", "call", "note", "tags"}));
  auto rec = Of(es, ev::kPushRequested, "call")[0];
  EXPECT_EQ(rec.fields.at("direction"), "outbound");
  EXPECT_EQ(rec.fields.at("duration_s"), "66");
  EXPECT_EQ(rec.fields.at("recording_url"), "https://rec.example/abc.mp3");
  EXPECT_EQ(rec.fields.at("our_number"), "+12055550199");
  auto note = Of(es, ev::kPushRequested, "note")[0];
  EXPECT_NE(note.fields.at("body").find("https://rec.example/abc.mp3"), std::string::npos);
  EXPECT_NE(note.fields.at("body").find("Hello?"), std::string::npos);
  EXPECT_EQ(Of(es, ev::kPushRequested, "tags")[0].fields.at("tags_add"), "disposition: interested");
  // Aloware restating the same call (Call-Disposed after the disposition event): nothing new.
  EXPECT_TRUE(Of(Step(Fact("aloware", call)), ev::kPushRequested).empty());
}

TEST_F(MessageModelTest, ACallRestatedWithItsRecordingAddsOnlyTheNote) {
  Activity call = Call("c77", "inbound");
  Step(Fact("aloware", call));  // Call-Disposed: no recording yet
  call.recording_url = "https://rec.example/c77.mp3";
  auto es = Step(Fact("aloware", call));  // the disposition event, with the recording
  std::vector<std::string> ops;
  for (const auto& p : Of(es, ev::kPushRequested)) ops.push_back(p.op);
  EXPECT_EQ(ops, std::vector<std::string>{"note"});
}

TEST_F(MessageModelTest, ADeadLetteredSendIsReportedFailedToGoHighLevel) {
  Step(Known());
  Activity send;
  send.kind = Activity::Kind::kSend;
  send.message_id = "gm5";
  send.body = "x";
  auto sends = Of(Step(Fact("ghl", send)), ev::kPushRequested, "send");
  ASSERT_EQ(sends.size(), 1u);
  DomainEvent dead = sends[0];
  dead.type = std::string(ev::kPushDeadLettered);
  dead.reason = "HTTP 422: recipient_opted_out";
  auto follow = DecideReport(state_, {dead}, ctx_);
  ASSERT_EQ(follow.size(), 1u);
  EXPECT_EQ(follow[0].op, "message_status");
  EXPECT_EQ(follow[0].fields.at("status"), "failed");
  EXPECT_EQ(follow[0].fields.at("message_id"), "gm5");
  EXPECT_EQ(follow[0].fields.at("error"), sends[0].system + " did not send it: " + dead.reason);
  EXPECT_EQ(follow[0].push_id, follow[0].contact_id + ":ghl:message_status:" +
                                   sends[0].message_key + ":failed:0:dead");
  EXPECT_TRUE(DecideReport(state_, {sends[0]}, ctx_).empty());  // not a dead letter

  // Re-driven (`dfm replay dead-letters --execute`), it dies again: that
  // death is reported too, under an id of its own, not deduplicated
  // against the first report.
  for (const auto& e : follow) Apply(&state_, e, 0, 0);
  DomainEvent again = dead;
  again.push_id = sends[0].contact_id + ":" + sends[0].system + ":replay41:0";
  again.reason = "HTTP 422: recipient_opted_out";
  auto second = DecideReport(state_, {again}, ctx_);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].fields.at("status"), "failed");
  EXPECT_EQ(second[0].push_id, follow[0].push_id + ":replay41:0");
  EXPECT_NE(second[0].push_id, follow[0].push_id);
}

TEST_F(MessageModelTest, TagsMapToListsAddedRemovedAndReAdded) {
  ContactFact f = Known();
  f.fields["tags"] = "hot\nnew lead";
  auto es = Step(f);
  auto lists = Of(es, ev::kPushRequested, "lists");
  ASSERT_EQ(lists.size(), 1u);
  EXPECT_EQ(lists[0].system, "aloware");
  EXPECT_EQ(lists[0].fields.at("lists_add"), "101");
  EXPECT_EQ(lists[0].fields.at("lists_remove"), "");

  ContactFact more = Known();
  more.fields["tags"] = "call now\nhot\nnew lead";
  more.source_time_us = 2;
  lists = Of(Step(more), ev::kPushRequested, "lists");
  ASSERT_EQ(lists.size(), 1u);
  EXPECT_EQ(lists[0].fields.at("lists_add"), "102");

  ContactFact removed = Known();
  removed.fields["tags"] = "call now\nnew lead";
  removed.source_time_us = 3;
  lists = Of(Step(removed), ev::kPushRequested, "lists");
  ASSERT_EQ(lists.size(), 1u);
  EXPECT_EQ(lists[0].fields.at("lists_remove"), "101");
  EXPECT_EQ(lists[0].fields.at("lists_keep"), "102");

  ContactFact readded = Known();
  readded.fields["tags"] = "call now\nhot\nnew lead";
  readded.source_time_us = 4;
  lists = Of(Step(readded), ev::kPushRequested, "lists");
  ASSERT_EQ(lists.size(), 1u);
  EXPECT_EQ(lists[0].fields.at("lists_add"), "101");

  // A tag that maps to a list the contact is already in (vip -> 101): nothing to do.
  ContactFact vip = Known();
  vip.fields["tags"] = "call now\nhot\nnew lead\nvip";
  vip.source_time_us = 5;
  EXPECT_TRUE(Of(Step(vip), ev::kPushRequested, "lists").empty());
}

// A person opted out of calls is put on no dialer list: a tag that maps to
// one adds nothing, and a tag change takes them off every list (the
// opt-out in the same webhook as the tags counts too).
TEST_F(MessageModelTest, NoDialerListWhileOptedOutOfCalls) {
  ContactFact f = Known();
  f.fields["tags"] = "hot\nnew lead";
  ASSERT_EQ(Of(Step(f), ev::kPushRequested, "lists").size(), 1u);  // on 101
  ContactFact dnd = Known();
  dnd.fields["tags"] = "call now\nhot\nnew lead";  // would add 102
  dnd.source_time_us = 2;
  Consent c;
  c.change = Consent::Change::kOptOut;
  c.channels = {"call"};
  c.reason = "dndSettings.Call";
  dnd.consents.push_back(c);
  auto es = Step(dnd);
  ASSERT_EQ(Of(es, ev::kOptedOut).size(), 1u);
  auto lists = Of(es, ev::kPushRequested, "lists");
  ASSERT_EQ(lists.size(), 1u) << "out of the list it was on";
  EXPECT_EQ(lists[0].fields.at("lists_add"), "");
  EXPECT_EQ(lists[0].fields.at("lists_remove"), "101");
  EXPECT_EQ(lists[0].fields.at("lists_keep"), "");
  ContactFact vip = Known();
  vip.fields["tags"] = "call now\nhot\nnew lead\nvip";
  vip.source_time_us = 3;
  // (Membership is not tracked, only tags: the removal from every list is
  // sent again, which changes nothing.)
  for (const auto& p : Of(Step(vip), ev::kPushRequested, "lists")) {
    EXPECT_EQ(p.fields.at("lists_add"), "") << "nothing added while opted out";
    EXPECT_EQ(p.fields.at("lists_keep"), "");
  }
}

TEST_F(MessageModelTest, AStrangersDeliveryStatusCreatesNoContact) {
  Activity st;
  st.kind = Activity::Kind::kStatus;
  st.message_id = "SM9";
  st.direction = "outbound";
  st.status = "delivered";
  EXPECT_TRUE(Step(Fact("twilio", st)).empty());
  EXPECT_FALSE(state_.exists);
}

}  // namespace
}  // namespace dfm

namespace dfm {
namespace {

// ContactState::message_memory_us: settled messages older than the window
// are forgotten as later events apply; one still on its way is kept.
TEST(BoundedMessages, SettledMessagesOlderThanTheWindowAreForgotten) {
  constexpr int64_t kDay = 86400LL * 1000000;
  ContactState s;
  s.contact_id = "c1";
  s.message_memory_us = 30 * kDay;
  auto about = [](std::string_view type, const std::string& key) {
    DomainEvent e;
    e.type = std::string(type);
    e.contact_id = "c1";
    e.system = "verity";
    e.message_key = key;
    e.channel = "sms";
    return e;
  };
  auto logged = [&](const std::string& key, const std::string& id) {
    DomainEvent e = about(ev::kMessageLogged, key);
    e.external_id = id;
    e.fields["direction"] = "inbound";
    return e;
  };
  uint64_t seq = 0;
  Apply(&s, logged("k-old", "m1"), ++seq, 1 * kDay);
  DomainEvent send = about(ev::kPushRequested, "k-busy");  // requested, never settled
  send.op = "send";
  send.push_id = "c1:verity:9:send";
  Apply(&s, logged("k-busy", "m2"), ++seq, 1 * kDay);
  Apply(&s, send, ++seq, 1 * kDay);
  Apply(&s, logged("k-recent", "m3"), ++seq, 20 * kDay);
  ASSERT_EQ(s.messages.size(), 3u);
  Apply(&s, logged("k-new", "m4"), ++seq, 40 * kDay);
  EXPECT_EQ(s.messages.count("k-old"), 0u) << "settled and 39 days old";
  EXPECT_EQ(s.message_keys.count("verity\nm1"), 0u);
  EXPECT_EQ(s.messages.count("k-busy"), 1u) << "its send is still on its way";
  EXPECT_EQ(s.messages.count("k-recent"), 1u) << "within the window";
  EXPECT_EQ(s.messages.count("k-new"), 1u);
  // The same events applied with no window keep everything (the default
  // of a bare ContactState; the actor sets the configured window).
  ContactState all;
  all.contact_id = "c1";
  Apply(&all, logged("k-old", "m1"), 1, 1 * kDay);
  Apply(&all, logged("k-new", "m4"), 2, 400 * kDay);
  EXPECT_EQ(all.messages.size(), 2u);
}

}  // namespace
}  // namespace dfm
