// The pure sync rules: normalization, mappers, and the contact merge model.
#include <gtest/gtest.h>

#include "connectors/common/mapper.h"
#include "sync/contact_model.h"
#include "sync/domain_event.h"
#include "sync/normalize.h"
#include "util/clock.h"
#include "tests/support/fixtures.h"

namespace dfm {
namespace {

TEST(Normalizer, PhonesToE164) {
  Normalizer n("US");
  EXPECT_EQ(n.Phone("(205) 555-0142").value_or(""), "+12055550142");
  EXPECT_EQ(n.Phone(" +1 205-555-0142 ").value_or(""), "+12055550142");
  EXPECT_EQ(n.Phone("2055550142").value_or(""), "+12055550142");
  EXPECT_EQ(n.Phone("+44 20 7946 0958").value_or(""), "+442079460958");
  EXPECT_FALSE(n.Phone("12").has_value());
  EXPECT_FALSE(n.Phone("not a phone").has_value());
  EXPECT_FALSE(n.Phone("").has_value());
  Normalizer gb("GB");
  EXPECT_EQ(gb.Phone("020 7946 0958").value_or(""), "+442079460958");
}

TEST(Normalizer, EmailsTrimmedAndLowerCased) {
  EXPECT_EQ(Normalizer::Email("  John.Deo@Example.COM ").value_or(""), "john.deo@example.com");
  EXPECT_FALSE(Normalizer::Email("no-at-sign").has_value());
  EXPECT_FALSE(Normalizer::Email("a@b@c").has_value());
  EXPECT_FALSE(Normalizer::Email("a b@c.d").has_value());
  EXPECT_FALSE(Normalizer::Email("@c.d").has_value());
}

TEST(DomainEvent, RoundTripsEveryMember) {
  DomainEvent e;
  e.type = std::string(ev::kConflictRecorded);
  e.contact_id = "c1";
  e.system = "aloware";
  e.external_id = "42";
  e.source_time_us = 123;
  e.fields = {{"first_name", "Jo \"q\""}, {"phone", "+12055550142"}};
  e.changes = {{"first_name", "A", "B"}};
  e.field = "email";
  e.kept = {"a@x.io", "ghl", 5};
  e.lost = {"b@x.io", "aloware", 6};
  e.rule = "owner";
  e.reason = "r";
  e.via = "push";
  e.message_key = "msg-1";
  e.channel = "sms,call";
  e.candidates = {{"c1", "phone"}, {"c2", "email"}};
  e.push_id = "p";
  e.op = "upsert";
  e.priority = 10;
  e.attempt = 3;
  e.outcome = "retry";
  e.http_status = 429;
  e.detail = "d";
  e.next_attempt_us = 99;
  e.webhook_seq = 7;
  DomainEvent back;
  ASSERT_TRUE(DecodeDomainEvent(e.type, EncodeDomainEvent(e), &back).ok());
  EXPECT_EQ(back, e);
  EXPECT_FALSE(DecodeDomainEvent(e.type, "[1]", &back).ok());
  EXPECT_FALSE(DecodeDomainEvent(e.type, "{", &back).ok());
}

MapperSettings UsSettings() {
  static const Normalizer kUs("US");
  MapperSettings s;
  s.normalizer = &kUs;
  return s;
}

WebhookReceived Webhook(const std::string& system, const std::string& body) {
  WebhookReceived w;
  w.system = system;
  w.body = body;
  return w;
}

TEST(GhlMapper, ContactCreateFixture) {
  MapperSettings s = UsSettings();
  std::vector<ContactFact> facts;
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", testing::Fixture("ghl/ContactCreate.json")), s,
                            &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  const auto& f = facts[0];
  EXPECT_EQ(f.kind, ContactFact::Kind::kUpsert);
  EXPECT_EQ(f.external_id, "nmFmQEsNgz6AVpgLVUJ0");
  EXPECT_EQ(f.fields.at("phone"), "+12055550142");
  EXPECT_EQ(f.fields.at("email"), "john.deo@example.com");
  EXPECT_EQ(f.fields.at("first_name"), "John");
  EXPECT_EQ(f.fields.at("tags"), "new lead");
  EXPECT_EQ(f.fields.at("company_name"), "Loram ipsum");
  EXPECT_GT(f.source_time_us, 0);
}

TEST(GhlMapper, DeleteOtherTypesAndUnreadable) {
  MapperSettings s = UsSettings();
  std::vector<ContactFact> facts;
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", testing::Fixture("ghl/ContactDelete.json")), s,
                            &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].kind, ContactFact::Kind::kDelete);
  facts.clear();
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", testing::Fixture("ghl/InboundMessage.json")), s,
                            &facts)
                  .ok());
  EXPECT_TRUE(facts.empty());
  Status bad = MapGhlWebhook(Webhook("ghl", R"({"type":"ContactUpdate","email":"a@b.c"})"), s,
                             &facts);
  EXPECT_TRUE(bad.IsInvalidArgument());
  EXPECT_NE(bad.message().find("id"), std::string::npos);
  EXPECT_TRUE(MapGhlWebhook(Webhook("ghl", "{not json"), s, &facts).IsInvalidArgument());
  EXPECT_TRUE(facts.empty());
}

TEST(AlowareMapper, ContactEventsByConfiguredName) {
  MapperSettings s = UsSettings();
  s.aloware_utc_offset_us = -5LL * 3600 * 1000000;  // -05:00
  std::vector<ContactFact> facts;
  std::string body =
      R"({"event":"Contact Updated","body":{"id":6896898,"first_name":"Jane","last_name":"Roe",)"
      R"("phone_number":"205-555-0143","email":" Jane@Example.com","updated_at":"2026-11-20 10:00:00"}})";
  ASSERT_TRUE(MapAlowareWebhook(Webhook("aloware", body), s, &facts).ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].external_id, "6896898");
  EXPECT_EQ(facts[0].fields.at("phone"), "+12055550143");
  EXPECT_EQ(facts[0].fields.at("email"), "jane@example.com");
  // 10:00 at -05:00 is 15:00 UTC.
  EXPECT_EQ(facts[0].source_time_us, *ParseIso8601Micros("2026-11-20T15:00:00Z"));
  facts.clear();
  ASSERT_TRUE(
      MapAlowareWebhook(Webhook("aloware", testing::Fixture("aloware/Call-Disposed.json")), s,
                        &facts)
          .ok());
  EXPECT_TRUE(facts.empty());
  s.aloware_contact_events = {"contact.updated"};
  ASSERT_TRUE(MapAlowareWebhook(Webhook("aloware", body), s, &facts).ok());
  EXPECT_TRUE(facts.empty());  // no longer a contact event name
  EXPECT_TRUE(
      MapAlowareWebhook(Webhook("aloware", R"({"event":"contact.updated","body":[]})"), s, &facts)
          .IsInvalidArgument());
}

// --- the contact model ---

class ContactModelTest : public ::testing::Test {
 protected:
  ContactModelTest() {
    ctx_.policy = MergePolicy::Defaults();
    std::set<std::string> all = {"first_name", "last_name", "email", "phone", "address1",
                                 "city",       "state",     "postal_code", "company_name"};
    ctx_.targets["ghl"] = all;
    ctx_.targets["aloware"] = all;
    ctx_.now_us = 1'000'000'000;
    state_.contact_id = "c1";
  }

  ContactFact Fact(const std::string& system, const std::string& ext,
                   std::map<std::string, std::string> fields, int64_t t) {
    ContactFact f;
    f.system = system;
    f.external_id = ext;
    f.fields = std::move(fields);
    f.source_time_us = t;
    f.webhook_seq = ++webhook_seq_;
    return f;
  }

  // Decides and applies, as the actor does.
  std::vector<DomainEvent> Step(const ContactFact& f) {
    auto events = Decide(state_, f, ctx_);
    for (const auto& e : events) Apply(&state_, e, ++seq_, ctx_.now_us);
    return events;
  }

  static std::vector<std::string> Types(const std::vector<DomainEvent>& es) {
    std::vector<std::string> out;
    for (const auto& e : es) out.push_back(e.type + (e.type == "push.requested" ? ">" + e.system : ""));
    return out;
  }

  void Succeed(const DomainEvent& push, const std::string& ext) {
    DomainEvent ok;
    ok.type = std::string(ev::kPushSucceeded);
    ok.contact_id = push.contact_id;
    ok.system = push.system;
    ok.external_id = ext;
    ok.fields = push.fields;
    ok.push_id = push.push_id;
    Apply(&state_, ok, ++seq_, ctx_.now_us);
  }

  SyncContext ctx_;
  ContactState state_;
  uint64_t seq_ = 0;
  uint64_t webhook_seq_ = 100;
};

TEST_F(ContactModelTest, CreateInOneSystemPushesToTheOther) {
  auto es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"first_name", "John"}}, 10));
  EXPECT_EQ(Types(es), (std::vector<std::string>{"contact.created", "push.requested>aloware"}));
  EXPECT_EQ(es[1].op, "upsert");
  EXPECT_EQ(es[1].external_id, "");  // not in Aloware yet: the connector looks up first
  EXPECT_EQ(es[1].fields.at("first_name"), "John");
  EXPECT_TRUE(state_.exists);
  EXPECT_EQ(state_.links.at("ghl"), "g1");
}

TEST_F(ContactModelTest, FactWithoutPhoneOrEmailIsRejected) {
  auto es = Step(Fact("ghl", "g1", {{"first_name", "John"}}, 10));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"fact.rejected"}));
  EXPECT_NE(es[0].reason.find("phone or an email"), std::string::npos);
  EXPECT_FALSE(state_.exists);
}

// Found end to end: GoHighLevel's echo of a contact created from Aloware
// says "tags: []" where nothing was known. Empty where nothing is known is
// agreement, not an edit to record and push back.
TEST_F(ContactModelTest, EmptyWhereNothingIsKnownIsNotAChange) {
  auto es = Step(Fact("aloware", "7", {{"phone", "+12055550142"}, {"first_name", "Grace"}}, 10));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.created", "push.requested>ghl"}));
  // The echo arrives before the push's answer.
  es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"first_name", "Grace"}, {"tags", ""}}, 20));
  EXPECT_EQ(Types(es), (std::vector<std::string>{"contact.linked", "contact.echo_suppressed"}));
}

TEST_F(ContactModelTest, OwnersOwnOutOfOrderEditLoses) {
  Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"first_name", "Old"}}, 10));
  Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"first_name", "Newest"}}, 30));
  auto es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"first_name", "Stale"}}, 20));
  EXPECT_EQ(state_.fields.at("first_name").value, "Newest");
  for (const auto& e : es) EXPECT_NE(e.type, "push.requested");
}

TEST_F(ContactModelTest, SameWebhookIsDecidedOnce) {
  auto f = Fact("ghl", "g1", {{"phone", "+12055550142"}}, 10);
  EXPECT_FALSE(Step(f).empty());
  EXPECT_TRUE(Step(f).empty());
}

TEST_F(ContactModelTest, OwnerWinsAndTheLoserIsKept) {
  auto es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"email", "a@x.io"}}, 10));
  Succeed(es[1], "a1");
  // Aloware edits the email later: GoHighLevel owns email, so it loses.
  es = Step(Fact("aloware", "a1", {{"phone", "+12055550142"}, {"email", "b@x.io"}}, 20));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.conflict_recorded",
                                                 "push.requested>aloware"}));
  EXPECT_EQ(es[0].field, "email");
  EXPECT_EQ(es[0].kept.value, "a@x.io");
  EXPECT_EQ(es[0].kept.system, "ghl");
  EXPECT_EQ(es[0].lost.value, "b@x.io");
  EXPECT_EQ(es[0].rule, "owner");
  EXPECT_EQ(es[1].fields.at("email"), "a@x.io");  // Aloware is put back in agreement
  EXPECT_EQ(state_.fields.at("email").value, "a@x.io");
}

TEST_F(ContactModelTest, NewerWinsForUnownedFieldsAndOutOfOrderLoses) {
  auto es = Step(Fact("aloware", "a1", {{"phone", "+12055550142"}, {"company_name", "A"}}, 10));
  Succeed(es[1], "g1");
  es = Step(Fact("aloware", "a1", {{"phone", "+12055550142"}, {"company_name", "C"}}, 30));
  EXPECT_EQ(Types(es), (std::vector<std::string>{"contact.changed", "push.requested>ghl"}));
  // An older update from the same system arrives late: it loses, nothing is pushed.
  es = Step(Fact("aloware", "a1", {{"phone", "+12055550142"}, {"company_name", "B"}}, 20));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.conflict_recorded"}));
  EXPECT_EQ(es[0].rule, "newer");
  EXPECT_EQ(es[0].lost.value, "B");
  EXPECT_EQ(state_.fields.at("company_name").value, "C");
  EXPECT_EQ(state_.known.at("aloware").at("company_name"), "C");
}

TEST_F(ContactModelTest, EchoSuppressedButLaterRealEditSyncs) {
  auto es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"first_name", "John"}}, 10));
  // Aloware's webhook for our own push arrives before the push's answer.
  es = Step(Fact("aloware", "a1", {{"phone", "+12055550142"}, {"first_name", "John"}}, 50));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.linked", "contact.echo_suppressed"}));
  // GoHighLevel renames; the rename is pushed to Aloware.
  es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"first_name", "Johnny"}}, 60));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.changed", "push.requested>aloware"}));
  // The echo of that push comes back from Aloware with a newer time: not an edit.
  es = Step(Fact("aloware", "a1", {{"phone", "+12055550142"}, {"first_name", "Johnny"}}, 70));
  EXPECT_TRUE(es.empty() || Types(es) == std::vector<std::string>{"contact.echo_suppressed"});
  EXPECT_EQ(Types(es), (std::vector<std::string>{"contact.echo_suppressed"}));
  EXPECT_EQ(state_.fields.at("first_name").value, "Johnny");
  // An Aloware edit of a field GoHighLevel does not own is real and syncs.
  es = Step(Fact("aloware", "a1",
                 {{"phone", "+12055550142"}, {"first_name", "Johnny"}, {"company_name", "Acme"}},
                 80));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.changed", "push.requested>ghl"}));
  EXPECT_EQ(es[1].fields.at("company_name"), "Acme");
}

TEST_F(ContactModelTest, StaleEchoDoesNotUndoANewerEdit) {
  // Unowned field: newer source time wins, so only echo recognition stops an
  // echo of an older push from overwriting a newer edit.
  ctx_.policy.owner.clear();
  auto es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"first_name", "A"}}, 10));
  Succeed(es[1], "a1");
  es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"first_name", "B"}}, 20));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.changed", "push.requested>aloware"}));
  es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"first_name", "C"}}, 30));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.changed", "push.requested>aloware"}));
  // Aloware's echo of "B" arrives now, stamped later than C.
  es = Step(Fact("aloware", "a1", {{"phone", "+12055550142"}, {"first_name", "B"}}, 40));
  EXPECT_EQ(Types(es), (std::vector<std::string>{"contact.echo_suppressed"}));
  EXPECT_EQ(state_.fields.at("first_name").value, "C");
  // After the window, a new value from Aloware is an ordinary edit.
  ctx_.now_us += ctx_.policy.echo_window_us + 1;
  es = Step(Fact("aloware", "a1", {{"phone", "+12055550142"}, {"first_name", "D"}}, 50));
  ASSERT_FALSE(es.empty());
  EXPECT_EQ(Types(es)[0], "contact.changed");
  EXPECT_EQ(state_.fields.at("first_name").value, "D");
}

TEST_F(ContactModelTest, DeleteInGhlMarksDoNotContactElsewhere) {
  auto es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}}, 10));
  Succeed(es[1], "a1");
  ContactFact del = Fact("ghl", "g1", {}, 20);
  del.kind = ContactFact::Kind::kDelete;
  es = Step(del);
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.deleted", "push.requested>aloware"}));
  EXPECT_EQ(es[1].op, "mark_dnc");
  EXPECT_EQ(es[1].external_id, "a1");
  EXPECT_TRUE(state_.deleted);
}

TEST_F(ContactModelTest, RecoveryFromEventsGivesTheSameState) {
  std::vector<std::pair<DomainEvent, uint64_t>> log;
  auto record = [&](const std::vector<DomainEvent>& es) {
    for (size_t i = 0; i < es.size(); ++i) log.emplace_back(es[i], seq_ - es.size() + i + 1);
  };
  record(Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"email", "a@x.io"}}, 10)));
  record(Step(Fact("aloware", "a1", {{"phone", "+12055550142"}, {"email", "b@x.io"}}, 20)));
  record(Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"first_name", "Z"}}, 30)));
  ContactState rebuilt;
  for (const auto& [e, seq] : log) {
    DomainEvent decoded;
    ASSERT_TRUE(DecodeDomainEvent(e.type, EncodeDomainEvent(e), &decoded).ok());
    Apply(&rebuilt, decoded, seq, ctx_.now_us);
  }
  EXPECT_EQ(rebuilt.fields, state_.fields);
  EXPECT_EQ(rebuilt.links, state_.links);
  EXPECT_EQ(rebuilt.known, state_.known);
  EXPECT_EQ(rebuilt.last_fact_seq, state_.last_fact_seq);
}

}  // namespace
}  // namespace dfm
