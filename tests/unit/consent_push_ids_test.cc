// One push per id: a fact's consent statements asking one target the same
// (GoHighLevel's DND webhook with active and permanent channels; an
// identity conflict's opt-out over a channel a candidate's system never
// confirmed) are one push naming all their channels, never two sharing an
// id, which the contact actor, the connector and pending_consent each hold
// once (sync/consent_pushes.cc, MergeConsentPushes); and a one-flag
// target is left as the statements end (KeepOneFlagAsItEnds).
#include <gtest/gtest.h>

#include <set>

#include "tests/support/consent_fixture.h"

namespace dfm {
namespace {

using namespace testing_consent;  // NOLINT

std::vector<DomainEvent> To(const std::vector<DomainEvent>& pushes, const std::string& system) {
  std::vector<DomainEvent> out;
  for (const auto& p : pushes)
    if (p.system == system) out.push_back(p);
  return out;
}

void ExpectOnePerId(const std::vector<DomainEvent>& pushes) {
  std::set<std::string> ids;
  for (const auto& p : pushes) EXPECT_TRUE(ids.insert(p.push_id).second) << p.push_id;
}

// A duplicate GoHighLevel record whose phone is the person's and email
// another's, SMS DND active and Call DND permanent (two statements): the
// person's own record there is asked both in one push, and its one answer
// settles both.
TEST_F(ConsentRulesTest, OneFactsStatementsAskEachTargetOnce) {
  ContactFact own = Fact("ghl", 50 * kHour);
  own.external_id = "ghl-own";
  ConfirmPushes(Step(own));
  ContactFact dup = Dnd("ghl", Change::kOptOut, 90 * kHour, false, {"sms"});
  Consent perm = dup.consents[0];
  perm.channels = {"call"};
  perm.permanent = true;
  perm.reason = "dndSettings permanent";
  dup.consents.push_back(perm);
  dup.external_id = "ghl-dup";
  dup.fields["email"] = "someone.else@example.com";
  auto handed = ConflictOptOuts(dup, {{"c1", "phone"}, {"c2", "email"}});
  ASSERT_EQ(handed.size(), 1u);
  auto pushes = Of(Step(handed[0].second), ev::kPushRequested, "opt_out");
  ExpectOnePerId(pushes);
  auto ghl = To(pushes, "ghl");
  ASSERT_EQ(ghl.size(), 1u);
  EXPECT_EQ(ghl[0].channel, "sms,call");
  EXPECT_TRUE(LinksNoRecord(ghl[0]));
  auto aloware = To(pushes, "aloware");
  ASSERT_EQ(aloware.size(), 1u) << "its one flag, asked once";
  EXPECT_EQ(aloware[0].channel, "call,sms");
  ConfirmPushes(pushes);
  EXPECT_EQ(state_.pending_consent.count("ghl"), 0u) << "nothing left on its way for ever";
  EXPECT_EQ(state_.pending_consent.count("aloware"), 0u);
  ExpectAReplayGivesTheSameState();
}

// GoHighLevel refused the person's SMS opt-out; then an Aloware record of
// the number, whose email names another contact, is set DNC (sms and
// call): call is new, sms repeated and unconfirmed there. One push asks
// GoHighLevel both.
TEST_F(ConsentRulesTest, ANewAndARepeatedChannelGoToATargetInOnePush) {
  ContactFact own = Fact("ghl", 50 * kHour);
  own.external_id = "ghl-own";
  ConfirmPushes(Step(own));
  auto stop = Of(Step(Text(Change::kOptOut, 60 * kHour, "STOP")), ev::kPushRequested);
  std::vector<DomainEvent> others;
  for (const auto& p : stop) {
    if (p.system != "ghl") {
      others.push_back(p);
      continue;
    }
    DomainEvent refused = p;
    refused.type = std::string(ev::kPushAttempted);
    refused.outcome = "refused";
    Record({refused});
  }
  ConfirmPushes(others);
  ContactFact dnc = Dnd("aloware", Change::kOptOut, 90 * kHour, false, {"sms", "call"});
  dnc.external_id = "alo-dup";
  dnc.fields["email"] = "someone.else@example.com";
  auto handed = ConflictOptOuts(dnc, {{"c1", "phone"}, {"c2", "email"}});
  ASSERT_EQ(handed.size(), 1u);
  auto pushes = Of(Step(handed[0].second), ev::kPushRequested, "opt_out");
  ExpectOnePerId(pushes);
  auto ghl = To(pushes, "ghl");
  ASSERT_EQ(ghl.size(), 1u);
  EXPECT_EQ(ghl[0].channel, "call,sms");
  ConfirmPushes(ghl);
  EXPECT_EQ(state_.pending_consent.count("ghl"), 0u);
  EXPECT_TRUE(state_.known_consent["ghl"]["sms"].out) << "confirmed at last";
  EXPECT_TRUE(state_.known_consent["ghl"]["call"].out);
}

// Staff set Call DND in GoHighLevel (Aloware's flag set for it); later one
// webhook shows SMS DND active and Call's cleared. Aloware's one flag must
// stay set for SMS: Call's lift, decided after SMS's statement against the
// state before the webhook, asked it cleared.
TEST_F(ConsentRulesTest, AOneFlagTargetIsLeftAsTheFactsStatementsEnd) {
  ConfirmPushes(Step(Dnd("ghl", Change::kOptOut, 50 * kHour, false, {"call"})));
  ASSERT_TRUE(IsOptedOut(state_, "call"));
  ContactFact both = Dnd("ghl", Change::kOptOut, 90 * kHour, false, {"sms"});
  Consent lift = both.consents[0];
  lift.change = Change::kOptIn;
  lift.channels = {"call"};
  both.consents.push_back(lift);
  auto es = Step(both);
  ASSERT_TRUE(SmsOut());
  ASSERT_FALSE(IsOptedOut(state_, "call")) << "staff lifted what staff set";
  for (const auto& p : To(Of(es, ev::kPushRequested), "aloware"))
    EXPECT_NE(p.op, "opt_in") << "is_dnc cleared while SMS is out: " << p.push_id;
  auto verity = To(Of(es, ev::kPushRequested, "opt_out"), "verity");
  EXPECT_EQ(verity.size(), 1u) << "the other systems are told SMS";
  ConfirmPushes(es);
  // The person's START later: nothing out then, the flag is cleared.
  auto start =
      To(Of(Step(Text(Change::kOptIn, 95 * kHour, "START")), ev::kPushRequested), "aloware");
  ASSERT_EQ(start.size(), 1u);
  EXPECT_EQ(start[0].op, "opt_in");
  EXPECT_EQ(start[0].channel, "call,sms");
  ExpectAReplayGivesTheSameState();
}

// The mirror: over staff's SMS DND, one webhook sets Call's and clears
// SMS's. The flag stays set for Call.
TEST_F(ConsentRulesTest, AOneFlagTargetStaysSetForTheChannelAFactOptsOut) {
  ConfirmPushes(Step(Dnd("ghl", Change::kOptOut, 50 * kHour, false, {"sms"})));
  ContactFact both = Dnd("ghl", Change::kOptOut, 90 * kHour, false, {"call"});
  Consent lift = both.consents[0];
  lift.change = Change::kOptIn;
  lift.channels = {"sms"};
  both.consents.push_back(lift);
  auto es = Step(both);
  ASSERT_FALSE(SmsOut());
  ASSERT_TRUE(IsOptedOut(state_, "call"));
  for (const auto& p : To(Of(es, ev::kPushRequested), "aloware"))
    EXPECT_NE(p.op, "opt_in") << "is_dnc cleared while Call is out: " << p.push_id;
  EXPECT_EQ(state_.pending_consent.count("aloware"), 0u) << "nothing asked of it";
}

// A log from before one push per id: an Aloware DNC asked GoHighLevel for
// SMS and Call under one id as two pushes, and the connector sent only
// Call's. When that push ends, SMS is on its way no more (contact rules
// 15 fold it so again): the person's next STOP asks GoHighLevel for it.
TEST_F(ConsentRulesTest, AChannelAnotherPushOfItsIdAskedIsOnItsWayNoMoreWhenThatEnds) {
  ContactFact own = Fact("ghl", 50 * kHour);
  own.external_id = "ghl-own";
  ConfirmPushes(Step(own));
  auto dnc = To(Of(Step(Dnd("aloware", Change::kOptOut, 55 * kHour, false, {"sms", "call"})),
                   ev::kPushRequested, "opt_out"),
                "ghl");
  ASSERT_EQ(dnc.size(), 1u);
  DomainEvent call_only = dnc[0];  // the one the connector sent, as it reported it
  call_only.type = std::string(ev::kPushSucceeded);
  call_only.channel = "call";
  Record({call_only});
  EXPECT_EQ(state_.pending_consent.count("ghl"), 0u) << "SMS's push was never sent";
  EXPECT_FALSE(state_.known_consent["ghl"]["sms"].out) << "nothing learnt of it";
  auto again =
      To(Of(Step(Text(Change::kOptOut, 60 * kHour, "STOP")), ev::kPushRequested, "opt_out"), "ghl");
  ASSERT_EQ(again.size(), 1u) << "asked again";
  EXPECT_EQ(again[0].channel, "sms");
}

}  // namespace
}  // namespace dfm
