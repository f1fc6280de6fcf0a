// Who may undo an opt-out (sync/consent_rules.cc; docs/sync-rules.md): one
// test per precedence rule, and the state a replay of the decisions gives.
#include <gtest/gtest.h>

#include "tests/support/consent_fixture.h"

namespace dfm {
namespace {

using namespace testing_consent;  // NOLINT

TEST_F(ConsentRulesTest, MappersSayWhoMadeEachStatement) {
  Consent c;
  ASSERT_TRUE(ConsentFromText("stop", &c));
  EXPECT_EQ(c.actor, Actor::kPerson);
  EXPECT_FALSE(c.needs_reply);
  ASSERT_TRUE(ConsentFromText("Yes!", &c));
  EXPECT_TRUE(c.needs_reply) << "a bare YES counts only as a reply";
  ASSERT_TRUE(ConsentFromText("unstop", &c));
  EXPECT_FALSE(c.needs_reply);
  EXPECT_STREQ(ActorName(Actor::kCarrier), "carrier");
  EXPECT_EQ(ActorOf("staff"), Actor::kStaff);
  EXPECT_EQ(ActorOf(""), Actor::kPerson) << "events without an actor are the person's";
}

// A duplicate GoHighLevel record set to do not disturb, whose phone is the
// contact's and whose email another's (an identity conflict): its opt-out
// lands on the contact and every system, GoHighLevel too (the contact's
// own record there, linking none), and is not taken for what GoHighLevel
// holds for the contact's own record there: that record's next webhook,
// DND off as ever, lifts nothing.
TEST_F(ConsentRulesTest, AConflictsOptOutIsNotUndoneByTheContactsOwnRecord) {
  ContactFact own = Fact("ghl", 50 * kHour);
  own.external_id = "ghl-own";
  ConfirmPushes(Step(own));
  ASSERT_TRUE(state_.exists);
  ConfirmPushes(Step(Text(Change::kOptOut, 60 * kHour, "STOP")));
  Step(Text(Change::kOptIn, 70 * kHour, "START"));  // its opt-in to GoHighLevel on its way
  ASSERT_FALSE(SmsOut());
  // Not a reading of the contact's own record: neither "ours on its way"
  // nor "written before" what it holds keeps it out.
  ContactFact dup = Dnd("ghl", Change::kOptOut, 90 * kHour, /*permanent=*/true);
  dup.external_id = "ghl-dup";
  dup.fields["email"] = "someone.else@example.com";
  auto handed = ConflictOptOuts(dup, {{"c1", "phone"}, {"c2", "email"}});
  ASSERT_EQ(handed.size(), 1u) << "sms goes by the phone alone";
  ASSERT_EQ(handed[0].first, "c1");
  const ContactState::HeldConsent known = state_.known_consent["ghl"]["sms"];
  auto es = Step(handed[0].second);
  auto out = Of(es, ev::kOptedOut);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].detail, "identity conflict") << "not permanent: another record's mark";
  EXPECT_EQ(out[0].fields.at("phone"), "+12055550142");
  EXPECT_EQ(out[0].fields.count("email"), 0u) << "the other person's address is not the contact's";
  auto pushes = Of(es, ev::kPushRequested, "opt_out");
  EXPECT_EQ(Systems(pushes), (std::vector<std::string>{"aloware", "ghl", "verity"}));
  const DomainEvent own_record = pushes.back();
  ASSERT_EQ(own_record.system, "ghl");
  EXPECT_EQ(own_record.external_id, "ghl-own") << "the contact's own record, and its address's";
  EXPECT_EQ(own_record.channel, "sms");
  EXPECT_TRUE(LinksNoRecord(own_record)) << own_record.push_id;
  EXPECT_EQ(state_.known_consent["ghl"]["sms"].at_us, known.at_us)
      << "nothing learnt of what GoHighLevel holds for its own record";
  EXPECT_TRUE(SmsOut());
  // The contact's own record, DND off as ever, before the push reached it.
  ContactFact again = Dnd("ghl", Change::kOptIn, 101 * kHour);
  again.external_id = "ghl-own";
  EXPECT_TRUE(Of(Step(again), ev::kOptedIn).empty());
  EXPECT_TRUE(SmsOut());
  // Its answer names the duplicate it set too: the contact's link stays.
  DomainEvent set = own_record;
  set.type = std::string(ev::kPushSucceeded);
  set.external_id = "ghl-dup";
  set.fields["answer.ids"] = "ghl-own,ghl-dup";
  Record({set});
  EXPECT_EQ(state_.links["ghl"], "ghl-own");
  EXPECT_TRUE(state_.known_consent["ghl"]["sms"].out);
  ExpectAReplayGivesTheSameState();
}

// A conflict's opt-out for a contact with no record in the duplicate's
// system: the push sets the records of the contact's address there (the
// duplicate's), which says nothing of a record of the contact's own, and
// its answer (Aloware's, keyed by the phone: the duplicate's id) links
// nothing.
TEST_F(ConsentRulesTest, AConflictsOptOutPushForAContactWithNoRecordThereLearnsNothing) {
  ConfirmPushes(Step(Text(Change::kOptOut, 60 * kHour, "STOP")));
  ConfirmPushes(Step(Text(Change::kOptIn, 70 * kHour, "START")));
  ASSERT_EQ(state_.links.count("aloware"), 0u);
  ContactFact dup = Dnd("aloware", Change::kOptOut, 90 * kHour, false, {"sms", "call"});
  dup.external_id = "alo-dup";
  dup.fields["email"] = "someone.else@example.com";
  auto handed = ConflictOptOuts(dup, {{"c1", "phone"}, {"c2", "email"}});
  ASSERT_EQ(handed.size(), 1u);
  const ContactState::HeldConsent known = state_.known_consent["aloware"]["sms"];
  auto pushes = Of(Step(handed[0].second), ev::kPushRequested, "opt_out");
  ASSERT_EQ(Systems(pushes), (std::vector<std::string>{"aloware", "ghl", "verity"}));
  const DomainEvent to_dup = *std::find_if(
      pushes.begin(), pushes.end(), [](const DomainEvent& p) { return p.system == "aloware"; });
  EXPECT_TRUE(LinksNoRecord(to_dup)) << to_dup.push_id;
  EXPECT_EQ(to_dup.external_id, "");
  DomainEvent set = to_dup;
  set.type = std::string(ev::kPushSucceeded);
  set.external_id = "alo-dup";
  Record({set});
  EXPECT_EQ(state_.links.count("aloware"), 0u);
  EXPECT_EQ(state_.known_consent["aloware"]["sms"].out, known.out);
  EXPECT_EQ(state_.known_consent["aloware"]["sms"].at_us, known.at_us);
  EXPECT_TRUE(state_.pending_consent.find("aloware") == state_.pending_consent.end())
      << "settled all the same";
}

// Told by its place in the id, never by a vendor's text that holds it.
TEST(LinksNoRecordTest, ReadsTheTagByItsPlace) {
  DomainEvent p;
  p.contact_id = "c1";
  p.system = "ghl";
  for (const char* id :
       {"c1:ghl:12:opt_out:duplicate", "c1:ghl:12.1:opt_out:duplicate:read",
        "c1:ghl:12:opt_out:duplicate:read:reapply", "c1:ghl:replay40:2:opt_out:duplicate"}) {
    p.push_id = id;
    EXPECT_TRUE(LinksNoRecord(p)) << id;
  }
  for (const char* id :
       {"c1:ghl:12:opt_out", "c1:ghl:12:opt_out:duplicated", "c1:ghl:12:opt_out:held",
        "c1:ghl:m:x:opt_out:duplicate", "c1:ghl:12:opt_out:refused:v:opt_out:duplicate",
        "c2:ghl:12:opt_out:duplicate", "c1:aloware:12:opt_out:duplicate",
        "c1:ghl:12:opt_in:duplicate", "c1:ghl:replay40:opt_out:duplicate"}) {
    p.push_id = id;
    EXPECT_FALSE(LinksNoRecord(p)) << id;
  }
}

TEST_F(ConsentRulesTest, PersonsStopThenStaffOptInIsRefusedAndSetAgain) {
  auto es = Step(Text(Change::kOptOut, 100 * kHour, "STOP"));
  auto out = Of(es, ev::kOptedOut);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].actor, "person");
  EXPECT_EQ(out[0].rule, "held");
  ConfirmPushes(es);
  // An agent lifts DND in GoHighLevel an hour later.
  es = Step(Dnd("ghl", Change::kOptIn, 101 * kHour));
  EXPECT_TRUE(Of(es, ev::kOptedIn).empty());
  EXPECT_TRUE(Of(es, ev::kPushRequested, "opt_in").empty()) << "nobody is told to opt back in";
  auto conflict = Of(es, ev::kConsentConflict);
  ASSERT_EQ(conflict.size(), 1u);
  EXPECT_EQ(conflict[0].system, "ghl");
  EXPECT_EQ(conflict[0].actor, "staff");
  EXPECT_EQ(conflict[0].channel, "sms");
  EXPECT_EQ(conflict[0].reason, "dndSettings");
  EXPECT_EQ(conflict[0].external_id, "ghl-1");
  EXPECT_EQ(conflict[0].source_time_us, 101 * kHour);
  EXPECT_NE(conflict[0].detail.find("keyword STOP via verity"), std::string::npos)
      << conflict[0].detail;
  auto back = Of(es, ev::kPushRequested, "opt_out");
  ASSERT_EQ(back.size(), 1u) << "set again where it was lifted, nowhere else";
  EXPECT_EQ(back[0].system, "ghl");
  EXPECT_EQ(back[0].channel, "sms");
  EXPECT_EQ(back[0].priority, 10);
  EXPECT_TRUE(SmsOut());
  // Its webhooks while the push is on its way change nothing; once it is
  // confirmed, lifting it again is a new conflict.
  EXPECT_TRUE(Step(Dnd("ghl", Change::kOptIn, 101 * kHour + kMinute)).empty());
  ConfirmPushes(back);
  es = Step(Dnd("ghl", Change::kOptIn, 103 * kHour));
  EXPECT_EQ(Of(es, ev::kConsentConflict).size(), 1u);
  EXPECT_NE(Of(es, ev::kPushRequested, "opt_out")[0].push_id, back[0].push_id);
}

TEST_F(ConsentRulesTest, AlowareDncClearedOverAPersonsStopIsSetAgainAsOneFlag) {
  ConfirmPushes(Step(Text(Change::kOptOut, 100 * kHour, "STOP")));
  auto es = Step(Dnd("aloware", Change::kOptIn, 101 * kHour, false, {"sms", "call"}));
  ASSERT_EQ(Of(es, ev::kConsentConflict).size(), 1u);
  EXPECT_EQ(Of(es, ev::kConsentConflict)[0].channel, "sms") << "calls were never opted out";
  auto back = Of(es, ev::kPushRequested, "opt_out");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].system, "aloware");
  EXPECT_EQ(back[0].channel, "call,sms") << "one flag: the whole group";
}

TEST_F(ConsentRulesTest, PersonsStopThenPersonsStartOptsBackInEverywhere) {
  ConfirmPushes(Step(Text(Change::kOptOut, 100 * kHour, "STOP")));
  auto es = Step(Text(Change::kOptIn, 101 * kHour, "START"));
  auto in = Of(es, ev::kOptedIn);
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0].actor, "person");
  EXPECT_EQ(Systems(Of(es, ev::kPushRequested, "opt_in")),
            (std::vector<std::string>{"aloware", "ghl"}));
  EXPECT_FALSE(SmsOut());
  EXPECT_FALSE(state_.consent.at("sms").held);
}

// A START texted to a GoHighLevel location's number: GoHighLevel lifts its
// DND itself and sends that webhook before the text's. The lift is refused
// (a staff lift over the person's STOP) and DND set again; the START then
// opts the person in, and GoHighLevel, whose DND the engine set, is told
// too, whether the set-back is on its way or confirmed.
TEST_F(ConsentRulesTest, AStartToGhlAfterItsOwnLiftWasSetBackLiftsItThereToo) {
  for (bool confirmed : {false, true}) {
    SCOPED_TRACE(confirmed ? "the set-back confirmed" : "the set-back on its way");
    state_ = ContactState{};
    state_.contact_id = "c1";
    ctx_.now_us = 10 * kHour;
    ConfirmPushes(Step(Text(Change::kOptOut, 100 * kHour, "STOP")));
    auto lift = Step(Dnd("ghl", Change::kOptIn, 101 * kHour));
    auto back = Of(lift, ev::kPushRequested, "opt_out");
    ASSERT_EQ(back.size(), 1u);
    if (confirmed) {
      ctx_.now_us = 101 * kHour + kMinute;
      ConfirmPushes(back);
    }
    auto es = Step(Text(Change::kOptIn, 101 * kHour + 2'000'000, "START", "ghl"));
    ASSERT_EQ(Of(es, ev::kOptedIn).size(), 1u);
    EXPECT_FALSE(SmsOut());
    auto in = Of(es, ev::kPushRequested, "opt_in");
    EXPECT_EQ(Systems(in), (std::vector<std::string>{"aloware", "ghl", "verity"}));
    for (const auto& p : in) {
      if (p.system != "ghl") continue;
      EXPECT_EQ(p.channel, "sms");
      EXPECT_EQ(p.external_id, "ghl-1");
      EXPECT_NE(p.push_id, back[0].push_id);
      EXPECT_EQ(p.push_id.substr(p.push_id.size() - 4), ":own") << p.push_id;
    }
    ExpectAReplayGivesTheSameState();
    log_.clear();
  }
}

// A START then a STOP texted to the same GoHighLevel number, the engine's
// opt-in there still on its way: the STOP is pushed there after it, or the
// opt-in would land last and lift the DND GoHighLevel set for the STOP.
TEST_F(ConsentRulesTest, AStopRightAfterAStartToGhlIsPushedThereAfterTheOptIn) {
  ConfirmPushes(Step(Text(Change::kOptOut, 100 * kHour, "STOP")));
  ctx_.now_us = 100 * kHour + kMinute;
  ConfirmPushes(Step(Dnd("ghl", Change::kOptIn, 101 * kHour)));  // set back, confirmed
  auto start = Of(Step(Text(Change::kOptIn, 101 * kHour + 2'000'000, "START", "ghl")),
                  ev::kPushRequested, "opt_in");
  ASSERT_EQ(Systems(start), (std::vector<std::string>{"aloware", "ghl", "verity"}));
  const DomainEvent in = start.back();  // after the others'
  ASSERT_EQ(in.system, "ghl");
  EXPECT_NE(in.reason.find("(the engine's opt-out there, set or on its way)"), std::string::npos)
      << in.reason;
  auto es = Step(Text(Change::kOptOut, 101 * kHour + 10'000'000, "STOP", "ghl"));
  ASSERT_EQ(Of(es, ev::kOptedOut).size(), 1u);
  auto out = Of(es, ev::kPushRequested, "opt_out");
  ASSERT_EQ(Systems(out), (std::vector<std::string>{"aloware", "ghl", "verity"}));
  ASSERT_EQ(out.back().system, "ghl");
  EXPECT_EQ(out.back().channel, "sms");
  EXPECT_NE(out.back().push_id, in.push_id);
  EXPECT_TRUE(SmsOut());
  // With its opt-in confirmed first, GoHighLevel's STOP is its own: not
  // pushed back.
  ConfirmPushes(out);
  ConfirmPushes(Step(Text(Change::kOptIn, 102 * kHour, "START", "ghl")));
  es = Step(Text(Change::kOptOut, 102 * kHour + 10'000'000, "STOP", "ghl"));
  EXPECT_EQ(Systems(Of(es, ev::kPushRequested, "opt_out")),
            (std::vector<std::string>{"aloware", "verity"}));
  ExpectAReplayGivesTheSameState();
}

// GoHighLevel's own STOP and START: it set DND and lifted it itself; nothing
// is pushed back to it. A set-back that never landed (dead-lettered) left
// nothing of the engine's there either.
TEST_F(ConsentRulesTest, AStartToGhlIsNotPushedBackWhereOnlyGhlSetItsDnd) {
  ConfirmPushes(Step(Text(Change::kOptOut, 100 * kHour, "STOP", "ghl")));
  auto es = Step(Text(Change::kOptIn, 101 * kHour, "START", "ghl"));
  EXPECT_EQ(Systems(Of(es, ev::kPushRequested, "opt_in")),
            (std::vector<std::string>{"aloware", "verity"}));
  ConfirmPushes(Step(Text(Change::kOptOut, 102 * kHour, "STOP")));
  auto back = Of(Step(Dnd("ghl", Change::kOptIn, 103 * kHour)), ev::kPushRequested, "opt_out");
  ASSERT_EQ(back.size(), 1u);
  DomainEvent dead = back[0];
  dead.type = std::string(ev::kPushDeadLettered);
  Record({dead});
  es = Step(Text(Change::kOptIn, 103 * kHour + 2'000'000, "START", "ghl"));
  EXPECT_EQ(Systems(Of(es, ev::kPushRequested, "opt_in")),
            (std::vector<std::string>{"aloware", "verity"}))
      << "GoHighLevel holds the channel in: its lift stood";
  ExpectAReplayGivesTheSameState();
}

TEST_F(ConsentRulesTest, ABareYesCountsOnlyAsTheReplyToATextSentAfterTheOptOut) {
  ConfirmPushes(Step(Text(Change::kOptOut, 100 * kHour, "STOP")));
  auto es = Step(Text(Change::kOptIn, 101 * kHour, "YES"));
  EXPECT_TRUE(Of(es, ev::kOptedIn).empty());
  ASSERT_EQ(Of(es, ev::kOptOutFlagged).size(), 1u);
  EXPECT_NE(Of(es, ev::kOptOutFlagged)[0].reason.find("not a reply"), std::string::npos);
  EXPECT_TRUE(SmsOut());
  // The business texts a confirmation ("reply YES to receive texts again").
  DomainEvent sent = About(ev::kMessageLogged, "verity", "k1");
  sent.fields["direction"] = "outbound";
  sent.source_time_us = 102 * kHour;
  Record({sent});
  // A YES more than the reply window later still does not count.
  EXPECT_TRUE(Of(Step(Text(Change::kOptIn, 102 * kHour + ctx_.reply_window_us + 1, "YES")),
                 ev::kOptedIn)
                  .empty());
  // Within it, it is the person's opt-in.
  sent.source_time_us = 200 * kHour;
  sent.message_key = "k2";
  Record({sent});
  es = Step(Text(Change::kOptIn, 201 * kHour, "YES"));
  ASSERT_EQ(Of(es, ev::kOptedIn).size(), 1u);
  EXPECT_FALSE(SmsOut());
}

// A text the engine refused (the person is opted out) never went out: it
// is no confirmation, and a bare YES after it does not lift the STOP.
// (Its request was recorded as an outbound message, "pending", and that
// counted.) Neither does one only pending, one that failed, or a late
// delivery receipt; one seen sent does.
TEST_F(ConsentRulesTest, ARefusedOrFailedTextIsNoConfirmationForABareYes) {
  ContactFact made = Fact("ghl", 5 * kHour);
  made.external_id = "ghl-1";
  ConfirmPushes(Step(made));
  ConfirmPushes(Step(Text(Change::kOptOut, 100 * kHour, "STOP")));
  ContactFact ask = Fact("ghl", 101 * kHour);
  ask.external_id = "ghl-1";
  Activity a;
  a.kind = Activity::Kind::kSend;
  a.direction = "outbound";
  a.message_id = "gm1";
  a.body = "Still interested?";
  ask.activities.push_back(a);
  ASSERT_EQ(Of(Step(ask), ev::kMessageRefused).size(), 1u);
  auto es = Step(Text(Change::kOptIn, 102 * kHour, "YES"));
  EXPECT_TRUE(Of(es, ev::kOptedIn).empty());
  EXPECT_EQ(Of(es, ev::kOptOutFlagged).size(), 1u);
  EXPECT_TRUE(SmsOut());

  DomainEvent failed = About(ev::kMessageLogged, "verity", "k1");
  failed.fields = {{"direction", "outbound"}, {"status", "failed"}};
  failed.source_time_us = 103 * kHour;
  Record({failed});
  EXPECT_TRUE(Of(Step(Text(Change::kOptIn, 104 * kHour, "YES")), ev::kOptedIn).empty());
  EXPECT_TRUE(SmsOut());

  failed.message_key = "k2";  // Telnyx's word for it
  failed.fields["status"] = "delivery_failed";
  Record({failed});
  EXPECT_TRUE(Of(Step(Text(Change::kOptIn, 104 * kHour, "YES")), ev::kOptedIn).empty());

  // GoHighLevel's record of a text it asks its provider to send: pending,
  // not yet out (if the engine then refuses it, it never goes).
  DomainEvent pending = About(ev::kMessageLogged, "ghl", "k3");
  pending.fields = {{"direction", "outbound"}, {"status", "pending"}};
  pending.source_time_us = 105 * kHour;
  Record({pending});
  EXPECT_TRUE(Of(Step(Text(Change::kOptIn, 106 * kHour, "YES")), ev::kOptedIn).empty());
  // A delivery receipt after the STOP, of a text sent before it, dates no
  // confirmation either.
  DomainEvent delivered = About(ev::kMessageStatus, "verity", "k1");
  delivered.fields = {{"status", "delivered"}};
  delivered.source_time_us = 107 * kHour;
  Record({delivered});
  EXPECT_TRUE(Of(Step(Text(Change::kOptIn, 108 * kHour, "YES")), ev::kOptedIn).empty());
  EXPECT_TRUE(SmsOut());

  DomainEvent sent = About(ev::kMessageLogged, "verity", "k4");  // seen going out
  sent.fields = {{"direction", "outbound"}, {"status", "sent"}};
  sent.source_time_us = 109 * kHour;
  Record({sent});
  EXPECT_EQ(Of(Step(Text(Change::kOptIn, 110 * kHour, "YES")), ev::kOptedIn).size(), 1u);
  EXPECT_FALSE(SmsOut());
}

TEST_F(ConsentRulesTest, StaffMayLiftAStaffOptOutUnlessTheTenantHoldsThem) {
  auto es = Step(Dnd("ghl", Change::kOptOut, 100 * kHour));
  ASSERT_EQ(Of(es, ev::kOptedOut).size(), 1u);
  EXPECT_EQ(Of(es, ev::kOptedOut)[0].actor, "staff");
  EXPECT_EQ(Of(es, ev::kOptedOut)[0].rule, "");
  es = Step(Dnd("ghl", Change::kOptIn, 101 * kHour));
  ASSERT_EQ(Of(es, ev::kOptedIn).size(), 1u);
  EXPECT_FALSE(SmsOut());

  ctx_.staff_opt_outs_hold = true;  // the stricter rule, per tenant
  es = Step(Dnd("ghl", Change::kOptOut, 102 * kHour));
  EXPECT_EQ(Of(es, ev::kOptedOut)[0].rule, "held");
  es = Step(Dnd("ghl", Change::kOptIn, 103 * kHour));
  EXPECT_EQ(Of(es, ev::kConsentConflict).size(), 1u);
  EXPECT_TRUE(SmsOut());
}

TEST_F(ConsentRulesTest, APersonsStopAfterAStaffDndMakesItHold) {
  ConfirmPushes(Step(Dnd("ghl", Change::kOptOut, 100 * kHour)));
  auto es = Step(Text(Change::kOptOut, 101 * kHour, "STOP"));
  auto out = Of(es, ev::kOptedOut);
  ASSERT_EQ(out.size(), 1u) << "recorded: the person's own revocation";
  EXPECT_EQ(out[0].rule, "held");
  EXPECT_TRUE(Of(es, ev::kPushRequested, "opt_out").empty()) << "every system holds it already";
  es = Step(Dnd("ghl", Change::kOptIn, 102 * kHour));
  EXPECT_EQ(Of(es, ev::kConsentConflict).size(), 1u);
  EXPECT_TRUE(SmsOut());
}

TEST_F(ConsentRulesTest, ReplayingTheDecisionsGivesTheSameConsentState) {
  ConfirmPushes(Step(Dnd("ghl", Change::kOptOut, 100 * kHour, true)));
  ConfirmPushes(Step(Text(Change::kOptOut, 101 * kHour, "STOP")));
  ConfirmPushes(Step(Dnd("aloware", Change::kOptIn, 102 * kHour, false, {"sms", "call"})));
  Step(Text(Change::kOptIn, 103 * kHour, "YES"));
  ExpectAReplayGivesTheSameState();
}

}  // namespace
}  // namespace dfm
