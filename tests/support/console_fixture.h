// The console driven without HTTP (console/console.h): a console over an
// in-memory log with the tenants "default" and "acme" (or "default" alone),
// called as a request would be, keys made through its admin endpoint.
#pragma once

#include <gtest/gtest.h>

#include <future>
#include <map>
#include <memory>
#include <string>

#include "console/console.h"
#include "storage/memory_event_log.h"
#include "sync/domain_event.h"
#include "tests/support/temp_dir.h"
#include "util/clock.h"

namespace dfm {

class ConsoleTest : public ::testing::Test {
 protected:
  void Start(Config::Env env = {}) {
    Config::Env base = {{"DFM_STORAGE_DATA_DIR", dir_.path()},
                        {"DFM_SERVER_ADMIN_LISTEN", "127.0.0.1:1"},
                        {"DFM_TENANTS", "acme"},
                        {"DFM_VERITY_WEBHOOK_SECRET", "vs"},
                        {"DFM_TENANTS_ACME_VERITY_WEBHOOK_SECRET", "vs-acme"}};
    for (auto& [k, v] : env) base[k] = v;
    Load(std::move(base));
  }

  // The tenant "default" alone: one company's service, where nobody signed
  // in may still search (masked) and see a conflict's contact.
  void StartOneTenant(Config::Env env = {}) {
    Config::Env base = {{"DFM_STORAGE_DATA_DIR", dir_.path()},
                        {"DFM_SERVER_ADMIN_LISTEN", "127.0.0.1:1"},
                        {"DFM_VERITY_WEBHOOK_SECRET", "vs"}};
    for (auto& [k, v] : env) base[k] = v;
    Load(std::move(base));
  }

  void Load(Config::Env base) {
    std::vector<ConfigProblem> problems;
    config_ = Config::Load("", base, &problems);
    ASSERT_TRUE(problems.empty()) << problems[0].key << ": " << problems[0].message;
    console_ = std::make_unique<Console>(config_, &log_, clock_, &counters_);
    ASSERT_TRUE(console_->Start().ok());
    console_->SetAdminToken("admin-secret");
  }

  ApiResponse Call(const std::string& method, const std::string& target,
                   const std::string& bearer = "", const std::string& body = "",
                   bool admin_listener = false, std::map<std::string, std::string> headers = {}) {
    ApiRequest r;
    r.method = method;
    const size_t q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.query = target.substr(q + 1);
    r.headers = std::move(headers);
    if (!bearer.empty()) r.headers["authorization"] = "Bearer " + bearer;
    r.body = body;
    r.peer = r.client = "127.0.0.1";
    r.request_id = "req-test";
    r.admin_listener = admin_listener;
    std::promise<ApiResponse> p;
    console_->Handle(std::move(r), [&p](ApiResponse a) { p.set_value(std::move(a)); });
    return p.get_future().get();
  }

  static std::string HeaderOf(const ApiResponse& a, const std::string& name) {
    for (const auto& [k, v] : a.headers)
      if (k == name) return v;
    return "";
  }

  // Before Start: the console's clock stands still in the middle of this
  // minute, so that counts of a minute's requests never straddle two.
  void StopTheClock() {
    const int64_t minute = 60 * 1000000LL;
    stopped_.Set(SystemClock::Instance()->NowMicros() / minute * minute + minute / 2);
    clock_ = &stopped_;
  }

  // A key made through the admin endpoint; its token.
  std::string MakeKey(const std::string& role, const std::string& tenant) {
    ApiResponse a = Call(
        "POST", "/v1/admin/keys", "admin-secret",
        R"({"name":"test )" + role + R"(","role":")" + role + R"(","tenant":")" + tenant + R"("})",
        /*admin_listener=*/true);
    EXPECT_EQ(a.status, 201) << a.body;
    const size_t at = a.body.find("\"token\":\"");
    return at == std::string::npos ? "" : a.body.substr(at + 9, 85);
  }

  // A contact of `tenant` the mappings know by its phone and email.
  void AddContact(const std::string& tenant, const std::string& id, EventLog* into = nullptr) {
    DomainEvent d;
    d.type = std::string(ev::kContactCreated);
    d.contact_id = id;
    d.system = "ghl";
    d.external_id = "g-" + id;
    d.fields = {{"first_name", "Ada"},
                {"last_name", "Lovelace"},
                {"phone", "+12055550142"},
                {"email", "ada@example.com"}};
    AppendOutcome out;
    ASSERT_TRUE(
        (into ? into : &log_)->Append(ToDraft(d, tenant, ContactStream(id), {}, {}), &out).ok());
  }

  testing::TempDir dir_;
  MemoryEventLog log_;
  ManualClock stopped_;  // StopTheClock's; read only once the console runs
  const Clock* clock_ = SystemClock::Instance();
  Config config_;
  ConsoleCounters counters_;
  std::unique_ptr<Console> console_;
};

}  // namespace dfm
