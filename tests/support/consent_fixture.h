// The consent rules' test fixture (tests/unit/consent_rules_test.cc,
// consent_records_test.cc): one contact, c1, whose facts are decided and
// applied as its actor would, and the log of what was decided.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "sync/consent.h"
#include "sync/contact_model.h"
#include "sync/domain_event.h"
#include "sync/identity.h"

namespace dfm::testing_consent {

constexpr int64_t kMinute = 60'000'000;
constexpr int64_t kHour = 60 * kMinute;
using Change = Consent::Change;
using Actor = Consent::Actor;

class ConsentRulesTest : public ::testing::Test {
 protected:
  ConsentRulesTest() {
    ApplyBuiltinDefaults(&ctx_);
    ctx_.targets["ghl"] = {"first_name", "email", "phone"};
    ctx_.targets["aloware"] = {"first_name", "email", "phone"};
    ctx_.targets["verity"] = {"first_name", "email", "phone"};
    ctx_.channels["aloware"] = {"sms", "call"};
    ctx_.channels["verity"] = {"sms"};
    ctx_.one_flag = {"aloware"};
    ctx_.now_us = 10 * kHour;  // pushes are confirmed then: before the facts below
    state_.contact_id = "c1";
  }
  // The person's text on Verity (or to `system`'s number).
  ContactFact Text(Change change, int64_t t, const std::string& word,
                   const std::string& system = "verity") {
    ContactFact f = Fact(system, t);
    Consent c;
    c.change = change;
    c.channels = {"sms"};
    c.reason = "keyword " + word;
    c.message_id = "m" + std::to_string(webhook_seq_);
    c.needs_reply = word == "YES";
    f.consents.push_back(c);
    return f;
  }
  // A system's DND setting (GoHighLevel dndSettings), repeated by its webhooks.
  ContactFact Dnd(const std::string& system, Change change, int64_t t, bool permanent = false,
                  std::vector<std::string> chs = {"sms"}) {
    ContactFact f = Fact(system, t);
    f.external_id = system + "-1";
    Consent c;
    c.change = change;
    c.channels = std::move(chs);
    c.reason = permanent ? "dndSettings permanent" : "dndSettings";
    c.snapshot = true;
    c.actor = Actor::kStaff;
    c.permanent = permanent;
    f.consents.push_back(c);
    return f;
  }
  ContactFact Fact(const std::string& system, int64_t t) {
    ContactFact f;
    f.system = system;
    f.fields["phone"] = "+12055550142";
    f.source_time_us = t;
    f.webhook_seq = ++webhook_seq_;
    return f;
  }
  // An event about contact c1's message `key` in `system`, on sms.
  static DomainEvent About(std::string_view type, const std::string& system,
                           const std::string& key) {
    DomainEvent e;
    e.type = std::string(type);
    e.contact_id = "c1";
    e.system = system;
    e.channel = "sms";
    e.message_key = key;
    return e;
  }
  std::vector<DomainEvent> Step(const ContactFact& f) { return Record(Decide(state_, f, ctx_)); }
  std::vector<DomainEvent> Record(std::vector<DomainEvent> events) {
    for (const auto& e : events) {
      Apply(&state_, e, ++seq_, ctx_.now_us);
      log_.push_back(e);
    }
    return events;
  }
  // Every push the events ask for is confirmed (GoHighLevel's naming the
  // records it set, `ghl_ids`, when given).
  void ConfirmPushes(const std::vector<DomainEvent>& events, const std::string& ghl_ids = "") {
    Record(Succeeded(events, ghl_ids));
  }
  // The push.succeeded of each push the events ask for (GoHighLevel's
  // naming `ghl_ids`, when given), not recorded.
  static std::vector<DomainEvent> Succeeded(const std::vector<DomainEvent>& events,
                                            const std::string& ghl_ids = "") {
    std::vector<DomainEvent> done;
    for (const auto& p : events) {
      if (p.type != ev::kPushRequested) continue;
      DomainEvent ok = p;
      ok.type = std::string(ev::kPushSucceeded);
      if (!ghl_ids.empty() && p.system == "ghl") ok.fields["answer.ids"] = ghl_ids;
      done.push_back(ok);
    }
    return done;
  }
  // What each of `reports` decides (DecideReport), in order, not recorded.
  std::vector<DomainEvent> DecideEach(const std::vector<DomainEvent>& reports) {
    std::vector<DomainEvent> out;
    for (const auto& e : reports)
      for (auto& d : DecideReport(state_, {e}, ctx_)) out.push_back(std::move(d));
    return out;
  }
  // c1 made by its GoHighLevel record `record` at 50 h, then a STOP texted
  // on Verity at 60 h; every push confirmed (GoHighLevel's naming `ghl_ids`).
  void RecordThenStop(const std::string& record, const std::string& ghl_ids = "") {
    ContactFact own = Fact("ghl", 50 * kHour);
    own.external_id = record;
    ConfirmPushes(Step(own));
    ConfirmPushes(Step(Text(Change::kOptOut, 60 * kHour, "STOP")), ghl_ids);
  }
  static std::vector<DomainEvent> Of(const std::vector<DomainEvent>& es, std::string_view type,
                                     const std::string& op = "") {
    std::vector<DomainEvent> out;
    for (const auto& e : es)
      if (e.type == type && (op.empty() || e.op == op)) out.push_back(e);
    return out;
  }
  static std::vector<std::string> Systems(const std::vector<DomainEvent>& es) {
    std::vector<std::string> out;
    for (const auto& e : es) out.push_back(e.system);
    std::sort(out.begin(), out.end());
    return out;
  }
  bool SmsOut() const { return IsOptedOut(state_, "sms"); }
  // The log's decisions, through the codec and applied again, give the
  // same consent state; no two pushes asked share an id.
  void ExpectAReplayGivesTheSameState();

  SyncContext ctx_;
  ContactState state_;
  std::vector<DomainEvent> log_;
  uint64_t seq_ = 0;
  uint64_t webhook_seq_ = 100;
};

inline void ConsentRulesTest::ExpectAReplayGivesTheSameState() {
  ContactState again;
  uint64_t seq = 0;
  std::set<std::string> asked;  // one push per id (MergeConsentPushes)
  for (const auto& e : log_) {
    if (e.type == ev::kPushRequested) {
      EXPECT_TRUE(asked.insert(e.push_id).second) << e.push_id;
    }
  }
  for (const auto& e : log_) {
    // Through the codec, as the log holds them.
    DomainEvent read;
    ASSERT_TRUE(DecodeDomainEvent(e.type, EncodeDomainEvent(e), &read).ok());
    Apply(&again, read, ++seq, ctx_.now_us);
  }
  ASSERT_EQ(again.consent.size(), state_.consent.size());
  for (const auto& [ch, c] : state_.consent) {
    const auto& a = again.consent.at(ch);
    EXPECT_EQ(a.out, c.out) << ch;
    EXPECT_EQ(a.at_us, c.at_us) << ch;
    EXPECT_EQ(a.held, c.held) << ch;
    EXPECT_EQ(a.held_by, c.held_by) << ch;
    EXPECT_EQ(a.person_in_us, c.person_in_us) << ch;
  }
  for (const auto& [system, chans] : state_.known_consent)
    for (const auto& [ch, k] : chans) {
      const auto& a = again.known_consent.at(system).at(ch);
      EXPECT_EQ(a.out, k.out) << system << " " << ch;
      EXPECT_EQ(a.permanent, k.permanent) << system << " " << ch;
    }
  EXPECT_EQ(again.told, state_.told);
}

}  // namespace dfm::testing_consent
