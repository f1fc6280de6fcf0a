// Issue 47: one configuration schema drives parsing, DFM_* variables,
// check/show, reloads, the production template and the reference.
#include "config/schema.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <set>

#include "config/config.h"
#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

std::string ReadSource(const std::string& rel) {
  std::ifstream in(std::string(DFM_SOURCE_DIR) + "/" + rel, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::map<std::string, std::string> Described(const Config& c) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : c.Describe()) out[k] = v;
  return out;
}

// What the problems say about `key`, joined.
std::string Said(const std::vector<ConfigProblem>& problems, const std::string& key) {
  std::string out;
  for (const auto& p : problems) out += p.key == key ? p.message + "; " : "";
  return out;
}

TEST(ConfigSchema, EveryKeyIsDeclaredOnceWithADocAndAGoodDefault) {
  std::set<std::string> seen;
  for (const auto& k : AllKeys({"default", "acme"})) {
    EXPECT_TRUE(seen.insert(k.key).second) << k.key << " twice";
    EXPECT_FALSE(k.doc.empty()) << k.key << " has no doc";
    EXPECT_EQ(k.doc.find('\n'), std::string::npos) << k.key << ": one line";
    KeyValue v;
    EXPECT_EQ(ReadValue(k, k.default_value, &v), "") << k.key << "'s default";
    if (!k.production.empty()) {
      EXPECT_EQ(ReadValue(k, k.production, &v), "") << k.key << "'s production";
    }
  }
  for (const auto& k : GlobalKeys()) EXPECT_TRUE(k.set) << k.key << " goes nowhere";
  EXPECT_TRUE(seen.count("tenants.acme.ghl.access_token"));
  EXPECT_TRUE(seen.count("tenants.acme.roles.sender"));
}

TEST(ConfigSchema, TypesAreCheckedForEveryKeyOfTheirType) {
  for (const auto& k : GlobalKeys()) {
    std::string bad;
    if (k.type == KeyType::kWholeNumber) bad = std::to_string(k.min - 1);
    if (k.type == KeyType::kBool) bad = "maybe";
    if (k.type == KeyType::kListen) bad = "nowhere";
    if (k.type == KeyType::kChoice) bad = "none-of-these";
    if (bad.empty()) continue;
    std::vector<ConfigProblem> problems;
    Config::Load("", {{Config::EnvName(k.key), bad}}, &problems);
    EXPECT_NE(Said(problems, k.key).find("must"), std::string::npos) << k.key << " = " << bad << " taken";
  }
  std::vector<ConfigProblem> problems;
  Config::Load("", {{"DFM_SERVER_THREADS", "65"}, {"DFM_LOG_LEVEL", "loud"}}, &problems);
  EXPECT_EQ(Said(problems, "server.threads"), "must be a whole number from 1 to 64; ");
  EXPECT_EQ(Said(problems, "log.level"), "must be one of trace, debug, info, warn, error, critical, off; ");
}

// Each global key's variable reaches the value Config reads.
TEST(ConfigSchema, EveryGlobalKeyIsReadFromItsVariable) {
  for (const auto& k : GlobalKeys()) {
    const std::string want = !k.production.empty() ? k.production : k.default_value;
    if (want.empty() || k.secret) continue;
    std::vector<ConfigProblem> problems;
    Config c = Config::Load("", {{Config::EnvName(k.key), want}}, &problems);
    for (const auto& p : problems) EXPECT_FALSE(p.error) << k.key << ": " << p.message;
    EXPECT_EQ(Described(c)[k.key], want) << k.key;
  }
  std::vector<ConfigProblem> problems;
  Config c = Config::Load("", {{"DFM_SERVER_THREADS", "7"},
                               {"DFM_CLUSTER_NATS_URLS", "nats://a:4222, tls://b:4222"},
                               {"DFM_SYNC_EMAIL_PLUS_ADDRESSING", "same"},
                               {"DFM_SERVER_PUBLIC_BASE_URL", "https://h.example/dfm/"}},
                          &problems);
  EXPECT_EQ(c.server().threads, 7);
  EXPECT_EQ(c.cluster().nats_urls, (std::vector<std::string>{"nats://a:4222", "tls://b:4222"}));
  EXPECT_TRUE(c.sync().fold_plus_addressing);
  EXPECT_EQ(c.server().public_base_url, "https://h.example/dfm");
}

TEST(ConfigSchema, SecretsAreNeverShown) {
  std::vector<ConfigProblem> problems;
  Config c = Config::Load("", {{"DFM_ALERTS_PASSWORD", "hunter2-hunter2"},
                               {"DFM_VERITY_WEBHOOK_SECRET", "s3cret-s3cret-s3cret"}},
                          &problems);
  auto shown = Described(c);
  EXPECT_EQ(shown["alerts.password"], "<set>");
  EXPECT_EQ(shown["verity.webhook_secret"], "<set>");
  for (const auto& [k, v] : shown) EXPECT_EQ(v.find("s3cret"), std::string::npos) << k;
  EXPECT_EQ(ProductionTemplate().find("password ="), std::string::npos);
}

TEST(ConfigSchema, OnlyRestartKeysRefuseAReload) {
  std::vector<ConfigProblem> problems;
  const Config was = Config::Load("", {}, &problems);
  const Config threads = Config::Load("", {{"DFM_SERVER_THREADS", "3"}}, &problems);
  const Config echo = Config::Load("", {{"DFM_SYNC_ECHO_WINDOW_S", "60"}}, &problems);
  const Config daily = Config::Load("", {{"DFM_RECONCILE_DAILY_AT", "04:30"}}, &problems);
  const Config vendor = Config::Load("", {{"DFM_GHL_RATE_LIMIT", "50"}}, &problems);
  EXPECT_EQ(RestartOnlyChange(was, threads), "server.threads");
  EXPECT_EQ(RestartOnlyChange(was, echo), "");
  EXPECT_EQ(RestartOnlyChange(was, daily), "");
  EXPECT_EQ(RestartOnlyChange(was, vendor), "");
  // A secret is shown as "<set>" whatever it is: one changed from one
  // value to another was taken for no change, the old one kept in use.
  const Config pass_a = Config::Load("", {{"DFM_ALERTS_PASSWORD", "a"}}, &problems);
  const Config pass_b = Config::Load("", {{"DFM_ALERTS_PASSWORD", "b"}}, &problems);
  EXPECT_EQ(RestartOnlyChange(pass_a, pass_b), "alerts.password");
  EXPECT_EQ(RestartOnlyChange(pass_a, pass_a), "");
  EXPECT_EQ(ApplyOf("cluster.enabled"), KeyEffect::kRestart);
  EXPECT_EQ(ApplyOf("tenants.acme.verity.webhook_secret"), KeyEffect::kReload);
  // Read once, when the sync starts (its phone normalizer, its contacts'
  // idle limit): a reload that changed them was taken and did nothing.
  const Config region = Config::Load("", {{"DFM_SYNC_DEFAULT_REGION", "GB"}}, &problems);
  const Config idle = Config::Load("", {{"DFM_SYNC_CONTACT_IDLE_S", "60"}}, &problems);
  EXPECT_EQ(RestartOnlyChange(was, region), "sync.default_region");
  EXPECT_EQ(RestartOnlyChange(was, idle), "sync.contact_idle_s");
}

// The checked-in copies are what the schema makes: edit config/schema.cc
// (or a connector's settings), then run the commands the messages give.
TEST(ConfigSchema, TheReferenceInDocsIsGenerated) {
  const std::string doc = ReadSource("docs/configuration.md");
  ASSERT_NE(doc.find(kReferenceBegin), std::string::npos);
  EXPECT_EQ(WithGeneratedReference(doc, ReferenceMarkdown()), doc)
      << "run: dfm config reference --update docs/configuration.md";
  for (const auto& k : AllKeys({"default"}))
    EXPECT_NE(doc.find("`" + k.key + "`"), std::string::npos) << k.key << " not in the reference";
}

TEST(ConfigSchema, ThePackagedTemplateIsGenerated) {
  EXPECT_EQ(ReadSource("packaging/dfm.toml"), ProductionTemplate())
      << "run: dfm config template > packaging/dfm.toml";
}

TEST(ConfigSchema, TheGeneratedPartIsReplacedAlone) {
  const std::string doc = std::string("intro\n") + kReferenceBegin + "\nold\n" + kReferenceEnd + "\noutro\n";
  EXPECT_EQ(WithGeneratedReference(doc, "new\n"), "intro\nnew\noutro\n");
  EXPECT_EQ(WithGeneratedReference("no markers\n", "new\n"), "no markers\n");
}

TEST(ConfigSchema, TheTemplateLoadsWithItsProductionValues) {
  testing::TempDir d;
  const std::string path = d.path() + "/dfm.toml";
  std::ofstream(path) << ProductionTemplate();
  std::vector<ConfigProblem> problems;
  Config c = Config::Load(path, {}, &problems);
  for (const auto& p : problems) EXPECT_FALSE(p.error) << p.key << ": " << p.message;
  auto shown = Described(c);
  for (const auto& k : GlobalKeys()) {
    const std::string want = !k.production.empty() ? k.production : k.default_value;
    if (k.type == KeyType::kList) continue;  // read back joined by ','
    EXPECT_EQ(shown[k.key], want) << k.key;
  }
  EXPECT_EQ(c.data_dir(), "/var/lib/dfm");
  EXPECT_EQ(c.server().trusted_proxies, (std::vector<std::string>{"127.0.0.1", "::1"}));
}

}  // namespace
}  // namespace dfm
