// Statements that arrive late or name several channels at once: a carrier's
// refusal, a one-flag system (Aloware's is_dnc), a STOP older than a later
// clear or opt-in (docs/sync-rules.md, "Opt-outs").
#include <gtest/gtest.h>

#include "tests/support/consent_fixture.h"

namespace dfm {
namespace {

using namespace testing_consent;  // NOLINT

TEST_F(ConsentRulesTest, ACarrierRefusalIsAnOptOutToldEverywhereElseAndHeld) {
  ContactFact created = Fact("ghl", 5 * kHour);
  created.external_id = "ghl-1";
  created.fields["first_name"] = "Ada";
  ConfirmPushes(Step(created));
  ASSERT_TRUE(state_.exists);
  DomainEvent dead = About(ev::kPushDeadLettered, "verity", "k9");
  dead.op = "send";
  dead.push_id = "c1:verity:77:send";
  dead.outcome = kRecipientOptedOut;
  auto es = Record(DecideReport(state_, {dead}, ctx_));
  auto out = Of(es, ev::kOptedOut);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].actor, "carrier");
  EXPECT_EQ(out[0].system, "verity");
  EXPECT_EQ(out[0].rule, "held");
  EXPECT_EQ(out[0].source_time_us, ctx_.now_us);
  auto pushes = Of(es, ev::kPushRequested, "opt_out");
  EXPECT_EQ(Systems(pushes), (std::vector<std::string>{"aloware", "ghl"}))
      << "Verity refused it: it holds it";
  EXPECT_TRUE(SmsOut());
  ConfirmPushes(es);
  // A second refusal of the same kind decides nothing new; a staff opt-in is refused.
  dead.push_id = "c1:verity:78:send";
  EXPECT_TRUE(Of(DecideReport(state_, {dead}, ctx_), ev::kOptedOut).empty());
  EXPECT_EQ(Of(Step(Dnd("ghl", Change::kOptIn, ctx_.now_us + kHour)), ev::kConsentConflict).size(),
            1u);
  // A send refused for another reason is no consent statement.
  dead.outcome.clear();
  EXPECT_TRUE(Of(DecideReport(state_, {dead}, ctx_), ev::kOptedOut).empty());
}

// The refusal is of the address the text went to: when the contact's
// number changed while the send waited, the opt-out (its registry row, the
// pushes) names the number refused, not the contact's of now.
TEST_F(ConsentRulesTest, ACarrierRefusalIsOfTheNumberTheTextWentTo) {
  ContactFact created = Fact("ghl", 5 * kHour);
  created.external_id = "ghl-1";
  ConfirmPushes(Step(created));
  DomainEvent dead = About(ev::kPushDeadLettered, "verity", "k9");
  dead.op = "send";
  dead.push_id = "c1:verity:77:send";
  dead.outcome = kRecipientOptedOut;
  dead.fields["phone"] = "+12055550199";  // the number it was sent to
  auto es = Record(DecideReport(state_, {dead}, ctx_));
  auto out = Of(es, ev::kOptedOut);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].fields.at("phone"), "+12055550199");
  for (const auto& p : Of(es, ev::kPushRequested, "opt_out"))
    EXPECT_EQ(p.fields.at("phone"), "+12055550199") << p.system;
}

TEST_F(ConsentRulesTest, OptOutsWrittenBeforeActorsWereRecordedHold) {
  DomainEvent old;
  old.type = std::string(ev::kOptedOut);
  old.contact_id = "c1";
  old.system = "ghl";
  old.channel = "sms";
  old.reason = "dndSettings";
  old.source_time_us = 100 * kHour;
  Record({old});
  EXPECT_TRUE(state_.consent.at("sms").held);
  EXPECT_EQ(Of(Step(Dnd("ghl", Change::kOptIn, 101 * kHour)), ev::kConsentConflict).size(), 1u);
}

// Aloware's one is_dnc flag holds sms and call. GoHighLevel staff set DND
// on calls: pushed to Aloware as the whole flag, which it confirms (sms
// known out there, though nobody opted sms out). An agent clears the flag,
// then sets it again when the person asks for no contact: the second
// setting opts sms out too, and Verity and GoHighLevel are told. The clear
// records only what Aloware holds (consent.known): no opt-in of the
// person's, no push, the channel's own state untouched.
TEST_F(ConsentRulesTest, AOneFlagClearedThenSetAgainOptsOutEachOfItsChannels) {
  ConfirmPushes(Step(Dnd("ghl", Change::kOptOut, 100 * kHour, false, {"call"})));
  EXPECT_FALSE(SmsOut());
  ASSERT_TRUE(state_.known_consent["aloware"]["sms"].out) << "the whole flag was confirmed";
  auto cleared = Step(Dnd("aloware", Change::kOptIn, 101 * kHour, false, {"sms", "call"}));
  auto known = Of(cleared, ev::kConsentKnown);
  ASSERT_EQ(known.size(), 1u);
  EXPECT_EQ(known[0].channel, "sms");
  EXPECT_EQ(known[0].system, "aloware");
  for (const auto& e : Of(cleared, ev::kOptedIn))
    EXPECT_EQ(e.channel.find("sms"), std::string::npos) << "nobody opted sms back in";
  for (const auto& p : Of(cleared, ev::kPushRequested))
    EXPECT_EQ(p.channel.find("sms"), std::string::npos) << "sms is told nowhere: " << p.system;
  EXPECT_FALSE(state_.known_consent["aloware"]["sms"].out);
  EXPECT_EQ(state_.consent.count("sms"), 0u);
  ExpectAReplayGivesTheSameState();

  auto es = Step(Dnd("aloware", Change::kOptOut, 102 * kHour, false, {"sms", "call"}));
  EXPECT_TRUE(SmsOut());
  std::vector<std::string> told;
  for (const auto& p : Of(es, ev::kPushRequested, "opt_out"))
    if (p.channel.find("sms") != std::string::npos) told.push_back(p.system);
  std::sort(told.begin(), told.end());
  EXPECT_EQ(told, (std::vector<std::string>{"ghl", "verity"}));
}

// The clear is no statement of the person's: their STOP delivered late (a
// vendor's retry), older than the clear, still opts them out.
TEST_F(ConsentRulesTest, ALateStopOlderThanAOneFlagClearStillOptsOut) {
  ConfirmPushes(Step(Dnd("ghl", Change::kOptOut, 100 * kHour, false, {"call"})));
  Step(Dnd("aloware", Change::kOptIn, 101 * kHour, false, {"sms", "call"}));
  Step(Text(Change::kOptOut, 100 * kHour + 30 * kMinute, "STOP"));
  EXPECT_TRUE(SmsOut());
}

// Staff set DND on sms and cleared it an hour later; the person's STOP,
// sent between the two, is delivered after the clear (a vendor's retry).
// Had it come in time the clear would have been refused: sms is out, the
// systems told, and the STOP dated at the clear it overrides (every fold
// of the log orders statements by time: there an opt-out wins a tie).
TEST_F(ConsentRulesTest, ALateStopOlderThanAStaffLiftStillOptsOut) {
  ConfirmPushes(Step(Dnd("ghl", Change::kOptOut, 100 * kHour)));
  ConfirmPushes(Step(Dnd("ghl", Change::kOptIn, 101 * kHour)));
  ASSERT_FALSE(SmsOut());
  auto stop = Step(Text(Change::kOptOut, 100 * kHour + 30 * kMinute, "STOP"));
  EXPECT_TRUE(SmsOut());
  auto out = Of(stop, ev::kOptedOut);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].source_time_us, 101 * kHour);
  EXPECT_TRUE(ConsentSupersedes(true, out[0].source_time_us, false, 101 * kHour));
  EXPECT_NE(out[0].reason.find("keyword STOP"), std::string::npos) << out[0].reason;
  EXPECT_EQ(out[0].actor, "person");
  auto told = Of(stop, ev::kPushRequested, "opt_out");
  ASSERT_FALSE(told.empty());
  EXPECT_TRUE(std::any_of(told.begin(), told.end(),
                          [](const DomainEvent& p) { return p.system == "ghl"; }));
  ConfirmPushes(stop);
  // GoHighLevel's clear restated (its time: a tie, the opt-out wins), then
  // cleared again after it took the opt-out: a conflict, the STOP holds.
  EXPECT_TRUE(Of(Step(Dnd("ghl", Change::kOptIn, 101 * kHour)), ev::kOptedIn).empty());
  EXPECT_TRUE(SmsOut());
  EXPECT_EQ(Of(Step(Dnd("ghl", Change::kOptIn, 102 * kHour)), ev::kConsentConflict).size(), 1u);
  EXPECT_TRUE(SmsOut());
  ExpectAReplayGivesTheSameState();
}

// The same, but the person opted in themselves after the late STOP's time
// (START), before staff set DND and cleared it again: the STOP is older
// than the person's own opt-in, and sms stays in.
TEST_F(ConsentRulesTest, ALateStopOlderThanThePersonsOwnOptInChangesNothing) {
  ConfirmPushes(Step(Dnd("ghl", Change::kOptOut, 100 * kHour)));
  ConfirmPushes(Step(Text(Change::kOptIn, 100 * kHour + 45 * kMinute, "START")));
  ConfirmPushes(Step(Dnd("ghl", Change::kOptOut, 101 * kHour)));
  ConfirmPushes(Step(Dnd("ghl", Change::kOptIn, 102 * kHour)));
  ASSERT_FALSE(SmsOut());
  auto stop = Step(Text(Change::kOptOut, 100 * kHour + 30 * kMinute, "STOP"));
  EXPECT_FALSE(SmsOut());
  EXPECT_TRUE(Of(stop, ev::kOptedOut).empty());
  ExpectAReplayGivesTheSameState();
}

// Staff set DND and cleared it; then the person texted START (sms was in
// already: recorded, nothing to tell). Their STOP from before the clear,
// delivered after all that, is older than their own START: sms stays in.
// A bare YES is no such opt-in.
TEST_F(ConsentRulesTest, APersonsStartWhileInIsRecordedAndALateStopOlderThanItChangesNothing) {
  ConfirmPushes(Step(Dnd("ghl", Change::kOptOut, 100 * kHour)));
  ConfirmPushes(Step(Dnd("ghl", Change::kOptIn, 101 * kHour)));
  EXPECT_TRUE(
      Of(Step(Text(Change::kOptIn, 101 * kHour + 15 * kMinute, "YES")), ev::kOptedIn).empty());
  auto start = Step(Text(Change::kOptIn, 101 * kHour + 30 * kMinute, "START"));
  auto in = Of(start, ev::kOptedIn);
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0].actor, "person");
  EXPECT_NE(in[0].reason.find("in already"), std::string::npos) << in[0].reason;
  EXPECT_TRUE(Of(start, ev::kPushRequested).empty()) << "every system holds it in already";
  auto stop = Step(Text(Change::kOptOut, 100 * kHour + 30 * kMinute, "STOP"));
  EXPECT_FALSE(SmsOut());
  EXPECT_TRUE(Of(stop, ev::kOptedOut).empty());
  ExpectAReplayGivesTheSameState();
}

// The person opted sms out and back in (their own START), then staff set
// DND on calls (the whole flag at Aloware), an agent cleared it and set it
// again: sms is out again.
TEST_F(ConsentRulesTest, AOneFlagSetAgainAfterTheChannelWasBackInOptsItOut) {
  ConfirmPushes(Step(Text(Change::kOptOut, 100 * kHour, "STOP")));
  ConfirmPushes(Step(Text(Change::kOptIn, 101 * kHour, "START")));
  ASSERT_FALSE(SmsOut());
  ConfirmPushes(Step(Dnd("ghl", Change::kOptOut, 102 * kHour, false, {"call"})));
  ASSERT_TRUE(state_.known_consent["aloware"]["sms"].out);
  auto cleared = Step(Dnd("aloware", Change::kOptIn, 103 * kHour, false, {"sms", "call"}));
  EXPECT_EQ(Of(cleared, ev::kConsentKnown).size(), 1u);
  Step(Dnd("aloware", Change::kOptOut, 104 * kHour, false, {"sms", "call"}));
  EXPECT_TRUE(SmsOut());
}

}  // namespace
}  // namespace dfm
