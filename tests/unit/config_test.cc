#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "app/config_init.h"
#include "config/config.h"
#include "connectors/common/mapper.h"
#include "sync/contact_model.h"
#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

std::string Write(const testing::TempDir& d, const std::string& text) {
  std::string p = d.Sub("c.toml");
  std::ofstream(p) << text;
  return p;
}

bool Has(const std::vector<ConfigProblem>& ps, const std::string& key, const std::string& part) {
  for (const auto& p : ps)
    if (p.key == key && p.message.find(part) != std::string::npos) return true;
  return false;
}

TEST(Config, DefaultsWithoutFile) {
  std::vector<ConfigProblem> problems;
  Config c = Config::Load("", {}, &problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(c.server().listen_port, 8080);
  EXPECT_EQ(c.data_dir(), "./data");
  EXPECT_EQ(c.min_free_bytes(), uint64_t{256} << 20);
  EXPECT_EQ(c.tenants(), std::vector<std::string>{"default"});
  EXPECT_TRUE(c.Systems("default").empty());
}

// The unit's credentials (docs/deploy.md): a file named like a DFM_*
// variable, or like one after "dfm_" (what the unit's
// LoadCredential=dfm:/etc/dfm/credentials makes of each file there), gives
// its value, less one final newline; the unprefixed one wins; a variable
// set in the environment wins, unless it is empty (dfm.env's placeholder
// uncommented).
TEST(Config, CredentialsGiveWhatTheEnvironmentDoesNotOrLeavesEmpty) {
  testing::TempDir d;
  auto write = [&](const std::string& name, const std::string& value) {
    std::ofstream(d.path() + "/" + name, std::ios::binary) << value;
  };
  write("DFM_VERITY_WEBHOOK_SECRET", "from-file\n");
  write("DFM_TWILIO_AUTH_TOKEN", "file-token\r\n");
  write("DFM_ALERTS_PASSWORD", "file-password");
  write("OTHER", "not ours");
  write("dfm_DFM_GHL_ACCESS_TOKEN", "from-directory\n");
  write("dfm_DFM_APOLLO_API_KEY", "directory-key");
  write("DFM_APOLLO_API_KEY", "drop-in-key");
  write("dfm_OTHER", "not ours either");
  ASSERT_EQ(setenv("CREDENTIALS_DIRECTORY", d.path().c_str(), 1), 0);
  ASSERT_EQ(setenv("DFM_TWILIO_AUTH_TOKEN", "", 1), 0);
  ASSERT_EQ(setenv("DFM_ALERTS_PASSWORD", "env-password", 1), 0);
  Config::Env env = Config::ProcessEnv();
  unsetenv("CREDENTIALS_DIRECTORY");
  unsetenv("DFM_TWILIO_AUTH_TOKEN");
  unsetenv("DFM_ALERTS_PASSWORD");
  EXPECT_EQ(env["DFM_VERITY_WEBHOOK_SECRET"], "from-file");
  EXPECT_EQ(env["DFM_TWILIO_AUTH_TOKEN"], "file-token") << "an empty variable does not hide it";
  EXPECT_EQ(env["DFM_ALERTS_PASSWORD"], "env-password") << "the environment wins";
  EXPECT_EQ(env.count("OTHER"), 0u);
  EXPECT_EQ(env["DFM_GHL_ACCESS_TOKEN"], "from-directory");
  EXPECT_EQ(env["DFM_APOLLO_API_KEY"], "drop-in-key");
  EXPECT_EQ(env.count("dfm_OTHER") + env.count("dfm_DFM_GHL_ACCESS_TOKEN"), 0u);
}

TEST(Config, AdminListenIsLoopbackByDefaultAndMustBeItsOwnAddress) {
  std::vector<ConfigProblem> problems;
  Config plain = Config::Load("", {}, &problems);
  EXPECT_TRUE(problems.empty());
  // Its own listener on loopback: the one the proxy exposes has no admin path.
  EXPECT_EQ(plain.server().admin_listen_host, "127.0.0.1");
  EXPECT_EQ(plain.server().admin_listen_port, 8081);
  Config main = Config::Load("", {{"DFM_SERVER_ADMIN_LISTEN", ""}}, &problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(main.server().admin_listen_port, 0);  // on the main listener, a loopback one
  Config::Load("", {{"DFM_SERVER_ADMIN_LISTEN", ""}, {"DFM_SERVER_LISTEN", "0.0.0.0:8080"}},
               &problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_FALSE(problems[0].error);
  EXPECT_NE(problems[0].message.find("which others can reach"), std::string::npos);
  problems.clear();
  Config sep = Config::Load("", {{"DFM_SERVER_ADMIN_LISTEN", "127.0.0.1:8081"}}, &problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(sep.server().admin_listen_host, "127.0.0.1");
  EXPECT_EQ(sep.server().admin_listen_port, 8081);
  // The problems of an admin listener beside a main one (empty `listen`:
  // the default, 127.0.0.1:8080).
  auto pair = [](const std::string& listen, const std::string& admin) {
    Config::Env env{{"DFM_SERVER_ADMIN_LISTEN", admin}};
    if (!listen.empty()) env["DFM_SERVER_LISTEN"] = listen;
    std::vector<ConfigProblem> ps;
    Config::Load("", env, &ps);
    return ps;
  };
  EXPECT_TRUE(Has(pair("", "127.0.0.1:8080"), "server.admin_listen", "must differ"));
  // The same port on an address the other one's wildcard covers would fail
  // at bind; config check says so first.
  EXPECT_TRUE(Has(pair("0.0.0.0:8080", "127.0.0.1:8080"), "server.admin_listen",
                  "0.0.0.0 takes every IPv4 address"));
  for (const char* v6_wildcard : {"[::]:8080", "[::0]:8080", "[0:0:0:0:0:0:0:0]:8080"}) {
    EXPECT_TRUE(Has(pair("", v6_wildcard), "server.admin_listen", "takes every address"))
        << v6_wildcard;
  }
  // One address spelt two ways, as RESTinio reads them.
  EXPECT_TRUE(Has(pair("", "localhost:8080"), "server.admin_listen", "the same address"));
  EXPECT_TRUE(Has(pair("", "[::ffff:127.0.0.1]:8080"), "server.admin_listen", "the same address"));
  EXPECT_TRUE(Has(pair("0.0.0.0:8080", "[::ffff:127.0.0.1]:8080"), "server.admin_listen",
                  "takes every IPv4 address"));
  EXPECT_TRUE(Has(pair("[::1]:8080", "[0:0:0:0:0:0:0:1]:8080"), "server.admin_listen",
                  "the same address"));
  // Two specific addresses may share a port, and the IPv4 wildcard leaves
  // IPv6 addresses alone.
  EXPECT_TRUE(pair("", "127.0.0.2:8080").empty());
  EXPECT_TRUE(pair("0.0.0.0:8080", "[::1]:8080").empty());
  EXPECT_TRUE(Has(pair("", "8081"), "server.admin_listen", "host:port"));
  EXPECT_TRUE(Has(pair("", "127.0.0.1:0"), "server.admin_listen", "port other than 0"));
}

TEST(Config, MinimumFreeSpaceIsMebibytesAndZeroTurnsTheCheckOff) {
  std::vector<ConfigProblem> problems;
  Config off = Config::Load("", {{"DFM_STORAGE_MIN_FREE_MB", "0"}}, &problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(off.min_free_bytes(), 0u);
  Config big = Config::Load("", {{"DFM_STORAGE_MIN_FREE_MB", "4096"}}, &problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(big.min_free_bytes(), uint64_t{4096} << 20);
  Config::Load("", {{"DFM_STORAGE_MIN_FREE_MB", "-1"}}, &problems);
  EXPECT_TRUE(Has(problems, "storage.min_free_mb", "whole number"));
}

TEST(Config, EnvironmentOverridesFileAndEnablesSystems) {
  testing::TempDir d;
  std::string p = Write(d, R"(
[server]
listen = "0.0.0.0:9000"
[verity]
webhook_secret = "from-file"
[tenants.acme.twilio]
auth_token = "t"
)");
  std::vector<ConfigProblem> problems;
  Config c = Config::Load(p,
                          {{"DFM_VERITY_WEBHOOK_SECRET", "from-env"},
                           {"DFM_SERVER_MAX_BODY_BYTES", "2048"},
                           {"DFM_SERVER_PUBLIC_BASE_URL", "https://hooks.example.com"},
                           {"DFM_TENANTS_ACME_ALOWARE_AUTH", "none"},
                           {"DFM_TENANTS_ACME_ALOWARE_ALLOW_UNAUTHENTICATED", "true"},
                           {"DFM_TENANTS", "beta"}},
                          &problems);
  EXPECT_TRUE(problems.empty()) << problems[0].key << ": " << problems[0].message;
  EXPECT_EQ(c.server().listen_host, "0.0.0.0");
  EXPECT_EQ(c.server().listen_port, 9000);
  EXPECT_EQ(c.server().max_body_bytes, 2048u);
  EXPECT_EQ(c.Systems("default").at("verity").at("webhook_secret"), "from-env");
  EXPECT_EQ(c.tenants(), (std::vector<std::string>{"default", "acme", "beta"}));
  EXPECT_EQ(c.Systems("acme").size(), 2u);  // twilio from the file, aloware from the env
  EXPECT_TRUE(c.Systems("beta").empty());
  for (const auto& [k, v] : c.Describe()) {
    if (k == "verity.webhook_secret") {
      EXPECT_EQ(v, "<set>");  // secrets never shown
    }
  }
  EXPECT_EQ(Config::EnvName("tenants.acme.verity.webhook_secret"),
            "DFM_TENANTS_ACME_VERITY_WEBHOOK_SECRET");
}

TEST(Config, ReportsEveryProblemWithItsKey) {
  testing::TempDir d;
  std::string p = Write(d, R"(
[server]
listen = "nowhere"
threads = "many"
public_base_url = "hooks.example.com"
colour = "blue"
[aloware]
auth = "basic"
[ghl]
ed25519_public_key = "not a pem"
[tenants."Bad Name"]
)");
  std::vector<ConfigProblem> problems;
  Config::Load(p, {{"DFM_VERITY_SECRET", "typo"}}, &problems);
  EXPECT_TRUE(Has(problems, "server.listen", "host:port"));
  EXPECT_TRUE(Has(problems, "server.threads", "whole number"));
  EXPECT_TRUE(Has(problems, "server.public_base_url", "http"));
  EXPECT_TRUE(Has(problems, "server.colour", "unknown key"));
  EXPECT_TRUE(Has(problems, "aloware.username", "required"));
  EXPECT_TRUE(Has(problems, "aloware.password", "required"));
  EXPECT_TRUE(Has(problems, "ghl.ed25519_public_key", "PEM"));
  EXPECT_TRUE(Has(problems, "tenants.Bad Name", "tenant name"));
  bool env_warning = false;
  for (const auto& pr : problems)
    if (pr.key == "DFM_VERITY_SECRET") env_warning = !pr.error;
  EXPECT_TRUE(env_warning);
  // The test suite's own variables are no one's typo.
  problems.clear();
  Config::Load("", {{"DFM_CRASH_KILLS", "100"}, {"DFM_KEEP_TEST_DIRS", "1"}}, &problems);
  EXPECT_TRUE(problems.empty());
}

TEST(Config, MergeOwnersAndAlowareEventNamesComeFromTheConfig) {
  std::vector<ConfigProblem> problems;
  Config defaults = Config::Load("", {}, &problems);
  ASSERT_TRUE(problems.empty());
  // Without a [sync.owners] table the policy is the built-in one.
  EXPECT_EQ(MergePolicyFrom(defaults.sync()).owner, BuiltinMergePolicy().owner);
  // Aloware's contact event names are its own setting now.
  Config alo = Config::Load("", {{"DFM_ALOWARE_AUTH", "bearer"}, {"DFM_ALOWARE_TOKEN", "t"}},
                            &problems);
  ASSERT_TRUE(problems.empty());
  EXPECT_EQ(SplitCommaList(alo.Systems("default").at("aloware").at("contact_events")).size(), 4u);

  testing::TempDir d;
  std::string p = Write(d, R"(
[sync]
echo_window_s = 30
aloware_contact_events = ["contact.created", "contact.updated"]
[sync.owners]
first_name = "aloware"
tags = ""
[aloware]
auth = "bearer"
token = "t"
)");
  Config c = Config::Load(p, {{"DFM_SYNC_OWNERS_PHONE", "aloware"}}, &problems);
  // The old key is still read, and said to be deprecated (a warning).
  ASSERT_EQ(problems.size(), 1u) << problems[0].key << ": " << problems[0].message;
  EXPECT_EQ(problems[0].key, "sync.aloware_contact_events");
  EXPECT_FALSE(problems[0].error);
  EXPECT_NE(problems[0].message.find("deprecated: set aloware.contact_events"), std::string::npos);
  problems.clear();
  MergePolicy policy = MergePolicyFrom(c.sync());
  EXPECT_EQ(policy.owner.at("first_name"), "aloware");
  EXPECT_EQ(policy.owner.at("phone"), "aloware");
  EXPECT_EQ(policy.owner.at("last_name"), "ghl");  // untouched default
  EXPECT_EQ(policy.owner.count("tags"), 0u);        // "" : newer source time wins
  EXPECT_EQ(policy.echo_window_us, 30 * 1000000LL);
  EXPECT_EQ(SplitCommaList(c.Systems("default").at("aloware").at("contact_events")),
            (std::vector<std::string>{"contact.created", "contact.updated"}));

  std::string bad = Write(d, R"(
[sync]
aloware_contact_events = []
[sync.owners]
email = "crm"
favourite_colour = "ghl"
[aloware]
rate_limit = "fast"
token_expires_at = 1
)");
  problems.clear();
  Config::Load(bad, {}, &problems);
  EXPECT_TRUE(Has(problems, "sync.owners.email", "must be one of aloware, ghl, halopsa, twilio, verity"));
  EXPECT_TRUE(Has(problems, "sync.owners.favourite_colour", "unknown key"));
  EXPECT_TRUE(Has(problems, "aloware.contact_events", "at least one"));
  // Every connector key marked as a whole number is checked as one.
  EXPECT_TRUE(Has(problems, "aloware.rate_limit", "must be a whole number"));
  EXPECT_TRUE(Has(problems, "aloware.token_expires_at", "unknown key"));  // GHL's, not Aloware's
}

TEST(Config, RelativeKeyFilesResolveAgainstWhereTheyWereWritten) {
  testing::TempDir d;
  std::string key_dir = d.Sub("keys");
  std::filesystem::create_directories(key_dir);
  std::string pem =
      "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n"
      "-----END PUBLIC KEY-----\n";
  std::ofstream(key_dir + "/ed.pem") << pem;
  std::string p =
      Write(d, "[ghl]\ned25519_public_key_file = \"keys/ed.pem\"\nlocation_id = \"loc-1\"\n");
  std::vector<ConfigProblem> problems;
  Config c = Config::Load(p, {}, &problems);
  EXPECT_TRUE(problems.empty()) << problems[0].message;
  EXPECT_EQ(c.Systems("default").at("ghl").at("ed25519_public_key_file"), d.path() + "/keys/ed.pem");
  // The same text from the environment is taken from the working directory.
  problems.clear();
  Config e = Config::Load(p, {{"DFM_GHL_ED25519_PUBLIC_KEY_FILE", "keys/ed.pem"}}, &problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].key, "ghl.ed25519_public_key_file");
  EXPECT_NE(problems[0].message.find("cannot read keys/ed.pem"), std::string::npos);
}

TEST(Config, EachTenantDecidesWithItsOwnSystems) {
  testing::TempDir d;
  // Tenant "a" has a GoHighLevel conversation provider; "b" has GoHighLevel
  // without one, and Aloware.
  std::string p = Write(d, R"(
[tenants.a.ghl]
api_base_url = "http://127.0.0.1:1"
location_id = "loc-a"
conversation_provider_id = "prov-1"
ed25519_public_key_file = ")" DFM_SOURCE_DIR R"(/etc/dev-keys/ghl-ed25519-public.pem"
[tenants.b.ghl]
api_base_url = "http://127.0.0.1:1"
location_id = "loc-b"
ed25519_public_key_file = ")" DFM_SOURCE_DIR R"(/etc/dev-keys/ghl-ed25519-public.pem"
[tenants.b.aloware]
api_base_url = "http://127.0.0.1:1"
auth = "none"
allow_unauthenticated = true
)");
  std::vector<ConfigProblem> problems;
  Config c = Config::Load(p, {}, &problems);
  ASSERT_TRUE(problems.empty()) << problems[0].key << ": " << problems[0].message;
  SyncContext a = SyncContextFor(c, "a"), b = SyncContextFor(c, "b");
  EXPECT_EQ(a.conversations, "ghl");  // b's missing provider does not turn a's off
  EXPECT_EQ(b.conversations, "");
  EXPECT_EQ(a.targets.count("aloware"), 0u);
  EXPECT_EQ(b.targets.count("aloware"), 1u);
  EXPECT_EQ(b.targets.count("ghl"), 1u);
}

// A secret shared by two tenants authenticates a webhook for both: one
// tenant's webhooks could be posted to the other's route.
TEST(Config, TwoTenantsNeverShareAWebhookSecret) {
  std::vector<ConfigProblem> problems;
  Config::Load("", {{"DFM_TENANTS", "a,b"},
                    {"DFM_TENANTS_A_VERITY_WEBHOOK_SECRET", "same"},
                    {"DFM_TENANTS_B_VERITY_WEBHOOK_SECRET", "same"},
                    {"DFM_TENANTS_A_ALOWARE_AUTH", "bearer"},
                    {"DFM_TENANTS_A_ALOWARE_TOKEN", "tok"},
                    {"DFM_TENANTS_B_ALOWARE_AUTH", "bearer"},
                    {"DFM_TENANTS_B_ALOWARE_TOKEN", "tok"}},
               &problems);
  EXPECT_TRUE(Has(problems, "tenants.b.verity.webhook_secret", "the same as tenant a's"));
  EXPECT_TRUE(Has(problems, "tenants.b.aloware.token", "the same as tenant a's"));
  problems.clear();
  // Twilio's signature covers the URL, and so the tenant's route: one
  // account's token may serve two tenants.
  Config::Load("", {{"DFM_TENANTS", "a,b"},
                    {"DFM_SERVER_PUBLIC_BASE_URL", "https://hooks.example.com"},
                    {"DFM_TENANTS_A_TWILIO_AUTH_TOKEN", "same"},
                    {"DFM_TENANTS_B_TWILIO_AUTH_TOKEN", "same"}},
               &problems);
  EXPECT_TRUE(problems.empty()) << problems[0].key << ": " << problems[0].message;
  // One Meta app serves many tenants: its App Secret is shared, each
  // number is one tenant's (the number tells their webhooks apart).
  auto whatsapp = [](const std::string& number_b) {
    std::vector<std::pair<std::string, std::string>> env = {{"DFM_TENANTS", "a,b"}};
    for (const auto& [t, number] : std::vector<std::pair<std::string, std::string>>{{"A", "111"}, {"B", number_b}}) {
      env.emplace_back("DFM_TENANTS_" + t + "_WHATSAPP_APP_SECRET", "one-meta-app");
      env.emplace_back("DFM_TENANTS_" + t + "_WHATSAPP_VERIFY_TOKEN", "vt-" + t);
      env.emplace_back("DFM_TENANTS_" + t + "_WHATSAPP_PHONE_NUMBER_ID", number);
    }
    return env;
  };
  problems.clear();
  auto shared = whatsapp("222");
  Config::Load("", std::map<std::string, std::string>(shared.begin(), shared.end()), &problems);
  EXPECT_TRUE(problems.empty()) << problems[0].key << ": " << problems[0].message;
  auto same_number = whatsapp("111");
  Config::Load("", std::map<std::string, std::string>(same_number.begin(), same_number.end()), &problems);
  EXPECT_TRUE(Has(problems, "tenants.b.whatsapp.phone_number_id", "the same as tenant a's"));
  // A rotation's previous secret authenticates as the current one does: one
  // tenant's must not be another's.
  problems.clear();
  Config::Load("",
               {{"DFM_TENANTS", "a,b"},
                {"DFM_TENANTS_A_VERITY_WEBHOOK_SECRET", "a-now"},
                {"DFM_TENANTS_B_VERITY_WEBHOOK_SECRET", "b-now"},
                {"DFM_TENANTS_B_VERITY_WEBHOOK_SECRET_PREVIOUS", "a-now"}},
               &problems);
  EXPECT_TRUE(Has(problems, "tenants.b.verity.webhook_secret_previous", "the same as tenant a's"));
  // An unsubscribe link travels in the URL but names no tenant: a link of
  // a's would opt the address out in b if they shared the secret.
  problems.clear();
  const std::string secret(64, 'a');
  Config::Load("",
               {{"DFM_TENANTS", "a,b"},
                {"DFM_TENANTS_A_UNSUBSCRIBE_SECRET", secret},
                {"DFM_TENANTS_B_UNSUBSCRIBE_SECRET", secret}},
               &problems);
  EXPECT_TRUE(Has(problems, "tenants.b.unsubscribe.secret", "the same as tenant a's"));
}

// Telnyx signs with one key per account: tenants sharing an account are
// told apart only by their messaging profiles, each tenant's own.
TEST(Config, TenantsSharingATelnyxAccountEachNameTheirOwnProfiles) {
  const std::string key = "+7E99DXiiQXvceNX4nHm3Lbm5mqPWad5RhDr2ufuCik=";
  auto load = [&](const std::string& a_profiles, const std::string& b_profiles) {
    std::map<std::string, std::string> env = {{"DFM_TENANTS", "a,b"},
                                              {"DFM_TENANTS_A_TELNYX_PUBLIC_KEY", key},
                                              {"DFM_TENANTS_B_TELNYX_PUBLIC_KEY", key}};
    if (!a_profiles.empty()) env["DFM_TENANTS_A_TELNYX_MESSAGING_PROFILE_IDS"] = a_profiles;
    if (!b_profiles.empty()) env["DFM_TENANTS_B_TELNYX_MESSAGING_PROFILE_IDS"] = b_profiles;
    std::vector<ConfigProblem> problems;
    Config::Load("", env, &problems);
    return problems;
  };
  EXPECT_TRUE(
      Has(load("", ""), "tenants.b.telnyx.messaging_profile_ids", "required in both: tenant a"));
  EXPECT_TRUE(Has(load("p-a", ""), "tenants.b.telnyx.messaging_profile_ids", "required in both"));
  EXPECT_TRUE(Has(load("", "p-b"), "tenants.b.telnyx.messaging_profile_ids", "required in both"));
  EXPECT_TRUE(Has(load("p-a,p-shared", "p-b, p-shared"), "tenants.b.telnyx.messaging_profile_ids",
                  "p-shared is tenant a's too"));
  auto apart = load("p-a", "p-b");
  EXPECT_TRUE(apart.empty()) << apart[0].key << ": " << apart[0].message;
}

// Outbound credentials went wherever the base URL said, in the clear too.
TEST(Config, AnApiBaseUrlIsHttpsOrThisMachine) {
  std::vector<ConfigProblem> problems;
  Config::Load("", {{"DFM_VERITY_WEBHOOK_SECRET", "s"},
                    {"DFM_VERITY_API_BASE_URL", "http://verity.example.com"},
                    {"DFM_VERITY_API_KEY", "k"}},
               &problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].key, "verity.api_base_url");
  EXPECT_NE(problems[0].message.find("https"), std::string::npos);
  problems.clear();
  for (const char* ok : {"https://verity.example.com", "http://127.0.0.1:8093"}) {
    Config::Load("", {{"DFM_VERITY_WEBHOOK_SECRET", "s"}, {"DFM_VERITY_API_BASE_URL", ok},
                      {"DFM_VERITY_API_KEY", "k"}},
                 &problems);
    EXPECT_TRUE(problems.empty()) << ok << ": " << problems[0].message;
  }
}

// Which system keeps conversations, sends texts or holds lists is
// configuration, per tenant, checked against what each connector can play;
// by default what it was (GoHighLevel, Verity, Aloware).
TEST(Config, RolesAreConfigurationCheckedAgainstTheConnectors) {
  std::vector<ConfigProblem> problems;
  Config plain = Config::Load("", {}, &problems);
  ASSERT_TRUE(problems.empty());
  SyncContext ctx = SyncContextFor(plain, "default");
  EXPECT_EQ(ctx.conversations, "ghl");
  EXPECT_EQ(ctx.sender, "verity");
  EXPECT_EQ(ctx.lists_target, "aloware");

  Config::Load("", {{"DFM_SYNC_ROLES_SENDER", "ghl"}, {"DFM_SYNC_ROLES_LISTS", "hubspot"}},
               &problems);
  EXPECT_TRUE(Has(problems, "sync.roles.sender",
                  "ghl cannot play the sender role; it may be one of verity, whatsapp, or \"\" for nobody"));
  EXPECT_TRUE(Has(problems, "sync.roles.lists", "unknown system 'hubspot'"));
  problems.clear();

  // A tenant of its own: nobody keeps its conversations; the others inherit.
  Config mixed = Config::Load("", {{"DFM_TENANTS", "acme"},
                                   {"DFM_TENANTS_ACME_ROLES_CONVERSATIONS", ""},
                                   {"DFM_SYNC_ROLES_LISTS", ""}},
                              &problems);
  ASSERT_TRUE(problems.empty()) << problems[0].key << ": " << problems[0].message;
  EXPECT_EQ(SyncContextFor(mixed, "acme").conversations, "");
  EXPECT_EQ(SyncContextFor(mixed, "acme").sender, "verity");
  EXPECT_EQ(SyncContextFor(mixed, "default").conversations, "ghl");
  EXPECT_EQ(SyncContextFor(mixed, "default").lists_target, "");
  Config::Load("", {{"DFM_TENANTS", "acme"}, {"DFM_TENANTS_ACME_ROLES_SENDER", "aloware"}},
               &problems);
  EXPECT_TRUE(Has(problems, "tenants.acme.roles.sender", "aloware cannot play the sender role"));
}

TEST(Config, RedriveMaxTextAgeIsHoursAndZeroMeansNoLimit) {
  std::vector<ConfigProblem> problems;
  Config c = Config::Load("", {}, &problems);
  ASSERT_TRUE(problems.empty());
  EXPECT_EQ(c.sync().redrive_max_text_age_h, 24);
  EXPECT_EQ(SyncContextFor(c, "default").redrive_max_text_age_us, 24 * 3600 * 1000000LL);
  Config off = Config::Load("", {{"DFM_SYNC_REDRIVE_MAX_TEXT_AGE_H", "0"}}, &problems);
  ASSERT_TRUE(problems.empty());
  EXPECT_EQ(SyncContextFor(off, "default").redrive_max_text_age_us, 0);
  Config::Load("", {{"DFM_SYNC_REDRIVE_MAX_TEXT_AGE_H", "-1"}}, &problems);
  EXPECT_TRUE(Has(problems, "sync.redrive_max_text_age_h", "whole number"));
}

TEST(Config, SyntaxErrorNamesTheLine) {
  testing::TempDir d;
  std::string p = Write(d, "[server\nlisten = 1\n");
  std::vector<ConfigProblem> problems;
  Config::Load(p, {}, &problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].message.find("line 1"), std::string::npos);
}

// Issue 47: `dfm config init --out FILE` writes the package's template
// (byte for byte) and FILE.env, 0600, with a fresh unsubscribe secret and
// a placeholder per vendor secret; the pair loads without an error, and a
// second run does not write over them without --force.
TEST(ConfigInit, WritesTheTemplateAndFreshSecretsThatLoad) {
  testing::TempDir d;
  const std::string out = d.path() + "/dfm.toml";
  std::string said;
  ASSERT_TRUE(WriteProductionConfig(out, false, &said).ok());
  std::ifstream packaged(std::string(DFM_SOURCE_DIR) + "/packaging/dfm.toml");
  std::string want((std::istreambuf_iterator<char>(packaged)), std::istreambuf_iterator<char>());
  std::ifstream written(out);
  std::string got((std::istreambuf_iterator<char>(written)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, want) << "the template is the package's";
  struct stat st {};
  ASSERT_EQ(::stat((out + ".env").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream envf(out + ".env");
  Config::Env env;
  std::string line, secret;
  bool placeholders = false;
  while (std::getline(envf, line)) {
    placeholders |= line.rfind("# DFM_GHL_ACCESS_TOKEN=", 0) == 0;
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find('=');
    env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  EXPECT_TRUE(placeholders) << "a vendor's secret named, to fill in";
  ASSERT_EQ(env.count("DFM_UNSUBSCRIBE_SECRET"), 1u);
  EXPECT_EQ(env["DFM_UNSUBSCRIBE_SECRET"].size(), 64u);
  std::string again;
  testing::TempDir d2;
  ASSERT_TRUE(WriteProductionConfig(d2.path() + "/dfm.toml", false, &again).ok());
  EXPECT_EQ(ProductionSecrets().find(env["DFM_UNSUBSCRIBE_SECRET"]), std::string::npos) << "fresh each time";
  env["DFM_STORAGE_DATA_DIR"] = d.path() + "/data";  // the template's /var/lib/dfm is the unit's
  std::vector<ConfigProblem> problems;
  Config c = Config::Load(out, env, &problems);
  for (const auto& p : problems) EXPECT_FALSE(p.error) << p.key << ": " << p.message;
  EXPECT_EQ(WriteProductionConfig(out, false, &said).code(), Status::Code::kAlreadyExists);
  EXPECT_TRUE(WriteProductionConfig(out, true, &said).ok());
}

}  // namespace
}  // namespace dfm
