// The console's pure parts: API keys, limits, sessions, the status view
// (and a cluster's, merged from its partitions), the page's rendering and
// the OpenAPI document against the routes.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <set>

#include "console/api_keys.h"
#include "console/cluster_status.h"
#include "console/console.h"
#include "console/console_internal.h"
#include "console/limits.h"
#include "console/session.h"
#include "console/status_page.h"
#include "console/status_view.h"
#include "storage/memory_event_log.h"

namespace dfm {
namespace {

constexpr int64_t kMin = 60LL * 1000000;
constexpr int64_t kNow = 1'795'000'000'000'000;  // µs, 2026-11-18

TEST(ApiKeysTest, KeysAreShapedAndOnlyTheirHashIsKept) {
  NewApiKey k = MakeApiKey();
  EXPECT_EQ(k.token.size(), 85u);
  EXPECT_EQ(k.token.substr(0, 4), "dfm_");
  std::string id, secret;
  ASSERT_TRUE(SplitApiKey(k.token, &id, &secret));
  EXPECT_EQ(id, k.id);
  EXPECT_EQ(secret, k.secret);
  EXPECT_NE(MakeApiKey().token, k.token);
  for (std::string bad : {std::string(""), std::string("dfm_x"), "xfm" + k.token.substr(3),
                          k.token.substr(0, 84), k.token + "0", "dfm_" + k.id + "-" + k.secret,
                          "dfm_" + k.id + "_" + std::string(64, 'G')})
    EXPECT_FALSE(SplitApiKey(bad, &id, &secret)) << bad;
  ApiKeyRecord r;
  r.id = k.id;
  r.tenant = "acme";
  r.role = ApiRole::kOperator;
  r.name = "grafana";
  r.secret_sha256 = HashApiSecret(k.secret);
  EventDraft d = ApiKeyCreatedDraft(r, "req-1");
  EXPECT_EQ(d.payload.find(k.secret), std::string::npos) << "the secret is never written";
  EXPECT_EQ(d.tenant, "acme");
  EXPECT_EQ(ApiKeyEventTenant(kAllTenants), "default");
}

// A viewer key of every tenant, as `k` makes it.
ApiKeyRecord Auditor(const NewApiKey& k) {
  ApiKeyRecord r;
  r.id = k.id;
  r.tenant = "*";
  r.role = ApiRole::kViewer;
  r.name = "auditor";
  r.secret_sha256 = HashApiSecret(k.secret);
  return r;
}

TEST(ApiKeysTest, RegistryFoldsTheLogAndMatchesOnlyLiveKeysWithTheirSecret) {
  MemoryEventLog log;
  NewApiKey k = MakeApiKey();
  const ApiKeyRecord r = Auditor(k);
  AppendOutcome out;
  ASSERT_TRUE(log.Append(ApiKeyCreatedDraft(r, "req-1"), &out).ok());
  ApiKeyRegistry reg;
  ASSERT_TRUE(reg.Load(log, {"default", "acme"}).ok());
  auto who = reg.Authenticate(k.token);
  ASSERT_TRUE(who);
  EXPECT_EQ(who->name, "auditor");
  EXPECT_TRUE(who->Covers("acme"));
  std::string wrong = k.token;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_FALSE(reg.Authenticate(wrong));
  EXPECT_FALSE(reg.Authenticate(MakeApiKey().token));
  ASSERT_TRUE(log.Append(ApiKeyRevokedDraft(r, "admin-token", "req-2"), &out).ok());
  ApiKeyRegistry again;
  ASSERT_TRUE(again.Load(log, {"default"}).ok());
  EXPECT_FALSE(again.Authenticate(k.token)) << "revoked";
  ASSERT_EQ(again.List().size(), 1u);
  EXPECT_TRUE(again.List()[0].revoked);
  EXPECT_EQ(again.List()[0].revoked_by, "admin-token");
}

// A key's revocation folded before its creation (a cluster node's own,
// kept until shared, then the bucket's creation) leaves it revoked.
TEST(ApiKeysTest, ARevocationFoldedBeforeItsCreationStands) {
  NewApiKey k = MakeApiKey();
  const ApiKeyRecord r = Auditor(k);
  auto as_event = [](const EventDraft& d, int64_t at) {
    Event e;
    e.type = d.type;
    e.payload = d.payload;
    e.recorded_at_us = at;
    return e;
  };
  ApiKeyRegistry reg;
  EXPECT_TRUE(reg.Apply(as_event(ApiKeyRevokedDraft(r, "admin-token", "req-2"), 20)));
  EXPECT_TRUE(reg.List().empty()) << "nothing to list yet";
  EXPECT_TRUE(reg.Apply(as_event(ApiKeyCreatedDraft(r, "req-1"), 10)));
  EXPECT_FALSE(reg.Authenticate(k.token)) << "revoked";
  ASSERT_EQ(reg.List().size(), 1u);
  EXPECT_TRUE(reg.List()[0].revoked);
  EXPECT_EQ(reg.List()[0].revoked_us, 20);
  EXPECT_EQ(reg.List()[0].revoked_by, "admin-token");
}

TEST(ApiKeysTest, RolesIncludeTheOnesBelow) {
  EXPECT_TRUE(RoleAllows(ApiRole::kAdmin, ApiRole::kOperator));
  EXPECT_TRUE(RoleAllows(ApiRole::kOperator, ApiRole::kViewer));
  EXPECT_FALSE(RoleAllows(ApiRole::kViewer, ApiRole::kOperator));
  EXPECT_FALSE(RoleAllows(ApiRole::kOperator, ApiRole::kAdmin));
  EXPECT_EQ(ParseApiRole("operator"), ApiRole::kOperator);
  EXPECT_FALSE(ParseApiRole("root"));
}

// A write the log can never take (a cluster's limit on one event) is
// answered 413, not "retry later"; any other refusal 503 with Retry-After.
TEST(AppendRefusedTest, TooLargeIs413AndTheRest503ToRetry) {
  ApiResponse big =
      AppendRefused(Status::TooLarge("in cluster mode the limit is 1032192"), "retry later");
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.body.find("\"error\":\"body_too_large\""), std::string::npos) << big.body;
  EXPECT_NE(big.body.find("the limit is 1032192"), std::string::npos) << big.body;
  EXPECT_TRUE(big.headers.empty());
  ApiResponse down = AppendRefused(Status::Unavailable("no quorum"), "retry later");
  EXPECT_EQ(down.status, 503);
  EXPECT_NE(down.body.find("\"error\":\"log_unavailable\""), std::string::npos) << down.body;
  ASSERT_EQ(down.headers.size(), 1u);
  EXPECT_EQ(down.headers[0].first, "Retry-After");
}

TEST(WindowLimiterTest, CountsPerWindowAndSaysWhenItTurns) {
  WindowLimiter l(kMin);
  const int64_t start = kNow - kNow % kMin;
  for (uint64_t i = 0; i < 3; ++i) {
    RateDecision d = l.Take("k", 3, start + 10 * 1000000);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.remaining, 2 - i);
    EXPECT_EQ(d.limit, 3u);
    EXPECT_EQ(d.reset_s, 50);
  }
  RateDecision refused = l.Take("k", 3, start + 59 * 1000000 + 1);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.remaining, 0u);
  EXPECT_EQ(refused.reset_s, 1);
  EXPECT_TRUE(l.Take("other", 3, start + 59 * 1000000).allowed) << "each caller its own";
  EXPECT_TRUE(l.Take("k", 3, start + kMin).allowed) << "the next window";
  EXPECT_TRUE(l.Take("unlimited", 0, start).allowed) << "0: no limit";
  EXPECT_EQ(l.Peek("k", 3, start + kMin).remaining, 2u) << "Peek counts nothing";
}

// A shared store that can be made to fail (NATS unreachable).
class FlakyStore : public CasStore {
 public:
  explicit FlakyStore(std::shared_ptr<CasStore> inner) : inner_(std::move(inner)) {}
  Status Get(const std::string& k, Entry* e) override { return down ? Status::Unavailable("down") : inner_->Get(k, e); }
  Status Create(const std::string& k, const std::string& v) override {
    return down ? Status::Unavailable("down") : inner_->Create(k, v);
  }
  Status Update(const std::string& k, const std::string& v, uint64_t rev) override {
    return down ? Status::Unavailable("down") : inner_->Update(k, v, rev);
  }
  Status Keys(std::vector<std::string>* keys) override { return inner_->Keys(keys); }
  bool down = false;

 private:
  std::shared_ptr<CasStore> inner_;
};

TEST(WindowLimiterTest, SharedWindowsCountEveryNodesRequests) {
  MemoryEventLog log;
  auto store = std::make_shared<FlakyStore>(NewLogCasStore(&log, "limits"));
  WindowLimiter a(kMin), b(kMin);  // two nodes
  a.Share(store);
  b.Share(store);
  const int64_t start = kNow - kNow % kMin;
  EXPECT_TRUE(a.Take("k:1", 3, start + 1).allowed);
  EXPECT_TRUE(b.Take("k:1", 3, start + 2).allowed);
  RateDecision third = a.Take("k:1", 3, start + 3);
  EXPECT_TRUE(third.allowed);
  EXPECT_EQ(third.remaining, 0u);
  EXPECT_FALSE(b.Take("k:1", 3, start + 4).allowed) << "the fourth, on either node";
  EXPECT_FALSE(b.Peek("k:1", 3, start + 5).allowed);
  EXPECT_TRUE(b.Take("k:1", 3, start + kMin).allowed) << "the next window";
  EXPECT_TRUE(b.Take("k:1", 0, start + kMin).allowed) << "0: no limit";
  std::vector<std::string> names;
  ASSERT_TRUE(store->Keys(&names).ok());
  for (const auto& n : names) EXPECT_EQ(n.find("k:1"), std::string::npos) << "the caller only hashed";
  // The store down: each node counts alone (for a while), never refuses
  // for want of the store.
  store->down = true;
  EXPECT_TRUE(a.Take("k:2", 1, start + kMin + 1).allowed);
  EXPECT_FALSE(a.Take("k:2", 1, start + kMin + 2).allowed);
  EXPECT_TRUE(b.Take("k:2", 1, start + kMin + 3).allowed) << "counted per node meanwhile";
}

TEST(WindowLimiterTest, TheTighterDecisionIsShown) {
  RateDecision a{true, 10, 5, 30}, b{true, 100, 2, 30}, no{false, 100, 0, 12};
  EXPECT_EQ(Tighter(a, b).remaining, 2u);
  EXPECT_FALSE(Tighter(a, no).allowed);
  EXPECT_EQ(Tighter(RateDecision{true, 0, 0, 1}, a).limit, 10u);
}

TEST(SessionTest, SignedExpiringAndBoundToItsSecret) {
  const std::string v = MakeSession("secret", "abc123", 2000);
  EXPECT_EQ(CheckSession("secret", v, 1999), std::optional<std::string>("abc123"));
  EXPECT_FALSE(CheckSession("secret", v, 2000)) << "expired";
  EXPECT_FALSE(CheckSession("other", v, 1000)) << "another secret";
  std::string forged = v;
  forged.replace(0, 6, "zzz999");
  EXPECT_FALSE(CheckSession("secret", forged, 1000)) << "another key's id under this MAC";
  std::string later = MakeSession("secret", "abc123", 2000);
  later.replace(later.find('.') + 1, 4, "9999");
  EXPECT_FALSE(CheckSession("secret", later, 1000)) << "a longer expiry under this MAC";
  for (const char* bad : {"", "abc", "abc.1", "abc..x", ".1.x"})
    EXPECT_FALSE(CheckSession("secret", bad, 0)) << bad;
  EXPECT_EQ(CookieValue("a=1; dfm_session=xyz ; b=2", "dfm_session"), "xyz");
  EXPECT_EQ(CookieValue("xdfm_session=1", "dfm_session"), "");
}

EngineSnapshot Writable() {
  EngineSnapshot e;
  e.log_state = "writable";
  return e;
}

ConnectorSnapshot Snapshot() {
  ConnectorSnapshot c;
  c.tenant = "default";
  c.system = "ghl";
  c.name = "GoHighLevel";
  c.ok_hour = 12;
  c.last_success_us = kNow - 3 * kMin;
  return c;
}

ConnectorSnapshot Ghl(const std::string& tenant) {
  ConnectorSnapshot c;
  c.tenant = tenant;
  c.system = "ghl";
  c.name = "GoHighLevel";
  return c;
}

TEST(ClusterStatusTest, APartitionsStatusRoundTripsAndOthersAreRefused) {
  PartitionStatus s, back;
  ConnectorSnapshot c = Ghl("acme");
  c.breaker_open = true;
  c.down_since_us = kNow - 3 * kMin;
  c.held = 7;
  c.credits_today = -1;
  c.notice = "Two Clients \"Globex\"";
  c.concurrency_limit = 4;
  s.connectors = {c, c};
  s.connectors[1].system = "aloware";
  s.engine.log_state = "low_disk";
  s.engine.log_detail = "12 MiB free";
  s.engine.router_behind = 1500;
  s.engine.projections_failed = true;
  s.attention = {{"acme", "c-1", "The carrier tried to opt sms back in", kNow}};
  s.attention_total = 3;
  CampaignSnapshot spring;
  spring.tenant = "acme";
  spring.id = "spring-1";
  spring.name = "Spring \"sale\"";
  spring.state = "running";
  spring.sent = 120;
  spring.waiting = 30;
  spring.skipped_consent = 4;
  spring.skipped_quiet = 2;
  spring.failed = 1;
  s.engine.campaigns = {spring};
  ASSERT_TRUE(DecodePartitionStatus(EncodePartitionStatus(s), &back));
  ASSERT_EQ(back.engine.campaigns.size(), 1u);
  EXPECT_EQ(DescribeCampaign(back.engine.campaigns[0]),
            "Running: 120 sent, 30 waiting, skipped 4 because the person opted out, 2 because of "
            "quiet hours, 1 failed.");
  EXPECT_EQ(back.engine.campaigns[0].name, spring.name);
  // A status without campaigns (an older build's) reads as none.
  std::string old = EncodePartitionStatus(s);
  const size_t at = old.find(",\"campaigns\":");
  ASSERT_NE(at, std::string::npos);
  old.erase(at, old.find(']', at) + 1 - at);
  ASSERT_TRUE(DecodePartitionStatus(old, &back)) << old;
  EXPECT_TRUE(back.engine.campaigns.empty());
  ASSERT_TRUE(DecodePartitionStatus(EncodePartitionStatus(s), &back));
  ASSERT_EQ(back.connectors.size(), 2u);
  EXPECT_EQ(back.connectors[0].notice, c.notice);
  EXPECT_TRUE(back.connectors[0].breaker_open);
  EXPECT_EQ(back.connectors[0].down_since_us, c.down_since_us);
  EXPECT_EQ(back.connectors[0].held, 7u);
  EXPECT_EQ(back.connectors[0].credits_today, -1);
  EXPECT_EQ(back.connectors[0].concurrency_limit, 4);
  EXPECT_EQ(back.connectors[1].system, "aloware");
  EXPECT_EQ(back.engine.log_state, "low_disk");
  EXPECT_EQ(back.engine.router_behind, 1500u);
  EXPECT_TRUE(back.engine.projections_failed);
  ASSERT_EQ(back.attention.size(), 1u);
  EXPECT_EQ(back.attention[0].contact_id, "c-1");
  EXPECT_EQ(back.attention_total, 3u);
  for (const char* bad : {"", "{}", R"({"v":2,"connectors":[],"engine":{},"attention":[],"attention_total":0})",
                          R"({"v":1,"connectors":[{"tenant":"a"}],"engine":{"log_state":"writable","log_detail":"",)"
                          R"("sync_enabled":true,"router_behind":0,"projections_behind":0,"projections_failed":false},)"
                          R"("attention":[],"attention_total":0})"})
    EXPECT_FALSE(DecodePartitionStatus(bad, &back)) << bad;
}

TEST(ClusterStatusTest, TheMergeIsAsBadAsItsWorstPartitionAndNamesTheSilentOnes) {
  PartitionStatus a, b;
  a.connectors = {Ghl("acme")};
  a.engine.log_state = "writable";
  a.engine.router_behind = 10;
  a.attention = {{"acme", "c-old", "old", kNow - kMin}};
  a.attention_total = 1;
  b.connectors = {Ghl("t2")};
  b.engine.log_state = "unavailable";
  b.engine.log_detail = "disk full";
  b.engine.router_behind = 5;
  b.attention = {{"t2", "c-new", "new", kNow}};
  b.attention_total = 1;
  std::vector<PartitionAnswer> answers = {
      {0, 1, "node0", EncodePartitionStatus(a)},
      {1, 2, "node1", EncodePartitionStatus(b)},
      {2, 2, "", ""},         // moving: no owner
      {3, 1, "node2", ""},    // its node does not answer
      {4, 0, "", ""},         // no tenant of the configuration: not a problem
      {5, 1, "node1", "", true}};  // being started
  std::vector<ConnectorSnapshot> connectors;
  EngineSnapshot engine;
  std::vector<AttentionItem> attention;
  uint64_t total = 0;
  MergePartitionStatuses(answers, &connectors, &engine, &attention, &total);
  EXPECT_EQ(connectors.size(), 2u);
  EXPECT_EQ(engine.log_state, "unavailable");
  EXPECT_EQ(engine.log_detail, "partition 1: disk full");
  EXPECT_EQ(engine.router_behind, 15u);
  EXPECT_EQ(total, 2u);
  ASSERT_EQ(attention.size(), 2u);
  EXPECT_EQ(attention[0].contact_id, "c-new") << "newest first";
  EXPECT_EQ(engine.cluster_problems,
            (std::vector<std::string>{"Partition 2 (2 tenants): no node runs it now",
                                      "Partition 3 (1 tenant): its node (node2) does not answer",
                                      "Partition 5 (1 tenant): node1 is starting it"}));
  // The page says so on the engine's card, not as an empty page.
  StatusView v = BuildStatusView(connectors, engine, attention, total, kNow);
  EXPECT_EQ(v.engine.state, CardState::kDown);
  EXPECT_EQ(v.engine.headline, "Part of the cluster is not answering");
  EXPECT_NE(v.engine.detail.find("Partition 2 (2 tenants): no node runs it now."), std::string::npos)
      << v.engine.detail;
  EXPECT_FALSE(v.all_well);
}

// A tenant's key reads the merge of its own tenant: its systems, its
// conflicts counted apart from those of the partition's other tenants
// (also from an older build's status, which does not count them apart).
TEST(ClusterStatusTest, ATenantsMergeCountsItsOwnSystemsAndConflictsAlone) {
  PartitionStatus a;
  ConnectorSnapshot down = Ghl("t2");
  down.breaker_open = true;
  down.reopens_at_us = kNow + kMin;
  a.connectors = {Ghl("acme"), down};
  a.engine.log_state = "writable";
  for (int i = 0; i < 25; ++i) a.attention.push_back({"t2", "c-t2", "theirs", kNow - i});
  a.attention.push_back({"acme", "c-acme", "ours", kNow - kMin});
  a.attention_total = 31;
  a.attention_by_tenant = {{"t2", 30}, {"acme", 1}};
  PartitionStatus t2_only;  // a partition of t2's whose disk is full
  t2_only.engine.log_state = "unavailable";
  t2_only.engine.log_detail = "disk full";
  t2_only.engine.router_behind = 5000;
  std::vector<PartitionAnswer> answers = {{0, 2, "node0", EncodePartitionStatus(a)},
                                          {1, 1, "", ""},
                                          {2, 1, "node1", EncodePartitionStatus(t2_only)}};
  auto merge = [&](const std::string& tenant, std::vector<PartitionAnswer> in) {
    std::vector<ConnectorSnapshot> connectors;
    EngineSnapshot engine;
    std::vector<AttentionItem> attention;
    uint64_t total = 0;
    // Partitions 1 and 2 hold t2 alone: counted as ClusterStatus counts
    // them for a reader of acme's.
    in[1].tenants = in[2].tenants = tenant == "acme" ? 0 : 1;
    MergePartitionStatuses(in, &connectors, &engine, &attention, &total, tenant);
    return BuildStatusView(connectors, engine, attention, total, kNow);
  };
  StatusView acme = merge("acme", answers);
  ASSERT_EQ(acme.cards.size(), 1u);
  EXPECT_EQ(acme.cards[0].tenant, "acme");
  ASSERT_EQ(acme.attention.size(), 1u) << "its conflict, older than the others' newest 20";
  EXPECT_EQ(acme.attention[0].contact_id, "c-acme");
  EXPECT_EQ(acme.attention_total, 1u);
  EXPECT_EQ(acme.summary, "All systems working; 1 consent conflict waits for a person");
  EXPECT_EQ(acme.engine.state, CardState::kWorking)
      << "another tenant's partitions: " << acme.engine.detail;
  StatusView every = merge("*", answers);
  EXPECT_EQ(every.attention_total, 31u);
  EXPECT_EQ(every.attention.size(), 20u);
  EXPECT_EQ(every.summary, "2 systems need attention; 31 consent conflicts wait for a person");
  EXPECT_EQ(every.engine.state, CardState::kDown);

  std::string old = EncodePartitionStatus(a);
  const size_t at = old.find(",\"attention_by_tenant\":");
  ASSERT_NE(at, std::string::npos);
  old.erase(at, old.find('}', at) + 1 - at);
  answers[0].status = old;
  EXPECT_EQ(merge("acme", answers).attention_total, 1u) << old;
  EXPECT_EQ(merge("t2", answers).attention_total, 25u) << "an older build's: its items counted";
}

// A partition's status holds at most kMostAttentionItems conflicts, shared
// among its tenants: with many tenants each keeps fewer, but every one
// keeps its newest (a key of the last tenant is not shown an empty list).
TEST(ClusterStatusTest, EveryTenantKeepsItsShareOfAPartitionsConflicts) {
  MemoryEventLog log;
  std::vector<StateOp> ops;
  std::vector<std::string> tenants;
  for (int t = 0; t < 30; ++t) {
    tenants.push_back("t" + std::to_string(t));
    for (int i = 0; i < 25; ++i)
      ops.push_back(StateOp{"c/" + tenants.back() + "/" + std::to_string(1000 + i),
                            R"({"contact_id":"c)" + std::to_string(i) + R"(","at_us":)" +
                                std::to_string(t * 100 + i) + "}",
                            false});
  }
  ASSERT_TRUE(log.CommitConsumerDurable("opt_outs", 1, ops).ok());
  std::vector<AttentionItem> items;
  uint64_t total = 0;
  std::map<std::string, uint64_t> by_tenant;
  CollectAttention(log, tenants, &items, &total, &by_tenant);
  EXPECT_EQ(total, 750u);
  EXPECT_LE(items.size(), kMostAttentionItems);
  std::map<std::string, int> kept;
  for (const auto& a : items) kept[a.tenant]++;
  EXPECT_EQ(kept.size(), 30u) << "every tenant keeps some";
  EXPECT_EQ(kept["t29"], 16) << "500 / 30, the newest";
  EXPECT_EQ(by_tenant["t29"], 25u);
  EXPECT_EQ(items.front().at_us, 29 * 100 + 24) << "newest first";
}

TEST(ClusterStatusTest, HealthSaysOfEachSystemWhatASingleNodeSays) {
  ConnectorSnapshot c = Ghl("acme");
  EXPECT_STREQ(ServiceState(c, kNow), "connected");
  c.breaker_open = true;
  c.reopens_at_us = kNow + kMin;
  EXPECT_STREQ(ServiceState(c, kNow), "down");
  EXPECT_STREQ(ServiceState(c, kNow + 2 * kMin), "degraded") << "half-open: one trial may go";
  c.breaker_open = false;
  c.auth_failing = true;
  EXPECT_STREQ(ServiceState(c, kNow), "down");
  c.auth_failing = false;
  c.oldest_opt_out_us = kNow - 2 * kMin;
  EXPECT_STREQ(ServiceState(c, kNow), "degraded") << "an opt-out waiting over a minute";
}

TEST(StatusViewTest, EachStateInPlainWords) {
  ConnectorSnapshot c = Snapshot();
  ServiceCard card = DescribeConnector(c, kNow);
  EXPECT_EQ(card.state, CardState::kWorking);
  EXPECT_EQ(card.headline, "Working");
  EXPECT_NE(card.last_success.find("3 minutes ago"), std::string::npos) << card.last_success;

  c.breaker_open = true;
  c.down_since_us = kNow - 20 * kMin;
  c.held = 7;
  card = DescribeConnector(c, kNow);
  EXPECT_EQ(card.state, CardState::kDown);
  EXPECT_EQ(card.headline, "Down since " + ClockTime(kNow - 20 * kMin, kNow) + ", retrying");
  EXPECT_NE(card.detail.find("7 changes wait"), std::string::npos) << card.detail;

  c.auth_failing = true;
  card = DescribeConnector(c, kNow);
  EXPECT_EQ(card.state, CardState::kAttention);
  EXPECT_EQ(card.headline, "Needs attention: credentials rejected");

  c = Snapshot();
  c.failed_recent = 2;
  c.failed_hour = 2;
  c.last_failure_us = kNow - kMin;
  card = DescribeConnector(c, kNow);
  EXPECT_EQ(card.state, CardState::kSlow) << "its last attempt failed";
  EXPECT_NE(card.detail.find("2 requests"), std::string::npos) << card.detail;
  c.last_success_us = kNow;
  card = DescribeConnector(c, kNow);
  EXPECT_EQ(card.state, CardState::kWorking) << "it answers again";
  EXPECT_NE(card.detail.find("2 requests failed in the last hour"), std::string::npos) << card.detail;
  c = Snapshot();
  c.last_answer_us = kSlowAnswerUs;
  EXPECT_EQ(DescribeConnector(c, kNow).state, CardState::kSlow);
  c = Snapshot();
  c.oldest_opt_out_us = kNow - 2 * kMin;
  EXPECT_EQ(DescribeConnector(c, kNow).state, CardState::kSlow);
  c = Snapshot();
  c.ok_hour = 0;
  c.last_success_us = 0;
  card = DescribeConnector(c, kNow);
  EXPECT_EQ(card.state, CardState::kIdle);
  EXPECT_EQ(card.last_success, "none since the service started");
  c.dead_letters = 3;
  EXPECT_NE(DescribeConnector(c, kNow).detail.find("3 changes were given up"), std::string::npos);
}

TEST(StatusViewTest, WhatAClientNoticesIsOnItsCard) {
  ConnectorSnapshot c = Snapshot();
  c.name = "HaloPSA";
  c.notice = "HaloPSA holds 2 Clients for \"Umbrella Labs\" (ids 12, 15): new users go to 12.";
  EXPECT_NE(DescribeConnector(c, kNow).detail.find("(ids 12, 15): new users go to 12."), std::string::npos);
}

TEST(StatusViewTest, AnEnrichmentsSpentBudgetSaysItsLookupsWaitForTomorrow) {
  ConnectorSnapshot c = Snapshot();
  c.name = "Apollo";
  c.credit_budget = 100;
  c.credits_today = 100;
  c.held = 3;
  ServiceCard card = DescribeConnector(c, kNow);
  EXPECT_EQ(card.state, CardState::kSlow);
  EXPECT_EQ(card.headline, "Waiting: today's credit budget is spent");
  EXPECT_NE(card.detail.find("100 of the 100 credits"), std::string::npos) << card.detail;
  EXPECT_NE(card.detail.find("3 lookups wait"), std::string::npos) << card.detail;
  c.held = 0;
  EXPECT_EQ(DescribeConnector(c, kNow).headline, "Working") << "nothing waits: nothing to say";
}

TEST(StatusViewTest, TheSummaryCountsWhatNeedsAttention) {
  EngineSnapshot engine;
  engine.log_state = "writable";
  StatusView v = BuildStatusView({Snapshot()}, engine, {}, 0, kNow);
  EXPECT_TRUE(v.all_well);
  EXPECT_EQ(v.summary, "All systems working");
  ConnectorSnapshot down = Snapshot();
  down.breaker_open = true;
  engine.log_state = "low_disk";
  v = BuildStatusView({Snapshot(), down}, engine, {{"default", "c1", "x", kNow}}, 1, kNow);
  EXPECT_FALSE(v.all_well);
  EXPECT_EQ(v.summary, "2 systems need attention; 1 consent conflict waits for a person");
  EXPECT_EQ(v.engine.headline, "Needs attention: disk nearly full");
  engine.log_state = "writable";
  engine.router_behind = 5000;
  EXPECT_EQ(BuildStatusView({}, engine, {}, 0, kNow).engine.state, CardState::kSlow);
}

TEST(StatusViewTest, TimesInWords) {
  EXPECT_EQ(TimeAgo(kNow - 30 * 1000000, kNow), "just now");
  EXPECT_EQ(TimeAgo(kNow - kMin, kNow), "1 minute ago");
  EXPECT_EQ(TimeAgo(kNow - 130 * kMin, kNow), "2 hours ago");
  EXPECT_EQ(TimeAgo(kNow - 3 * 1440 * kMin, kNow), "3 days ago");
  EXPECT_EQ(ClockTime(kNow, kNow).size(), std::string("14:02 UTC").size());
  EXPECT_NE(ClockTime(kNow - 2 * 1440 * kMin, kNow).find(' '), 2u) << "another day names it";
}

TEST(StatusPageTest, EverythingShownIsEscapedAndTheScriptCarriesTheNonce) {
  PageModel m;
  m.view = BuildStatusView({Snapshot()}, Writable(), {}, 0, kNow);
  m.view.cards[0].name = "<script>alert(1)</script>";
  m.nonce = "n0nce";
  ContactStory s;
  s.tenant = "default";
  s.contact_id = "c1";
  s.name = "Bobby \"Tables\" <b>";
  s.it_report = "System: x</textarea><script>";
  m.searched = true;
  m.signed_in = true;
  m.stories.push_back(s);
  const std::string h = RenderStatusPage(m);
  EXPECT_EQ(h.find("<script>alert"), std::string::npos);
  EXPECT_NE(h.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(h.find("Bobby &quot;Tables&quot; &lt;b&gt;"), std::string::npos);
  EXPECT_EQ(h.find("x</textarea>"), std::string::npos);
  EXPECT_NE(h.find("<script nonce=\"n0nce\">"), std::string::npos);
  EXPECT_NE(h.find("http-equiv=\"refresh\" content=\"30\""), std::string::npos);
  m.refresh_s = 0;
  EXPECT_EQ(RenderStatusPage(m).find("http-equiv=\"refresh\""), std::string::npos);
}

TEST(StatusPageTest, SearchNeedsSignInWhenAnonymousSearchIsOff) {
  PageModel m;
  m.view = BuildStatusView({}, Writable(), {}, 0, kNow);
  m.search_allowed = false;
  const std::string h = RenderStatusPage(m);
  EXPECT_EQ(h.find("name=\"q\""), std::string::npos);
  EXPECT_NE(h.find("Sign in with a viewer key to search"), std::string::npos);
}

// Every route the console answers is in the OpenAPI document, and every
// operation the document names is a route.
TEST(OpenApiTest, TheDocumentListsExactlyTheRoutes) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(OpenApiDocument()).get(doc), simdjson::SUCCESS);
  std::string_view version;
  ASSERT_EQ(doc["openapi"].get(version), simdjson::SUCCESS);
  EXPECT_EQ(version, "3.1.0");
  simdjson::dom::object paths;
  ASSERT_EQ(doc["paths"].get(paths), simdjson::SUCCESS);
  std::set<std::string> documented;
  for (auto [path, item] : paths) {
    simdjson::dom::object ops;
    ASSERT_EQ(item.get(ops), simdjson::SUCCESS);
    for (auto [method, op] : ops) {
      std::string m(method);
      for (auto& c : m) c = static_cast<char>(toupper(c));
      documented.insert(m + " " + std::string(path));
    }
  }
  const std::set<std::string> routes(ConsoleRoutes().begin(), ConsoleRoutes().end());
  EXPECT_EQ(documented, routes);
}

}  // namespace
}  // namespace dfm
