// Operator alerts by email (docs/alerts.md): the exposition parser, the
// rules against etc/prometheus/alerts.yml, their evaluation over time,
// what is mailed when, and the mail's text. Pure: no SMTP server here
// (tests/integration/alerts_e2e_test.py has a real one).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>

#include "alerts/alerter.h"
#include "alerts/exposition.h"
#include "alerts/notifier.h"
#include "alerts/rules.h"
#include "alerts/smtp.h"

namespace dfm {
namespace {

constexpr int64_t kS = 1000000;

TEST(Exposition, ReadsSamplesAndSkipsTheRest) {
  auto s = ParseExposition(
      "# HELP dfm_x A thing.\n# TYPE dfm_x counter\n"
      "dfm_x{tenant=\"a\",system=\"ghl\"} 3\n"
      "dfm_y 2.5e3\n"
      "dfm_z{q=\"say \\\"hi\\\"\\\\n\"} 1\n"
      "dfm_h_bucket{le=\"+Inf\"} 7\n"
      "broken{tenant=\"a\" 1\n"
      "\n"
      "dfm_nan NaN\n");
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].name, "dfm_x");
  EXPECT_EQ(s[0].labels.at("system"), "ghl");
  EXPECT_EQ(s[0].value, 3);
  EXPECT_EQ(s[1].value, 2500);
  EXPECT_EQ(s[2].labels.at("q"), "say \"hi\"\\n");
  EXPECT_EQ(s[3].labels.at("le"), "+Inf");
}

int64_t Duration(const std::string& d) {
  const int64_t n = std::stoll(d.substr(0, d.size() - 1));
  return n * (d.back() == 'm' ? 60 : d.back() == 'h' ? 3600 : 1) * kS;
}

TEST(AlertRules, TheSameAsThePrometheusRules) {
  std::ifstream f(std::string(DFM_SOURCE_DIR) + "/etc/prometheus/alerts.yml");
  std::stringstream text;
  text << f.rdbuf();
  const std::string yml = text.str();
  // Each "- alert: Name" block: its text (the expression) and its "for:".
  std::map<std::string, std::pair<std::string, int64_t>> prom;
  std::string name;
  std::istringstream lines(yml);
  for (std::string line; std::getline(lines, line);) {
    const size_t a = line.find("- alert: ");
    if (a != std::string::npos) {
      name = line.substr(a + 9);
      prom[name] = {"", 0};
      continue;
    }
    if (name.empty()) continue;
    const size_t at = line.find("for: ");
    if (at != std::string::npos && line.find("expr") == std::string::npos)
      prom[name].second = Duration(line.substr(at + 5));
    else
      prom[name].first += line + "\n";
  }
  ASSERT_TRUE(prom.count("DfmDown"));
  prom.erase("DfmDown");  // a service cannot report itself down
  std::set<std::string> ours;
  for (const auto& r : BuiltinAlertRules()) {
    ours.insert(r.name);
    auto p = prom.find(r.name);
    ASSERT_NE(p, prom.end()) << r.name << " is not in alerts.yml";
    EXPECT_EQ(r.for_us, p->second.second) << r.name;
    EXPECT_NE(p->second.first.find(r.metric), std::string::npos) << r.name;
    std::ostringstream threshold;
    threshold << r.threshold;
    if (r.kind != AlertRule::Kind::kBelowMetric) {
      EXPECT_NE(p->second.first.find(threshold.str()), std::string::npos) << r.name << " " << threshold.str();
    }
  }
  for (const auto& [alert, _] : prom) EXPECT_TRUE(ours.count(alert)) << alert << " is not evaluated in the service";
}

std::vector<MetricSample> Refused(double n) {
  return {{"dfm_opt_outs_refused", {{"tenant", "default"}, {"system", "ghl"}}, n},
          {"dfm_pushes_total", {{"tenant", "default"}, {"system", "ghl"}, {"op", "upsert"}, {"outcome", "dead_lettered"}}, 9},
          {"dfm_opt_out_oldest_undelivered_seconds", {{"tenant", "default"}, {"system", "ghl"}}, 0}};
}

TEST(AlertEvaluator, ARefusedOptOutFiresAtOnceAndWhileItIsOpen) {
  AlertEvaluator e;
  EXPECT_TRUE(e.Evaluate(0, {}).empty());
  auto firing = e.Evaluate(15 * kS, Refused(1));
  ASSERT_EQ(firing.size(), 1u);
  EXPECT_EQ(firing[0].name, "DfmOptOutDeadLettered");
  EXPECT_EQ(firing[0].category, "compliance");
  EXPECT_EQ(firing[0].labels, (std::map<std::string, std::string>{{"system", "ghl"}, {"tenant", "default"}}));
  EXPECT_EQ(e.Evaluate(60 * 60 * kS, Refused(3)).size(), 1u) << "for as long as it is open";
  EXPECT_TRUE(e.Evaluate(61 * 60 * kS, Refused(0)).empty()) << "landed";
}

TEST(AlertEvaluator, ForDurationsAndGauges) {
  AlertEvaluator e;
  std::vector<MetricSample> open = {{"dfm_connector_breaker_open", {{"tenant", "t"}, {"system", "ghl"}}, 1},
                                    {"dfm_opt_out_oldest_undelivered_seconds", {{"tenant", "t"}, {"system", "ghl"}}, 61},
                                    {"dfm_storage_free_bytes", {}, 10},
                                    {"dfm_storage_min_free_bytes", {}, 100}};
  auto names = [](const std::vector<FiringAlert>& f) {
    std::set<std::string> n;
    for (const auto& a : f) n.insert(a.name);
    return n;
  };
  EXPECT_EQ(names(e.Evaluate(0, open)), (std::set<std::string>{"DfmOptOutNotDelivered", "DfmDiskLow"}));
  EXPECT_FALSE(names(e.Evaluate(4 * 60 * kS, open)).count("DfmBreakerOpen"));
  EXPECT_TRUE(names(e.Evaluate(5 * 60 * kS, open)).count("DfmBreakerOpen")) << "held 5 minutes";
  open[0].value = 0;
  EXPECT_FALSE(names(e.Evaluate(6 * 60 * kS, open)).count("DfmBreakerOpen"));
  open[0].value = 1;
  EXPECT_FALSE(names(e.Evaluate(7 * 60 * kS, open)).count("DfmBreakerOpen")) << "the wait starts again";
}

TEST(AlertEvaluator, AnAlertWhoseSamplesAreUnseenHoldsAsItWas) {
  AlertEvaluator e;
  const std::vector<MetricSample> open = {
      {"dfm_connector_breaker_open", {{"tenant", "t"}, {"system", "ghl"}}, 1}};
  bool moving = false;
  auto unseen = [&moving](const std::map<std::string, std::string>& labels) {
    return moving && labels.at("tenant") == "t";
  };
  EXPECT_TRUE(e.Evaluate(0, open, unseen).empty());
  moving = true;
  EXPECT_TRUE(e.Evaluate(4 * 60 * kS, {}, unseen).empty()) << "still waiting for its 5 minutes";
  auto firing = e.Evaluate(5 * 60 * kS, {}, unseen);
  ASSERT_EQ(firing.size(), 1u) << "its `for` time went on while its samples were unseen";
  EXPECT_EQ(firing[0].since_us, 0);
  EXPECT_EQ(firing[0].value, 1);
  moving = false;
  EXPECT_EQ(e.Evaluate(6 * 60 * kS, open, unseen).size(), 1u) << "seen again, still open";
  EXPECT_TRUE(e.Evaluate(7 * 60 * kS, {}, unseen).empty()) << "seen, and gone: resolved";
  moving = true;
  EXPECT_TRUE(e.Evaluate(8 * 60 * kS, {}, unseen).empty()) << "only what held is held";
}

TEST(AlertEvaluator, ErrorRatioOverFiveMinutes) {
  AlertEvaluator e;
  auto attempts = [](double ok, double failed) {
    return std::vector<MetricSample>{
        {"dfm_push_attempts_total", {{"tenant", "t"}, {"system", "ghl"}, {"outcome", "ok"}}, ok},
        {"dfm_push_attempts_total", {{"tenant", "t"}, {"system", "ghl"}, {"outcome", "failed"}}, failed}};
  };
  int64_t t = 0;
  std::vector<FiringAlert> f;
  for (int i = 0; i <= 40; ++i, t += 15 * kS) f = e.Evaluate(t, attempts(100.0 * i, 3.0 * i));
  ASSERT_EQ(f.size(), 1u) << "3% of requests fail for 10 minutes";
  EXPECT_EQ(f[0].name, "DfmSyncErrorRateWarning");
  EXPECT_NEAR(f[0].value, 3.0 / 103.0, 1e-9);
}

// An append refused because its idempotency key could not be looked up
// (storage damage) fires at once, and holds for the five minutes its
// increase is seen.
TEST(AlertEvaluator, AnUnreadableDeduplicationIndexFires) {
  AlertEvaluator e;
  auto refused = [](double n) {
    return std::vector<MetricSample>{{"dfm_event_log_index_refused_total", {}, n}};
  };
  EXPECT_TRUE(e.Evaluate(0, refused(0)).empty());
  auto f = e.Evaluate(15 * kS, refused(2));
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].name, "DfmEventLogIndexUnreadable");
  EXPECT_EQ(f[0].severity, "critical");
  EXPECT_EQ(e.Evaluate(4 * 60 * kS, refused(2)).size(), 1u) << "within the five minutes";
  EXPECT_TRUE(e.Evaluate(10 * 60 * kS, refused(2)).empty()) << "nothing refused since";
}

// A cluster node whose partition cannot append what it pulled restarts it
// every few seconds: restarts that go on for 10 minutes fire; one NATS
// blip's (every partition of the node at once) does not.
TEST(AlertEvaluator, APartitionRestartedOverAndOverFires) {
  auto restarts = [](double n) {
    return std::vector<MetricSample>{{"dfm_cluster_partition_restarts_total", {}, n}};
  };
  AlertEvaluator blip;
  for (int i = 0; i <= 80; ++i)  // 12 restarts at once, then none for 20 minutes
    EXPECT_TRUE(blip.Evaluate(i * 15 * kS, restarts(i == 0 ? 0 : 12)).empty()) << i;
  AlertEvaluator e;
  std::vector<FiringAlert> f;
  int64_t fired_at = -1;
  for (int i = 0; i <= 80 && fired_at < 0; ++i) {  // one restart every 2 s
    f = e.Evaluate(i * 15 * kS, restarts(7.5 * i));
    if (!f.empty()) fired_at = i * 15 * kS;
  }
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].name, "DfmClusterPartitionRestarting");
  EXPECT_EQ(f[0].severity, "critical");
  EXPECT_GE(fired_at, 10 * 60 * kS) << "after 10 minutes of restarts";
  EXPECT_LE(fired_at, 11 * 60 * kS);
}

// A partition skipped a webhook it can never read (cluster mode): one is
// enough, for 15 minutes.
TEST(AlertEvaluator, AWebhookLostByAPartitionFires) {
  auto lost = [](double n) {
    return std::vector<MetricSample>{{"dfm_cluster_ingest_lost_total", {{"partition", "1"}}, n}};
  };
  AlertEvaluator e;
  EXPECT_TRUE(e.Evaluate(0, lost(0)).empty());
  EXPECT_TRUE(e.Evaluate(60 * kS, lost(0)).empty());
  std::vector<FiringAlert> f = e.Evaluate(120 * kS, lost(1));
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].name, "DfmClusterWebhookLost");
  EXPECT_EQ(f[0].severity, "critical");
  EXPECT_EQ(e.Evaluate(10 * 60 * kS, lost(1)).size(), 1u) << "within the 15 minutes";
  EXPECT_TRUE(e.Evaluate(20 * 60 * kS, lost(1)).empty()) << "none lost since";
}

// A counter missing from one scrape (a node slow to answer) is not a new
// counter: when it comes back with the value it had, nothing increased.
// As Prometheus reads it, a series' first sample is where it starts (a
// node whose scrape comes late after a restart is no news).
TEST(AlertEvaluator, ACounterMissingFromOneScrapeHasNotIncreased) {
  auto lost = [](double n) {
    return std::vector<MetricSample>{{"dfm_cluster_ingest_lost_total", {{"partition", "1"}}, n}};
  };
  AlertEvaluator e;
  EXPECT_TRUE(e.Evaluate(0, {}).empty());
  EXPECT_TRUE(e.Evaluate(15 * kS, lost(1)).empty()) << "first seen: where it starts";
  for (int m = 1; m <= 20; ++m) EXPECT_TRUE(e.Evaluate(m * 60 * kS, lost(1)).empty()) << m;
  EXPECT_TRUE(e.Evaluate(21 * 60 * kS, {}).empty()) << "missing from this scrape";
  for (int m = 22; m <= 40; ++m)  // the gap is the oldest scrape of the window at 36
    EXPECT_TRUE(e.Evaluate(m * 60 * kS, lost(1)).empty())
        << "back as it was: none lost, minute " << m;
  auto f = e.Evaluate(40 * 60 * kS + 15 * kS, lost(2));
  ASSERT_EQ(f.size(), 1u) << "a webhook lost after the gap still fires";
  EXPECT_EQ(f[0].value, 1);
}

// In a cluster every node exports each partition's counter, its own count
// (the alerter takes the node label off, into the sample's source): one
// node's old loss, that node missing from a scrape, is no news; a loss on
// the partition's new node fires.
TEST(AlertEvaluator, EachNodesCounterOfAPartitionIsItsOwn) {
  auto lost = [](double n1, double n2, bool n2_seen = true) {
    std::vector<MetricSample> v = {
        {"dfm_cluster_ingest_lost_total", {{"partition", "1"}}, n1, "n1"}};
    if (n2_seen) v.push_back({"dfm_cluster_ingest_lost_total", {{"partition", "1"}}, n2, "n2"});
    return v;
  };
  AlertEvaluator e;
  for (int m = 0; m <= 20; ++m) EXPECT_TRUE(e.Evaluate(m * 60 * kS, lost(0, 1)).empty()) << m;
  EXPECT_TRUE(e.Evaluate(20 * 60 * kS + 15 * kS, lost(0, 0, false)).empty()) << "n2 missing";
  EXPECT_TRUE(e.Evaluate(20 * 60 * kS + 30 * kS, lost(0, 1)).empty()) << "n2 back as it was";
  auto f = e.Evaluate(20 * 60 * kS + 45 * kS, lost(1, 0, false));
  ASSERT_EQ(f.size(), 1u) << "one lost on n1, n2 unseen";
  EXPECT_EQ(f[0].value, 1);
}

// A series first seen in a scrape that held its source's samples before
// (a partition moved to a node that had been answering) is new: it counts
// from 0, and a loss made before its first scrape fires.
TEST(AlertEvaluator, ANewSeriesOfASourceSeenBeforeCountsFromZero) {
  AlertEvaluator e;
  std::vector<MetricSample> before = {
      {"dfm_cluster_ingest_lost_total", {{"partition", "1"}}, 0, "n2"}};
  EXPECT_TRUE(e.Evaluate(0, before).empty());
  std::vector<MetricSample> after = before;
  after.push_back({"dfm_event_log_index_refused_total", {{"partition", "2"}}, 40, "n2"});
  auto f = e.Evaluate(15 * kS, after);
  ASSERT_EQ(f.size(), 1u) << "partition 2 came to n2 refusing";
  EXPECT_EQ(f[0].name, "DfmEventLogIndexUnreadable");
  EXPECT_EQ(f[0].value, 40);
}

// A node restarting starts its counters again: a loss after it fires.
TEST(AlertEvaluator, ALossAfterARestartFires) {
  auto lost = [](double n) {
    return std::vector<MetricSample>{{"dfm_cluster_ingest_lost_total", {{"partition", "1"}}, n}};
  };
  AlertEvaluator e;
  for (int m = 0; m <= 20; ++m) e.Evaluate(m * 60 * kS, lost(3));
  EXPECT_TRUE(e.Evaluate(20 * 60 * kS + 15 * kS, lost(0)).empty()) << "restarted";
  auto f = e.Evaluate(20 * 60 * kS + 30 * kS, lost(1));
  ASSERT_EQ(f.size(), 1u) << "one lost since";
  EXPECT_EQ(f[0].value, 1);
}

FiringAlert Alert(const std::string& name, const std::string& system, const std::string& category = "") {
  FiringAlert a;
  a.name = name;
  a.severity = "critical";
  a.category = category;
  a.summary = "what it means";
  a.labels = {{"tenant", "default"}, {"system", system}};
  return a;
}

TEST(AlertNotifier, AnOutageIsOneMailNotThousands) {
  AlertNotifier n("dfm-1", 300 * kS, 4 * 3600 * kS);
  std::vector<FiringAlert> outage;
  for (const char* s : {"ghl", "aloware", "verity", "halopsa"}) {
    outage.push_back(Alert("DfmBreakerOpen", s));
    outage.push_back(Alert("DfmOptOutDeadLettered", s, "compliance"));
  }
  auto mail = n.Update(0, outage);
  ASSERT_TRUE(mail);
  EXPECT_EQ(mail->subject, "[dfm dfm-1] Opt-out not delivered: 8 alerts firing: DfmOptOutDeadLettered and more");
  EXPECT_EQ(mail->body.find("- DfmOptOutDeadLettered"), mail->body.find("- "))
      << "compliance leads";
  EXPECT_FALSE(n.Update(1 * kS, outage)) << "nothing until it is sent";
  n.Sent(1 * kS, true);
  for (int64_t t = 15; t < 3600; t += 15) EXPECT_FALSE(n.Update(t * kS, outage)) << t;
  outage.pop_back();  // one resolves
  EXPECT_TRUE(n.Update(3600 * kS, outage)) << "news";
  n.Sent(3600 * kS, true);
  outage.push_back(Alert("DfmDiskLow", ""));
  EXPECT_FALSE(n.Update(3700 * kS, outage)) << "within min_interval of the last mail";
  auto next = n.Update(3901 * kS, outage);
  ASSERT_TRUE(next);
  EXPECT_NE(next->body.find("DfmDiskLow (critical) firing"), std::string::npos);
  n.Sent(3901 * kS, true);
  auto repeat = n.Update(4 * 3600 * kS + 3700 * kS, outage);
  ASSERT_TRUE(repeat) << "still firing after repeat_us: said again";
  EXPECT_NE(repeat->body.find("still firing"), std::string::npos);
}

TEST(AlertNotifier, AMailThatFailsIsTriedAgainWithItsNews) {
  AlertNotifier n("s", 300 * kS, 4 * 3600 * kS);
  std::vector<FiringAlert> f = {Alert("DfmOptOutNotDelivered", "ghl", "compliance")};
  ASSERT_TRUE(n.Update(0, f));
  n.Sent(0, false);
  EXPECT_EQ(n.pending(), 1u);
  EXPECT_FALSE(n.Update(29 * kS, f)) << "backoff 30 s";
  auto again = n.Update(30 * kS, f);
  ASSERT_TRUE(again);
  EXPECT_NE(again->body.find("DfmOptOutNotDelivered (critical, compliance) firing"), std::string::npos);
  n.Sent(30 * kS, false);
  EXPECT_FALSE(n.Update(89 * kS, f)) << "60 s";
  ASSERT_TRUE(n.Update(90 * kS, {}));  // it resolved meanwhile: one mail says both
  n.Sent(90 * kS, true);
  EXPECT_EQ(n.pending(), 0u);
}

// A cluster: every node evaluates the same metrics (each node's
// last-sent gauge among them), the node holding partition 0 mails; the
// node that takes partition 0 over mails nothing already mailed (a moved
// partition's alert included), and mails what changes next.
class ClusterMailers {
 public:
  ClusterMailers() {
    settings_.smtp.url = "smtp://127.0.0.1:1";
    settings_.site = "c";
  }
  // A node named `name` that mails while *here; its sends succeed while
  // *smtp_up.
  Alerter* Node(const std::string& name, const bool* here, const bool* smtp_up) {
    auto a = std::make_unique<Alerter>(
        settings_, [this] { return Scrape(); }, [this] { return now; },
        [this, name, smtp_up](const SmtpSettings&, const AlertMail& m, int64_t) {
          if (!*smtp_up) return Status::IOError("cannot connect");
          mailed_by.push_back(name);
          bodies.push_back(m.body);
          return Status::OK();
        });
    a->SetCluster([here] { return *here; }, nullptr, name);
    nodes_.emplace_back(name, std::move(a));
    return nodes_.back().second.get();
  }
  void Kill(const std::string& name) {
    nodes_.erase(std::remove_if(nodes_.begin(), nodes_.end(),
                                [&](const auto& n) { return n.first == name; }),
                 nodes_.end());
  }

  std::string text;  // the partitions' samples
  int64_t now = 0;
  std::vector<std::string> mailed_by, bodies;

 private:
  std::string Scrape() const {  // what scope=cluster shows: every live node's gauge
    std::string out = text;
    for (const auto& [name, a] : nodes_)
      out += std::string(Alerter::kLastSentFamily) + "{node=\"" + name + "\"} " +
             std::to_string(a->last_mail_sent_us() / 1000000) + "\n";
    return out;
  }
  AlertSettings settings_;
  std::vector<std::pair<std::string, std::unique_ptr<Alerter>>> nodes_;
};

TEST(Alerter, InAClusterOneNodeMailsAndItsSuccessorNothingTwice) {
  ClusterMailers c;
  c.now = 1000 * kS;
  c.text = "dfm_opt_outs_refused{node=\"a\",partition=\"0\",system=\"ghl\",tenant=\"default\"} 1\n";
  bool a_here = true, b_here = false, up = true;
  Alerter* a = c.Node("a", &a_here, &up);
  Alerter* b = c.Node("b", &b_here, &up);
  a->Tick();
  b->Tick();
  EXPECT_EQ(c.mailed_by, std::vector<std::string>{"a"});
  EXPECT_EQ(a->mails_sent(), 1u);
  EXPECT_EQ(b->mails_sent(), 0u);
  EXPECT_EQ(b->mails_left_to_other_node(), 1u) << "a's gauge shows it sent";
  EXPECT_EQ(b->firing(), 1);
  // a dies; b takes partition 0, whose samples now come from b.
  c.Kill("a");
  b_here = true;
  c.text = "dfm_opt_outs_refused{node=\"b\",partition=\"0\",system=\"ghl\",tenant=\"default\"} 1\n";
  c.now += 600 * kS;
  b->Tick();
  EXPECT_EQ(c.mailed_by.size(), 1u) << "already mailed by a: the same alert on its new node";
  c.text.clear();  // it resolves: news, past min_interval
  c.now += 400 * kS;
  b->Tick();
  EXPECT_EQ(c.mailed_by, (std::vector<std::string>{"a", "b"}));
}

// The mailing node cannot send (its mail server unreachable from it) and
// dies: the node that takes its part over sends the news, once; its own
// earlier mail does not count as the mailing node's.
TEST(Alerter, AMailTheMailingNodeNeverSentIsSentByTheNextOne) {
  ClusterMailers c;
  c.now = 1000 * kS;
  bool a_here = false, b_here = true, a_up = true, b_up = false;
  Alerter* a = c.Node("a", &a_here, &a_up);
  Alerter* b = c.Node("b", &b_here, &b_up);
  c.text = "dfm_opt_outs_refused{node=\"a\",partition=\"1\",system=\"ghl\",tenant=\"t\"} 1\n";
  a_here = true, b_here = false;  // a mails first, then b holds partition 0
  a->Tick();
  b->Tick();
  ASSERT_EQ(c.mailed_by, std::vector<std::string>{"a"});
  EXPECT_EQ(b->mails_left_to_other_node(), 1u);
  a_here = false, b_here = true;
  c.text.clear();  // resolved: news for both
  c.now += 600 * kS;
  a->Tick();
  b->Tick();
  EXPECT_EQ(b->mails_failed(), 1u);
  EXPECT_EQ(a->mails_left_to_other_node(), 0u) << "b has not sent it; a's own mail is older";
  for (int i = 0; i < 4; ++i) {
    c.now += 60 * kS;
    a->Tick();
    b->Tick();
  }
  EXPECT_EQ(c.mailed_by.size(), 1u);
  EXPECT_EQ(a->mails_left_to_other_node(), 0u);
  c.Kill("b");
  a_here = true;
  c.now += 15 * kS;
  a->Tick();
  EXPECT_EQ(c.mailed_by.size(), 1u) << "a tick for another node's mail to show";
  c.now += 15 * kS;
  a->Tick();
  EXPECT_EQ(c.mailed_by.size(), 1u) << "and the scrapes' skew";
  c.now += 15 * kS;
  a->Tick();
  ASSERT_EQ(c.mailed_by, (std::vector<std::string>{"a", "a"}));
  EXPECT_NE(c.bodies[1].find("DfmOptOutDeadLettered"), std::string::npos) << c.bodies[1];
  EXPECT_NE(c.bodies[1].find("resolved"), std::string::npos) << c.bodies[1];
  c.now += 600 * kS;
  a->Tick();
  EXPECT_EQ(c.mailed_by.size(), 2u) << "sent once";
}

// The mailing node's server was down, then back: the others see it sent
// and keep nothing for the next node.
TEST(Alerter, AMailSentLateByTheMailingNodeIsNotSentAgain) {
  ClusterMailers c;
  c.now = 1000 * kS;
  bool a_here = true, b_here = false, a_up = false, b_up = true;
  Alerter* a = c.Node("a", &a_here, &a_up);
  Alerter* b = c.Node("b", &b_here, &b_up);
  c.text = "dfm_opt_outs_refused{node=\"a\",partition=\"0\",system=\"ghl\",tenant=\"t\"} 1\n";
  a->Tick();
  b->Tick();
  EXPECT_EQ(a->mails_failed(), 1u);
  EXPECT_EQ(b->mails_left_to_other_node(), 0u);
  a_up = true;
  for (int i = 0; i < 12 && c.mailed_by.empty(); ++i) {
    c.now += 15 * kS;
    a->Tick();
    b->Tick();
  }
  ASSERT_EQ(c.mailed_by, std::vector<std::string>{"a"}) << "a tries again after its backoff";
  c.now += 15 * kS;
  b->Tick();
  EXPECT_EQ(b->mails_left_to_other_node(), 1u);
  c.Kill("a");
  b_here = true;
  c.now += 15 * kS;
  b->Tick();
  EXPECT_EQ(c.mailed_by, std::vector<std::string>{"a"}) << "nothing twice";
}

// While no node runs a tenant's partition (its samples are gone from the
// cluster's scrape), the tenant's alerts hold: no "resolved" mail, and no
// second "firing" once the partition runs again.
TEST(Alerter, APartitionMovingIsNotAnAllClear) {
  const std::string open =
      "dfm_connector_breaker_open{node=\"a\",partition=\"0\",system=\"ghl\",tenant=\"t\"} 1\n"
      "dfm_event_log_appends_total{node=\"a\",partition=\"1\"} 7\n";
  const std::string moving =  // partition 0's samples gone; a's cluster gauges stay
      "dfm_cluster_partition_owned{node=\"b\",partition=\"0\"} 0\n"
      "dfm_event_log_appends_total{node=\"a\",partition=\"1\"} 7\n";
  std::string text = open;
  int64_t now = 0;
  AlertSettings settings;
  settings.smtp.url = "smtp://127.0.0.1:1";
  settings.site = "c";
  std::vector<std::string> subjects;
  Alerter a(
      settings, [&text] { return text; }, [&now] { return now; },
      [&subjects](const SmtpSettings&, const AlertMail& m, int64_t) {
        subjects.push_back(m.subject);
        return Status::OK();
      });
  a.SetCluster([] { return true; },
               [](const std::string& tenant) { return tenant == "t" ? 0u : 1u; });
  a.Tick();
  now += 5 * 60 * kS;
  a.Tick();
  ASSERT_EQ(subjects.size(), 1u) << "the breaker open for 5 minutes";
  text = moving;
  for (int i = 0; i < 4; ++i) {
    now += 10 * 60 * kS;
    a.Tick();
    EXPECT_EQ(a.firing(), 1);
  }
  text = open;
  now += 10 * 60 * kS;
  a.Tick();
  EXPECT_EQ(subjects.size(), 1u) << "no resolved and no firing again: " << subjects.back();
  text =  // closed, on its new node
      "dfm_connector_breaker_open{node=\"b\",partition=\"0\",system=\"ghl\",tenant=\"t\"} 0\n";
  now += 10 * 60 * kS;
  a.Tick();
  ASSERT_EQ(subjects.size(), 2u) << "closed on its new node: resolved";
  EXPECT_NE(subjects[1].find("resolved"), std::string::npos) << subjects[1];
  // A partition's own alert (no tenant: its router lagging) holds the same way.
  text = "dfm_router_lag_events{node=\"b\",partition=\"0\"} 1000000\n";
  for (int i = 0; i < 2; ++i) {
    now += 10 * 60 * kS;
    a.Tick();
  }
  const size_t mailed = subjects.size();
  EXPECT_EQ(a.firing(), 2) << "critical and warning";
  text = moving;
  now += 10 * 60 * kS;
  a.Tick();
  EXPECT_EQ(a.firing(), 2) << "partition 0 moving";
  EXPECT_EQ(subjects.size(), mailed);
}

TEST(AlertMailText, HeadersCannotBeInjectedAndLinesEndInCrlf) {
  SmtpSettings s;
  s.from = "dfm@example.com";
  s.to = {"ops@example.com", "oncall@example.com\r\nBcc: x@evil.example"};
  AlertMail m;
  m.subject = "subject\r\nBcc: y@evil.example";
  m.body = "line one\nline two\n";
  m.headers = {{"List-Unsubscribe", "<https://x/u>\r\nBcc: z@evil.example"}};
  const std::string text = FormatMail(s, m, 1763900000LL * kS, "id@example.com");
  EXPECT_EQ(text.find("\r\nBcc:"), std::string::npos) << "nor through an extra header";
  EXPECT_NE(text.find("Subject: subjectBcc: y@evil.example\r\n"), std::string::npos);
  EXPECT_NE(text.find("Date: Sun, 23 Nov 2025 12:13:20 +0000\r\n"), std::string::npos);
  EXPECT_NE(text.find("\r\n\r\nline one\r\nline two\r\n"), std::string::npos);
}

}  // namespace
}  // namespace dfm
