// Enrichment rules (sync/enrichment_rules.cc; docs/sync-rules.md,
// "Enrichment"): when a contact is asked about, and what the answer may
// change. Pure: no actor, no log.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "projections/sync_projections.h"
#include "sync/contact_model.h"
#include "sync/domain_event.h"

namespace dfm {
namespace {

constexpr int64_t kDay = 86400LL * 1000000;

class EnrichmentRulesTest : public ::testing::Test {
 protected:
  EnrichmentRulesTest() {
    ApplyBuiltinDefaults(&ctx_);
    ctx_.targets["ghl"] = {"first_name", "last_name", "email", "phone", "title", "company_name"};
    ctx_.targets["halopsa"] = {"first_name", "last_name", "email", "phone", "title"};
    ctx_.enrichment = "apollo";
    ctx_.now_us = 100 * kDay;
    state_.contact_id = "c-ann";
  }

  ContactFact Fact(const std::string& system, std::map<std::string, std::string> fields) {
    ContactFact f;
    f.tenant = "t";
    f.system = system;
    f.external_id = system + "-1";
    f.fields = std::move(fields);
    f.source_time_us = ctx_.now_us;
    f.webhook_seq = ++seq_;
    return f;
  }

  std::vector<DomainEvent> DecideAndApply(const ContactFact& f) {
    auto out = Decide(state_, f, ctx_);
    for (const auto& e : out) Apply(&state_, e, ++seq_, ctx_.now_us);
    return out;
  }

  static std::vector<const DomainEvent*> Of(const std::vector<DomainEvent>& out, std::string_view type,
                                            const std::string& op = "") {
    std::vector<const DomainEvent*> found;
    for (const auto& e : out)
      if (e.type == type && (op.empty() || e.op == op)) found.push_back(&e);
    return found;
  }

  // The enrichment system's answer to `ask`, as the connector reports it.
  static DomainEvent Answer(const DomainEvent& ask, std::map<std::string, std::string> answered) {
    DomainEvent ok;
    ok.type = std::string(ev::kPushSucceeded);
    ok.contact_id = ask.contact_id;
    ok.system = ask.system;
    ok.op = "enrich";
    ok.push_id = ask.push_id;
    ok.webhook_seq = ask.webhook_seq;
    ok.fields = std::move(answered);
    for (const auto& [f, v] : ask.fields) ok.fields["asked." + f] = v;
    return ok;
  }

  SyncContext ctx_;
  ContactState state_;
  uint64_t seq_ = 0;
};

TEST_F(EnrichmentRulesTest, ANewContactWithAnEmailIsAskedAboutOnce) {
  auto out = DecideAndApply(Fact("ghl", {{"email", "ann@acme.io"}, {"first_name", "Ann"}}));
  auto asks = Of(out, ev::kPushRequested, "enrich");
  ASSERT_EQ(asks.size(), 1u);
  EXPECT_EQ(asks[0]->system, "apollo");
  EXPECT_EQ(asks[0]->fields.at("email"), "ann@acme.io");
  EXPECT_EQ(asks[0]->fields.at("company_domain"), "acme.io") << "the email's domain names the company";
  EXPECT_EQ(asks[0]->fields.at("first_name"), "Ann");
  EXPECT_FALSE(Of(out, ev::kPushRequested, "upsert").empty()) << "the sync does not wait for it";
  EXPECT_EQ(state_.enrich_requested_us, ctx_.now_us);

  ctx_.now_us += 10 * kDay;
  auto again = DecideAndApply(Fact("ghl", {{"email", "ann@acme.io"}, {"first_name", "Annie"}}));
  EXPECT_TRUE(Of(again, ev::kPushRequested, "enrich").empty()) << "asked within the period";
  ctx_.now_us += 90 * kDay;
  auto later = DecideAndApply(Fact("ghl", {{"email", "ann@acme.io"}, {"first_name", "Ann"}}));
  EXPECT_EQ(Of(later, ev::kPushRequested, "enrich").size(), 1u) << "the answer has aged";
}

TEST_F(EnrichmentRulesTest, NothingToAskWithoutAnEmailOrCompanyOrASystemToAsk) {
  auto out = DecideAndApply(Fact("ghl", {{"phone", "+12055550100"}, {"first_name", "Ann"}}));
  EXPECT_TRUE(Of(out, ev::kPushRequested, "enrich").empty());
  auto free_mail = Decide(state_, Fact("ghl", {{"email", "ann@gmail.com"}}), ctx_);
  auto asks = Of(free_mail, ev::kPushRequested, "enrich");
  ASSERT_EQ(asks.size(), 1u) << "a person is asked about by email";
  EXPECT_EQ(asks[0]->fields.count("company_domain"), 0u) << "a free mail domain is no company";
  ctx_.enrichment.clear();
  EXPECT_TRUE(Of(Decide(state_, Fact("ghl", {{"email", "ann@acme.io"}}), ctx_), ev::kPushRequested,
                 "enrich")
                  .empty());
}

TEST_F(EnrichmentRulesTest, TheSamePersonEnrichedLatelyInTheTenantIsNotAskedAgain) {
  std::string asked_email, asked_domain;
  ctx_.last_enriched = [&](const std::string& email, const std::string& domain) -> int64_t {
    asked_email = email;
    asked_domain = domain;
    return email == "ann@acme.io" ? ctx_.now_us - 5 * kDay : 0;
  };
  auto out = Decide(state_, Fact("halopsa", {{"email", "ann@acme.io"}}), ctx_);
  EXPECT_TRUE(Of(out, ev::kPushRequested, "enrich").empty());
  EXPECT_EQ(asked_email, "ann@acme.io");
  EXPECT_EQ(asked_domain, "acme.io");
  auto bob = Decide(state_, Fact("halopsa", {{"email", "bob@acme.io"}}), ctx_);
  EXPECT_EQ(Of(bob, ev::kPushRequested, "enrich").size(), 1u);
}

TEST_F(EnrichmentRulesTest, TheAnswerFillsOnlyEmptyFieldsAndReachesTheOtherSystems) {
  auto out = DecideAndApply(Fact("ghl", {{"email", "ann@acme.io"}, {"first_name", "Ann"}}));
  auto asks = Of(out, ev::kPushRequested, "enrich");
  ASSERT_EQ(asks.size(), 1u);
  const DomainEvent answer =
      Answer(*asks[0], {{"first_name", "Anne"}, {"title", "CTO"}, {"company_name", "Acme"}});
  auto decided = DecideReport(state_, {answer}, ctx_);
  auto enriched = Of(decided, ev::kContactEnriched);
  ASSERT_EQ(enriched.size(), 1u);
  EXPECT_EQ(enriched[0]->outcome, "matched");
  EXPECT_EQ(enriched[0]->fields.at("asked.email"), "ann@acme.io");
  EXPECT_EQ(enriched[0]->fields.at("title"), "CTO");
  auto changed = Of(decided, ev::kContactChanged);
  ASSERT_EQ(changed.size(), 1u);
  std::map<std::string, std::string> filled;
  for (const auto& c : changed[0]->changes) filled[c.field] = c.new_value;
  EXPECT_EQ(filled, (std::map<std::string, std::string>{{"title", "CTO"}, {"company_name", "Acme"}}))
      << "Ann's first name was set by a person in GoHighLevel: never overridden";
  std::set<std::string> pushed_to;
  for (const auto* p : Of(decided, ev::kPushRequested, "upsert")) {
    pushed_to.insert(p->system);
    EXPECT_NE(p->push_id.find(answer.push_id), std::string::npos) << "named after the answer";
  }
  EXPECT_EQ(pushed_to, (std::set<std::string>{"ghl", "halopsa"}));
  EXPECT_TRUE(Of(decided, ev::kContactLinked).empty()) << "the enrichment system holds no copy";
  for (const auto& e : decided) Apply(&state_, e, ++seq_, ctx_.now_us);
  EXPECT_EQ(state_.fields.at("first_name").value, "Ann");
  EXPECT_EQ(state_.fields.at("title").value, "CTO");
  EXPECT_EQ(state_.fields.at("title").system, "apollo");
  EXPECT_EQ(state_.links.count("apollo"), 0u);
}

// Staff type a title in GoHighLevel a second before the enrichment's
// answer is decided, and its webhook comes after: the staff's title
// stands, and no push carries the enrichment's over it.
TEST_F(EnrichmentRulesTest, AStaffEditMadeBeforeTheAnswerButDeliveredAfterItWins) {
  auto out = DecideAndApply(Fact("ghl", {{"email", "ann@acme.io"}, {"first_name", "Ann"}}));
  auto asks = Of(out, ev::kPushRequested, "enrich");
  ASSERT_EQ(asks.size(), 1u);
  const int64_t edited_at = ctx_.now_us + 3'000'000;
  ctx_.now_us += 5'000'000;  // the answer, decided after the edit was made
  auto decided = DecideReport(state_, {Answer(*asks[0], {{"title", "CTO"}})}, ctx_);
  for (const auto& e : decided) Apply(&state_, e, ++seq_, ctx_.now_us);
  ASSERT_EQ(state_.fields.at("title").value, "CTO");
  ctx_.now_us += 2'000'000;
  ContactFact edit =
      Fact("ghl", {{"email", "ann@acme.io"}, {"first_name", "Ann"}, {"title", "Head of Ops"}});
  edit.source_time_us = edited_at;
  auto after = DecideAndApply(edit);
  EXPECT_EQ(state_.fields.at("title").value, "Head of Ops");
  EXPECT_EQ(state_.fields.at("title").system, "ghl");
  for (const auto* p : Of(after, ev::kPushRequested, "upsert")) {
    auto t = p->fields.find("title");
    EXPECT_TRUE(t == p->fields.end() || t->second == "Head of Ops")
        << p->system << " gets " << t->second;
  }
  // An empty value from a system does not clear what the enrichment filled.
  ContactFact empty = Fact("halopsa", {{"email", "ann@acme.io"}, {"title", ""}});
  empty.source_time_us = edited_at - 1'000'000;
  state_.fields["title"] = Attributed{"CTO", "apollo", ctx_.now_us};
  DecideAndApply(empty);
  EXPECT_EQ(state_.fields.at("title").value, "CTO");
}

TEST_F(EnrichmentRulesTest, NoMatchIsRecordedAndChangesNothing) {
  auto out = DecideAndApply(Fact("ghl", {{"email", "ann@acme.io"}}));
  auto asks = Of(out, ev::kPushRequested, "enrich");
  ASSERT_EQ(asks.size(), 1u);
  auto decided = DecideReport(state_, {Answer(*asks[0], {})}, ctx_);
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_EQ(decided[0].type, ev::kContactEnriched);
  EXPECT_EQ(decided[0].outcome, "no match");
}

TEST_F(EnrichmentRulesTest, TheEnrichmentsProjectionRemembersWhoWasAskedWhen) {
  std::map<std::string, std::string> kv;
  ProjectionState st([&](std::string_view k, std::string* v) {
    auto it = kv.find(std::string(k));
    if (it == kv.end()) return Status::NotFound("");
    *v = it->second;
    return Status::OK();
  });
  DomainEvent en;
  en.type = std::string(ev::kContactEnriched);
  en.contact_id = "c-ann";
  en.system = "apollo";
  en.fields = {{"asked.email", "ann@acme.io"}, {"asked.company_domain", "acme.io"}};
  Event e;
  e.tenant = "t";
  e.seq = 7;
  e.recorded_at_us = 5 * kDay;
  EnrichmentsProjection p;
  p.FoldDecoded(e, &en, &st);
  en.fields = {{"asked.company_domain", "globex.com"}};
  e.recorded_at_us = 6 * kDay;
  p.FoldDecoded(e, &en, &st);
  for (const auto& op : st.TakeOps()) kv[op.key] = op.value;
  EXPECT_EQ(kv[EnrichedEmailKey("t", "ann@acme.io")], std::to_string(5 * kDay));
  EXPECT_EQ(kv[EnrichedDomainKey("t", "globex.com")], std::to_string(6 * kDay));
  EXPECT_EQ(kv.count(EnrichedDomainKey("t", "acme.io")), 0u) << "a person's answer is the person's";
}

}  // namespace
}  // namespace dfm
