// Webhooks that carry several facts (issue 52): a batched WhatsApp
// notification (messages across changes and entries), a batched HaloPSA
// delivery (a JSON array). Every fact a mapper reads from one webhook is
// decided, in order, each de-duplicated by its own id; a batch decides
// what the same facts posted one by one decide; through the router too.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "connectors/halopsa/halopsa.h"
#include "connectors/whatsapp/whatsapp.h"
#include "sync/contact_model.h"
#include "tests/support/actor_fixture.h"
#include "tests/support/bridge_context.h"
#include "tests/support/mapper_input.h"

namespace dfm {
namespace {

using testing::BridgeContext;
using testing::UsSettings;
using testing::Webhook;

// One WhatsApp message item from `from` (a wa_id).
std::string Message(const std::string& id, const std::string& from, const std::string& text) {
  return R"({"from":")" + from + R"(","id":")" + id +
         R"(","timestamp":"1763661600","type":"text","text":{"body":")" + text + R"("}})";
}

std::string Change(const std::vector<std::string>& messages) {
  std::string list;
  for (const auto& m : messages) list += (list.empty() ? "" : ",") + m;
  return R"({"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"messages":[)" +
         list + "]}}";
}

// A notification of `entries`, each a list of changes.
std::string Notification(const std::vector<std::vector<std::string>>& entries) {
  std::string out = R"({"object":"whatsapp_business_account","entry":[)";
  for (size_t e = 0; e < entries.size(); ++e) {
    std::string changes;
    for (const auto& c : entries[e]) changes += (changes.empty() ? "" : ",") + c;
    out += (e ? "," : "") + std::string(R"({"id":"102290129340398","changes":[)") + changes + "]}";
  }
  return out + "]}";
}

// Issue 52's notification: three messages in one change, then two changes
// of one message each in the same entry.
std::string FiveMessages(const std::string& from = "16505551234") {
  return Notification({{Change({Message("wamid.1", from, "one"), Message("wamid.2", from, "two"),
                                Message("wamid.3", from, "three")}),
                        Change({Message("wamid.4", from, "four")}), Change({Message("wamid.5", from, "five")})}});
}

std::vector<DomainEvent> Of(const std::vector<DomainEvent>& es, std::string_view type, std::string_view op = "") {
  std::vector<DomainEvent> out;
  for (const auto& e : es)
    if (e.type == type && (op.empty() || e.op == op)) out.push_back(e);
  return out;
}

// Decides `facts` in order on `s`, as one webhook `seq` (each fact in its
// place) or, when `one_by_one`, as webhooks seq, seq+1, ...
std::vector<DomainEvent> DecideAll(ContactState* s, std::vector<ContactFact> facts, uint64_t seq,
                                   const SyncContext& ctx, bool one_by_one = false) {
  std::vector<DomainEvent> all;
  uint64_t applied = s->last_event_seq;
  for (size_t i = 0; i < facts.size(); ++i) {
    facts[i].webhook_seq = one_by_one ? seq + i : seq;
    facts[i].fact_index = one_by_one ? 0 : static_cast<uint32_t>(i);
    for (auto& e : Decide(*s, facts[i], ctx)) {
      Apply(s, e, ++applied, ctx.now_us);
      all.push_back(std::move(e));
    }
  }
  return all;
}

TEST(BatchedWebhooks, WhatsAppMapperReadsEveryItemInOrder) {
  std::vector<ContactFact> facts;
  ASSERT_TRUE(MapWhatsAppWebhook(Webhook("whatsapp", FiveMessages()), UsSettings(), &facts).ok());
  ASSERT_EQ(facts.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    ASSERT_EQ(facts[i].activities.size(), 1u);
    EXPECT_EQ(facts[i].activities[0].message_id, "wamid." + std::to_string(i + 1));
  }
  // Two entries, each with its own changes.
  facts.clear();
  const std::string two_entries = Notification({{Change({Message("wamid.a", "16505551234", "x")})},
                                                {Change({Message("wamid.b", "16505551235", "y")})}});
  ASSERT_TRUE(MapWhatsAppWebhook(Webhook("whatsapp", two_entries), UsSettings(), &facts).ok());
  ASSERT_EQ(facts.size(), 2u);
  EXPECT_EQ(facts[1].fields.at("phone"), "+16505551235");
}

// The bug: the second fact of one webhook for one person was taken for
// decided already (the contact compared webhook sequences only), and the
// message was never logged nor forwarded.
TEST(BatchedWebhooks, EveryFactOfOneWebhookIsDecidedAndOnlyOnce) {
  const SyncContext ctx = BridgeContext();
  ContactState s;
  s.contact_id = "c1";
  std::vector<ContactFact> facts;
  ASSERT_TRUE(MapWhatsAppWebhook(Webhook("whatsapp", FiveMessages()), UsSettings(), &facts).ok());
  auto es = DecideAll(&s, facts, 100, ctx);
  auto logged = Of(es, ev::kMessageLogged);
  auto forwarded = Of(es, ev::kPushRequested, "message");
  ASSERT_EQ(logged.size(), 5u);
  ASSERT_EQ(forwarded.size(), 5u);
  std::set<std::string> push_ids;
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(logged[i].external_id, "wamid." + std::to_string(i + 1)) << "in order";
    EXPECT_EQ(logged[i].fact_index, i);
    EXPECT_EQ(forwarded[i].system, "genesys");
    push_ids.insert(forwarded[i].push_id);
  }
  EXPECT_EQ(push_ids.size(), 5u);
  for (const auto& e : es) EXPECT_EQ(e.webhook_seq, 100u);
  EXPECT_EQ(s.last_fact_seq, 100u);
  EXPECT_EQ(s.last_fact_index, 4u);
  // Read again (a restart): nothing is decided twice.
  EXPECT_TRUE(DecideAll(&s, facts, 100, ctx).empty());
  // A batch overlapping it (Meta's retry of part of it with news): only
  // what is new is forwarded.
  std::vector<ContactFact> overlap;
  const std::string later = Notification({{Change({Message("wamid.4", "16505551234", "four"),
                                                   Message("wamid.6", "16505551234", "six")})}});
  ASSERT_TRUE(MapWhatsAppWebhook(Webhook("whatsapp", later), UsSettings(), &overlap).ok());
  auto again = DecideAll(&s, overlap, 101, ctx);
  ASSERT_EQ(Of(again, ev::kMessageLogged).size(), 1u);
  EXPECT_EQ(Of(again, ev::kMessageLogged)[0].external_id, "wamid.6");
  EXPECT_EQ(Of(again, ev::kPushRequested, "message").size(), 1u);
}

// Decisions without what names the webhook they answer.
std::vector<std::string> Shapes(const std::vector<DomainEvent>& es) {
  std::vector<std::string> out;
  for (const auto& e : es) {
    std::string shown = e.type + " " + e.op + " " + e.system + " " + e.external_id + " " + e.channel;
    for (const auto& [k, v] : e.fields) shown += " " + k + "=" + v;
    for (const auto& c : e.changes) shown += " " + c.field + ":" + c.new_value;
    out.push_back(shown);
  }
  return out;
}

// Property: whatever facts one webhook carries about one person (texts,
// statuses, STOP and START, as WhatsApp's batches hold them), they decide
// what the same facts decide as separate webhooks, with no two pushes of
// one id; and deciding the batch again decides nothing.
TEST(BatchedWebhooks, ABatchDecidesWhatItsFactsDecideOneByOne) {
  const SyncContext ctx = BridgeContext();
  for (uint32_t seed = 1; seed <= 300; ++seed) {
    std::mt19937 rng(seed);
    std::vector<std::string> changes, items;
    const size_t n = 1 + rng() % 8;
    for (size_t i = 0; i < n; ++i) {
      const std::string id = "wamid." + std::to_string(seed) + "." + std::to_string(i % (2 + rng() % 6));
      static const char* kTexts[] = {"hello", "STOP", "START", "is it in blue?", "stop by at 3pm?"};
      items.push_back(Message(id, "16505551234", kTexts[rng() % 5]));
      if (rng() % 3 == 0) {
        changes.push_back(Change(items));
        items.clear();
      }
    }
    if (!items.empty()) changes.push_back(Change(items));
    const std::string body = Notification({changes});
    std::vector<ContactFact> facts;
    ASSERT_TRUE(MapWhatsAppWebhook(Webhook("whatsapp", body), UsSettings(), &facts).ok()) << seed;
    ContactState batched, separate;
    batched.contact_id = separate.contact_id = "c1";
    const auto a = DecideAll(&batched, facts, 500, ctx);
    const auto b = DecideAll(&separate, facts, 500, ctx, /*one_by_one=*/true);
    EXPECT_EQ(Shapes(a), Shapes(b)) << "seed " << seed << ": " << body;
    std::set<std::string> ids;
    for (const auto& e : a) {
      if (e.type == ev::kPushRequested) {
        EXPECT_TRUE(ids.insert(e.push_id).second) << seed << " " << e.push_id;
      }
    }
    EXPECT_TRUE(DecideAll(&batched, facts, 500, ctx).empty()) << seed;
  }
}

TEST(BatchedWebhooks, HaloPsaBatchedDeliveryIsAFactPerElement) {
  const std::string body = R"([
    {"id":"e1","event":"new user created","object_id":1,"user":{"id":1,"firstname":"Ann","surname":"Lee","emailaddress":"ann@umbrella-labs.com","client_name":"Umbrella Labs"}},
    {"id":"e2","event":"ticket updated","object_id":9},
    {"id":"e3","event":"user updated","object_id":2,"user":{"id":2,"firstname":"Bo","emailaddress":"bo@umbrella-labs.com"}}])";
  std::vector<ContactFact> facts;
  MapperSettings s = UsSettings();
  ASSERT_TRUE(MapHaloWebhook(Webhook("halopsa", body), s, &facts).ok());
  ASSERT_EQ(facts.size(), 2u) << "the ticket event carries no contact";
  EXPECT_EQ(facts[0].external_id, "1");
  EXPECT_EQ(facts[0].fields.at("first_name"), "Ann");
  EXPECT_EQ(facts[1].external_id, "2");
  facts.clear();
  const std::string broken = R"([{"id":"e1","event":"user updated"}])";
  Status st = MapHaloWebhook(Webhook("halopsa", broken), s, &facts);
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_NE(st.message().find("element 0 of the batch"), std::string::npos) << st.message();
}

// Through the router and the contact actor: every message of the batch
// is logged and forwarded, in order, once; a batch overlapping it
// forwards only what is new.
class BatchedRouting : public testing::ActorTest {
 protected:
  BatchedRouting() {
    const SyncContext bridge = BridgeContext();
    env_->ctx.conversations = bridge.conversations;
    env_->ctx.sender = bridge.sender;
    env_->ctx.targets = bridge.targets;
    env_->ctx.channels = bridge.channels;
    env_->ctx.messages_only = bridge.messages_only;
    env_->ctx.takes_receipts = bridge.takes_receipts;
    env_->board = std::make_shared<SyncStatusBoard>();
  }
  uint64_t AppendWebhook(const std::string& system, const std::string& id, const std::string& body) {
    WebhookReceived w;
    w.system = system;
    w.provider_event_id = id;
    AppendOutcome out;
    EXPECT_TRUE(log_.Append(WebhookDraft("default", w, body), &out).ok());
    return out.seq;
  }
  std::vector<DomainEvent> Decided(std::string_view type) {
    std::vector<Event> all;
    EXPECT_TRUE(log_.Read(1, 100000, &all).ok());
    std::vector<DomainEvent> out;
    for (const auto& e : all) {
      DomainEvent d;
      if (e.type == type && AsDomainEvent(e, &d)) out.push_back(d);
    }
    return out;
  }
};

TEST_F(BatchedRouting, EveryMessageOfABatchReachesTheLogInOrderOnce) {
  auto genesys = std::make_shared<testing::ScriptedClient>();
  ConnectorSettings cs = Settings(genesys);
  cs.system = "genesys";
  cs.concurrency = 1;
  auto connector = Connector(cs);
  env_->connectors[{"default", "genesys"}] = connector;
  auto router = StartRouter(connector);
  // Two people: three messages of one and two of the other, interleaved.
  const std::string body =
      Notification({{Change({Message("wamid.1", "16505551234", "one"), Message("wamid.2", "16505551299", "a"),
                             Message("wamid.3", "16505551234", "two")}),
                     Change({Message("wamid.4", "16505551234", "three")}),
                     Change({Message("wamid.5", "16505551299", "b")})}});
  AppendWebhook("whatsapp", "batch-1", body);
  caf::anon_send(router, poll_atom::value);
  sched_->run();
  auto logged = Decided(ev::kMessageLogged);
  ASSERT_EQ(logged.size(), 5u);
  std::map<std::string, std::vector<std::string>> by_contact;
  for (const auto& m : logged) by_contact[m.contact_id].push_back(m.external_id);
  ASSERT_EQ(by_contact.size(), 2u);
  std::set<std::vector<std::string>> orders;
  for (const auto& [c, ids] : by_contact) orders.insert(ids);
  EXPECT_EQ(orders, (std::set<std::vector<std::string>>{{"wamid.1", "wamid.3", "wamid.4"}, {"wamid.2", "wamid.5"}}));
  auto forwarded = Of(Decided(ev::kPushRequested), ev::kPushRequested, "message");
  ASSERT_EQ(forwarded.size(), 5u);
  std::set<std::string> ids;
  for (const auto& p : forwarded) ids.insert(p.push_id);
  EXPECT_EQ(ids.size(), 5u) << "each its own push";
  // Genesys is handed them one contact's at a time, each person's in order.
  std::vector<std::string> handed;
  for (size_t i = 0; i < genesys->pushes.size() && i < 10; ++i) {
    handed.push_back(genesys->pushes[i].req.message_key);
    genesys->Answer(i, 200, "g-" + std::to_string(i));
    sched_->run();
  }
  std::vector<std::string> first_person, second_person;
  for (const auto& k : handed)
    (k == "whatsapp:wamid.2" || k == "whatsapp:wamid.5" ? second_person : first_person).push_back(k);
  EXPECT_EQ(first_person, (std::vector<std::string>{"whatsapp:wamid.1", "whatsapp:wamid.3", "whatsapp:wamid.4"}));
  EXPECT_EQ(second_person, (std::vector<std::string>{"whatsapp:wamid.2", "whatsapp:wamid.5"}));
  EXPECT_EQ(handed.size(), 5u);
  EXPECT_EQ(env_->board->router.webhooks_in_flight.load(), 0u);
  const RouterStatus::Inbound in = env_->board->router.InboundOf("default", "whatsapp");
  EXPECT_EQ(in.webhooks, 1u);
  EXPECT_EQ(in.batched, 1u);
  EXPECT_EQ(in.facts, 5u);

  // A later batch overlapping it: only the new message.
  AppendWebhook("whatsapp", "batch-2",
                Notification({{Change({Message("wamid.3", "16505551234", "two"),
                                       Message("wamid.6", "16505551234", "four")})}}));
  caf::anon_send(router, poll_atom::value);
  sched_->run();
  EXPECT_EQ(Decided(ev::kMessageLogged).size(), 6u);

}

TEST_F(BatchedRouting, AHaloPsaBatchMakesAContactPerUser) {
  auto router = StartRouter();
  AppendWebhook("halopsa", "ids:e1,e2", R"([
    {"id":"e1","event":"new user created","object_id":1,"user":{"id":1,"firstname":"Ann","emailaddress":"ann@umbrella-labs.com"}},
    {"id":"e2","event":"new user created","object_id":2,"user":{"id":2,"firstname":"Bo","emailaddress":"bo@umbrella-labs.com"}}])");
  caf::anon_send(router, poll_atom::value);
  sched_->run();
  auto created = Decided(ev::kContactCreated);
  ASSERT_EQ(created.size(), 2u);
  EXPECT_NE(created[0].contact_id, created[1].contact_id);
}

}  // namespace
}  // namespace dfm
