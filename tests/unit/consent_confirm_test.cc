// A statement told to every system: what each confirms (its answer, its own
// webhook, a read-back), what is asked again, and settings the engine never
// lifts (docs/sync-rules.md, "Opt-outs").
#include <gtest/gtest.h>

#include <algorithm>

#include "tests/support/consent_fixture.h"

namespace dfm {
namespace {

using namespace testing_consent;  // NOLINT

// Issue 46: Aloware's DNC opted the person out, GoHighLevel was not told
// (its push ended without a 2xx); the person's STOP then changes nothing in
// the engine, yet it tells GoHighLevel again, and only GoHighLevel.
TEST_F(ConsentRulesTest, ARepeatedStopTellsAgainEverySystemThatHasNotConfirmed) {
  auto es = Step(Dnd("aloware", Change::kOptOut, 100 * kHour, false, {"sms", "call"}));
  auto pushes = Of(es, ev::kPushRequested, "opt_out");
  ASSERT_EQ(Systems(pushes), (std::vector<std::string>{"ghl", "verity"}));
  std::vector<DomainEvent> ends;
  for (const auto& p : pushes) {
    DomainEvent end = p;
    end.type = std::string(p.system == "ghl" ? ev::kPushDeadLettered : ev::kPushSucceeded);
    ends.push_back(end);
  }
  Record(ends);
  es = Step(Text(Change::kOptOut, 101 * kHour, "STOP"));
  EXPECT_TRUE(Of(es, ev::kOptedOut).empty() || Of(es, ev::kOptedOut)[0].rule == "held");
  pushes = Of(es, ev::kPushRequested, "opt_out");
  ASSERT_EQ(Systems(pushes), (std::vector<std::string>{"ghl"}));
  EXPECT_EQ(pushes[0].channel, "sms");
  EXPECT_NE(pushes[0].reason.find("again: not confirmed by ghl"), std::string::npos)
      << pushes[0].reason;
  // A third STOP while that push is on its way asks nothing more...
  EXPECT_TRUE(Of(Step(Text(Change::kOptOut, 102 * kHour, "STOP")), ev::kPushRequested).empty());
  // ...unless GoHighLevel refused it: then a STOP asks again (the connector
  // lets the new push replace the open one).
  DomainEvent refused = pushes[0];
  refused.type = std::string(ev::kPushAttempted);
  refused.outcome = "refused";
  Record({refused});
  pushes = Of(Step(Text(Change::kOptOut, 102 * kHour + kMinute, "STOP")), ev::kPushRequested);
  EXPECT_EQ(Systems(pushes), (std::vector<std::string>{"ghl"}));
  ConfirmPushes(pushes);
  EXPECT_TRUE(Of(Step(Text(Change::kOptOut, 103 * kHour, "STOP")), ev::kPushRequested).empty())
      << "everyone confirmed";
  EXPECT_TRUE(SmsOut());
}

// The push a repeated STOP makes replaces the open refused one, so it names
// that one's channels too (Aloware's DNC: sms and call), not only the STOP's.
TEST_F(ConsentRulesTest, ARepeatedStopAsksAgainForEveryChannelARefusedPushHeld) {
  auto es = Step(Dnd("aloware", Change::kOptOut, 100 * kHour, false, {"sms", "call"}));
  std::vector<DomainEvent> refused;
  for (auto p : Of(es, ev::kPushRequested, "opt_out")) {
    if (p.system != "ghl") continue;
    p.type = std::string(ev::kPushAttempted);
    p.outcome = "refused";
    refused.push_back(p);
  }
  ASSERT_EQ(refused.size(), 1u);
  Record(refused);
  auto pushes = Of(Step(Text(Change::kOptOut, 101 * kHour, "STOP")), ev::kPushRequested, "opt_out");
  ASSERT_EQ(Systems(pushes), (std::vector<std::string>{"ghl"}))
      << "Verity said it; its own push is on its way";
  EXPECT_EQ(SplitChannels(pushes[0].channel).size(), 2u) << pushes[0].channel;
}

TEST_F(ConsentRulesTest, ASystemsOwnWebhookShowingTheOptOutConfirmsIt) {
  auto es = Step(Text(Change::kOptOut, 100 * kHour, "STOP"));
  std::vector<DomainEvent> dead;
  for (auto p : Of(es, ev::kPushRequested, "opt_out")) {
    p.type = std::string(ev::kPushDeadLettered);
    dead.push_back(p);
  }
  Record(dead);                                              // nobody took it
  Step(Dnd("ghl", Change::kOptOut, 100 * kHour + kMinute));  // staff set DND in GoHighLevel
  es = Step(Text(Change::kOptOut, 101 * kHour, "STOP"));
  EXPECT_EQ(Systems(Of(es, ev::kPushRequested, "opt_out")), (std::vector<std::string>{"aloware"}));
}

// Read back (sync/read_back_rules.cc): an opt-out a system took is read
// from it once; where it does not show it, it is set again, and over a
// held opt-out that is a consent.conflict. A re-application is not read.
TEST_F(ConsentRulesTest, AnOptOutTakenIsReadBackAndSetAgainWhereItDoesNotShow) {
  ctx_.reads_consent = {"ghl"};
  auto pushes = Of(Step(Text(Change::kOptOut, 100 * kHour, "STOP")), ev::kPushRequested, "opt_out");
  std::vector<DomainEvent> ok = Record(Succeeded(pushes, "ghl-7,ghl-8"));  // the records it set
  std::vector<DomainEvent> reads = DecideEach(ok);
  ASSERT_EQ(reads.size(), 1u) << "only GoHighLevel reads back";
  EXPECT_EQ(reads[0].op, "read_consent");
  EXPECT_EQ(reads[0].system, "ghl");
  EXPECT_EQ(reads[0].channel, "sms");
  EXPECT_EQ(reads[0].fields.at("after"), "opt_out");
  EXPECT_EQ(reads[0].fields.at("ids"), "ghl-7,ghl-8") << "each read by id";
  Record(reads);
  DomainEvent answer = reads[0];
  answer.type = std::string(ev::kPushSucceeded);
  answer.fields = {{"held.sms", "out"}};
  EXPECT_TRUE(DecideReport(state_, {answer}, ctx_).empty()) << "it shows it: nothing to do";
  answer.fields = {{"held.sms", "in"}};  // an agent lifted it meanwhile
  auto decided = Record(DecideReport(state_, {answer}, ctx_));
  auto conflict = Of(decided, ev::kConsentConflict);
  ASSERT_EQ(conflict.size(), 1u);
  EXPECT_EQ(conflict[0].actor, "staff");
  EXPECT_NE(conflict[0].detail.find("read back"), std::string::npos);
  auto again = Of(decided, ev::kPushRequested, "opt_out");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].system, "ghl");
  EXPECT_EQ(again[0].push_id, reads[0].push_id + ":reapply");
  DomainEvent reapplied = again[0];
  reapplied.type = std::string(ev::kPushSucceeded);
  Record({reapplied});
  EXPECT_TRUE(DecideReport(state_, {reapplied}, ctx_).empty())
      << "one round: no read after a re-application";
  EXPECT_TRUE(SmsOut());
  EXPECT_TRUE(Of(log_, ev::kOptedIn).empty()) << "a read-back never opts anyone in";
}

TEST_F(ConsentRulesTest, AStaffLiftInsideTheSkewWindowIsReadBack) {
  auto stop = Step(Text(Change::kOptOut, 100 * kHour, "STOP"));
  ctx_.now_us = 100 * kHour + 1'000'000;  // GoHighLevel took our opt-out at once
  ConfirmPushes(stop);
  // An agent lifts it a second later: within the 5 s allowance.
  auto es = Step(Dnd("ghl", Change::kOptIn, 100 * kHour + 2'000'000));
  EXPECT_TRUE(Of(es, ev::kPushRequested).empty())
      << "without a read-back: taken for an older setting";
  ctx_.reads_consent = {"ghl"};
  es = Step(Dnd("ghl", Change::kOptIn, 100 * kHour + 3'000'000));
  auto reads = Of(es, ev::kPushRequested, "read_consent");
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].system, "ghl");
  EXPECT_EQ(reads[0].channel, "sms");
  EXPECT_TRUE(Of(es, ev::kConsentConflict).empty()) << "decided once the system answers";
  EXPECT_TRUE(SmsOut());
}

// A staff DND set in GoHighLevel while our opt-in (the person's START) was
// on its way: its webhook was decided before the opt-in's answer ("ours on
// its way") or dated before it, so taken for the old setting. The read
// after the opt-in finds it: GoHighLevel's staff opt-out, told to the
// others as its webhook would have been.
TEST_F(ConsentRulesTest, AStaffDndWhileOurOptInWasOnItsWayIsFoundByTheReadAfterIt) {
  ctx_.reads_consent = {"ghl"};
  ctx_.now_us = 60 * kHour + 1'000'000;
  RecordThenStop("ghl-1");
  auto ins = Of(Step(Text(Change::kOptIn, 70 * kHour, "START")), ev::kPushRequested, "opt_in");
  auto in =
      std::find_if(ins.begin(), ins.end(), [](const DomainEvent& e) { return e.system == "ghl"; });
  ASSERT_NE(in, ins.end());
  EXPECT_EQ(in->external_id, "ghl-1");
  // The agent's DND, dated before the opt-in's answer.
  auto es = Step(Dnd("ghl", Change::kOptOut, 70 * kHour + 30'000'000));
  EXPECT_TRUE(Of(es, ev::kOptedOut).empty() && Of(es, ev::kPushRequested).empty())
      << "ours on its way";
  ctx_.now_us = 70 * kHour + kMinute;
  DomainEvent ok = *in;
  ok.type = std::string(ev::kPushSucceeded);
  Record({ok});
  es = Step(Dnd("ghl", Change::kOptOut, 70 * kHour + 40'000'000));
  EXPECT_TRUE(Of(es, ev::kOptedOut).empty() && Of(es, ev::kPushRequested).empty())
      << "dated before the answer: the old setting";
  auto reads = Record(DecideReport(state_, {ok}, ctx_));
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].op, "read_consent");
  EXPECT_EQ(reads[0].push_id, in->push_id + ":read");
  EXPECT_EQ(reads[0].external_id, "ghl-1") << "its own record, read by id";
  EXPECT_EQ(reads[0].fields.at("after"), "opt_in");
  DomainEvent answer = reads[0];
  answer.type = std::string(ev::kPushSucceeded);
  EXPECT_EQ(reads[0].fields.at("since"), std::to_string(ctx_.now_us));
  answer.fields = {
      {"held.sms", "out"}, {"asked.after", "opt_in"}, {"asked.since", reads[0].fields.at("since")}};
  ctx_.now_us += 1'000'000;
  auto decided = Record(DecideReport(state_, {answer}, ctx_));
  auto out = Of(decided, ev::kOptedOut);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].system, "ghl");
  EXPECT_EQ(out[0].actor, "staff");
  EXPECT_EQ(out[0].source_time_us, ctx_.now_us);
  auto told = Of(decided, ev::kPushRequested, "opt_out");
  EXPECT_EQ(Systems(told), (std::vector<std::string>{"aloware", "verity"}));
  for (const auto& p : told)
    EXPECT_NE(p.push_id.find(":read:" + answer.push_id), std::string::npos);
  EXPECT_TRUE(SmsOut());
  // Its next webhook restates it: nothing more.
  es = Step(Dnd("ghl", Change::kOptOut, 71 * kHour));
  EXPECT_TRUE(Of(es, ev::kOptedOut).empty());
  EXPECT_TRUE(Of(es, ev::kPushRequested).empty());
  ExpectAReplayGivesTheSameState();
}

// The START's source clock ahead of ours: its statement is no later one.
TEST_F(ConsentRulesTest, AStaffDndIsFoundThoughTheStartsClockRunsAhead) {
  ctx_.reads_consent = {"ghl"};
  ctx_.now_us = 60 * kHour + 1'000'000;
  RecordThenStop("ghl-1");
  auto ins = Of(Step(Text(Change::kOptIn, 70 * kHour + 10'000'000, "START")), ev::kPushRequested,
                "opt_in");
  auto in =
      std::find_if(ins.begin(), ins.end(), [](const DomainEvent& e) { return e.system == "ghl"; });
  ASSERT_NE(in, ins.end());
  ctx_.now_us = 70 * kHour + 5'000'000;  // answered by our clock before the text's time
  DomainEvent ok = *in;
  ok.type = std::string(ev::kPushSucceeded);
  Record({ok});
  auto reads = Record(DecideReport(state_, {ok}, ctx_));
  ASSERT_EQ(reads.size(), 1u);
  DomainEvent answer = reads[0];
  answer.type = std::string(ev::kPushSucceeded);
  answer.fields = {
      {"held.sms", "out"}, {"asked.after", "opt_in"}, {"asked.since", reads[0].fields.at("since")}};
  ctx_.now_us += 1'000'000;
  EXPECT_EQ(Of(Record(DecideReport(state_, {answer}, ctx_)), ev::kOptedOut).size(), 1u);
  EXPECT_TRUE(SmsOut());
}

// What else a read after an opt-in decides: nothing where the system shows
// the opt-in, nothing (no conflict, no re-application) where the person
// opted out again meanwhile, nothing where they opted in again since (its
// answer is older than that), and no read where the push named no record,
// the system does not read or keeps one flag for several channels
// (Aloware's is_dnc: still set, it may be a clear it did not take).
TEST_F(ConsentRulesTest, AReadAfterOurOptInLooksOnlyForAnOptOutMadeMeanwhile) {
  ctx_.reads_consent = {"ghl", "aloware"};
  ctx_.now_us = 60 * kHour + 1'000'000;
  RecordThenStop("ghl-1");
  auto ins = Of(Step(Text(Change::kOptIn, 70 * kHour, "START")), ev::kPushRequested, "opt_in");
  ASSERT_EQ(Systems(ins), (std::vector<std::string>{"aloware", "ghl"}));
  ctx_.now_us = 70 * kHour + kMinute;
  std::vector<DomainEvent> oks = Record(Succeeded(ins));
  std::vector<DomainEvent> reads = DecideEach(oks);
  ASSERT_EQ(reads.size(), 1u) << "only GoHighLevel reads";
  Record(reads);
  DomainEvent answer = reads[0];
  answer.type = std::string(ev::kPushSucceeded);
  answer.fields = {
      {"held.sms", "in"}, {"asked.after", "opt_in"}, {"asked.since", reads[0].fields.at("since")}};
  EXPECT_TRUE(DecideReport(state_, {answer}, ctx_).empty()) << "it shows the opt-in";
  // The person's STOP again before the read's answer: on its way to GoHighLevel.
  auto stop = Step(Text(Change::kOptOut, 70 * kHour + 2 * kMinute, "STOP"));
  ASSERT_EQ(Of(stop, ev::kOptedOut).size(), 1u);
  EXPECT_TRUE(DecideReport(state_, {answer}, ctx_).empty()) << "not a lift of the new opt-out";
  answer.fields["held.sms"] = "out";
  EXPECT_TRUE(DecideReport(state_, {answer}, ctx_).empty()) << "the person's, decided already";
  // ...and their START again, taken everywhere: the read is older.
  ConfirmPushes(stop);
  ConfirmPushes(Step(Text(Change::kOptIn, 70 * kHour + 3 * kMinute, "START")));
  ASSERT_FALSE(SmsOut());
  EXPECT_TRUE(DecideReport(state_, {answer}, ctx_).empty()) << "stated since it was asked";
  // No record named, or a system that does not read: no read.
  auto ghl =
      std::find_if(oks.begin(), oks.end(), [](const DomainEvent& e) { return e.system == "ghl"; });
  ASSERT_NE(ghl, oks.end());
  DomainEvent unnamed = *ghl;
  unnamed.external_id.clear();
  EXPECT_TRUE(DecideReport(state_, {unnamed}, ctx_).empty());
  ctx_.reads_consent.clear();
  EXPECT_TRUE(DecideReport(state_, {*ghl}, ctx_).empty());
}

TEST_F(ConsentRulesTest, APermanentDndIsNeverLiftedByTheEngine) {
  auto es = Step(Dnd("ghl", Change::kOptOut, 100 * kHour, /*permanent=*/true));
  ASSERT_EQ(Of(es, ev::kOptedOut).size(), 1u);
  EXPECT_EQ(Of(es, ev::kOptedOut)[0].detail, "permanent");
  ConfirmPushes(es);
  EXPECT_TRUE(state_.known_consent.at("ghl").at("sms").permanent);
  // The person texts START: everyone else opts back in; GoHighLevel is not told.
  es = Step(Text(Change::kOptIn, 101 * kHour, "START"));
  ASSERT_EQ(Of(es, ev::kOptedIn).size(), 1u);
  EXPECT_EQ(Systems(Of(es, ev::kPushRequested, "opt_in")), (std::vector<std::string>{"aloware"}));
}

// A STOP texted to GoHighLevel's own number is an opt-out of the person's,
// not a DND setting: it says nothing of the mark's permanence there. It
// was recorded as GoHighLevel holding the opt-out not permanent, so a
// later START elsewhere lifted the permanent DND.
TEST_F(ConsentRulesTest, AStopTextedToTheSystemKeepsItsPermanentMark) {
  ConfirmPushes(Step(Dnd("ghl", Change::kOptOut, 100 * kHour, /*permanent=*/true)));
  ConfirmPushes(Step(Text(Change::kOptOut, 101 * kHour, "STOP", "ghl")));
  EXPECT_TRUE(state_.known_consent.at("ghl").at("sms").permanent);
  auto es = Step(Text(Change::kOptIn, 102 * kHour, "START"));
  ASSERT_EQ(Of(es, ev::kOptedIn).size(), 1u);
  EXPECT_EQ(Systems(Of(es, ev::kPushRequested, "opt_in")), (std::vector<std::string>{"aloware"}))
      << "GoHighLevel's permanent DND is never lifted by the engine";
}

TEST_F(ConsentRulesTest, PermanentLearnedLaterFromASettingAlreadyHeldIsKept) {
  ConfirmPushes(Step(Text(Change::kOptOut, 100 * kHour, "STOP")));  // GHL set "active" by us
  auto es = Step(Dnd("ghl", Change::kOptOut, 101 * kHour, /*permanent=*/true));
  ASSERT_EQ(Of(es, ev::kOptedOut).size(), 1u);
  EXPECT_TRUE(Of(es, ev::kPushRequested, "opt_out").empty());
  EXPECT_TRUE(state_.known_consent.at("ghl").at("sms").permanent);
  EXPECT_TRUE(state_.consent.at("sms").held) << "the person's STOP still holds";
  es = Step(Text(Change::kOptIn, 102 * kHour, "START"));
  EXPECT_EQ(Systems(Of(es, ev::kPushRequested, "opt_in")), (std::vector<std::string>{"aloware"}));
}

}  // namespace
}  // namespace dfm
