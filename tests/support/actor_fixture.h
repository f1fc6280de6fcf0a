// The sync actors' test fixture: CAF's test coordinator (one thread,
// simulated time, every message delivered when the test says so), the
// in-memory log (it answers appends inline) and a vendor whose answers the
// test gives (ScriptedClient).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "actors/contact_actor.h"
#include "actors/engine.h"
#include "config/config.h"
#include "events/webhook_received.h"
#include "storage/memory_event_log.h"
#include "sync/normalize.h"
#include "tests/support/fixtures.h"
#include "util/clock.h"

namespace dfm {
namespace testing {


inline constexpr int64_t kStart = 1'795'000'000'000'000;  // µs, late 2026

// A vendor whose answers the test gives, one push at a time.
class ScriptedClient : public VendorClient {
 public:
  struct Call {
    PushRequest req;
    Credentials creds;
    std::function<void(PushResult)> done;
  };
  std::vector<Call> pushes;
  std::vector<std::function<void(TokenGrant)>> refreshes;
  bool oauth = false;
  bool sends_not_idempotent = false;  // MayApplyTwice for op "send"

  void Push(const PushRequest& req, const Credentials& creds,
            std::function<void(PushResult)> done) override {
    pushes.push_back({req, creds, std::move(done)});
  }
  bool MayApplyTwice(const PushRequest& req) const override {
    return sends_not_idempotent && req.op == "send";
  }
  bool UsesOAuth() const override { return oauth; }
  std::vector<Credentials> refreshed_with;  // each refresh's grant, in order
  void RefreshToken(const Credentials& creds, std::function<void(TokenGrant)> done) override {
    refreshed_with.push_back(creds);
    refreshes.push_back(std::move(done));
  }
  // What the vendor answers a refresh with: a new grant.
  static TokenGrant Granted(std::string access, std::string refresh, int64_t expires_in_s) {
    TokenGrant g;
    g.ok = true;
    g.access_token = std::move(access);
    g.refresh_token = std::move(refresh);
    g.expires_in_s = expires_in_s;
    return g;
  }
  // Backfill reads (list pages) asked of it, answered by the test.
  struct ListCall {
    std::string cursor;
    Credentials creds;
    std::function<void(ContactPage)> done;
  };
  std::vector<ListCall> lists;
  bool CanList() const override { return true; }
  void ListContacts(const std::string& cursor, int, const Credentials& creds,
                    std::function<void(ContactPage)> done) override {
    lists.push_back({cursor, creds, std::move(done)});
  }
  void AnswerList(size_t i, int status, size_t contacts = 0) {
    ContactPage p;
    p.http_status = status;
    p.auth_rejected = status == 401;
    for (size_t k = 0; k < contacts; ++k) p.contacts.push_back({"id" + std::to_string(k), "v1", "{}"});
    lists.at(i).done(std::move(p));
  }
  void Answer(size_t i, int status, std::string ext = "") {
    PushResult r;
    r.http_status = status;
    r.requests = 1;
    r.external_id = std::move(ext);
    pushes.at(i).done(r);
  }
};

class ActorTest : public ::testing::Test {
 protected:
  ActorTest() {
    cfg_.set("scheduler.policy", caf::atom("testing"));
    cfg_.set("logger.console", caf::atom("none"));
    AddSyncMessageTypes(cfg_);
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    sched_ = &dynamic_cast<caf::scheduler::test_coordinator&>(sys_->scheduler());
    env_ = std::make_shared<SyncEnv>();
    env_->log = &log_;
    ApplyBuiltinDefaults(&env_->ctx);
    env_->mapper.normalizer = &normalizer_;
    env_->now_us = [this] { return clock_.NowMicros(); };
    env_->contact_idle_us = 60'000'000;
  }

  ~ActorTest() override {
    // Every actor ends before the system does (the router takes its contacts).
    for (auto& a : spawned_) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    sched_->run();
    sched_->clock().cancel_all();
    sched_->run();
  }

  caf::actor Keep(caf::actor a) {
    spawned_.push_back(a);
    return a;
  }

  // A router on env_, told of `connector` (when given) and started as the
  // engine starts it; whatever that delivers is delivered.
  caf::actor StartRouter(const caf::actor& connector = caf::actor()) {
    auto router = Keep(sys_->spawn(Router, std::shared_ptr<const SyncEnv>(env_)));
    if (connector) caf::anon_send(connector, router);
    caf::anon_send(router, recover_atom::value);
    sched_->run();
    return router;
  }

  // The default tenant's Aloware connector on `client`, the sync's way to
  // Aloware (*connector, when given), and a router started on it.
  caf::actor StartSyncTo(std::shared_ptr<ScriptedClient> client, caf::actor* connector = nullptr) {
    caf::actor c = Connector(std::move(client));
    env_->connectors[{"default", "aloware"}] = c;
    if (connector) *connector = c;
    return StartRouter(c);
  }

  // The sync of people to Aloware (first and last name, email, phone) on
  // `client`, its state on a status board: the router, started.
  caf::actor StartPeopleSync(std::shared_ptr<ScriptedClient> client) {
    env_->ctx.targets["aloware"] = {"first_name", "last_name", "email", "phone"};
    env_->board = std::make_shared<SyncStatusBoard>();
    return StartSyncTo(std::move(client));
  }

  // Ann ("a") and Bo ("b") made known through `router` and synced to
  // Aloware (`client`'s first two pushes answered), then passivated: the
  // next message to either reads its stream. Their contact streams, Ann's
  // first.
  std::vector<std::string> AnnAndBoSyncedThenIdle(const caf::actor& router,
                                                  ScriptedClient* client) {
    for (const std::string who : {"a", "b"}) {
      AppendPersonWebhook(who, "0", who == "a" ? "Ann" : "Bo");
      caf::anon_send(router, poll_atom::value);
      sched_->run();
    }
    EXPECT_EQ(client->pushes.size(), 2u);
    if (client->pushes.size() < 2) return {};
    client->Answer(0, 200, "alo-a");  // a contact's next push waits for its last
    client->Answer(1, 200, "alo-b");
    sched_->run();
    std::vector<Event> all;
    EXPECT_TRUE(log_.Read(1, 1000, &all).ok());
    std::vector<std::string> streams;
    for (const auto& e : all)
      if (e.stream.rfind("contact:", 0) == 0 &&
          std::find(streams.begin(), streams.end(), e.stream) == streams.end())
        streams.push_back(e.stream);
    Advance(env_->contact_idle_us + 1);
    return streams;
  }

  // Contact "c1"'s actor alone, its router a stand-in that keeps the
  // webhook_seq of each FactDone in *answers.
  caf::actor LoneContact(std::shared_ptr<std::vector<uint64_t>> answers) {
    auto router = Keep(sys_->spawn(  // (an argument: see ReportSink)
        [](caf::event_based_actor*, std::shared_ptr<std::vector<uint64_t>> got) -> caf::behavior {
          return {[=](FactDone& d) { got->push_back(d.webhook_seq); }, [](started_atom) {}};
        },
        std::move(answers)));
    auto contact = Keep(sys_->spawn(ContactActor, std::shared_ptr<const SyncEnv>(env_), router,
                                    std::string("default"), std::string("c1"), false));
    sched_->run();
    return contact;
  }

  // A GoHighLevel contact webhook (ghl/ContactCreate.json) appended, and
  // what `router` makes of it delivered. Its sequence number.
  uint64_t RouteGhlWebhook(const caf::actor& router, const std::string& webhook_id,
                           const std::string& first_name) {
    const uint64_t seq = AppendGhlWebhook("ghl/ContactCreate.json", webhook_id, first_name);
    caf::anon_send(router, poll_atom::value);
    sched_->run();
    return seq;
  }

  // Moves both clocks on and delivers whatever became due.
  void Advance(int64_t us) {
    clock_.Advance(us);
    sched_->advance_time(std::chrono::microseconds(us));
    sched_->run();
  }

  // A stand-in router that keeps the reports a connector sends.
  caf::actor ReportSink() {
    // (An argument, not a capture: CAF 0.17 binds a null reference for
    // argument-less function actors, which UBSan reports.)
    using Reports = std::shared_ptr<std::vector<PushReport>>;
    return Keep(sys_->spawn(
        [](caf::event_based_actor*, Reports reports) -> caf::behavior {
          return {[reports](PushReport& r) { reports->push_back(std::move(r)); },
                  [](started_atom) {}};
        },
        reports_));
  }

  // The default tenant's Aloware connector on `client`, seeded.
  static ConnectorSettings Settings(std::shared_ptr<ScriptedClient> client) {
    ConnectorSettings s;
    s.tenant = "default";
    s.system = "aloware";
    s.client = std::move(client);
    s.seed = 7;
    return s;
  }

  caf::actor Connector(const ConnectorSettings& s) {
    auto a = Keep(sys_->spawn(ConnectorActor, std::shared_ptr<const SyncEnv>(env_), ReportSink(), s));
    sched_->run();
    return a;
  }

  // `status`: the board it publishes on (none when null).
  caf::actor Connector(std::shared_ptr<ScriptedClient> client, Credentials creds = {},
                       std::shared_ptr<ConnectorStatus> status = nullptr) {
    ConnectorSettings s = Settings(std::move(client));
    s.credentials = creds;
    s.status = std::move(status);
    return Connector(s);
  }

  // A new run's aloware connector (`client`'s, its sends not idempotent),
  // handed `send` again as a restart's router hands it (redriven).
  caf::actor Rerun(std::shared_ptr<ScriptedClient> client, PushOrder send) {
    client->sends_not_idempotent = true;
    auto c = Connector(Settings(std::move(client)));
    send.redriven = true;
    caf::anon_send(c, send);
    sched_->run();
    return c;
  }

  // The reason of the last push.dead_lettered reported ("" when none).
  std::string DeadLetterReason() const {
    std::string reason;
    for (const auto& r : *reports_)
      for (const auto& e : r.events)
        if (e.type == ev::kPushDeadLettered) reason = e.reason;
    return reason;
  }

  PushOrder Order(const std::string& push_id, const std::string& contact, int priority = 0) {
    PushOrder o;
    o.tenant = "default";
    o.request.type = std::string(ev::kPushRequested);
    o.request.contact_id = contact;
    o.request.system = "aloware";
    o.request.push_id = push_id;
    o.request.op = "upsert";
    o.request.priority = priority;
    o.request.fields = {{"phone", "+12055550142"}};
    return o;
  }

  // The fixture with the string values of some of its top-level keys replaced.
  static std::string GhlBody(const std::string& fixture,
                             const std::vector<std::pair<std::string, std::string>>& values) {
    std::string body = Fixture(fixture);
    for (const auto& [key, value] : values) {
      auto at = body.find("\"" + key + "\"");
      auto colon = body.find(':', at), q1 = body.find('"', colon + 1), q2 = body.find('"', q1 + 1);
      body.replace(q1 + 1, q2 - q1 - 1, value);
    }
    return body;
  }

  // The GoHighLevel webhook `body` (its webhookId `webhook_id`) appended,
  // then routed by `router`; its sequence number.
  uint64_t RouteGhlBody(const caf::actor& router, const std::string& webhook_id, std::string body) {
    WebhookReceived w;
    w.system = "ghl";
    w.provider_event_id = webhook_id;
    AppendOutcome out;
    EXPECT_TRUE(log_.Append(WebhookDraft("default", w, std::move(body)), &out).ok());
    caf::anon_send(router, poll_atom::value);
    sched_->run();
    return out.seq;
  }

  uint64_t AppendGhlWebhook(const std::string& fixture, const std::string& webhook_id,
                            const std::string& first_name) {
    std::string body = GhlBody(fixture, {{"webhookId", webhook_id}, {"firstName", first_name}});
    WebhookReceived w;
    w.system = "ghl";
    w.provider_event_id = webhook_id;
    EventDraft d = WebhookDraft("default", w, body);
    AppendOutcome out;
    EXPECT_TRUE(log_.Append(std::move(d), &out).ok());
    return out.seq;
  }

  // A GoHighLevel contact webhook of person `who` ("a" or "b": their own
  // id, phone and email), its `n`-th, naming them `first_name`; appended,
  // not routed. Its sequence number.
  uint64_t AppendPersonWebhook(const std::string& who, const std::string& n,
                               const std::string& first_name) {
    std::string body = GhlBody("ghl/ContactCreate.json",
                               {{"webhookId", who + "-" + n},
                                {"id", "ghl-" + who},
                                {"phone", who == "a" ? "(205) 555-0101" : "(205) 555-0102"},
                                {"email", who + "@example.com"},
                                {"firstName", first_name}});
    WebhookReceived w;
    w.system = "ghl";
    w.provider_event_id = who + "-" + n;
    AppendOutcome out;
    EXPECT_TRUE(log_.Append(WebhookDraft("default", w, body), &out).ok());
    return out.seq;
  }

  // Appends `fixture` (some top-level values replaced) as `system`'s
  // webhook `id`, has `router` read it, and delivers what follows.
  void DeliverWebhook(const caf::actor& router, const std::string& system, const std::string& fixture,
                      const std::vector<std::pair<std::string, std::string>>& values, const std::string& id) {
    WebhookReceived w;
    w.system = system;
    w.provider_event_id = id;
    AppendOutcome out;
    ASSERT_TRUE(log_.Append(WebhookDraft("default", w, GhlBody(fixture, values)), &out).ok());
    caf::anon_send(router, poll_atom::value);
    sched_->run();
  }

  std::vector<std::string> TypesIn(const std::string& stream_prefix) {
    std::vector<Event> all;
    EXPECT_TRUE(log_.Read(1, 100000, &all).ok());
    std::vector<std::string> out;
    for (const auto& e : all)
      if (e.stream.rfind(stream_prefix, 0) == 0) out.push_back(e.type);
    return out;
  }

  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  caf::scheduler::test_coordinator* sched_ = nullptr;
  ManualClock clock_{kStart};
  MemoryEventLog log_{&clock_};  // events recorded at the service's (simulated) time
  Normalizer normalizer_{"US"};
  std::shared_ptr<SyncEnv> env_;
  std::vector<caf::actor> spawned_;
  std::shared_ptr<std::vector<PushReport>> reports_ = std::make_shared<std::vector<PushReport>>();
};

}  // namespace testing
}  // namespace dfm
