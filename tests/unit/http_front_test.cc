// The HTTP front over real loopback HTTP, on a real RocksDB log whose file
// system can be made to fail like a full disk.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "connectors/common/webhook_source.h"
#include "console/remote_read.h"
#include "events/webhook_received.h"
#include "http/server.h"
#include "replay-tools/conflicts.h"
#include "storage/crc32c.h"
#include "storage/memory_event_log.h"
#include "storage/rocksdb_event_log.h"
#include "sync/domain_event.h"
#include "tests/support/conflicts.h"
#include "tests/support/faulty_fs.h"
#include "tests/support/fixtures.h"
#include "tests/support/http_client.h"
#include "tests/support/ports.h"
#include "tests/support/temp_dir.h"
#include "util/admin_token.h"
#include "util/crypto.h"

namespace dfm {
namespace {

using testing::Fixture;
using testing::FreePort;
using testing::Http;

// A TCP connection to 127.0.0.1:port; -1 when it cannot be made.
int ConnectLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) return fd;
  close(fd);
  return -1;
}

// Verity's signature with the default tenant's secret (or another's).
std::string Sig(const std::string& body, const std::string& secret = "vs") {
  return "X-Texting-Signature: " + HexEncode(HmacKey(HmacKey::Digest::kSha256, secret).Mac(body));
}

// Delays every append's answer, to hold requests in flight.
class SlowLog : public MemoryEventLog {
 public:
  void AppendAsync(std::vector<EventDraft> drafts, AppendCallback cb) override {
    std::thread([this, d = std::move(drafts), cb = std::move(cb)]() mutable {
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
      MemoryEventLog::AppendAsync(std::move(d), std::move(cb));
    }).detach();
  }
};

// Keeps every append's answer until Release(): a disk that stalls past
// the shutdown's grace period.
class HeldLog : public MemoryEventLog {
 public:
  void AppendAsync(std::vector<EventDraft> drafts, AppendCallback cb) override {
    std::lock_guard<std::mutex> lk(mu_);
    held_.emplace_back(std::move(drafts), std::move(cb));
  }
  size_t held() {
    std::lock_guard<std::mutex> lk(mu_);
    return held_.size();
  }
  void Release() {
    std::vector<std::pair<std::vector<EventDraft>, AppendCallback>> held;
    {
      std::lock_guard<std::mutex> lk(mu_);
      held.swap(held_);
    }
    for (auto& [drafts, cb] : held) MemoryEventLog::AppendAsync(std::move(drafts), std::move(cb));
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<std::vector<EventDraft>, AppendCallback>> held_;
};

// Refuses every append as too large for good, as a cluster's ingest does
// a webhook whose event its log could not take (cluster/names.h, kMaxDraft).
class TooLargeLog : public MemoryEventLog {
 public:
  void AppendAsync(std::vector<EventDraft>, AppendCallback cb) override {
    cb(Status::TooLarge(
           "the webhook's event takes 1040000 bytes; in cluster mode the limit is 1032192"),
       {});
  }
};

class HttpFrontTest : public ::testing::Test {
 protected:
  // `env` adds to (or overrides) the fixture's settings; a non-empty
  // `admin_token` turns the admin endpoints on.
  void Start(EventLog* log = nullptr, Config::Env env = {}, std::string admin_token = "") {
    port_ = FreePort();
    std::vector<ConfigProblem> problems;
    ed_ = PrivateKey::GenerateEd25519();
    Config::Env base = {{"DFM_SERVER_LISTEN", "127.0.0.1:" + std::to_string(port_)},
                        {"DFM_SERVER_MAX_BODY_BYTES", "4096"},
                        {"DFM_SERVER_READ_TIMEOUT_MS", "500"},
                        {"DFM_SERVER_SHUTDOWN_GRACE_MS", "5000"},
                        {"DFM_SERVER_ADMIN_LISTEN", ""},  // on the main listener, as tests ask
                        {"DFM_VERITY_WEBHOOK_SECRET", "vs"},
                        {"DFM_GHL_ED25519_PUBLIC_KEY", ed_->PublicPem()},
                        {"DFM_GHL_LOCATION_ID", "ve9EPM428h8vShlRW1KT"},  // the fixtures'
                        {"DFM_GHL_TIMESTAMP_TOLERANCE_S", "315360000"},
                        // the fixtures' bodies carry fixed times
                        {"DFM_VERITY_TIMESTAMP_TOLERANCE_S", "315360000"},
                        {"DFM_TENANTS_ACME_VERITY_TIMESTAMP_TOLERANCE_S", "315360000"},
                        {"DFM_TENANTS", "acme"},
                        {"DFM_TENANTS_ACME_VERITY_WEBHOOK_SECRET", "vs-acme"}};
    for (auto& [k, v] : env) base[k] = v;
    config_ = Config::Load("", base, &problems);
    ASSERT_TRUE(problems.empty()) << problems[0].key << " " << problems[0].message;
    if (log == nullptr) {
      RocksDbLogOptions o;
      o.path = dir_.Sub("db");
      o.file_system = fs_;
      ASSERT_TRUE(RocksDbEventLog::Open(o, &rocks_).ok());
      log = rocks_.get();
    }
    log_ = log;
    front_ = std::make_unique<HttpFront>(config_, log_);
    if (!admin_token.empty()) front_->SetAdminToken(admin_token);
    runner_ = std::async(std::launch::async, [this] { return front_->Run(false); });
    for (int i = 0; i < 500 && !front_->listening(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_TRUE(front_->listening());
  }
  void TearDown() override {
    if (front_) {
      front_->Stop();
      EXPECT_TRUE(runner_.get().ok());
    }
    if (rocks_) rocks_->Close();
  }
  std::string Url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  // Signed with the secret of the tenant `path` names.
  testing::HttpResponse PostVerity(const std::string& body, std::vector<std::string> extra = {},
                                   const std::string& path = "/webhooks/verity") {
    extra.push_back("Content-Type: application/json");
    extra.push_back(Sig(body, path.rfind("/t/acme/", 0) == 0 ? "vs-acme" : "vs"));
    return Http("POST", Url(path), extra, body);
  }

  testing::TempDir dir_;
  std::shared_ptr<testing::FaultyFs> fs_ = std::make_shared<testing::FaultyFs>();
  std::unique_ptr<RocksDbEventLog> rocks_;
  EventLog* log_ = nullptr;
  std::unique_ptr<PrivateKey> ed_;
  Config config_;
  int port_ = 0;
  std::unique_ptr<HttpFront> front_;
  std::future<Status> runner_;
};

TEST_F(HttpFrontTest, AcceptedWebhookIsDurableBeforeTheAnswer) {
  Start();
  std::string body = Fixture("verity/message.received.json");
  auto r = PostVerity(body, {"X-Request-ID: proxy-req-7"});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"status\":\"accepted\""), std::string::npos);
  EXPECT_EQ(r.headers["x-request-id"], "proxy-req-7");
  EXPECT_EQ(log_->LastSequence(), 1u);  // in the log by the time the 2xx arrived
  std::vector<Event> events;
  ASSERT_TRUE(log_->Read(1, 10, &events).ok());
  WebhookReceived w;
  ASSERT_TRUE(DecodeWebhookReceived(events[0].schema_version, events[0].payload, &w).ok());
  EXPECT_EQ(w.body, body);
  EXPECT_EQ(w.request_id, "proxy-req-7");

  auto again = PostVerity(body);
  ASSERT_EQ(again.status, 200);
  EXPECT_NE(again.body.find("\"status\":\"duplicate\""), std::string::npos);
  EXPECT_EQ(again.headers["x-request-id"].size(), 32u);  // generated
  EXPECT_EQ(log_->LastSequence(), 1u);

  auto tenant = PostVerity(body, {}, "/t/acme/webhooks/verity");
  ASSERT_EQ(tenant.status, 200);
  EXPECT_NE(tenant.body.find("accepted"), std::string::npos);  // another tenant, another fact
  // Signed with the default tenant's secret, it is not acme's.
  auto crossed = Http("POST", Url("/t/acme/webhooks/verity"),
                      {"Content-Type: application/json", Sig(body)}, body);
  EXPECT_EQ(crossed.status, 401);
}

// Twilio reads the answer to an incoming message as TwiML and logs any
// other content type as error 12300 in the account's Debugger, once per
// text: a recorded Twilio webhook, new or again, is answered with an empty
// <Response/> as text/xml.
TEST_F(HttpFrontTest, ATwilioWebhookIsAnsweredWithEmptyTwiml) {
  const int port = FreePort();
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  Start(nullptr, {{"DFM_SERVER_LISTEN", "127.0.0.1:" + std::to_string(port)},
                  {"DFM_SERVER_PUBLIC_BASE_URL", base},
                  {"DFM_TWILIO_AUTH_TOKEN", "tok"}});
  const std::string body = Fixture("twilio/inbound-sms.form");
  auto params = ParseForm(body).value();
  std::sort(params.begin(), params.end());
  std::string signed_data = base + "/webhooks/twilio";
  for (const auto& [k, v] : params) signed_data += k + v;
  const std::string sig = "X-Twilio-Signature: " +
                          Base64Encode(HmacKey(HmacKey::Digest::kSha1, "tok").Mac(signed_data));
  for (int i = 0; i < 2; ++i) {
    auto r = Http("POST", base + "/webhooks/twilio",
                  {"Content-Type: application/x-www-form-urlencoded", sig}, body);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers["content-type"], "text/xml; charset=utf-8");
    EXPECT_NE(r.body.find("<Response></Response>"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("status"), std::string::npos) << r.body;
    EXPECT_EQ(r.headers["x-dfm-status"], i == 0 ? "accepted" : "duplicate");
    EXPECT_EQ(r.headers["x-dfm-seq"], "1");
  }
  EXPECT_EQ(log_->LastSequence(), 1u) << "recorded once";
  // Every other system keeps the JSON answer.
  auto verity =
      Http("POST", base + "/webhooks/verity",
           {"Content-Type: application/json", Sig(Fixture("verity/message.received.json"), "vs")},
           Fixture("verity/message.received.json"));
  ASSERT_EQ(verity.status, 200) << verity.body;
  EXPECT_NE(verity.body.find("\"status\":\"accepted\""), std::string::npos) << verity.body;
  EXPECT_EQ(verity.headers.count("x-dfm-status"), 0u);
}

TEST_F(HttpFrontTest, BadInputGetsJsonErrorsAndAppendsNothing) {
  Start();
  std::string body = Fixture("verity/message.received.json");
  struct Case {
    testing::HttpResponse r;
    long status;
    const char* error;
  };
  std::string malformed = "{\"eventType\": \"message.received\", ";
  std::vector<Case> cases = {
      {PostVerity(malformed), 400, "malformed_body"},
      {Http("POST", Url("/webhooks/verity"),
            {"Content-Type: application/json", "X-Texting-Signature: 00"}, body),
       401, "unauthorized"},
      {Http("POST", Url("/webhooks/verity"), {"Content-Type: application/json"}, body), 401,
       "unauthorized"},
      {PostVerity(body, {}, "/webhooks/hubspot"), 404, "not_found"},
      {PostVerity(body, {}, "/t/nobody/webhooks/verity"), 404, "not_found"},
      {PostVerity(std::string(5000, ' ')), 413, "body_too_large"},
      {Http("POST", Url("/webhooks/verity"), {"Content-Type: text/plain", Sig(body)}, body), 415,
       "unsupported_media_type"},
      {Http("GET", Url("/webhooks/verity")), 405, "method_not_allowed"},
  };
  for (auto& c : cases) {
    EXPECT_EQ(c.r.status, c.status) << c.r.body;
    EXPECT_NE(c.r.body.find(std::string("\"error\":\"") + c.error + "\""), std::string::npos)
        << c.r.body;
    EXPECT_NE(c.r.body.find("\"detail\":"), std::string::npos);
    EXPECT_EQ(c.r.headers["content-type"], "application/json");
    EXPECT_FALSE(c.r.headers["x-request-id"].empty());
  }
  // Far beyond the limit: the connection is cut instead of buffering it.
  auto huge = PostVerity(std::string(8 << 20, 'x'));
  EXPECT_TRUE(huge.status == 0 || huge.status == 413) << huge.status;
  EXPECT_EQ(log_->LastSequence(), 0u);
}

TEST_F(HttpFrontTest, FullDiskAnswersRetryableStatusAndRecovers) {
  Start();
  std::string body = Fixture("verity/message.received.json");
  fs_->FailWrites(true);
  auto r = PostVerity(body);
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("log_unavailable"), std::string::npos);
  EXPECT_EQ(r.headers["retry-after"], "5");
  EXPECT_EQ(Http("GET", Url("/readyz")).status, 503);
  EXPECT_EQ(Http("GET", Url("/healthz")).status, 200);  // alive, not ready

  // GoHighLevel retries only 429, so it is told 429.
  std::string ghl = Fixture("ghl/ContactCreate.json");
  auto g = Http("POST", Url("/webhooks/ghl"),
                {"Content-Type: application/json",
                 "X-GHL-Signature: " + Base64Encode(ed_->Sign(ghl))},
                ghl);
  EXPECT_EQ(g.status, 429);
  EXPECT_EQ(log_->LastSequence(), 0u);

  fs_->FailWrites(false);
  // The log's writer reopens it by itself, within its backoff; readiness
  // only reads that.
  int ready = 0;
  for (int i = 0; i < 1000 && ready != 200; ++i) {
    ready = Http("GET", Url("/readyz")).status;
    if (ready != 200) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(ready, 200);
  auto retry = PostVerity(body);
  ASSERT_EQ(retry.status, 200);
  EXPECT_NE(retry.body.find("accepted"), std::string::npos);  // the failed try left no trace
  EXPECT_EQ(log_->LastSequence(), 1u);
}

TEST_F(HttpFrontTest, NotReadyWhileTheDiskIsNearlyFullYetWebhooksAreStillTaken) {
  RocksDbLogOptions o;
  o.path = dir_.Sub("nearly-full");
  o.min_free_bytes = uint64_t{1} << 62;
  ASSERT_TRUE(RocksDbEventLog::Open(o, &rocks_).ok());
  Start(rocks_.get());
  auto ready = Http("GET", Url("/readyz"));
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("disk nearly full"), std::string::npos) << ready.body;
  auto h = Http("GET", Url("/v1/health"));
  EXPECT_NE(h.body.find("\"status\":\"degraded\""), std::string::npos) << h.body;
  // Still writable: the part says so, not "unavailable".
  EXPECT_NE(h.body.find("\"event_log\":{\"state\":\"low_disk\""), std::string::npos) << h.body;
  auto r = PostVerity(Fixture("verity/message.received.json"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(log_->LastSequence(), 1u);
}

// With server.admin_listen, the admin endpoints answer only there, and
// webhooks only on the main listener; both answer the health endpoints.
TEST_F(HttpFrontTest, AdminEndpointsMoveToTheirOwnListener) {
  int admin_port = FreePort();
  Start(nullptr, {{"DFM_SERVER_ADMIN_LISTEN", "127.0.0.1:" + std::to_string(admin_port)}},
        "admin-secret");
  auto admin = [&](int port, const std::string& path, std::vector<std::string> headers,
                   const std::string& body) {
    return Http("POST", "http://127.0.0.1:" + std::to_string(port) + path, headers, body);
  };
  std::vector<std::string> auth = {"Authorization: Bearer admin-secret",
                                   "Content-Type: application/json"};
  // On the main listener the admin path does not exist, token or not.
  auto on_main = admin(port_, "/v1/admin/replay", auth, "{}");
  EXPECT_EQ(on_main.status, 404) << on_main.body;
  EXPECT_NE(on_main.body.find("not_found"), std::string::npos);
  // On the admin listener it is the admin endpoint: checks its token, then
  // its body.
  EXPECT_EQ(admin(admin_port, "/v1/admin/replay", {"Content-Type: application/json"}, "{}").status,
            401);
  auto bad = admin(admin_port, "/v1/admin/replay", auth, "{}");
  EXPECT_EQ(bad.status, 400) << bad.body;
  auto unknown = admin(admin_port, "/v1/admin/other", auth, "{}");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(unknown.body.find("no such admin endpoint"), std::string::npos) << unknown.body;
  // Webhooks are not taken on the admin listener.
  std::string body = Fixture("verity/message.received.json");
  auto hook = admin(admin_port, "/webhooks/verity",
                    {"Content-Type: application/json", Sig(body)}, body);
  EXPECT_EQ(hook.status, 404);
  EXPECT_EQ(PostVerity(body).status, 200);
  EXPECT_EQ(Http("GET", "http://127.0.0.1:" + std::to_string(admin_port) + "/readyz").status, 200);
  EXPECT_EQ(log_->LastSequence(), 1u);
}

// POST /v1/admin/settle: the conflict is read and checked before anything
// is appended; the settlement is answered once durable, and a second one of
// the same conflict is a duplicate.
TEST_F(HttpFrontTest, AdminSettleAppendsOneSettlementPerConflict) {
  std::filesystem::create_directories(dir_.Sub("db"));
  std::string token;
  ASSERT_TRUE(WriteAdminToken(dir_.Sub("db"), &token).ok());
  Start(nullptr, {}, token);
  AppendOutcome conflict;
  ASSERT_TRUE(testing::AppendIdentityConflict(log_, "default", &conflict).ok());
  const std::vector<std::string> auth = {"Authorization: Bearer " + token,
                                         "Content-Type: application/json"};
  auto settle = [&](const std::string& body, const std::string& query = "") {
    return Http("POST", Url("/v1/admin/settle" + query), auth, body);
  };
  const std::string seq = std::to_string(conflict.seq);
  EXPECT_EQ(Http("POST", Url("/v1/admin/settle"), {"Content-Type: application/json"},
                 R"({"conflict":)" + seq + R"(,"contact":"contact-a"})")
                .status,
            401);
  auto bad = settle(R"({"conflict":)" + seq + "}");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("dismiss"), std::string::npos) << bad.body;
  auto other_event = settle(R"({"conflict":99,"contact":"contact-a"})");
  EXPECT_EQ(other_event.status, 404) << other_event.body;
  EXPECT_NE(other_event.body.find("unknown_conflict"), std::string::npos);
  auto other_tenant =
      settle(R"({"conflict":)" + seq + R"(,"contact":"contact-a"})", "?tenant=acme");
  EXPECT_EQ(other_tenant.status, 404) << "the conflict is the default tenant's";
  auto stranger = settle(R"({"conflict":)" + seq + R"(,"contact":"contact-z"})");
  EXPECT_EQ(stranger.status, 422);
  EXPECT_NE(stranger.body.find("not a candidate"), std::string::npos) << stranger.body;
  EXPECT_EQ(log_->LastSequence(), conflict.seq) << "nothing appended for a refusal";

  auto ok = settle(R"({"conflict":)" + seq + R"(,"contact":"contact-a","reason":"checked"})");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_NE(ok.body.find("\"status\":\"accepted\""), std::string::npos) << ok.body;
  // The settlement, and in the same write who asked for it.
  ASSERT_EQ(log_->LastSequence(), conflict.seq + 2);
  std::vector<Event> read;
  ASSERT_TRUE(log_->Read(conflict.seq + 1, 2, &read).ok());
  EXPECT_EQ(read.at(0).type, ev::kIdentitySettled);
  EXPECT_EQ(read.at(1).type, "admin.action");
  EXPECT_NE(read.at(1).payload.find("\"action\":\"settle\",\"target\":\"settle/"),
            std::string::npos)
      << read.at(1).payload;
  EXPECT_NE(read.at(1).payload.find("\"credential\":\"admin-token\",\"peer\":\"127.0.0.1\""),
            std::string::npos)
      << read.at(1).payload;
  auto again = settle(R"({"conflict":)" + seq + R"(,"dismiss":true})");
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_NE(again.body.find("\"status\":\"duplicate\""), std::string::npos) << again.body;
  EXPECT_EQ(log_->LastSequence(), conflict.seq + 3) << "the attempt is recorded, not the settlement";

  // `dfm conflicts settle` finds the running service by the data
  // directory's token and asks it; its refusals come back as such.
  std::string how;
  uint64_t seq_back = 0;
  bool duplicate = false;
  ASSERT_TRUE(SubmitSettlement(dir_.Sub("db"), Url(""), "default",
                               {conflict.seq, "contact-b", false, ""}, &how, &seq_back, &duplicate)
                  .ok());
  EXPECT_TRUE(duplicate);
  EXPECT_EQ(seq_back, conflict.seq + 1);
  EXPECT_NE(how.find("running service"), std::string::npos) << how;
  Status refused = SubmitSettlement(dir_.Sub("db"), Url(""), "default",
                                    {99, "contact-b", false, ""}, &how, &seq_back, &duplicate);
  EXPECT_EQ(refused.code(), Status::Code::kInvalidArgument) << refused.ToString();
}

TEST_F(HttpFrontTest, HealthEndpoints) {
  Start();
  EXPECT_EQ(Http("GET", Url("/healthz")).status, 200);
  EXPECT_EQ(Http("GET", Url("/readyz")).status, 200);
  auto h = Http("GET", Url("/v1/health"));
  ASSERT_EQ(h.status, 200);
  EXPECT_NE(h.body.find("\"version\":\"0.1.0\""), std::string::npos);
  EXPECT_NE(h.body.find("\"uptime_s\":"), std::string::npos);
  EXPECT_NE(h.body.find("\"event_log\":{\"state\":\"writable\""), std::string::npos);
  EXPECT_NE(h.body.find("\"http\":{\"state\":\"serving\""), std::string::npos);
  // The log's counters sit in its part, after its state.
  ASSERT_EQ(PostVerity(Fixture("verity/message.received.json")).status, 200);
  h = Http("GET", Url("/v1/health"));
  // How long the sync took depends on the disk under the test: the one
  // commit is slow or not, and its time is some number.
  const std::string head =
      "\"event_log\":{\"state\":\"writable\",\"last_seq\":1,\"group_commits\":1,"
      "\"events_appended\":1,\"failed_commits\":0,\"index_refused\":0,\"slow_commits\":";
  size_t at = h.body.find(head);
  ASSERT_NE(at, std::string::npos) << h.body;
  at += head.size();
  EXPECT_TRUE(h.body.compare(at, 1, "0") == 0 || h.body.compare(at, 1, "1") == 0) << h.body;
  const std::string slowest = ",\"slowest_commit_us\":";
  EXPECT_EQ(h.body.compare(at + 1, slowest.size(), slowest), 0) << h.body;
  at += 1 + slowest.size();
  const size_t digits = h.body.find_first_not_of("0123456789", at);
  EXPECT_GT(digits, at) << h.body;
  const std::string tail = ",\"wal_trash_bytes\":0,\"wals_deleted_whole\":0,\"crc32c_hardware\":" +
                           std::string(Crc32cHardware() ? "1" : "0") + ",\"high_water_seq\":";
  EXPECT_EQ(h.body.compare(digits, tail.size(), tail), 0) << h.body;
  // The mark follows the head a little behind it: 0 or 1 here.
  const std::string mark = h.body.substr(digits + tail.size(), 2);
  EXPECT_TRUE(mark == "0}" || mark == "1}") << h.body;
}

TEST_F(HttpFrontTest, StalledClientIsCutOff) {
  Start();
  int fd = ConnectLoopback(port_);
  ASSERT_GE(fd, 0);
  std::string partial = "POST /webhooks/verity HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{";
  ASSERT_GT(send(fd, partial.data(), partial.size(), 0), 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  auto t0 = std::chrono::steady_clock::now();
  char buf[256];
  ssize_t n = recv(fd, buf, sizeof(buf), 0);
  auto waited = std::chrono::steady_clock::now() - t0;
  close(fd);
  EXPECT_LE(n, 0) << "the server closes a connection that stalls mid-request";
  EXPECT_LT(waited, std::chrono::seconds(4));
  EXPECT_EQ(Http("GET", Url("/healthz")).status, 200);  // and still serves others
}

// A connection could buffer four times the body limit before its 413 (and
// past that was closed without an answer). Now nothing past the limit is
// kept, declared or chunked, and the answer is still a 413.
TEST_F(HttpFrontTest, ABodyOverTheLimitIsAnswered413WithoutBeingKept) {
  Start();
  auto declared = PostVerity(std::string(64 << 20, 'x'));  // 64 MiB against a 4 KiB limit
  EXPECT_EQ(declared.status, 413);
  EXPECT_NE(declared.body.find("\"error\":\"body_too_large\""), std::string::npos);
  EXPECT_NE(declared.body.find("body is 67108864 bytes; the limit is 4096"), std::string::npos)
      << declared.body;
  auto chunked =
      Http("POST", Url("/webhooks/verity"),
           {"Content-Type: application/json", "Transfer-Encoding: chunked", Sig("x")},
           std::string(1 << 20, 'x'));
  EXPECT_EQ(chunked.status, 413) << chunked.body;
  EXPECT_EQ(log_->LastSequence(), 0u);
  EXPECT_EQ(PostVerity(Fixture("verity/message.received.json")).status, 200);  // and on it goes
}

// A webhook the log refuses for good (too large for a cluster's log) is
// answered 413 with the reason, not 503: a sender trying again would be
// refused again.
TEST_F(HttpFrontTest, AnEventTheLogCanNeverTakeIsAnswered413) {
  TooLargeLog log;
  Start(&log);
  auto r = PostVerity(Fixture("verity/message.received.json"));
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_NE(r.body.find("\"error\":\"body_too_large\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("in cluster mode the limit is 1032192"), std::string::npos) << r.body;
}

// One address could open every connection the service takes, and send as
// fast as it liked.
TEST_F(HttpFrontTest, EachClientHasItsShareOfConnectionsAndRequests) {
  Start(nullptr, {{"DFM_SERVER_MAX_CONNECTIONS_PER_IP", "2"},
                  {"DFM_SERVER_RATE_LIMIT_PER_IP", "1"},
                  {"DFM_SERVER_TRUSTED_PROXIES", "10.0.0.9"}});  // this test's 127.0.0.1 is a client
  int a = ConnectLoopback(port_), b = ConnectLoopback(port_);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // both counted
  int c = ConnectLoopback(port_);
  ASSERT_TRUE(a >= 0 && b >= 0 && c >= 0);
  timeval tv{5, 0};
  setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char buf[16];
  EXPECT_EQ(recv(c, buf, sizeof(buf), 0), 0) << "the third is closed at once";
  close(a);
  close(b);
  close(c);

  // One request a second, bursts of two, per client address.
  std::string body = Fixture("verity/message.received.json");
  int limited = 0;
  testing::HttpResponse last;
  for (int i = 0; i < 4; ++i) {
    last = PostVerity(body);
    limited += last.status == 503 ? 1 : 0;
  }
  EXPECT_GE(limited, 1);
  EXPECT_EQ(last.status, 503) << last.body;  // Verity retries 5xx (GoHighLevel would get 429)
  EXPECT_NE(last.body.find("\"error\":\"rate_limited\""), std::string::npos);
  EXPECT_FALSE(last.headers["retry-after"].empty());
}

// Behind a trusted proxy the client is the one X-Forwarded-For names; the
// proxy's own requests (no such client) are not limited.
TEST_F(HttpFrontTest, BehindAProxyTheForwardedClientIsLimited) {
  Start(nullptr, {{"DFM_SERVER_RATE_LIMIT_PER_IP", "1"}});  // 127.0.0.1 is a trusted proxy
  std::string body = Fixture("verity/message.received.json");
  int limited = 0;
  for (int i = 0; i < 4; ++i)
    limited += PostVerity(body, {"X-Forwarded-For: 203.0.113.7"}).status == 503 ? 1 : 0;
  EXPECT_GE(limited, 1);
  EXPECT_EQ(PostVerity(body, {"X-Forwarded-For: 203.0.113.8"}).status, 200);  // another client
  for (int i = 0; i < 4; ++i) EXPECT_EQ(PostVerity(body).status, 200);
}

TEST_F(HttpFrontTest, StopAnswersRequestsInFlight) {
  SlowLog slow;
  Start(&slow);
  std::string body = Fixture("verity/message.received.json");
  auto pending = std::async(std::launch::async, [&] { return PostVerity(body); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  front_->Stop();
  auto r = pending.get();
  EXPECT_EQ(r.status, 200) << "a request in flight at shutdown is still answered";
  EXPECT_EQ(slow.LastSequence(), 1u);
  EXPECT_TRUE(runner_.get().ok());
  front_.reset();
  EXPECT_EQ(Http("GET", Url("/healthz"), {}, "", 1000).status, 0);  // no longer listening
}

// A webhook arriving while the service drains cannot be taken now: its
// sender must be told to retry. GoHighLevel retries only 429 (a 503 there
// is a webhook lost), the others 503 (http/ingest.h, RetryStatusFor).
TEST_F(HttpFrontTest, WhileShuttingDownEachSenderGetsAStatusItRetries) {
  SlowLog slow;
  Start(&slow);
  const int ghl = ConnectLoopback(port_), verity = ConnectLoopback(port_);  // kept alive
  ASSERT_GE(ghl, 0);
  ASSERT_GE(verity, 0);
  auto pending = std::async(std::launch::async,
                            [&] { return PostVerity(Fixture("verity/message.received.json")); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  front_->Stop();  // drains while the request above is in flight
  auto status_of = [](int fd, const std::string& path) {
    const std::string req = "POST " + path +
                            " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                            "Content-Length: 2\r\n\r\n{}";
    if (send(fd, req.data(), req.size(), 0) != static_cast<ssize_t>(req.size()))
      return std::string();
    char buf[512];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    return n > 12 ? std::string(buf, 12) : std::string();
  };
  EXPECT_EQ(status_of(ghl, "/webhooks/ghl"), "HTTP/1.1 429");
  EXPECT_EQ(status_of(verity, "/webhooks/verity"), "HTTP/1.1 503");
  close(ghl);
  close(verity);
  EXPECT_EQ(pending.get().status, 200);
}

// The log answers after the grace period ended and the servers are gone
// (serve_node.cc closes the log after the front's Run): the request the
// answer was for is let go while its server still existed, and the late
// answer touches nothing of it (ASan checks).
TEST_F(HttpFrontTest, AnAnswerAfterTheGracePeriodTouchesNoServer) {
  HeldLog held;
  Start(&held, {{"DFM_SERVER_SHUTDOWN_GRACE_MS", "200"}});
  std::string body = Fixture("verity/message.received.json");
  auto pending = std::async(std::launch::async, [&] { return PostVerity(body); });
  for (int i = 0; i < 200 && held.held() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(held.held(), 1u);
  front_->Stop();
  EXPECT_TRUE(runner_.get().ok());
  EXPECT_NE(pending.get().status, 200) << "not answered as stored: it was not yet";
  held.Release();  // durable now; its answer comes to a front that stopped
  EXPECT_EQ(held.LastSequence(), 1u);
  front_.reset();
}

// The same for the console's writes (an API key made through the admin
// endpoint): the log's late answer finds the console and no request.
TEST_F(HttpFrontTest, AConsoleWritesLateAnswerTouchesNoServer) {
  HeldLog held;
  Start(&held, {{"DFM_SERVER_SHUTDOWN_GRACE_MS", "200"}}, "admin-secret");
  auto pending = std::async(std::launch::async, [&] {
    return Http("POST", Url("/v1/admin/keys"),
                {"Authorization: Bearer admin-secret", "Content-Type: application/json"},
                R"({"name":"late","role":"viewer","tenant":"default"})");
  });
  for (int i = 0; i < 200 && held.held() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(held.held(), 1u);
  front_->Stop();
  EXPECT_TRUE(runner_.get().ok());
  EXPECT_NE(pending.get().status, 201);
  held.Release();
  EXPECT_GE(held.LastSequence(), 1u);
  front_.reset();
}

// Another node's read (cluster mode) before Run started the console or
// after Run ended is answered at once with a 503 (the serving side counts
// it done; the asker says owner_unreachable), never dropped or crashed on.
TEST_F(HttpFrontTest, OtherNodesReadsAreAnsweredWhenNotServing) {
  Start();
  auto ask = [](HttpFront* front, EventLog* log) {
    std::string got = "none";
    front->AnswerRemoteRead(*log, "{}", [&got](std::string answer) { got = std::move(answer); });
    ApiResponse a;
    return DecodeReadAnswer(got, &a) ? a.status : -1;
  };
  HttpFront idle(config_, log_);  // made, not run
  EXPECT_EQ(ask(&idle, log_), 503);
  front_->Stop();
  EXPECT_TRUE(runner_.get().ok());
  EXPECT_EQ(ask(front_.get(), log_), 503) << "after Run";
  front_.reset();
}

}  // namespace
}  // namespace dfm
