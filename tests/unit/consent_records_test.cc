// A record of an opted-out person that the engine never told (a duplicate
// made in GoHighLevel after the STOP, a new Aloware contact of the number):
// its first webhook links it, and the contact's held opt-outs are pushed
// to it (sync/consent_pushes.cc, PushToNewRecord; docs/sync-rules.md).
#include <gtest/gtest.h>

#include "tests/support/consent_fixture.h"

namespace dfm {
namespace {

using namespace testing_consent;  // NOLINT

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The person texted STOP; later somebody made a second GoHighLevel contact
// with the number (a form, an import: the location allows duplicates). It
// comes without DND, and GoHighLevel's workflows would text it.
TEST_F(ConsentRulesTest, ANewRecordOfAnOptedOutPersonIsToldTheirOptOut) {
  ContactFact own = Fact("ghl", 50 * kHour);
  own.external_id = "ghl-own";
  auto first = Step(own);
  EXPECT_TRUE(Of(first, ev::kPushRequested, "opt_out").empty()) << "nobody opted out yet";
  ConfirmPushes(first);
  ConfirmPushes(Step(Text(Change::kOptOut, 60 * kHour, "STOP")));
  ASSERT_TRUE(SmsOut());
  ASSERT_TRUE(state_.known_consent["ghl"]["sms"].out) << "the first record confirmed it";

  ContactFact dup = Fact("ghl", 90 * kHour);  // a ContactCreate without DND: says nothing
  dup.external_id = "ghl-new";
  auto es = Step(dup);
  ASSERT_EQ(Of(es, ev::kContactLinked).size(), 1u);
  auto told = Of(es, ev::kPushRequested, "opt_out");
  ASSERT_EQ(told.size(), 1u) << "GoHighLevel's confirmation was the other record's";
  EXPECT_EQ(told[0].system, "ghl");
  EXPECT_EQ(told[0].external_id, "ghl-new");
  EXPECT_EQ(told[0].channel, "sms");
  EXPECT_EQ(told[0].priority, 10);
  EXPECT_TRUE(EndsWith(told[0].push_id, ":record")) << told[0].push_id;
  EXPECT_FALSE(LinksNoRecord(told[0]));
  EXPECT_TRUE(Of(es, ev::kOptedOut).empty()) << "nothing new was stated";
  ConfirmPushes(es);
  EXPECT_EQ(state_.links["ghl"], "ghl-new");
  EXPECT_TRUE(state_.known_consent["ghl"]["sms"].out);

  ContactFact again = Fact("ghl", 91 * kHour);  // its next webhook: the linked record's
  again.external_id = "ghl-new";
  EXPECT_TRUE(Of(Step(again), ev::kPushRequested, "opt_out").empty()) << "told once";
  ExpectAReplayGivesTheSameState();
}

// Two records of the person in GoHighLevel, each webhook linking its own
// (the link flips): neither is told again; nor is a record a consent push
// set (answer.ids) when its first webhook comes.
TEST_F(ConsentRulesTest, ARecordLinkedOrSetBeforeIsNotToldAgain) {
  RecordThenStop("ghl-own", "ghl-own,ghl-set");
  ContactFact dup = Fact("ghl", 90 * kHour);
  dup.external_id = "ghl-new";
  auto first = Step(dup);
  ASSERT_EQ(Of(first, ev::kPushRequested, "opt_out").size(), 1u) << "new: told";
  ConfirmPushes(first);  // nothing on its way now
  int told = 0;
  for (const char* id : {"ghl-own", "ghl-new", "ghl-own", "ghl-set"}) {
    ContactFact f = Fact("ghl", 91 * kHour);
    f.external_id = id;
    auto es = Step(f);
    EXPECT_EQ(Of(es, ev::kContactLinked).size(), 1u) << id << ": the link flips";
    told += static_cast<int>(Of(es, ev::kPushRequested, "opt_out").size());
  }
  EXPECT_EQ(told, 0) << "each was linked or set before";
  std::set<std::string> held;
  for (const auto& [record, chans] : state_.told["ghl"])
    if (chans.count("sms")) held.insert(record);
  EXPECT_EQ(held, (std::set<std::string>{"ghl-new", "ghl-own", "ghl-set"}));
}

// A record linked before the STOP that the opt-out's push did not set (its
// search finds the records of the number and address the contact has now:
// an older record of another number) is told when its webhook links it
// again; after the person's START lifted every record, none is known to
// hold an opt-out.
TEST_F(ConsentRulesTest, ARecordTheOptOutsPushDidNotSetIsToldWhenItLinksAgain) {
  ContactFact a = Fact("ghl", 40 * kHour);
  a.external_id = "ghl-a";
  ConfirmPushes(Step(a));
  ContactFact b = Fact("ghl", 45 * kHour);
  b.external_id = "ghl-b";
  ConfirmPushes(Step(b));
  ConfirmPushes(Step(Text(Change::kOptOut, 60 * kHour, "STOP")), "ghl-b");
  ContactFact again = Fact("ghl", 90 * kHour);
  again.external_id = "ghl-a";
  auto told = Of(Step(again), ev::kPushRequested, "opt_out");
  ASSERT_EQ(told.size(), 1u) << "linked before, never set";
  EXPECT_EQ(told[0].external_id, "ghl-a");
  EXPECT_TRUE(EndsWith(told[0].push_id, ":record")) << told[0].push_id;
  ConfirmPushes(Step(Text(Change::kOptIn, 95 * kHour, "START")));
  EXPECT_EQ(state_.told.count("ghl"), 0u) << "lifted on every record";
}

// Aloware keeps sms and call as one flag: a new Aloware contact of a
// person who stopped texts gets is_dnc, both channels named. A record
// that comes with its own DND set states it (DecideConsent): not told
// again.
TEST_F(ConsentRulesTest, ANewOneFlagRecordIsToldWholeAndOneStatingItsDndIsNot) {
  RecordThenStop("ghl-own");

  ContactFact alo = Fact("aloware", 90 * kHour);
  alo.external_id = "alo-2";
  auto told = Of(Step(alo), ev::kPushRequested, "opt_out");
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].system, "aloware");
  EXPECT_EQ(told[0].external_id, "alo-2");
  EXPECT_EQ(told[0].channel, "call,sms") << "is_dnc: one flag, every channel it covers";

  ContactFact dnd = Dnd("ghl", Change::kOptOut, 91 * kHour);  // ghl-1, made with DND on
  auto es = Step(dnd);
  ASSERT_EQ(Of(es, ev::kContactLinked).size(), 1u);
  for (const auto& p : Of(es, ev::kPushRequested, "opt_out"))
    EXPECT_FALSE(EndsWith(p.push_id, ":record")) << "its record says it: " << p.push_id;
}

// A record the engine made itself (the person's first text was STOP: the
// contact is created and pushed with its opt-out) whose webhook comes
// before the push's answer: its opt-out is on its way, not told twice.
TEST_F(ConsentRulesTest, ARecordTheEngineMadeIsNotToldWhatIsOnItsWayToIt) {
  auto es = Step(Text(Change::kOptOut, 60 * kHour, "STOP"));
  ASSERT_TRUE(SmsOut());
  ASSERT_FALSE(Of(es, ev::kPushRequested, "opt_out").empty());
  ContactFact made = Fact("ghl", 60 * kHour + kMinute);
  made.external_id = "ghl-9";
  auto linked = Step(made);
  ASSERT_EQ(Of(linked, ev::kContactLinked).size(), 1u);
  EXPECT_TRUE(Of(linked, ev::kPushRequested, "opt_out").empty());
}

}  // namespace
}  // namespace dfm

namespace dfm {
namespace {

// A record known to hold the person's sms opt-out is told a later email
// opt-out that did not reach it (stated on another record there, so no
// push went to that system); and a new record's push, answered after the
// link moved on, does not move it back.
TEST_F(ConsentRulesTest, ARecordKnownToHoldOneOptOutIsToldAnother) {
  ctx_.targets["ghl"].insert("email");
  ContactFact own = Fact("ghl", 50 * kHour);
  own.external_id = "ghl-own";
  own.fields["email"] = "ada@example.com";
  ConfirmPushes(Step(own));
  ConfirmPushes(Step(Text(Change::kOptOut, 60 * kHour, "STOP")), "ghl-own");
  ContactFact b = Fact("ghl", 70 * kHour);
  b.external_id = "ghl-b";
  auto told_b = Of(Step(b), ev::kPushRequested, "opt_out");
  ASSERT_EQ(told_b.size(), 1u);  // sms, on its way
  ContactFact email = Dnd("ghl", Change::kOptOut, 80 * kHour, false, {"email"});
  email.external_id = "ghl-own";  // staff set Email DND on the first record
  Step(email);
  ASSERT_TRUE(IsOptedOut(state_, "email"));
  ASSERT_EQ(state_.links["ghl"], "ghl-own");
  ConfirmPushes(told_b, "ghl-b");  // the sms push to ghl-b answers now
  EXPECT_EQ(state_.links["ghl"], "ghl-own") << "a new record's push links nothing";
  ContactFact again = Fact("ghl", 90 * kHour);
  again.external_id = "ghl-b";
  auto told = Of(Step(again), ev::kPushRequested, "opt_out");
  ASSERT_EQ(told.size(), 1u) << "ghl-b holds sms, not email";
  EXPECT_EQ(told[0].channel, "email");
  EXPECT_EQ(told[0].external_id, "ghl-b");
}

// Staff cleared SMS DND on a record known to hold it (its webhook: a
// consent.conflict), and GoHighLevel refused the engine's push setting it
// again: no record there is known to hold it any more (the system's
// statement may not name the record: a read back covers all), and each is
// told when it links again.
TEST_F(ConsentRulesTest, ARecordThatLiftedItsDndIsToldAgainWhenItLinksAgain) {
  RecordThenStop("ghl-own", "ghl-own,ghl-b");
  ContactFact b = Fact("ghl", 70 * kHour);
  b.external_id = "ghl-b";
  ASSERT_TRUE(Of(Step(b), ev::kPushRequested, "opt_out").empty()) << "set before";
  ContactFact lift = Dnd("ghl", Change::kOptIn, 80 * kHour);
  lift.external_id = "ghl-own";
  auto es = Step(lift);
  ASSERT_EQ(Of(es, ev::kConsentConflict).size(), 1u);
  auto held = Of(es, ev::kPushRequested, "opt_out");
  ASSERT_EQ(held.size(), 1u) << "set again where it was lifted";
  DomainEvent refused = held[0];
  refused.type = std::string(ev::kPushAttempted);
  refused.outcome = "refused";
  Record({refused});
  EXPECT_EQ(ToldChannels(state_, "ghl", "ghl-own"), nullptr) << "it said sms is in";
  EXPECT_EQ(ToldChannels(state_, "ghl", "ghl-b"), nullptr) << "GoHighLevel holds sms in";

  ContactFact b2 = Fact("ghl", 85 * kHour);
  b2.external_id = "ghl-b";
  auto to_b = Of(Step(b2), ev::kPushRequested, "opt_out");
  ASSERT_EQ(to_b.size(), 1u);
  EXPECT_EQ(to_b[0].external_id, "ghl-b");
  ConfirmPushes(to_b, "ghl-b");
  ContactFact back = Fact("ghl", 90 * kHour);
  back.external_id = "ghl-own";
  auto told = Of(Step(back), ev::kPushRequested, "opt_out");
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].external_id, "ghl-own");
  EXPECT_TRUE(EndsWith(told[0].push_id, ":record")) << told[0].push_id;
  ExpectAReplayGivesTheSameState();
}

// What an upsert of the engine's answered: `up` succeeded with `record`.
DomainEvent Answered(DomainEvent up, const std::string& record) {
  up.type = std::string(ev::kPushSucceeded);
  up.external_id = record;
  return up;
}

// The engine's upsert of `system` that `es` asks for.
DomainEvent UpsertTo(const std::vector<DomainEvent>& es, const std::string& system) {
  for (const auto& e : es)
    if (e.type == ev::kPushRequested && e.op == "upsert" && e.system == system) return e;
  ADD_FAILURE() << "no upsert to " << system;
  return {};
}

// Staff deleted the person's GoHighLevel record after the STOP; an Aloware
// edit's upsert made another (GoHighLevel's upsert answers its id). The
// upsert carried no DND: the record is told the held opt-out, once.
TEST_F(ConsentRulesTest, AnUpsertThatMakesANewRecordTellsItTheHeldOptOut) {
  RecordThenStop("ghl-own");
  ContactFact edit = Fact("aloware", 70 * kHour);
  edit.external_id = "alo-1";
  edit.fields["first_name"] = "Ann";
  DomainEvent up = UpsertTo(Step(edit), "ghl");
  ASSERT_EQ(up.external_id, "ghl-own");
  const DomainEvent ok = Answered(up, "ghl-made");

  auto told = Of(DecideReport(state_, {ok}, ctx_), ev::kPushRequested, "opt_out");
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].system, "ghl");
  EXPECT_EQ(told[0].external_id, "ghl-made");
  EXPECT_EQ(told[0].channel, "sms");
  EXPECT_EQ(told[0].priority, 10);
  EXPECT_EQ(told[0].push_id, "c1:ghl:0:opt_out:record:" + up.push_id);
  EXPECT_TRUE(HasOptOutTag(told[0], kNewRecordTag));
  EXPECT_FALSE(LinksNoRecord(told[0]));
  Record({ok});
  ConfirmPushes(Record(told));
  EXPECT_EQ(state_.links["ghl"], "ghl-made");
  const std::set<std::string>* holds = ToldChannels(state_, "ghl", "ghl-made");
  ASSERT_NE(holds, nullptr);
  EXPECT_TRUE(holds->count("sms"));

  EXPECT_TRUE(DecideReport(state_, {ok}, ctx_).empty()) << "the link now: asked once";
  ContactFact its = Fact("ghl", 80 * kHour);
  its.external_id = "ghl-made";
  EXPECT_TRUE(Of(Step(its), ev::kPushRequested, "opt_out").empty()) << "told already";
  ExpectAReplayGivesTheSameState();
}

// Aloware's is_dnc is one flag: a contact its upsert made is told it whole.
TEST_F(ConsentRulesTest, AnUpsertToANewOneFlagRecordTellsItWhole) {
  RecordThenStop("ghl-own");
  ContactFact edit = Fact("ghl", 70 * kHour);
  edit.external_id = "ghl-own";
  edit.fields["first_name"] = "Ann";
  DomainEvent up = UpsertTo(Step(edit), "aloware");
  auto told = Of(DecideReport(state_, {Answered(up, "alo-new")}, ctx_), ev::kPushRequested);
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].op, "opt_out");
  EXPECT_EQ(told[0].system, "aloware");
  EXPECT_EQ(told[0].external_id, "alo-new");
  EXPECT_EQ(told[0].channel, "call,sms");
}

// Nothing is asked where the upsert's record is the link, is known to hold
// the opt-out (a consent push set it), is another contact's (a number two
// people share), or has the opt-out on its way (the pending push reaches
// the records GoHighLevel finds when it is sent).
TEST_F(ConsentRulesTest, AnUpsertsRecordIsNotToldWhatItHoldsOrIsNotThePersons) {
  RecordThenStop("ghl-own", "ghl-own,ghl-set");
  ContactFact edit = Fact("aloware", 70 * kHour);
  edit.external_id = "alo-1";
  edit.fields["first_name"] = "Ann";
  DomainEvent up = UpsertTo(Step(edit), "ghl");
  EXPECT_TRUE(DecideReport(state_, {Answered(up, "ghl-own")}, ctx_).empty()) << "the link";
  EXPECT_TRUE(DecideReport(state_, {Answered(up, "ghl-set")}, ctx_).empty()) << "set";
  ctx_.record_holder = [](const std::string&, const std::string& id) {
    return std::string(id == "ghl-bo" ? "c2" : "c1");
  };
  EXPECT_TRUE(DecideReport(state_, {Answered(up, "ghl-bo")}, ctx_).empty()) << "Bo's";
  EXPECT_EQ(DecideReport(state_, {Answered(up, "ghl-x")}, ctx_).size(), 1u) << "the person's";

  ContactFact email_out = Fact("verity", 95 * kHour);  // an unsubscribe
  Consent c;
  c.change = Change::kOptOut;
  c.channels = {"email"};
  c.reason = "unsubscribe";
  email_out.consents.push_back(c);
  auto pending = Of(Step(email_out), ev::kPushRequested, "opt_out");
  ASSERT_FALSE(pending.empty()) << "email's opt-out on its way to GoHighLevel";
  auto told = Of(DecideReport(state_, {Answered(up, "ghl-x")}, ctx_), ev::kPushRequested);
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].channel, "sms") << "email is on its way";
}

// A text's push found the person's GoHighLevel record gone and wrote to
// another it found or made (answer.contact_id), which it links: that
// record is told the held opt-out too.
TEST_F(ConsentRulesTest, ARecordATextFoundAnewIsToldTheHeldOptOut) {
  RecordThenStop("ghl-own");
  DomainEvent ok;
  ok.type = std::string(ev::kPushSucceeded);
  ok.contact_id = "c1";
  ok.system = "ghl";
  ok.op = "message";
  ok.push_id = "c1:ghl:message:k1";
  ok.message_key = "k1";
  ok.external_id = "msg-1";
  ok.fields["answer.contact_id"] = "ghl-anew";
  ok.fields["answer.gone"] = "ghl-own";
  auto es = DecideReport(state_, {ok}, ctx_);
  ASSERT_EQ(Of(es, ev::kContactLinked).size(), 1u);
  auto told = Of(es, ev::kPushRequested, "opt_out");
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].external_id, "ghl-anew");
  EXPECT_EQ(told[0].channel, "sms");
  EXPECT_EQ(told[0].push_id, "c1:ghl:0:opt_out:record:c1:ghl:message:k1");
  EXPECT_TRUE(HasOptOutTag(told[0], kNewRecordTag));
  DomainEvent other = ok;  // another text's answer, whose record is not linked
  other.push_id = "c1:ghl:message:k2";
  other.fields["answer.gone"] = "ghl-older";
  other.fields["answer.contact_id"] = "ghl-other";
  EXPECT_EQ(Of(DecideReport(state_, {ok, other}, ctx_), ev::kPushRequested).size(), 1u)
      << "the link is the first answer's: told for it alone";
  Record({ok});
  ConfirmPushes(Record(es));
  EXPECT_EQ(state_.links["ghl"], "ghl-anew");
  EXPECT_TRUE(DecideReport(state_, {ok}, ctx_).empty()) << "linked and told: asked once";
  ExpectAReplayGivesTheSameState();
}

}  // namespace
}  // namespace dfm
