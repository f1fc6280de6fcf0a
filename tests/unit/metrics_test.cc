// GET /metrics' pure parts: the text format, the front's webhook counts and
// the status board's families.
#include <gtest/gtest.h>

#include "actors/status_board.h"
#include "http/front_metrics.h"
#include "util/metrics.h"

namespace dfm {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(MetricsText, FamiliesAndEscapedLabels) {
  MetricsText t;
  t.Family("dfm_things_total", "counter", "Things.\nCounted \\ once.")
      .Sample({{"tenant", "a\"b"}, {"system", "x\\y\nz"}}, 3)
      .Sample({}, 0.25);
  const std::string s = t.Finish();
  EXPECT_TRUE(Has(s, "# HELP dfm_things_total Things.\\nCounted \\\\ once.")) << s;
  EXPECT_TRUE(Has(s, "# TYPE dfm_things_total counter")) << s;
  EXPECT_TRUE(Has(s, "dfm_things_total{tenant=\"a\\\"b\",system=\"x\\\\y\\nz\"} 3")) << s;
  EXPECT_TRUE(Has(s, "dfm_things_total 0.25")) << s;
}

TEST(MetricsText, HistogramIsCumulativeWithInfSumAndCount) {
  Histogram h({1000, 10000});
  h.Observe(500);
  h.Observe(1000);  // on a bound: in that bucket (le)
  h.Observe(5000);
  h.Observe(20000);
  MetricsText t;
  t.Family("dfm_x_seconds", "histogram", "X.").Histo({{"system", "ghl"}}, h.Read(), 1e-6);
  const std::string s = t.Finish();
  EXPECT_TRUE(Has(s, "dfm_x_seconds_bucket{system=\"ghl\",le=\"0.001\"} 2")) << s;
  EXPECT_TRUE(Has(s, "dfm_x_seconds_bucket{system=\"ghl\",le=\"0.01\"} 3")) << s;
  EXPECT_TRUE(Has(s, "dfm_x_seconds_bucket{system=\"ghl\",le=\"+Inf\"} 4")) << s;
  EXPECT_TRUE(Has(s, "dfm_x_seconds_sum{system=\"ghl\"} 0.0265")) << s;
  EXPECT_TRUE(Has(s, "dfm_x_seconds_count{system=\"ghl\"} 4")) << s;
}

TEST(MetricsText, Values) {
  EXPECT_EQ(FormatMetricValue(12), "12");
  EXPECT_EQ(FormatMetricValue(1e15), "1000000000000000");
  EXPECT_EQ(FormatMetricValue(0.5), "0.5");
  EXPECT_EQ(FormatMetricValue(1.0 / 0.0), "+Inf");
}

TEST(FrontMetrics, ARouteFoundOnceIsCountedByIndex) {
  static_assert(WebhookOutcome("accepted") == 0);
  static_assert(WebhookOutcome("no such outcome") == kWebhookOutcomes.size() - 1);
  FrontMetrics m({{"default", "ghl"}, {"acme", "verity"}});
  const FrontMetrics::Route acme = m.RouteOf("acme", "verity");
  EXPECT_EQ(acme, m.RouteOf("/t/acme/webhooks/verity"));
  EXPECT_EQ(m.RouteOf("acme", "ghl"), m.RouteOf("/nowhere"));  // both the unrouted row
  m.Count(acme, WebhookOutcome("duplicate"));
  MetricsText t;
  m.Write(&t);
  EXPECT_TRUE(Has(t.Finish(),
                  "dfm_webhooks_total{tenant=\"acme\",system=\"verity\",outcome=\"duplicate\"} 1"));
}

TEST(FrontMetrics, CountsOnlyConfiguredRoutesAsLabels) {
  FrontMetrics m({{"default", "ghl"}, {"acme", "verity"}});
  m.CountWebhook("/webhooks/ghl", "accepted");
  m.CountWebhook("/webhooks/ghl", "accepted");
  m.CountWebhook("/t/acme/webhooks/verity", "unauthorized");
  m.CountWebhook("/t/acme/webhooks/verity", "something_new");
  m.CountWebhook("/t/evil-tenant-0123/webhooks/ghl", "not_found");
  m.CountWebhook("/wp-admin/x", "not_found");
  MetricsText t;
  m.Write(&t);
  const std::string s = t.Finish();
  EXPECT_TRUE(Has(s, "dfm_webhooks_total{tenant=\"default\",system=\"ghl\",outcome=\"accepted\"} 2"));
  EXPECT_TRUE(Has(s, "dfm_webhooks_total{tenant=\"default\",system=\"ghl\",outcome=\"duplicate\"} 0"));
  EXPECT_TRUE(Has(s, "dfm_webhooks_total{tenant=\"acme\",system=\"verity\",outcome=\"unauthorized\"} 1"));
  EXPECT_TRUE(Has(s, "dfm_webhooks_total{tenant=\"acme\",system=\"verity\",outcome=\"other\"} 1"));
  EXPECT_TRUE(Has(s, "dfm_webhooks_unrouted_total{outcome=\"not_found\"} 2")) << s;
  EXPECT_EQ(s.find("evil"), std::string::npos);
  EXPECT_EQ(s.find("wp-admin"), std::string::npos);
}

TEST(SyncMetrics, ConnectorFamilies) {
  SyncStatusBoard board;
  board.sync_enabled = true;
  board.router.decided.store(90);
  board.router.contacts_live.store(7);
  auto c = std::make_shared<ConnectorStatus>();
  c->tenant = "default";
  c->system = "aloware";
  c->held.store(3);
  c->breaker_open.store(true);
  c->by_op[MetricPushOp("opt_out")].succeeded.store(2);
  c->by_op[MetricPushOp("no_such_op")].dead_lettered.store(1);
  c->opt_out_propagation.Observe(1500000);
  c->oldest_opt_out_us.store(100 * 1000000);
  board.connectors.push_back(c);
  MetricsText t;
  SyncMetrics(board, 100, 175 * 1000000, &t);
  const std::string s = t.Finish();
  EXPECT_TRUE(Has(s, "dfm_router_lag_events 10")) << s;
  EXPECT_TRUE(Has(s, "dfm_contacts_live 7"));
  EXPECT_TRUE(Has(s, "dfm_connector_pushes_held{tenant=\"default\",system=\"aloware\"} 3"));
  EXPECT_TRUE(Has(s, "dfm_connector_breaker_open{tenant=\"default\",system=\"aloware\"} 1"));
  EXPECT_TRUE(Has(
      s, "dfm_pushes_total{tenant=\"default\",system=\"aloware\",op=\"opt_out\",outcome=\"succeeded\"} 2"));
  EXPECT_TRUE(Has(
      s, "dfm_pushes_total{tenant=\"default\",system=\"aloware\",op=\"other\",outcome=\"dead_lettered\"} 1"));
  EXPECT_TRUE(Has(
      s, "dfm_opt_out_propagation_seconds_bucket{tenant=\"default\",system=\"aloware\",le=\"2\"} 1"));
  EXPECT_TRUE(Has(s, "dfm_opt_out_oldest_undelivered_seconds{tenant=\"default\",system=\"aloware\"} 75"));
  // Never pushed: no last-success sample rather than a 1970 one.
  EXPECT_EQ(s.find("dfm_connector_last_success_timestamp_seconds{"), std::string::npos);
}

TEST(SyncMetrics, OffShowsOnlyThat) {
  SyncStatusBoard board;
  MetricsText t;
  SyncMetrics(board, 5, 0, &t);
  const std::string s = t.Finish();
  EXPECT_TRUE(Has(s, "dfm_sync_enabled 0"));
  EXPECT_EQ(s.find("dfm_router_lag_events"), std::string::npos);
}

}  // namespace
}  // namespace dfm

namespace dfm {
namespace {

TEST(SyncServices, ConnectedDegradedDown) {
  SyncStatusBoard board;
  board.sync_enabled = true;
  auto add = [&](const char* system) {
    auto c = std::make_shared<ConnectorStatus>();
    c->tenant = "default";
    c->system = system;
    board.connectors.push_back(c);
    return c;
  };
  const int64_t now = 1000 * 1000000LL;
  add("ghl");
  auto open = add("aloware");
  open->breaker_open.store(true);
  open->reopens_at_us.store(now + 5000000);
  auto half = add("verity");
  half->breaker_open.store(true);
  half->reopens_at_us.store(now - 1);
  auto auth = add("twilio");
  auth->auth_failing.store(true);
  auto late = add("halo");
  late->oldest_opt_out_us.store(now - 61 * 1000000LL);
  JsonObject out;
  SyncServices(board, now, &out);
  EXPECT_EQ(out.Finish(),
            R"({"default/ghl":"connected","default/aloware":"down","default/verity":"degraded",)"
            R"("default/twilio":"down","default/halo":"degraded"})");
}

}  // namespace
}  // namespace dfm

namespace dfm {
namespace {

TEST(MergeLabeled, EachFamilyOnceAndEverySampleNamedByItsPart) {
  MetricsText a, b;
  a.Family("dfm_sync_contacts_live", "gauge", "Contacts.").Sample({}, 3);
  a.Family("dfm_push_total", "counter", "Pushes.").Sample({{"system", "ghl"}}, 5);
  Histogram h({1, 10});
  h.Observe(3);
  a.Family("dfm_push_seconds", "histogram", "Push time.").Histo({{"system", "ghl"}}, h.Read(), 1e-6);
  b.Family("dfm_push_total", "counter", "Pushes.").Sample({{"system", "ghl"}}, 7);
  b.Family("dfm_sync_contacts_live", "gauge", "Contacts.").Sample({}, 4);
  const std::string merged = MergeLabeled("partition", {{"0", a.Finish()}, {"11", b.Finish()}});
  EXPECT_EQ(merged.find("# TYPE dfm_push_total counter"), merged.rfind("# TYPE dfm_push_total counter"));
  EXPECT_NE(merged.find("dfm_sync_contacts_live{partition=\"0\"} 3\n"), std::string::npos) << merged;
  EXPECT_NE(merged.find("dfm_sync_contacts_live{partition=\"11\"} 4\n"), std::string::npos) << merged;
  EXPECT_NE(merged.find("dfm_push_total{partition=\"0\",system=\"ghl\"} 5\n"), std::string::npos) << merged;
  EXPECT_NE(merged.find("dfm_push_total{partition=\"11\",system=\"ghl\"} 7\n"), std::string::npos) << merged;
  EXPECT_NE(merged.find("dfm_push_seconds_bucket{partition=\"0\",system=\"ghl\",le=\"+Inf\"} 1\n"),
            std::string::npos)
      << merged;
  // Both samples of a family follow its one TYPE line.
  const size_t type = merged.find("# TYPE dfm_sync_contacts_live");
  EXPECT_LT(type, merged.find("dfm_sync_contacts_live{partition=\"11\"}"));
  EXPECT_EQ(MergeLabeled("partition", {}), "");
}

}  // namespace
}  // namespace dfm
