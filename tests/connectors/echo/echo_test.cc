// A system added from its folder alone: the Echo connector, registered from
// the test tree, takes a webhook through the real front, its contact is
// matched and merged by the sync as any vendor's, and it is pushed to.
#include "tests/connectors/echo/echo.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <map>
#include <thread>

#include "app/sync_runtime.h"
#include "config/config.h"
#include "http/server.h"
#include "storage/rocksdb_event_log.h"
#include "sync/domain_event.h"
#include "sync/sync_control.h"
#include "tests/support/http_client.h"
#include "tests/support/ports.h"
#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

using testing::Http;

// The configuration `env` gives (no problem with it) and the log in its
// data directory.
void LoadAndOpen(const std::map<std::string, std::string>& env, Config* config,
                 std::unique_ptr<RocksDbEventLog>* log) {
  std::vector<ConfigProblem> problems;
  *config = Config::Load("", env, &problems);
  ASSERT_TRUE(problems.empty()) << problems[0].key << ": " << problems[0].message;
  RocksDbLogOptions lo;
  lo.path = config->data_dir();
  ASSERT_TRUE(RocksDbEventLog::Open(lo, log).ok());
}

TEST(EchoConnector, AWebhookInAContactMatchedAndAPushOut) {
  ASSERT_NE(FindConnector("echo"), nullptr) << "registered from its folder";
  EXPECT_NE(ConnectorSystems().find("echo"), std::string::npos);

  testing::TempDir dir;
  const int port = testing::FreePort();
  Config config;
  std::unique_ptr<RocksDbEventLog> log;
  ASSERT_NO_FATAL_FAILURE(LoadAndOpen({{"DFM_SERVER_LISTEN", "127.0.0.1:" + std::to_string(port)},
                                       {"DFM_SERVER_ADMIN_LISTEN", ""},
                                       {"DFM_STORAGE_DATA_DIR", dir.Sub("data")},
                                       {"DFM_ECHO_WEBHOOK_TOKEN", "echo-secret"},
                                       {"DFM_ECHO_API_BASE_URL", "http://127.0.0.1:1"},
                                       {"DFM_ALOWARE_AUTH", "bearer"},
                                       {"DFM_ALOWARE_TOKEN", "alo-secret"},
                                       {"DFM_SYNC_OWNERS_FIRST_NAME", ""}},
                                      &config, &log));
  std::unique_ptr<SyncRuntime> sync;
  ASSERT_TRUE(SyncRuntime::Start(config, log.get(), &sync).ok());
  HttpFront front(config, log.get());
  auto served = std::async(std::launch::async, [&] { return front.Run(false); });
  for (int i = 0; i < 500 && !front.listening(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(front.listening());
  const std::string base = "http://127.0.0.1:" + std::to_string(port);

  // Its webhook, verified by its source, is recorded.
  const std::string contact =
      R"({"id":"e1","phone":"+12055550142","first_name":"Ada","version":"1"})";
  EXPECT_EQ(
      Http("POST", base + "/webhooks/echo", {"Content-Type: application/json"}, contact).status,
      401);
  auto in = Http("POST", base + "/webhooks/echo",
                 {"Content-Type: application/json", "X-Echo-Token: echo-secret"}, contact);
  ASSERT_EQ(in.status, 200) << in.body;

  // Another system's edit of the same person reaches it as a push.
  const std::string edit = R"({"event":"Contact Updated","body":{"id":7,"first_name":"Augusta",)"
                           R"("phone_number":"205-555-0142","updated_at":"2026-11-20 10:00:00"}})";
  auto alo = Http("POST", base + "/webhooks/aloware",
                  {"Content-Type: application/json", "Authorization: Bearer alo-secret"}, edit);
  ASSERT_EQ(alo.status, 200) << alo.body;
  PushRequest got;
  for (int i = 0; i < 1000; ++i) {
    {
      std::lock_guard<std::mutex> lk(EchoSink().mu);
      if (!EchoSink().got.empty()) got = EchoSink().got.front();
    }
    if (!got.push_id.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(got.op, "upsert");
  EXPECT_EQ(got.external_id, "e1") << "the contact it made known";
  EXPECT_EQ(got.Field("first_name"), "Augusta");
  EXPECT_EQ(got.Field("phone"), "+12055550142");

  front.Stop();
  EXPECT_TRUE(served.get().ok());
  sync->Stop();
  log->Close();
}

// What a node holds when it takes a partition: a push not settled, which
// its connector re-drives at start. Under a pause every node shares (a
// cluster's, folded before the runtime starts) it waits until the resume.
TEST(EchoConnector, ASharedPauseHoldsWhatIsRedrivenAtStart) {
  testing::TempDir dir;
  Config config;
  std::unique_ptr<RocksDbEventLog> log;
  ASSERT_NO_FATAL_FAILURE(LoadAndOpen({{"DFM_STORAGE_DATA_DIR", dir.Sub("data")},
                                       {"DFM_SERVER_ADMIN_LISTEN", ""},
                                       {"DFM_ECHO_WEBHOOK_TOKEN", "echo-secret"},
                                       {"DFM_ECHO_API_BASE_URL", "http://127.0.0.1:1"}},
                                      &config, &log));
  DomainEvent push;
  push.type = std::string(ev::kPushRequested);
  push.contact_id = "c-held";
  push.system = "echo";
  push.op = "upsert";
  push.push_id = "c-held:echo:1";
  push.fields = {{"phone", "+12055550199"}};
  AppendOutcome appended;
  ASSERT_TRUE(log->Append(ToDraft(push, "default", ContactStream("c-held"), EventId(), EventId()),
                          &appended)
                  .ok());
  auto asked = [&](const std::string& push_id) {
    std::lock_guard<std::mutex> lk(EchoSink().mu);
    for (const auto& r : EchoSink().got)
      if (r.push_id == push_id) return true;
    return false;
  };
  auto as_event = [](EventDraft d) {
    Event e;
    e.type = d.type;
    e.schema_version = d.schema_version;
    e.payload = d.payload;
    return e;
  };
  SyncControlRequest everything;
  const Event paused = as_event(SyncPausedDraft(everything, "cli", "r1", 1));
  std::unique_ptr<SyncRuntime> sync;
  ASSERT_TRUE(
      SyncRuntime::Start(config, log.get(), &sync, nullptr, "", nullptr, nullptr, {paused}).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_FALSE(asked(push.push_id)) << "re-driven at start under the pause";
  sync->control()->Apply(as_event(SyncResumedDraft(everything, "cli", "r2", 2)));
  sync->WakeConnectors();
  for (int i = 0; i < 500 && !asked(push.push_id); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(asked(push.push_id)) << "sent once resumed";
  sync->Stop();
  log->Close();
}

}  // namespace
}  // namespace dfm
