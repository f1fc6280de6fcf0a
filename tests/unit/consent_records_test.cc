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

}  // namespace
}  // namespace dfm
