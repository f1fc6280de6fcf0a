// The pure sync rules: normalization, mappers, and the contact merge model.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <random>
#include <thread>

#include "config/config.h"
#include "connectors/common/mapper.h"
#include "sync/consent.h"
#include "sync/contact_model.h"
#include "sync/domain_event.h"
#include "sync/normalize.h"
#include "tests/support/fixtures.h"
#include "tests/support/mapper_input.h"
#include "util/clock.h"

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

// Answers are remembered by region and text, for every thread: asking
// again, or asking another region about the same text, gives what parsing
// gives.
TEST(Normalizer, RepeatedAndOtherRegionAnswersAreTheParsersOwn) {
  Normalizer us("US"), gb("GB");
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(us.Phone("2079460958").value_or(""), "+12079460958") << round;
    EXPECT_EQ(gb.Phone("2079460958").value_or(""), "+442079460958") << round;
    EXPECT_FALSE(us.Phone("12").has_value()) << round;
    EXPECT_EQ(us.Phone(" 2079460958 ").value_or(""), "+12079460958") << round;
  }
  // Past the cache's size every number still parses.
  for (int i = 0; i < 3000; ++i) {
    std::string national = std::to_string(2055550000 + i);
    EXPECT_EQ(us.Phone(national).value_or(""), "+1" + national) << national;
  }
  EXPECT_EQ(gb.Phone("2079460958").value_or(""), "+442079460958");
}

// Threads share the cache: 20,000 numbers (in 32,768 sets of two slots,
// some sets are asked for three or more and take slots over from each
// other), asked twice by four threads at once, in two regions.
TEST(Normalizer, ThreadsSharingTheCacheGetTheParsersAnswers) {
  Normalizer us("US"), gb("GB");
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) {
        const int n = t * 5000 + (i * 7919) % 5000;  // each number twice
        const std::string national = std::to_string(2010000000 + n);
        if (us.Phone(national) != "+1" + national) ++wrong;
        if (i % 50 == 0 && gb.Phone("2079460958") != "+442079460958") ++wrong;
        if (i % 50 == 0 && us.Phone("12").has_value()) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
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
  e.actor = "staff";
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

TEST(DomainEvent, DecodingIntoAUsedObjectLeavesNothingOfTheOldOne) {
  DomainEvent full;
  full.type = std::string(ev::kConflictRecorded);
  full.contact_id = full.system = full.external_id = full.field = full.rule = "x";
  full.source_time_us = full.next_attempt_us = 5;
  full.fields = {{"phone", "+12055550142"}};
  full.changes = {{"first_name", "A", "B"}};
  full.kept = {"a", "ghl", 5};
  full.lost = {"b", "aloware", 6};
  full.reason = full.via = full.message_key = full.channel = full.push_id = full.op = "y";
  full.outcome = full.detail = "z";
  full.candidates = {{"c1", "phone"}};
  full.priority = full.attempt = full.http_status = 1;
  full.webhook_seq = 7;
  DomainEvent small;
  small.type = std::string(ev::kPushAttempted);
  small.push_id = "p2";
  small.outcome = "ok";
  // The reader of a rebuild decodes every event into the same object.
  DomainEvent reused;
  ASSERT_TRUE(DecodeDomainEvent(full.type, EncodeDomainEvent(full), &reused).ok());
  ASSERT_EQ(reused, full);
  ASSERT_TRUE(DecodeDomainEvent(small.type, EncodeDomainEvent(small), &reused).ok());
  EXPECT_EQ(reused, small);
  // A payload that fails half-way leaves nothing decoded (replay tells a
  // decoded event by its type).
  EXPECT_FALSE(DecodeDomainEvent(full.type, R"({"contact_id":"c9","fields":[1]})", &reused).ok());
  EXPECT_EQ(reused, DomainEvent());
}

TEST(DomainEvent, APayloadParsedInPlaceReadsNoBytePastItsEnd) {
  // AsDomainEvent parses a payload with spare capacity where it is; the
  // bytes left past its end by a longer payload must not be read as JSON.
  Event e;
  e.type = std::string(ev::kPushAttempted);
  e.payload = R"({"push_id":"p1","outcome":"retry","detail":")" + std::string(100, 'x') + R"("})";
  e.payload = R"({"push_id":"p2"})";
  ASSERT_GE(e.payload.capacity() - e.payload.size(), kDecodePadding);
  DomainEvent in_place, copied;
  ASSERT_TRUE(AsDomainEvent(e, &in_place));
  ASSERT_TRUE(DecodeDomainEvent(e.type, e.payload, &copied).ok());
  EXPECT_EQ(in_place, copied);
  EXPECT_EQ(in_place.push_id, "p2");
  EXPECT_TRUE(in_place.outcome.empty());
  // Cut where the old bytes would close the object: not JSON.
  e.payload.assign(R"({"push_id":"p1","outcome":"retry","detail":"x"})");
  e.payload.resize(e.payload.size() - 2);  // {"push_id":"p1",...,"detail":"x
  EXPECT_FALSE(AsDomainEvent(e, &in_place));
  EXPECT_EQ(in_place, DomainEvent());
}

TEST(DomainEvent, FieldsDecodedIntoAUsedObjectAreExactlyThePayloads) {
  // The fields' nodes are reused when the keys come sorted (as encoded);
  // any other order, duplicates and a payload without fields come out
  // exact too.
  auto fields_of = [](DomainEvent* into, const std::string& json) {
    EXPECT_TRUE(DecodeDomainEvent(ev::kContactCreated, json, into).ok()) << json;
    return into->fields;
  };
  using Fields = std::map<std::string, std::string>;
  DomainEvent d;
  EXPECT_EQ(fields_of(&d, R"({"fields":{"a":"1","c":"3","e":"5"}})"),
            (Fields{{"a", "1"}, {"c", "3"}, {"e", "5"}}));
  EXPECT_EQ(fields_of(&d, R"({"fields":{"b":"2","c":"33","f":"6"}})"),
            (Fields{{"b", "2"}, {"c", "33"}, {"f", "6"}}));
  EXPECT_EQ(fields_of(&d, R"({"fields":{"f":"x","a":"y"}})"), (Fields{{"a", "y"}, {"f", "x"}}));
  EXPECT_EQ(fields_of(&d, R"({"fields":{"a":"1","a":"2"}})"), (Fields{{"a", "2"}}));
  EXPECT_EQ(fields_of(&d, R"({"fields":{}})"), Fields{});
  fields_of(&d, R"({"fields":{"a":"1"}})");
  EXPECT_EQ(fields_of(&d, R"({"contact_id":"c1"})"), Fields{});
}

using testing::UsSettings;
using testing::Webhook;

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
  EXPECT_EQ(f.fields.count("timezone"), 0u) << "the webhook's documented keys have no timezone";
  EXPECT_GT(f.source_time_us, 0);
  // A contact as GET /contacts/{id} returns it (and a backfill reads it)
  // has its time zone; a null one says nothing.
  facts.clear();
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", R"({"type":"ContactUpdate","webhookId":"w2","id":"g1",
      "locationId":"loc","phone":"+12055550142","timezone":"America/Denver"})"), s, &facts).ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].fields.at(fields::kTimezone), "America/Denver");
  facts.clear();
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", R"({"type":"ContactUpdate","webhookId":"w3","id":"g1",
      "locationId":"loc","timezone":null})"), s, &facts).ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].fields.count(fields::kTimezone), 0u);
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
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", testing::Fixture("ghl/ContactTagUpdate.json")), s,
                            &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].fields.at("tags"), "call now\nhot\nnew lead");
  facts.clear();
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", R"({"type":"NoteCreate","webhookId":"w","id":"n1"})"),
                            s, &facts)
                  .ok());
  EXPECT_TRUE(facts.empty());  // not a contact or message event
  Status bad = MapGhlWebhook(Webhook("ghl", R"({"type":"ContactUpdate","email":"a@b.c"})"), s,
                             &facts);
  EXPECT_TRUE(bad.IsInvalidArgument());
  EXPECT_NE(bad.message().find("id"), std::string::npos);
  EXPECT_TRUE(MapGhlWebhook(Webhook("ghl", "{not json"), s, &facts).IsInvalidArgument());
  EXPECT_TRUE(facts.empty());
}

TEST(AlowareMapper, ContactEventsByConfiguredName) {
  MapperSettings s = UsSettings();
  SystemSettings aloware = {{"utc_offset", "-05:00"}, {"contact_events", kAlowareContactEvents}};
  s.system = &aloware;  // its table (aloware.utc_offset, aloware.contact_events)
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
      MapAlowareWebhook(Webhook("aloware", R"({"event":"Contact Disposed","body":{"id":1}})"), s,
                        &facts)
          .ok());
  EXPECT_TRUE(facts.empty());  // not a configured contact event, not a call
  aloware["contact_events"] = "contact.updated";
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
    ApplyBuiltinDefaults(&ctx_);  // owners and roles, as the service defaults them
    std::set<std::string> all = {"first_name", "last_name", "email", "phone", "address1",
                                 "city",       "state",     "postal_code", "company_name"};
    ctx_.targets["ghl"] = all;
    ctx_.targets["aloware"] = all;
    ctx_.marks_dnc = {"ghl", "aloware"};
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

  // The push.succeeded answering `push` with the record `ext`.
  static DomainEvent Answer(const DomainEvent& push, const std::string& ext) {
    DomainEvent ok;
    ok.type = std::string(ev::kPushSucceeded);
    ok.contact_id = push.contact_id;
    ok.system = push.system;
    ok.op = push.op;
    ok.external_id = ext;
    ok.fields = push.fields;
    ok.push_id = push.push_id;
    return ok;
  }

  void Succeed(const DomainEvent& push, const std::string& ext) {
    Apply(&state_, Answer(push, ext), ++seq_, ctx_.now_us);
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

TEST_F(ContactModelTest, NoUpsertToATargetKeyedByAFieldTheContactLacks) {
  ctx_.key_field["aloware"] = "phone";  // Aloware matches contacts by phone only
  auto es = Step(Fact("ghl", "g1", {{"email", "a@x.io"}, {"first_name", "Ann"}}, 10));
  EXPECT_EQ(Types(es), (std::vector<std::string>{"contact.created"}));
  es = Step(Fact("ghl", "g1", {{"email", "a@x.io"}, {"first_name", "Anne"}}, 20));
  EXPECT_EQ(Types(es), (std::vector<std::string>{"contact.changed"}));
  // The phone arrives: the whole contact goes.
  es = Step(Fact("ghl", "g1", {{"email", "a@x.io"}, {"first_name", "Anne"}, {"phone", "+12055550142"}},
                 30));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.changed", "push.requested>aloware"}));
  EXPECT_EQ(es[1].fields.at("first_name"), "Anne");
  EXPECT_EQ(es[1].fields.at("phone"), "+12055550142");
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

// A link says where it was learnt: a webhook, or a `dfm backfill` import.
TEST_F(ContactModelTest, ALinkSaysWhetherAWebhookOrAnImportMadeIt) {
  Step(Fact("aloware", "7", {{"phone", "+12055550142"}}, 10));
  ContactFact imported = Fact("ghl", "g1", {{"phone", "+12055550142"}}, 20);
  imported.imported = true;
  auto es = Step(imported);
  ASSERT_FALSE(es.empty());
  ASSERT_EQ(es[0].type, "contact.linked");
  EXPECT_EQ(es[0].via, "import");
  es = Step(Fact("verity", "v1", {{"phone", "+12055550142"}}, 30));
  ASSERT_FALSE(es.empty());
  ASSERT_EQ(es[0].type, "contact.linked");
  EXPECT_EQ(es[0].via, "webhook");
}

// StampFact marks a fact read from a contact.imported event.
TEST(Fact, StampedFromAnImportIsMarkedImported) {
  Event e;
  e.tenant = "default";
  e.seq = 9;
  e.type = std::string(kContactImportedType);
  ContactFact f;
  StampFact(&f, e);
  EXPECT_TRUE(f.imported);
  EXPECT_EQ(f.webhook_seq, 9u);
  e.type = std::string(WebhookReceived::kType);
  StampFact(&f, e);
  EXPECT_FALSE(f.imported);
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

// Found by the simulation (tests/sim, seed 93): a system states its value
// again later, then one of its older edits arrives late. The value stands
// as of the later statement, so the late edit loses.
TEST_F(ContactModelTest, AValueStatedAgainLaterBeatsALateOlderEdit) {
  const std::string phone = "+12055550142";
  auto es = Step(Fact("ghl", "g1", {{"phone", phone}, {"first_name", "Gus"}}, 4));
  Succeed(es[1], "a1");
  es = Step(Fact("ghl", "g1", {{"phone", phone}, {"first_name", "Gus"}}, 9));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.changed"})) << "recorded, nothing pushed";
  EXPECT_TRUE(es[0].changes.empty());
  EXPECT_EQ(state_.fields.at("first_name").source_time_us, 9);
  es = Step(Fact("ghl", "g1", {{"phone", phone}, {"first_name", "Flo"}}, 8));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.conflict_recorded"}));
  EXPECT_EQ(es[0].rule, "newer");
  EXPECT_EQ(state_.fields.at("first_name").value, "Gus");
  // The same statement at the same time again is a duplicate: nothing.
  EXPECT_TRUE(Step(Fact("ghl", "g1", {{"phone", phone}, {"first_name", "Gus"}}, 9)).empty());
}

// Found by the simulation (tests/sim, seed 114): while one value is on its
// way to a system, the merged value goes back to what that system held.
// The value on its way lands after; the newer one must be sent too.
TEST_F(ContactModelTest, ANewerValueIsSentWhenAnotherIsOnItsWay) {
  const std::string phone = "+12055550142";
  auto es = Step(Fact("ghl", "g1", {{"phone", phone}, {"first_name", "Ann"}}, 10));
  Succeed(es[1], "a1");  // Aloware holds Ann
  es = Step(Fact("ghl", "g1", {{"phone", phone}, {"first_name", "Dee"}}, 20));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.changed", "push.requested>aloware"}));
  // Dee is on its way (not answered yet) when Ann comes back, newer.
  es = Step(Fact("ghl", "g1", {{"phone", phone}, {"first_name", "Ann"}}, 30));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.changed", "push.requested>aloware"}));
  EXPECT_EQ(es[1].fields.at("first_name"), "Ann");
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

// A real edit of another field in Aloware, between two pushes of a name:
// the echo of the older push is still recognised (a real edit ends the
// echo window of the fields it changed only).
TEST_F(ContactModelTest, AnEditOfAnotherFieldKeepsTheEchoWindowOfThisOne) {
  ctx_.policy.owner.clear();
  auto es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"last_name", "A"}}, 10));
  Succeed(es[1], "a1");
  es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"last_name", "B"}}, 20));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.changed", "push.requested>aloware"}));
  // An agent changes the first name in Aloware (its last name still A).
  es = Step(Fact("aloware", "a1",
                 {{"phone", "+12055550142"}, {"last_name", "A"}, {"first_name", "Zed"}}, 25));
  ASSERT_FALSE(es.empty());
  EXPECT_EQ(state_.fields.at("first_name").value, "Zed");
  es = Step(Fact("ghl", "g1",
                 {{"phone", "+12055550142"}, {"last_name", "C"}, {"first_name", "Zed"}}, 30));
  // Aloware's echo of "B" arrives now, stamped later than C.
  es = Step(Fact("aloware", "a1",
                 {{"phone", "+12055550142"}, {"last_name", "B"}, {"first_name", "Zed"}}, 35));
  EXPECT_EQ(Types(es), (std::vector<std::string>{"contact.echo_suppressed"}));
  EXPECT_EQ(state_.fields.at("last_name").value, "C");
}

// A mark or a consent push to Aloware that ends in a dead letter says
// nothing of the upserts on their way there: a value on its way is not
// sent again, and the echo of an older one is still recognised.
TEST_F(ContactModelTest, ADeadLetteredMarkOrConsentPushKeepsTheUpsertsMemory) {
  ctx_.policy.owner.clear();
  for (const char* op : {"mark_dnc", "opt_out", "opt_in"}) {
    SCOPED_TRACE(op);
    state_ = ContactState{};
    state_.contact_id = "c1";
    auto es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"first_name", "A"}}, 10));
    Succeed(es[1], "a1");
    es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"first_name", "B"}}, 20));
    ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.changed", "push.requested>aloware"}));
    es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"first_name", "C"}}, 30));
    ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.changed", "push.requested>aloware"}));
    DomainEvent dead;
    dead.type = std::string(ev::kPushDeadLettered);
    dead.contact_id = "c1";
    dead.system = "aloware";
    dead.op = op;
    dead.channel = "sms";
    dead.push_id = std::string("c1:aloware:x:") + op;
    dead.outcome = "withdrawn";
    Apply(&state_, dead, ++seq_, ctx_.now_us);
    // A last name from GoHighLevel goes to Aloware without C, still on its way.
    es = Step(Fact("ghl", "g1",
                   {{"phone", "+12055550142"}, {"first_name", "C"}, {"last_name", "Lee"}}, 35));
    ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.changed", "push.requested>aloware"}));
    EXPECT_EQ(es[1].fields.count("last_name"), 1u);
    EXPECT_EQ(es[1].fields.count("first_name"), 0u);
    // Aloware's echo of "B" arrives now, stamped later than C.
    es = Step(Fact("aloware", "a1", {{"phone", "+12055550142"}, {"first_name", "B"}}, 40));
    EXPECT_EQ(Types(es), (std::vector<std::string>{"contact.echo_suppressed"}));
    EXPECT_EQ(state_.fields.at("first_name").value, "C");
  }
}

// An upsert's dead letter takes only the values it carried off the way:
// an upsert still on its way there keeps them, with its echo memory, even
// of a value both carry (before, its echo was taken for an edit newer
// than the contact's latest, and won). Found by reviews.
TEST_F(ContactModelTest, AnUpsertsDeadLetterForgetsOnlyItsOwnWay) {
  ctx_.policy.owner.clear();
  const std::string phone = "+12055550142";
  auto es = Step(Fact("ghl", "g1", {{"phone", phone}, {"email", "e1@x.io"}}, 10));
  Succeed(es[1], "a1");
  es = Step(Fact("ghl", "g1", {{"phone", phone}, {"email", "e2@x.io"}}, 20));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.changed", "push.requested>aloware"}));
  DomainEvent dead = es[1];  // as the connector reports it: the fields that never arrived
  dead.type = std::string(ev::kPushDeadLettered);
  es = Step(Fact("ghl", "g1", {{"phone", phone}, {"email", "e2@x.io"}, {"first_name", "C"}}, 30));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.changed", "push.requested>aloware"}));
  EXPECT_EQ(es[1].fields.at("email"), "e2@x.io") << "every upsert carries the email";
  Apply(&state_, dead, ++seq_, ctx_.now_us);
  // A new email goes without C, still on its way.
  es = Step(Fact("ghl", "g1", {{"phone", phone}, {"email", "e3@x.io"}, {"first_name", "C"}}, 40));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.changed", "push.requested>aloware"}));
  EXPECT_EQ(es[1].fields.count("first_name"), 0u);
  // The upsert with C and e2 lands in Aloware; its webhook comes before its answer.
  es = Step(
      Fact("aloware", "a1", {{"phone", phone}, {"email", "e2@x.io"}, {"first_name", "C"}}, 45));
  EXPECT_EQ(Types(es), (std::vector<std::string>{"contact.echo_suppressed"}));
  EXPECT_EQ(state_.fields.at("email").value, "e3@x.io");
}

// The values of a dead-lettered upsert that nothing else carries are sent
// again with the next upsert there.
TEST_F(ContactModelTest, AnUpsertsDeadLetterLetsItsValuesGoAgain) {
  ctx_.policy.owner.clear();
  const std::string phone = "+12055550142";
  auto es = Step(Fact("ghl", "g1", {{"phone", phone}, {"first_name", "A"}}, 10));
  Succeed(es[1], "a1");
  es = Step(Fact("ghl", "g1", {{"phone", phone}, {"first_name", "B"}}, 20));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.changed", "push.requested>aloware"}));
  DomainEvent dead = es[1];
  dead.type = std::string(ev::kPushDeadLettered);
  Apply(&state_, dead, ++seq_, ctx_.now_us);
  es = Step(Fact("ghl", "g1", {{"phone", phone}, {"first_name", "B"}, {"last_name", "Lee"}}, 30));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.changed", "push.requested>aloware"}));
  EXPECT_EQ(es[1].fields.at("first_name"), "B");
  EXPECT_EQ(es[1].fields.at("last_name"), "Lee");
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

// An unsettled mark from an earlier build is withdrawn at the start only
// where the target's connector takes no marks whatever its settings; other
// pushes, marks to a system that takes them only with a setting on
// (Verity's contacts API), and marks to systems not configured as targets
// now (their connector may come back), stand.
TEST(WithdrawnAtStart, OnlyAMarkToATargetThatTakesNone) {
  SyncContext ctx;
  ctx.targets["aloware"] = {"phone"};
  ctx.targets["halopsa"] = {"email"};
  ctx.targets["verity"] = {"phone"};
  ctx.marks_dnc = {"aloware"};
  ctx.takes_no_marks = {"halopsa", "genesys"};
  DomainEvent mark;
  mark.type = std::string(ev::kPushRequested);
  mark.contact_id = "c1";
  mark.system = "halopsa";
  mark.op = "mark_dnc";
  mark.push_id = "c1:halopsa:3:0";
  std::optional<DomainEvent> dead = WithdrawnAtStart(mark, ctx);
  ASSERT_TRUE(dead.has_value());
  EXPECT_EQ(dead->type, ev::kPushDeadLettered);
  EXPECT_EQ(dead->push_id, mark.push_id);
  EXPECT_EQ(dead->contact_id, "c1");
  EXPECT_EQ(dead->system, "halopsa");
  EXPECT_EQ(dead->op, "mark_dnc");
  EXPECT_EQ(dead->outcome, "withdrawn");
  EXPECT_TRUE(SettlesPush(*dead));
  DomainEvent other = mark;
  other.system = "aloware";
  EXPECT_FALSE(WithdrawnAtStart(other, ctx)) << "Aloware takes marks";
  other.system = "verity";
  EXPECT_FALSE(WithdrawnAtStart(other, ctx)) << "its marks wait for its contacts API";
  other.system = "genesys";
  EXPECT_FALSE(WithdrawnAtStart(other, ctx)) << "not a target now";
  other = mark;
  other.op = "opt_out";
  EXPECT_FALSE(WithdrawnAtStart(other, ctx)) << "only marks";
}

// The contact is deleted while its first push to Aloware is on its way:
// the deletion has no Aloware record to mark, so the record the upsert
// made is marked when its answer comes (CI saw the DNC never sent).
TEST_F(ContactModelTest, ARecordMadeByAPushOnItsWayAtTheDeletionIsMarkedDoNotContact) {
  auto es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}}, 10));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.created", "push.requested>aloware"}));
  const DomainEvent upsert = es[1];
  ContactFact del = Fact("ghl", "g1", {}, 20);
  del.kind = ContactFact::Kind::kDelete;
  ASSERT_EQ(Types(Step(del)), (std::vector<std::string>{"contact.deleted"}));

  const DomainEvent ok = Answer(upsert, "a1");
  auto marks = DecideReport(state_, {ok}, ctx_);
  ASSERT_EQ(Types(marks), (std::vector<std::string>{"push.requested>aloware"}));
  EXPECT_EQ(marks[0].op, "mark_dnc");
  EXPECT_EQ(marks[0].external_id, "a1");
  EXPECT_EQ(marks[0].reason, "deleted in ghl");
  EXPECT_EQ(marks[0].push_id, "c1:aloware:0:mark_dnc:record:" + upsert.push_id);
  SyncContext shared = ctx_;  // the record is another person's too
  shared.record_holder = [](const std::string&, const std::string&) { return std::string("c2"); };
  EXPECT_TRUE(DecideReport(state_, {ok}, shared).empty());
  Apply(&state_, ok, ++seq_, ctx_.now_us);
  EXPECT_TRUE(DecideReport(state_, {ok}, ctx_).empty()) << "the record is linked: marked once";

  // The mark's answer links nothing (a record linked since stays linked).
  Apply(&state_, marks[0], ++seq_, ctx_.now_us);
  state_.links["aloware"] = "a2";
  Apply(&state_, Answer(marks[0], "a1"), ++seq_, ctx_.now_us);
  EXPECT_EQ(state_.links.at("aloware"), "a2");
}

// The upsert's echo, dated after the deletion, comes before its answer and
// links the record: marked then, and not again at the answer.
TEST_F(ContactModelTest, ARecordItsEchoLinksAfterTheDeletionIsMarkedOnce) {
  auto es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}}, 10));
  const DomainEvent upsert = es[1];
  ContactFact del = Fact("ghl", "g1", {}, 20);
  del.kind = ContactFact::Kind::kDelete;
  Step(del);
  ContactFact echo = Fact("aloware", "a1", {{"phone", "+12055550142"}}, 25);
  es = Step(echo);
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.linked", "contact.echo_suppressed",
                                                 "push.requested>aloware"}));
  EXPECT_EQ(es[2].op, "mark_dnc");
  EXPECT_EQ(es[2].external_id, "a1");
  EXPECT_EQ(es[2].push_id, "c1:aloware:" + FactTag(echo) + ":mark_dnc:record");
  EXPECT_TRUE(state_.deleted);
  EXPECT_TRUE(DecideReport(state_, {Answer(upsert, "a1")}, ctx_).empty());
}

// GoHighLevel's record is gone; an upsert there on its way at the deletion
// makes a new one (the connector's fallback on 404): that one is marked.
TEST_F(ContactModelTest, ANewRecordInTheDeletingSystemIsMarked) {
  auto es = Step(Fact("aloware", "a1", {{"phone", "+12055550142"}}, 10));
  Succeed(es[1], "g1");
  es = Step(Fact("aloware", "a1", {{"phone", "+12055550142"}, {"first_name", "Ann"}}, 15));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.changed", "push.requested>ghl"}));
  const DomainEvent upsert = es[1];
  ContactFact del = Fact("ghl", "g1", {}, 20);
  del.kind = ContactFact::Kind::kDelete;
  ASSERT_EQ(Types(Step(del)),
            (std::vector<std::string>{"contact.deleted", "push.requested>aloware"}));

  EXPECT_TRUE(DecideReport(state_, {Answer(upsert, "g1")}, ctx_).empty()) << "the linked one";
  auto marks = DecideReport(state_, {Answer(upsert, "g2")}, ctx_);
  ASSERT_EQ(Types(marks), (std::vector<std::string>{"push.requested>ghl"}));
  EXPECT_EQ(marks[0].op, "mark_dnc");
  EXPECT_EQ(marks[0].external_id, "g2");
}

// A contact back after its deletion (a change made later) is no longer
// marked: the upsert's answer links its record and asks nothing more.
TEST_F(ContactModelTest, ARecordMadeAfterTheContactCameBackIsNotMarked) {
  auto es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}}, 10));
  const DomainEvent upsert = es[1];
  ContactFact del = Fact("ghl", "g1", {}, 20);
  del.kind = ContactFact::Kind::kDelete;
  Step(del);
  Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"first_name", "New"}}, 30));
  ASSERT_FALSE(state_.deleted);
  for (const auto& e : DecideReport(state_, {Answer(upsert, "a1")}, ctx_))
    EXPECT_NE(e.op, "mark_dnc");
}

// The echo of a push that was late (retried past the echo window) is not
// taken for an echo, yet the push is still on its way there: its record is
// marked. A record staff made with the contact's values while nothing of
// ours was on its way is not.
TEST_F(ContactModelTest, ARecordLinkedWhileAPushThereIsOnItsWayIsMarked) {
  ctx_.policy.echo_window_us = -1;  // every echo past its window
  auto es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}}, 10));
  ContactFact del = Fact("ghl", "g1", {}, 20);
  del.kind = ContactFact::Kind::kDelete;
  Step(del);
  const ContactState before = state_;
  es = Step(Fact("aloware", "a1", {{"phone", "+12055550142"}}, 25));
  ASSERT_EQ(Types(es), (std::vector<std::string>{"contact.linked", "push.requested>aloware"}));
  EXPECT_EQ(es[1].op, "mark_dnc");

  state_ = before;
  state_.pending.erase("aloware");  // nothing of ours on its way
  es = Step(Fact("aloware", "a1", {{"phone", "+12055550142"}}, 25));
  EXPECT_EQ(Types(es), (std::vector<std::string>{"contact.linked"}));
}

// A fact that links a record and brings the contact back (a change made
// after the deletion) marks nothing.
TEST_F(ContactModelTest, AFactThatBringsTheContactBackMarksNothing) {
  Step(Fact("ghl", "g1", {{"phone", "+12055550142"}}, 10));
  ContactFact del = Fact("ghl", "g1", {}, 20);
  del.kind = ContactFact::Kind::kDelete;
  Step(del);
  auto es = Step(Fact("aloware", "a9", {{"phone", "+12055550142"}, {"first_name", "New"}}, 30));
  EXPECT_EQ(Types(es).at(0), "contact.linked");
  EXPECT_EQ(Types(es).at(1), "contact.changed");
  for (const auto& e : es) EXPECT_NE(e.op, "mark_dnc");
  EXPECT_FALSE(state_.deleted);
}

// Genesys, HaloPSA and the like take no mark_dnc: a deletion sends them
// none (a refused opt-out push would stay open for good).
TEST_F(ContactModelTest, ASystemThatTakesNoMarksIsSentNone) {
  auto es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}}, 10));
  const DomainEvent upsert = es[1];
  Succeed(upsert, "a1");
  ctx_.marks_dnc.erase("aloware");
  ContactFact del = Fact("ghl", "g1", {}, 20);
  del.kind = ContactFact::Kind::kDelete;
  EXPECT_EQ(Types(Step(del)), (std::vector<std::string>{"contact.deleted"}));
  state_.links.erase("aloware");
  EXPECT_TRUE(DecideReport(state_, {Answer(upsert, "a1")}, ctx_).empty());
}

// GoHighLevel's webhooks are not ordered: an edit made before the contact
// was deleted, delivered after the deletion, does not bring it back nor
// push its fields; an opt-out it carries still lands. A change made after
// the deletion does bring it back (the person is there again).
TEST_F(ContactModelTest, AnEditFromBeforeTheDeletionDeliveredLateDoesNotReviveTheContact) {
  auto es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}}, 10));
  Succeed(es[1], "a1");
  ContactFact del = Fact("ghl", "g1", {}, 20);
  del.kind = ContactFact::Kind::kDelete;
  ASSERT_EQ(Types(Step(del)),
            (std::vector<std::string>{"contact.deleted", "push.requested>aloware"}));

  ContactFact late = Fact("ghl", "g1", {{"phone", "+12055550142"}, {"first_name", "Old"}}, 15);
  Consent dnd;
  dnd.channels = {"sms"};
  dnd.reason = "dnd";
  late.consents.push_back(dnd);
  es = Step(late);
  EXPECT_EQ(Types(es), (std::vector<std::string>{"contact.opted_out", "push.requested>aloware"}));
  EXPECT_EQ(es[1].op, "opt_out");
  EXPECT_TRUE(state_.deleted);
  EXPECT_EQ(state_.fields.count("first_name"), 0u);
  EXPECT_EQ(state_.deleted_at_us, 20);

  es = Step(Fact("ghl", "g1", {{"phone", "+12055550142"}, {"first_name", "New"}}, 30));
  EXPECT_FALSE(state_.deleted);
  EXPECT_EQ(state_.fields.at("first_name").value, "New");
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

// ---- Consent (issue 4): texts, mappers, decisions --------------------------

namespace dfm {
namespace {

// The one consent rule (contact actor, opt-out registry, trace): later wins;
// at the same time, an opt-out wins.
TEST(ConsentRule, LaterWinsAndAnOptOutWinsATie) {
  const bool kOut = true, kIn = false;
  EXPECT_TRUE(ConsentSupersedes(kIn, 200, kOut, 100));    // a later opt-in
  EXPECT_FALSE(ConsentSupersedes(kIn, 100, kOut, 200));   // a late, older opt-in
  EXPECT_TRUE(ConsentSupersedes(kOut, 200, kIn, 100));
  EXPECT_FALSE(ConsentSupersedes(kOut, 100, kIn, 200));   // an older opt-out
  EXPECT_TRUE(ConsentSupersedes(kOut, 100, kIn, 100));    // tie: the opt-out
  EXPECT_FALSE(ConsentSupersedes(kIn, 100, kOut, 100));
  EXPECT_TRUE(ConsentSupersedes(kOut, 100, kOut, 100));   // same status either way
  EXPECT_TRUE(ConsentSupersedes(kIn, 100, kIn, 100));
}

TEST(ConsentText, WholeTextsOptOutOrInAndNearMissesAreFlagged) {
  using K = TextConsent::Kind;
  for (const char* t : {"STOP", "  Stop. ", "stop!!", "StopAll", "unsubscribe", "Cancel", "END",
                        "quit", "revoke", "optout", "opt out", "Opt-Out", "OPT  OUT", "stop all",
                        "Stop All!"}) {
    EXPECT_EQ(ClassifyText(t).kind, K::kOptOut) << t;
  }
  EXPECT_EQ(ClassifyText("opt out").word, "OPT OUT");
  // Telnyx's two-word keyword, whole; inside a text it is found as STOP.
  EXPECT_EQ(ClassifyText("stop all").word, "STOP ALL");
  EXPECT_EQ(ClassifyText("please stop all texts").word, "STOP");
  EXPECT_EQ(ClassifyText("please stop all texts").kind, K::kReview);
  // Non-ASCII characters count as punctuation: a no-break space, an emoji.
  EXPECT_EQ(ClassifyText("STOP\u00a0").kind, K::kOptOut);
  EXPECT_EQ(ClassifyText("Stop \U0001F6D1").kind, K::kOptOut);
  EXPECT_EQ(ClassifyText("\u201cstop\u201d please").kind, K::kReview);
  EXPECT_EQ(ClassifyText("  Stop. ").word, "STOP");
  for (const char* t : {"START", "unstop", "Yes.", " yes "})
    EXPECT_EQ(ClassifyText(t).kind, K::kOptIn) << t;
  for (const char* t : {"stop by at 3pm?", "Please STOP texting me", "stop stop", "I want to opt out now",
                        "the end"}) {
    EXPECT_EQ(ClassifyText(t).kind, K::kReview) << t;
  }
  EXPECT_EQ(ClassifyText("stop by at 3pm?").word, "STOP");
  for (const char* t : {"", "hello", "yes, see you then", "stopwatch", "backend", "STOPPED"})
    EXPECT_EQ(ClassifyText(t).kind, K::kNone) << t;
}

// The rules of ClassifyText as first written (sync/consent.h), copying every
// word: the one-pass form must give the same kind and word for every text.
TextConsent ClassifyTextAsSpecified(std::string_view body) {
  static const std::vector<std::string> kOut = {"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE",
                                                "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT",
                                                "OPT OUT"};
  static const std::vector<std::string> kIn = {"START", "UNSTOP", "YES"};
  auto listed = [](const std::vector<std::string>& list, const std::string& w) {
    return std::find(list.begin(), list.end(), w) != list.end();
  };
  auto punct = [](unsigned char c) {
    return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) ||
           (c >= 0x7b && c <= 0x7e) || c >= 0x80;
  };
  std::string whole;
  std::vector<std::string> words(1);
  bool space = false;
  for (unsigned char c : body) {
    if (std::string_view(" \t\n\r\f\v").find(static_cast<char>(c)) != std::string_view::npos) {
      space = !whole.empty();
      if (!words.back().empty()) words.emplace_back();
    } else if (punct(c)) {
      if (!words.back().empty()) words.emplace_back();
    } else {
      if (space) whole += ' ';
      space = false;
      char u = static_cast<char>(std::toupper(c));
      whole += u;
      words.back() += u;
    }
  }
  if (words.back().empty()) words.pop_back();
  TextConsent r;
  if (listed(kOut, whole) || listed(kIn, whole)) {
    r.kind = listed(kOut, whole) ? TextConsent::Kind::kOptOut : TextConsent::Kind::kOptIn;
    r.word = whole;
    return r;
  }
  for (size_t i = 0; i < words.size(); ++i) {
    std::string w = words[i];
    if (!listed(kOut, w) && i + 1 < words.size()) w = words[i] + " " + words[i + 1];
    if (listed(kOut, w)) {
      r.kind = TextConsent::Kind::kReview;
      r.word = w;
      return r;
    }
  }
  return r;
}

TEST(ConsentText, OnePassAgreesWithTheRulesOnRandomTexts) {
  // Pieces that make near misses likely: listed words in either case,
  // their prefixes and extensions, words longer than the longest listed
  // one, every separator kind, and UTF-8 bytes.
  const std::vector<std::string> pieces = {"stop",
                                           "STOP",
                                           "Stop",
                                           "stopall",
                                           "unsubscribe",
                                           "UNSUBSCRIBEX",
                                           "cancel",
                                           "end",
                                           "quit",
                                           "revoke",
                                           "opt",
                                           "out",
                                           "all",
                                           "ALL",
                                           "OptOut",
                                           "optouts",
                                           "start",
                                           "unstop",
                                           "yes",
                                           "ye",
                                           "s",
                                           "sto",
                                           "p",
                                           "hello",
                                           "pleasestopnow",
                                           "a",
                                           " ",
                                           "  ",
                                           "\t",
                                           "\n",
                                           ".",
                                           "-",
                                           "!",
                                           ",",
                                           "'",
                                           "\xc2\xa0",
                                           "\xf0\x9f\x9b\x91",
                                           "\xe2\x80\x9c",
                                           "3pm",
                                           "_",
                                           "~"};
  std::mt19937 rng(20261122);
  for (int i = 0; i < 50000; ++i) {
    std::string text;
    for (int n = rng() % 7; n > 0; --n) text += pieces[rng() % pieces.size()];
    TextConsent want = ClassifyTextAsSpecified(text);
    TextConsent got = ClassifyText(text);
    ASSERT_EQ(got.kind, want.kind) << "[" << text << "]";
    ASSERT_EQ(got.word, want.word) << "[" << text << "]";
  }
  // A long message with the word far in: the window is per word, not per text.
  std::string long_text(5000, 'x');
  long_text += " opt-out";
  EXPECT_EQ(ClassifyText(long_text).kind, TextConsent::Kind::kReview);
  EXPECT_EQ(ClassifyText(long_text).word, "OPT OUT");
}

TEST(ConsentMappers, VerityTextsAndOptOutEvents) {
  auto s = UsSettings();
  std::vector<ContactFact> facts;
  ASSERT_TRUE(MapVerityWebhook(Webhook("verity", testing::Fixture("verity/message.stop.json")), s,
                               &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].system, "verity");
  EXPECT_EQ(facts[0].fields.at("phone"), "+12055550142");
  ASSERT_EQ(facts[0].consents.size(), 1u);
  EXPECT_EQ(facts[0].consents[0].change, Consent::Change::kOptOut);
  EXPECT_EQ(facts[0].consents[0].channels, std::vector<std::string>{"sms"});
  EXPECT_EQ(facts[0].consents[0].reason, "keyword STOP");
  EXPECT_EQ(facts[0].consents[0].message_id, "msg_01JD8Z7A1B2C3D4E5F6G7H8J9K");
  EXPECT_GT(facts[0].source_time_us, 0);

  facts.clear();
  ASSERT_TRUE(MapVerityWebhook(Webhook("verity", testing::Fixture("verity/optout.stop.json")), s,
                               &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].consents[0].reason, "optout.stop");

  facts.clear();  // an ordinary text: the text only, no consent
  ASSERT_TRUE(MapVerityWebhook(Webhook("verity", testing::Fixture("verity/message.received.json")),
                               s, &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_TRUE(facts[0].consents.empty());
  ASSERT_EQ(facts[0].activities.size(), 1u);
  EXPECT_EQ(facts[0].activities[0].body, "Sounds good, talk tomorrow");

  facts.clear();
  ASSERT_TRUE(MapVerityWebhook(Webhook("verity", R"({"eventType":"message.received","messageId":"m9",
      "direction":"inbound","from":"+12055550142","body":"stop by at 3pm?"})"),
                               s, &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].consents[0].change, Consent::Change::kReview);
  EXPECT_EQ(facts[0].consents[0].reason, "contains STOP");

  facts.clear();  // a STOP without a sender cannot be kept: quarantined with the reason
  EXPECT_TRUE(MapVerityWebhook(Webhook("verity", R"({"eventType":"optout.stop","messageId":"m1"})"),
                               s, &facts)
                  .IsInvalidArgument());
}

TEST(ConsentMappers, TwilioOptOutTypeAndBody) {
  auto s = UsSettings();
  std::vector<ContactFact> facts;
  ASSERT_TRUE(MapTwilioWebhook(Webhook("twilio", testing::Fixture("twilio/inbound-sms-stop.form")),
                               s, &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].fields.at("phone"), "+12055550142");
  EXPECT_EQ(facts[0].consents[0].change, Consent::Change::kOptOut);
  EXPECT_EQ(facts[0].consents[0].reason, "OptOutType STOP");
  EXPECT_EQ(facts[0].consents[0].message_id, "SM1f0e2d3c4b5a69788796a5b4c3d2e1f0");

  facts.clear();
  ASSERT_TRUE(MapTwilioWebhook(Webhook("twilio", "MessageSid=SM2&From=%2B12055550142&Body=start&"
                                                 "OptOutType=START"),
                               s, &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].consents[0].change, Consent::Change::kOptIn);

  for (const char* body : {"MessageSid=SM3&From=%2B12055550142&Body=help&OptOutType=HELP",
                           "MessageSid=SM4&MessageStatus=delivered&To=%2B12055550142"}) {
    facts.clear();  // a text (or its status) with no consent statement
    ASSERT_TRUE(MapTwilioWebhook(Webhook("twilio", body), s, &facts).ok());
    ASSERT_EQ(facts.size(), 1u) << body;
    EXPECT_TRUE(facts[0].consents.empty()) << body;
    EXPECT_EQ(facts[0].fields.at("phone"), "+12055550142");
    ASSERT_EQ(facts[0].activities.size(), 1u);
  }
  EXPECT_EQ(facts[0].activities[0].kind, Activity::Kind::kStatus);
  EXPECT_EQ(facts[0].activities[0].status, "delivered");
  facts.clear();  // no Advanced Opt-Out: the engine reads the body itself
  ASSERT_TRUE(
      MapTwilioWebhook(Webhook("twilio", "MessageSid=SM5&From=%2B12055550142&Body=Unsubscribe."), s,
                       &facts)
          .ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].consents[0].reason, "keyword UNSUBSCRIBE");
}

// A status callback naming its status by the older SmsStatus alone is the
// same status (Identify reads it too); an inbound text's SmsStatus
// ("received") gives it none. A JSON body (signed by bodySHA256) names the
// same parameters as a form: a STOP sent so is an opt-out, not nothing.
TEST(ConsentMappers, TwilioSmsStatusAloneAndJsonBodies) {
  auto s = UsSettings();
  // The facts `w` maps to, the mapping having succeeded.
  auto map = [&s](const WebhookReceived& w) {
    std::vector<ContactFact> facts;
    EXPECT_TRUE(MapTwilioWebhook(w, s, &facts).ok()) << w.body;
    return facts;
  };
  auto facts = map(Webhook("twilio", "MessageSid=SM6&SmsStatus=delivered&To=%2B12055550142"));
  ASSERT_EQ(facts.size(), 1u);
  ASSERT_EQ(facts[0].activities.size(), 1u);
  EXPECT_EQ(facts[0].activities[0].kind, Activity::Kind::kStatus);
  EXPECT_EQ(facts[0].activities[0].status, "delivered");
  EXPECT_EQ(facts[0].fields.at("phone"), "+12055550142");

  facts =
      map(Webhook("twilio", "MessageSid=SM7&SmsStatus=received&From=%2B12055550142&Body=hello"));
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].activities[0].kind, Activity::Kind::kText);
  EXPECT_EQ(facts[0].activities[0].status, "");

  facts = map(Webhook("twilio", R"({"MessageSid":"SM8","From":"+12055550142",)"
                                R"("Body":"STOP","NumSegments":1})"));
  ASSERT_EQ(facts.size(), 1u);
  ASSERT_EQ(facts[0].consents.size(), 1u);
  EXPECT_EQ(facts[0].consents[0].change, Consent::Change::kOptOut);
  EXPECT_EQ(facts[0].consents[0].message_id, "SM8");

  // The media type read as ingest reads it.
  WebhookReceived typed = Webhook("twilio", R"( {"MessageSid":"SM9","From":"+12055550142",)"
                                            R"("Body":"STOP"})");
  typed.headers.emplace_back("content-type", "Application/JSON ; charset=utf-8");
  facts = map(typed);
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].consents.size(), 1u);

  facts.clear();
  EXPECT_TRUE(MapTwilioWebhook(Webhook("twilio", R"(["not", "an object"])"), s, &facts)
                  .IsInvalidArgument());
}

TEST(ConsentMappers, GhlDndSettingsAndAlowareDnc) {
  auto s = UsSettings();
  std::vector<ContactFact> facts;
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", testing::Fixture("ghl/ContactDndUpdate.json")), s,
                            &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].external_id, "nmFmQEsNgz6AVpgLVUJ0");
  ASSERT_EQ(facts[0].consents.size(), 2u);
  EXPECT_EQ(facts[0].consents[0].change, Consent::Change::kOptOut);
  EXPECT_EQ(facts[0].consents[0].channels, std::vector<std::string>{"sms"});
  EXPECT_EQ(facts[0].consents[0].reason, "dndSettings");
  EXPECT_EQ(facts[0].consents[1].change, Consent::Change::kOptIn);
  EXPECT_EQ(facts[0].consents[1].channels.size(), 5u);
  for (const auto& c : facts[0].consents) {
    EXPECT_EQ(c.actor, Consent::Actor::kStaff) << "a DND setting is staff's, not the person's";
    EXPECT_FALSE(c.permanent);
  }

  facts.clear();  // "permanent" channels are their own statement, marked so
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", R"({"type":"ContactDndUpdate","id":"g1",
      "phone":"+12055550142","dndSettings":{"SMS":{"status":"permanent"},
      "Call":{"status":"active"}}})"),
                            s, &facts)
                  .ok());
  ASSERT_EQ(facts[0].consents.size(), 2u);
  EXPECT_EQ(facts[0].consents[0].channels, std::vector<std::string>{"call"});
  EXPECT_FALSE(facts[0].consents[0].permanent);
  EXPECT_EQ(facts[0].consents[1].channels, std::vector<std::string>{"sms"});
  EXPECT_TRUE(facts[0].consents[1].permanent);
  EXPECT_EQ(facts[0].consents[1].reason, "dndSettings permanent");

  facts.clear();
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", R"({"type":"ContactDndUpdate","id":"g1",
      "phone":"+12055550142","dnd":true})"),
                            s, &facts)
                  .ok());
  ASSERT_EQ(facts[0].consents.size(), 1u);
  EXPECT_EQ(facts[0].consents[0].channels.size(), 6u);
  EXPECT_EQ(facts[0].consents[0].reason, "dnd");

  facts.clear();  // a record made with DND on opts out; made without, says nothing
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", R"({"type":"ContactCreate","id":"g2",
      "phone":"+12055550143","dnd":true})"),
                            s, &facts)
                  .ok());
  ASSERT_EQ(facts[0].consents.size(), 1u);
  EXPECT_EQ(facts[0].consents[0].change, Consent::Change::kOptOut);
  EXPECT_EQ(facts[0].consents[0].channels.size(), 6u);
  facts.clear();
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", testing::Fixture("ghl/ContactCreate.json")), s, &facts).ok());
  EXPECT_TRUE(facts[0].consents.empty()) << "dnd false: no opt-in statement";

  facts.clear();  // other contact webhooks say nothing about consent
  ASSERT_TRUE(MapGhlWebhook(Webhook("ghl", testing::Fixture("ghl/ContactUpdate.json")), s, &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_TRUE(facts[0].consents.empty());

  facts.clear();
  ASSERT_TRUE(MapAlowareWebhook(Webhook("aloware", R"({"event":"Contact Updated","body":{"id":7,
      "phone_number":"+12055550142","is_dnc":1}})"),
                                s, &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  ASSERT_EQ(facts[0].consents.size(), 1u);
  EXPECT_EQ(facts[0].consents[0].change, Consent::Change::kOptOut);
  EXPECT_EQ(facts[0].consents[0].channels, (std::vector<std::string>{"sms", "call"}));
  EXPECT_EQ(facts[0].consents[0].reason, "is_dnc");
  EXPECT_EQ(facts[0].consents[0].actor, Consent::Actor::kStaff);
}

class ConsentModelTest : public ::testing::Test {
 protected:
  ConsentModelTest() {
    ApplyBuiltinDefaults(&ctx_);  // owners and roles, as the service defaults them
    ctx_.targets["ghl"] = {"first_name", "email", "phone"};
    ctx_.targets["aloware"] = {"first_name", "email", "phone"};
    ctx_.channels["aloware"] = {"sms", "call"};
    ctx_.now_us = 1'000'000'000;
    state_.contact_id = "c1";
  }
  ContactFact Text(const std::string& system, Consent::Change change, int64_t t,
                   std::vector<std::string> chs = {"sms"}) {
    ContactFact f;
    f.system = system;
    f.fields["phone"] = "+12055550142";
    f.source_time_us = t;
    f.webhook_seq = ++webhook_seq_;
    Consent c;
    c.change = change;
    c.channels = std::move(chs);
    c.reason = change == Consent::Change::kReview ? "contains STOP" : "keyword STOP";
    c.message_id = "m" + std::to_string(webhook_seq_);
    f.consents.push_back(c);
    return f;
  }
  std::vector<DomainEvent> Step(const ContactFact& f) {
    auto events = Decide(state_, f, ctx_);
    for (const auto& e : events) Apply(&state_, e, ++seq_, ctx_.now_us);
    return events;
  }
  static std::vector<DomainEvent> Of(const std::vector<DomainEvent>& es, std::string_view type) {
    std::vector<DomainEvent> out;
    for (const auto& e : es)
      if (e.type == type) out.push_back(e);
    return out;
  }
  SyncContext ctx_;
  ContactState state_;
  uint64_t seq_ = 0;
  uint64_t webhook_seq_ = 100;
};

TEST_F(ConsentModelTest, StopFromAStrangerCreatesTheContactAndTellsEveryOtherSystemFirst) {
  auto es = Step(Text("verity", Consent::Change::kOptOut, 10));
  ASSERT_FALSE(Of(es, ev::kContactCreated).empty());  // nothing dropped
  auto out = Of(es, ev::kOptedOut);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].channel, "sms");
  EXPECT_EQ(out[0].system, "verity");
  EXPECT_EQ(out[0].external_id, "m101");  // the message that carried it
  EXPECT_EQ(out[0].reason, "keyword STOP");
  EXPECT_EQ(out[0].fields.at("phone"), "+12055550142");
  int opt_out_pushes = 0;
  for (const auto& p : Of(es, ev::kPushRequested)) {
    if (p.op != "opt_out") continue;
    ++opt_out_pushes;
    EXPECT_EQ(p.priority, 10);
    EXPECT_EQ(p.channel, "sms");
    EXPECT_EQ(p.fields.at("phone"), "+12055550142");
    EXPECT_NE(p.system, "verity");
  }
  EXPECT_EQ(opt_out_pushes, 2);  // ghl and aloware
  EXPECT_TRUE(state_.consent.at("sms").out);

  // Said again: nothing new to record or send.
  EXPECT_TRUE(Of(Step(Text("twilio", Consent::Change::kOptOut, 20)), ev::kOptedOut).empty());
}

TEST_F(ConsentModelTest, OptInAfterOptOutAndALateOlderOptInChangesNothing) {
  Step(Text("verity", Consent::Change::kOptOut, 100));
  // An opt-in stated before the opt-out, arriving late: the opt-out stands.
  EXPECT_TRUE(Of(Step(Text("twilio", Consent::Change::kOptIn, 50)), ev::kOptedIn).empty());
  EXPECT_TRUE(state_.consent.at("sms").out);
  auto es = Step(Text("verity", Consent::Change::kOptIn, 200));
  ASSERT_EQ(Of(es, ev::kOptedIn).size(), 1u);
  auto pushes = Of(es, ev::kPushRequested);
  ASSERT_EQ(pushes.size(), 2u);
  EXPECT_EQ(pushes[0].op, "opt_in");
  EXPECT_FALSE(state_.consent.at("sms").out);
  // An opt-in where nobody opted out changes nothing.
  EXPECT_TRUE(Of(Step(Text("verity", Consent::Change::kOptIn, 300, {"call"})), ev::kOptedIn).empty());
}

TEST_F(ConsentModelTest, NearMissIsFlaggedNotActedOn) {
  auto es = Step(Text("verity", Consent::Change::kReview, 10));
  ASSERT_EQ(Of(es, ev::kOptOutFlagged).size(), 1u);
  EXPECT_EQ(Of(es, ev::kOptOutFlagged)[0].reason, "contains STOP");
  EXPECT_TRUE(Of(es, ev::kOptedOut).empty());
  for (const auto& p : Of(es, ev::kPushRequested)) EXPECT_EQ(p.op, "upsert");
  EXPECT_TRUE(state_.consent.empty());
}

TEST_F(ConsentModelTest, EachSystemIsSentOnlyTheChannelsItKeeps) {
  auto es = Step(Text("ghl", Consent::Change::kOptOut, 10, {"email"}));
  ASSERT_EQ(Of(es, ev::kOptedOut).size(), 1u);
  for (const auto& p : Of(es, ev::kPushRequested))
    EXPECT_NE(p.op, "opt_out") << "ghl said it itself; aloware keeps no email channel";
  es = Step(Text("ghl", Consent::Change::kOptOut, 20, {"sms", "email", "call"}));
  auto pushes = Of(es, ev::kPushRequested);
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].system, "aloware");
  EXPECT_EQ(pushes[0].channel, "sms,call");
}

TEST_F(ConsentModelTest, SnapshotsCountOnlyWhereTheSystemsSettingChanged) {
  ctx_.one_flag = {"aloware"};
  auto es = Step(Text("verity", Consent::Change::kOptOut, 100));
  DomainEvent to_alo;
  for (const auto& p : Of(es, ev::kPushRequested))
    if (p.system == "aloware" && p.op == "opt_out") to_alo = p;
  ASSERT_EQ(to_alo.channel, "call,sms") << "one flag: the whole group";
  auto snapshot = [&](Consent::Change change, int64_t t) {
    ContactFact f = Text("aloware", change, t, {"sms", "call"});
    f.consents[0].snapshot = true;
    f.consents[0].reason = "is_dnc";
    f.consents[0].actor = Consent::Actor::kStaff;
    return Step(f);
  };
  // An Aloware webhook written before our push arrived (is_dnc still 0).
  EXPECT_TRUE(Of(snapshot(Consent::Change::kOptIn, 150), ev::kOptedIn).empty());
  EXPECT_TRUE(state_.consent.at("sms").out);
  DomainEvent ok;
  ok.type = std::string(ev::kPushSucceeded);
  ok.system = "aloware";
  ok.op = "opt_out";
  ok.channel = to_alo.channel;
  ok.push_id = to_alo.push_id;
  Apply(&state_, ok, ++seq_, ctx_.now_us);  // confirmed at now_us
  // Our opt-out coming back: nothing new, calls included.
  EXPECT_TRUE(Of(snapshot(Consent::Change::kOptOut, ctx_.now_us + 1), ev::kOptedOut).empty());
  // A snapshot written before the confirmation, delivered late: nothing.
  EXPECT_TRUE(Of(snapshot(Consent::Change::kOptIn, ctx_.now_us - 10), ev::kOptedIn).empty());
  EXPECT_TRUE(Of(snapshot(Consent::Change::kOptIn, ctx_.now_us + 1'000'000), ev::kOptedIn).empty())
      << "within the clock-skew allowance";
  // An agent clears the flag in Aloware later: a real change, but over the
  // person's own STOP: refused (sms; nobody had opted out of calls).
  auto es2 = snapshot(Consent::Change::kOptIn, ctx_.now_us + 60'000'000);
  EXPECT_TRUE(Of(es2, ev::kOptedIn).empty());
  auto conflict = Of(es2, ev::kConsentConflict);
  ASSERT_EQ(conflict.size(), 1u);
  EXPECT_EQ(conflict[0].channel, "sms");
}

TEST_F(ConsentModelTest, OneFlagIsClearedOnlyWhenNoChannelOfItIsOptedOut) {
  ctx_.one_flag = {"aloware"};
  Step(Text("ghl", Consent::Change::kOptOut, 100, {"call"}));
  auto es = Step(Text("verity", Consent::Change::kOptOut, 200));
  for (const auto& p : Of(es, ev::kPushRequested))
    EXPECT_NE(p.system, "aloware") << "its flag is already set (call)";
  es = Step(Text("verity", Consent::Change::kOptIn, 300));
  ASSERT_EQ(Of(es, ev::kOptedIn).size(), 1u);
  for (const auto& p : Of(es, ev::kPushRequested))
    EXPECT_NE(p.system, "aloware") << "calls are still opted out: the flag stays";
}

TEST_F(ConsentModelTest, AStrangersOptInOrFlaggedTextCreatesNoContact) {
  auto es = Step(Text("twilio", Consent::Change::kOptIn, 10));
  EXPECT_TRUE(es.empty());
  es = Step(Text("verity", Consent::Change::kReview, 20));
  ASSERT_EQ(es.size(), 1u);
  EXPECT_EQ(es[0].type, ev::kOptOutFlagged);
  EXPECT_FALSE(state_.exists);
}

}  // namespace
}  // namespace dfm

namespace dfm {
namespace {

// Found by fuzz_codec (fuzz/regressions/fuzz_codec/kept-is-a-string): a
// member of the wrong kind in a stored payload reads as empty; it never
// throws out of the decoder (which would end the process).
TEST(DomainEventCodec, AMemberOfTheWrongKindReadsAsEmpty) {
  for (const char* payload : {R"({"kept":"Stop.Z","lost":7,"system":"verity"})",
                              R"({"changes":[1,"x",{"field":2}],"candidates":[null]})"}) {
    DomainEvent d;
    ASSERT_TRUE(DecodeDomainEvent(ev::kConsentConflict, payload, &d).ok()) << payload;
    EXPECT_TRUE(d.kept.value.empty());
    EXPECT_TRUE(d.lost.system.empty());
  }
}

}  // namespace
}  // namespace dfm
