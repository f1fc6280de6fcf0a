// What a key of one tenant reads of the log (console/installation_events.h):
// its tenant's events, never the installation's own records written under
// the tenant "default" (keys of every tenant, reloads naming every tenant,
// backups, pauses of everything, restores).
#include <gtest/gtest.h>

#include "console/api_keys.h"
#include "console/installation_events.h"
#include "console/remote_read.h"
#include "projections/runner.h"
#include "projections/sync_projections.h"
#include "sync/sync_control.h"
#include "tests/support/conflicts.h"
#include "tests/support/console_fixture.h"

namespace dfm {
namespace {

Event Clear(const std::string& tenant, const std::string& stream, const std::string& type,
            const std::string& payload) {
  Event e;
  e.tenant = tenant;
  e.stream = stream;
  e.type = type;
  e.payload = payload;
  return e;
}

TEST(InstallationWideTest, TheInstallationsRecordsAreTellableFromTheTenantDefaults) {
  const std::set<std::string> everyone = {"k-all"};
  auto action = [](const std::string& what, const std::string& target) {
    return Clear("default", "admin", "admin.action",
                 R"({"action":")" + what + R"(","target":")" + target + R"("})");
  };
  EXPECT_TRUE(InstallationWide(action("reload", "tenants added: acme"), everyone));
  EXPECT_TRUE(InstallationWide(action("backup", "/var/backups/dfm"), everyone));
  EXPECT_TRUE(InstallationWide(action("key.create", "k-all"), everyone));
  EXPECT_TRUE(InstallationWide(action("key.revoke", "k-all"), everyone));
  EXPECT_TRUE(InstallationWide(action("sync.pause", "*/ghl"), everyone));
  EXPECT_FALSE(InstallationWide(action("key.create", "k-default"), everyone));
  EXPECT_FALSE(InstallationWide(action("sync.pause", "default/ghl"), everyone));
  EXPECT_FALSE(InstallationWide(action("erase", "erase/c1"), everyone));
  EXPECT_TRUE(InstallationWide(
      Clear("default", "api_keys", "api_key.created", R"({"key_id":"k-all","tenant":"*"})"),
      everyone));
  EXPECT_TRUE(InstallationWide(
      Clear("default", "api_keys", "api_key.revoked", R"({"key_id":"k-all"})"), everyone));
  EXPECT_FALSE(InstallationWide(
      Clear("default", "api_keys", "api_key.created", R"({"key_id":"k-d","tenant":"default"})"),
      everyone));
  EXPECT_TRUE(InstallationWide(Clear("default", "sync_control", "sync.paused", R"({"tenant":"*"})"),
                               everyone));
  EXPECT_FALSE(InstallationWide(
      Clear("default", "sync_control", "sync.paused", R"({"tenant":"default"})"), everyone));
  EXPECT_TRUE(InstallationWide(Clear("default", "log", "log.restored", "{}"), everyone));
  EXPECT_FALSE(InstallationWide(Clear("acme", "log", "log.restored", "{}"), everyone))
      << "only what is written under \"default\"";
  EXPECT_FALSE(
      InstallationWide(Clear("acme", "admin", "admin.action", R"({"action":"reload"})"), everyone));
}

class ConsoleTenancyTest : public ConsoleTest {};

TEST_F(ConsoleTenancyTest, AKeyOfTheTenantDefaultReadsNoneOfTheInstallationsRecords) {
  Start();
  console_->SetReloadHandler([](std::string* summary, const ReloadRecorder& record) {
    *summary = "systems changed: acme/verity";
    return record ? record(*summary) : Status::OK();
  });
  console_->SetBackupHandler([](const std::string&, int, std::string* manifest) {
    *manifest = "{}";
    return Status::OK();
  });
  SyncControlHooks hooks;
  hooks.control = std::make_shared<SyncControl>();
  console_->SetSyncControl(std::move(hooks));
  const std::string everyone = MakeKey("admin", "*");
  const std::string own = MakeKey("admin", "default");
  const std::string viewer = MakeKey("viewer", "default");
  ASSERT_EQ(Call("POST", "/v1/admin/reload", everyone, "", true).status, 200);
  ASSERT_EQ(
      Call("POST", "/v1/admin/backup", everyone, R"({"into":"/srv/dfm-backups"})", true).status,
      200);
  ASSERT_EQ(Call("POST", "/v1/admin/sync/pause", everyone, R"({"reason":"acme's migration"})", true)
                .status,
            200);
  ASSERT_EQ(Call("POST", "/v1/admin/sync/resume", everyone, "", true).status, 200);
  ASSERT_EQ(
      Call("POST", "/v1/admin/keys", own, R"({"name":"grafana of default","role":"viewer"})", true)
          .status,
      201);
  const std::string all_id = everyone.substr(4, 16);

  ApiResponse mine = Call("GET", "/v1/events", viewer);
  ASSERT_EQ(mine.status, 200) << mine.body;
  EXPECT_NE(mine.body.find("grafana of default"), std::string::npos) << "its own tenant's keys";
  for (const char* hidden : {"acme/verity", "/srv/dfm-backups", "acme's migration", "\"*/*\""})
    EXPECT_EQ(mine.body.find(hidden), std::string::npos) << hidden << " in\n" << mine.body;
  EXPECT_EQ(mine.body.find(all_id), std::string::npos) << "a key of every tenant\n" << mine.body;

  ApiResponse all = Call("GET", "/v1/events", everyone);
  ASSERT_EQ(all.status, 200);
  for (const char* shown :
       {"acme/verity", "/srv/dfm-backups", "acme's migration", "grafana of default"})
    EXPECT_NE(all.body.find(shown), std::string::npos) << shown;
  EXPECT_NE(all.body.find(all_id), std::string::npos);
}

// The status page's summary speaks of the systems and conflicts the
// reader may see: a tenant's key is not told that another tenant's system
// is down or that its people's conflicts wait, and its own conflict is
// listed however many newer ones other tenants have.
TEST_F(ConsoleTenancyTest, TheStatusPagesSummaryOfATenantsKeyCountsItsOwnAlone) {
  Start();
  console_->SetStatusSource(
      [](const std::string&, std::vector<ConnectorSnapshot>* connectors, EngineSnapshot*) {
        ConnectorSnapshot ours, theirs;
        ours.tenant = "acme";
        theirs.tenant = "default";
        ours.system = theirs.system = "ghl";
        ours.name = theirs.name = "GoHighLevel";
        theirs.auth_failing = true;
        *connectors = {ours, theirs};
      });
  ASSERT_TRUE(testing::AppendConsentConflict(&log_, "acme", "c-acme").ok());
  for (int i = 0; i < 21; ++i)
    ASSERT_TRUE(
        testing::AppendConsentConflict(&log_, "default", "c-default-" + std::to_string(i)).ok());
  SyncProjections projections;
  ProjectionRunner runner(&log_, projections.All());
  ASSERT_TRUE(runner.CatchUp().ok());
  auto page_of = [&](const std::string& key) {
    ApiResponse in = Call("POST", "/docs/visual/sign-in", "", "key=" + key);
    const std::string cookie = HeaderOf(in, "Set-Cookie");
    return Call("GET", "/docs/visual", "", "", false,
                {{"cookie", cookie.substr(0, cookie.find(';'))}})
        .body;
  };
  const std::string acme = page_of(MakeKey("viewer", "acme"));
  EXPECT_NE(acme.find("All systems working; 1 consent conflict waits for a person"),
            std::string::npos)
      << acme;
  EXPECT_NE(acme.find("contact:c-acme"), std::string::npos) << "its own, the oldest of all";
  EXPECT_EQ(acme.find("c-default-"), std::string::npos);
  const std::string every = page_of(MakeKey("viewer", "*"));
  EXPECT_NE(every.find("1 system needs attention; 22 consent conflicts wait for a person"),
            std::string::npos);
}

// Nobody signed in may belong to any tenant: where several share the
// service, the page neither searches for them (masked or not) nor names the
// contact of a conflict; a key sees its tenant's, and only those.
TEST_F(ConsoleTenancyTest, NobodySignedInSeesAPersonWhereSeveralTenantsShareTheService) {
  Start();
  console_->SetStatusSource(
      [](const std::string&, std::vector<ConnectorSnapshot>* connectors, EngineSnapshot*) {
        ConnectorSnapshot halo;
        halo.tenant = "acme";
        halo.system = "halopsa";
        halo.name = "HaloPSA";
        halo.notice =
            R"(HaloPSA holds 2 Clients for "Umbrella Labs" (ids 12, 15): new users go to 12.)";
        *connectors = {halo};
      });
  AddContact("acme", "c-acme");
  ASSERT_TRUE(testing::AppendConsentConflict(&log_, "default", "c-conflict").ok());
  SyncProjections projections;
  ProjectionRunner runner(&log_, projections.All());
  ASSERT_TRUE(runner.CatchUp().ok());
  const std::string anonymous = Call("GET", "/docs/visual").body;
  EXPECT_NE(anonymous.find("1 consent conflict waits for a person"), std::string::npos)
      << "counted, not named";
  EXPECT_EQ(anonymous.find("c-conflict"), std::string::npos) << anonymous;
  EXPECT_NE(anonymous.find("(sign in to see)"), std::string::npos);
  EXPECT_EQ(anonymous.find("Umbrella"), std::string::npos) << "a client's name";
  EXPECT_NE(anonymous.find("Sign in to read what its client says of its records."),
            std::string::npos);
  EXPECT_EQ(anonymous.find("type=\"search\""), std::string::npos) << "no search box";
  ApiResponse search = Call("POST", "/docs/visual", "", "q=%28205%29+555-0142");
  EXPECT_EQ(search.status, 200);
  EXPECT_EQ(search.body.find("c-acme"), std::string::npos) << search.body;
  EXPECT_NE(search.body.find("Sign in with a viewer key to search for a contact: several tenants "
                             "share this service."),
            std::string::npos);

  auto session_of = [&](const std::string& key) {
    ApiResponse in = Call("POST", "/docs/visual/sign-in", "", "key=" + key);
    const std::string cookie = HeaderOf(in, "Set-Cookie");
    return std::map<std::string, std::string>{{"cookie", cookie.substr(0, cookie.find(';'))}};
  };
  const auto acme = session_of(MakeKey("viewer", "acme"));
  const std::string theirs = Call("GET", "/docs/visual", "", "", false, acme).body;
  EXPECT_EQ(theirs.find("c-conflict"), std::string::npos) << "another tenant's";
  EXPECT_NE(theirs.find("Umbrella Labs"), std::string::npos) << "its own client's";
  EXPECT_NE(Call("POST", "/docs/visual", "", "q=%28205%29+555-0142", false, acme)
                .body.find("contact:c-acme"),
            std::string::npos);
  const auto fallback = session_of(MakeKey("viewer", "default"));
  EXPECT_NE(Call("GET", "/docs/visual", "", "", false, fallback).body.find("contact:c-conflict"),
            std::string::npos);
  EXPECT_EQ(
      Call("POST", "/docs/visual", "", "q=%28205%29+555-0142", false, fallback).body.find("c-acme"),
      std::string::npos)
      << "another tenant's";
}

// One tenant configured, a partition's node configured with another (a
// rollout): that tenant's conflict's contact is not shown to anybody not
// signed in; the service's own tenant's is.
TEST_F(ConsoleTenancyTest, AConflictOfATenantThisNodeDoesNotKnowIsNotNamedToAnybody) {
  StartOneTenant();
  console_->SetAttentionSource(
      [](const std::string&, std::vector<AttentionItem>* attention, uint64_t* total) {
        AttentionItem ours, unknown;
        ours.tenant = "default";
        ours.contact_id = "c-ours";
        unknown.tenant = "acme";
        unknown.contact_id = "c-unknown";
        ours.what = unknown.what = "a staff opt-in refused";
        ours.at_us = 1;
        unknown.at_us = 2;
        *attention = {ours, unknown};
        *total = 2;
      });
  const std::string page = Call("GET", "/docs/visual").body;
  EXPECT_NE(page.find("contact:c-ours"), std::string::npos) << page;
  EXPECT_EQ(page.find("c-unknown"), std::string::npos);
  EXPECT_NE(page.find("(sign in to see)"), std::string::npos);
}

TEST(RemoteReadTenancyTest, WhetherTheCallerSeesTheInstallationTravelsWithTheRead) {
  RemoteRead r{"/v1/events", "default", {}, true}, back;
  ASSERT_TRUE(DecodeRemoteRead(EncodeRemoteRead(r), &back));
  EXPECT_TRUE(back.whole);
  r.whole = false;
  ASSERT_TRUE(DecodeRemoteRead(EncodeRemoteRead(r), &back));
  EXPECT_FALSE(back.whole);
  ASSERT_TRUE(
      DecodeRemoteRead(R"({"v":1,"route":"/v1/events","tenant":"default","params":[]})", &back));
  EXPECT_FALSE(back.whole) << "a request that does not say is read as one tenant's";
}

// The reads take the sync's rules as last reloaded (the console's own
// settings stay as started): a dead text read after a reload that
// shortened sync.redrive_max_text_age_h is marked too old to re-send.
TEST_F(ConsoleTest, ReadsTakeTheSyncRulesOfTheLastReload) {
  StopTheClock();
  stopped_.Set(stopped_.NowMicros() + 2 * 3600 * 1000000LL);  // the text was asked 2 h ago
  Config::Env env = {{"DFM_STORAGE_DATA_DIR", dir_.path()},
                     {"DFM_SERVER_ADMIN_LISTEN", "127.0.0.1:1"},
                     {"DFM_VERITY_WEBHOOK_SECRET", "vs"}};
  Load(env);
  for (const auto type : {ev::kPushRequested, ev::kPushDeadLettered}) {
    DomainEvent d;
    d.type = std::string(type);
    d.contact_id = "c1";
    d.system = "verity";
    d.op = "send";
    d.push_id = "c1:verity:1";
    d.reason = "retries exhausted";
    AppendOutcome out;
    ASSERT_TRUE(log_.Append(ToDraft(d, "default", ContactStream("c1"), {}, {}), &out).ok());
  }
  const std::string viewer = MakeKey("viewer", "default");
  ApiResponse before = Call("GET", "/v1/dead-letters", viewer);
  ASSERT_EQ(before.status, 200) << before.body;
  EXPECT_NE(before.body.find("c1:verity:1"), std::string::npos) << before.body;
  EXPECT_EQ(before.body.find("too_old_to_re_send"), std::string::npos) << "24 h by default";

  std::vector<ConfigProblem> problems;
  env["DFM_SYNC_REDRIVE_MAX_TEXT_AGE_H"] = "1";
  const Config reloaded = Config::Load("", env, &problems);
  ASSERT_TRUE(problems.empty());
  console_->SetLiveConfig(reloaded);
  ApiResponse after = Call("GET", "/v1/dead-letters", viewer);
  console_->SetLiveConfig(config_);  // `reloaded` goes first
  EXPECT_EQ(after.status, 200) << after.body;
  // Asked 119 or 120 minutes before the console's clock (the log's clock
  // is within the minute the console's stands still in the middle of).
  const bool aged =
      after.body.find(R"("too_old_to_re_send":{"age_min":119,"limit_h":1})") != std::string::npos ||
      after.body.find(R"("too_old_to_re_send":{"age_min":120,"limit_h":1})") != std::string::npos;
  EXPECT_TRUE(aged) << after.body;
}

// A tenant a reload adds back brings the keys it had in the log: read
// whole before the tenant is live, they authenticate and can be revoked as
// they would after a restart, and one revoked before stays revoked. A read
// that fails lets none of them in, and the next reload reads again.
TEST_F(ConsoleTest, ATenantAReloadAddsBackBringsItsKeys) {
  Start();  // "default" and "acme"
  const std::string acme_viewer = MakeKey("viewer", "acme");
  const std::string gone = MakeKey("viewer", "acme");
  std::string id, secret;
  ASSERT_TRUE(SplitApiKey(gone, &id, &secret));
  ASSERT_EQ(Call("DELETE", "/v1/admin/keys/" + id, "admin-secret", "", true).status, 200);
  ASSERT_EQ(Call("GET", "/v1/events?tenant=acme", acme_viewer).status, 200);

  Config::Env env = {{"DFM_STORAGE_DATA_DIR", dir_.path()},
                     {"DFM_SERVER_ADMIN_LISTEN", "127.0.0.1:1"},
                     {"DFM_VERITY_WEBHOOK_SECRET", "vs"}};
  Load(env);  // started again without acme
  EXPECT_EQ(Call("GET", "/v1/events?tenant=acme", acme_viewer).status, 401);

  std::vector<ConfigProblem> problems;
  env["DFM_TENANTS"] = "acme";
  env["DFM_TENANTS_ACME_VERITY_WEBHOOK_SECRET"] = "vs-acme";
  const Config reloaded = Config::Load("", env, &problems);
  ASSERT_TRUE(problems.empty());
  log_.FailStreamReadsOf(kApiKeysStream, true);
  console_->SetLiveConfig(reloaded);
  const int unread = Call("GET", "/v1/events?tenant=acme", acme_viewer).status;
  const uint64_t unread_gauge = counters_.keys_unread_tenants.load();
  log_.FailStreamReadsOf(kApiKeysStream, false);
  console_->SetLiveConfig(reloaded);  // the next reload
  const int read = Call("GET", "/v1/events?tenant=acme", acme_viewer).status;
  EXPECT_EQ(unread_gauge, 1u) << "dfm_api_keys_unread_tenants";
  EXPECT_EQ(counters_.keys_unread_tenants.load(), 0u);
  const int revoked_before = Call("GET", "/v1/events?tenant=acme", gone).status;
  EXPECT_TRUE(SplitApiKey(acme_viewer, &id, &secret));
  const int revoke = Call("DELETE", "/v1/admin/keys/" + id, "admin-secret", "", true).status;
  const int revoked_now = Call("GET", "/v1/events?tenant=acme", acme_viewer).status;
  console_->SetLiveConfig(config_);  // `reloaded` goes first
  EXPECT_EQ(unread, 401) << "its keys unread: none of them let in";
  EXPECT_EQ(read, 200) << "acme's key, made before the restart";
  EXPECT_EQ(revoked_before, 401) << "revoked before the restart";
  EXPECT_EQ(revoke, 200);
  EXPECT_EQ(revoked_now, 401);
}

}  // namespace
}  // namespace dfm
