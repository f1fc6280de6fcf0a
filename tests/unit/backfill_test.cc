// `dfm backfill`'s driver on the in-memory log with a scripted vendor:
// paging, resuming, retries, token refresh, lookup by phone, idempotency;
// and the command refused in cluster mode.
#include "app/backfill.h"
#include "app/backfill_command.h"
#include "app/backfill_jobs.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <filesystem>
#include <sstream>

#include "connectors/connector.h"
#include "events/webhook_received.h"
#include "projections/sync_projections.h"
#include "storage/memory_event_log.h"
#include "sync/identity.h"

namespace dfm {
namespace {

std::string GhlContact(const std::string& id, const std::string& phone,
                       const std::string& updated) {
  return R"({"id":")" + id + R"(","firstName":"F)" + id + R"(","phone":")" + phone +
         R"(","dateUpdated":")" + updated + R"("})";
}

// A vendor whose contacts are a list; pages are cut by index. `script`
// answers the next requests with a status first (e.g. 429, 500, 401).
class ScriptedVendor : public VendorClient {
 public:
  struct Entry {
    std::string id, phone, version;
  };
  std::vector<Entry> contacts;
  bool list = true;
  bool oauth = false;
  std::deque<int> script;   // statuses to answer before serving
  int fail_at_cursor = -1;  // answer 400 when asked for this cursor
  std::vector<std::string> cursors_asked, tokens_used, phones_asked;
  std::vector<int> sizes_asked;
  int refreshes = 0;

  void Push(const PushRequest&, const Credentials&, std::function<void(PushResult)> done) override {
    done(PushResult{});  // backfill never pushes
  }
  bool UsesOAuth() const override { return oauth; }
  bool CanList() const override { return list; }
  bool CanLookupByPhone() const override { return !list; }

  bool Scripted(const Credentials& c, ContactPage* p) {
    tokens_used.push_back(c.access_token);
    if (script.empty()) return false;
    p->http_status = script.front();
    script.pop_front();
    p->detail = "HTTP " + std::to_string(p->http_status);
    p->auth_rejected = p->http_status == 401;
    if (p->http_status == 429) p->retry_after_us = 7000000;
    return true;
  }

  void ListContacts(const std::string& cursor, int page_size, const Credentials& c,
                    std::function<void(ContactPage)> done) override {
    ContactPage p;
    p.url = "http://vendor/contacts/search";
    cursors_asked.push_back(cursor);
    sizes_asked.push_back(page_size);
    if (Scripted(c, &p)) return done(std::move(p));
    size_t start = cursor.empty() ? 0 : std::stoul(cursor);
    if (static_cast<int>(start) == fail_at_cursor) {
      p.http_status = 400;
      p.detail = "HTTP 400: bad request";
      return done(std::move(p));
    }
    p.http_status = 200;
    p.total = static_cast<int64_t>(contacts.size());
    for (size_t i = start; i < contacts.size() && i < start + page_size; ++i) {
      const auto& e = contacts[i];
      p.contacts.push_back({e.id, e.version, GhlContact(e.id, e.phone, e.version)});
    }
    if (start + page_size < contacts.size()) p.next_cursor = std::to_string(start + page_size);
    done(std::move(p));
  }

  void LookupByPhone(const std::string& e164, const Credentials& c,
                     std::function<void(ContactPage)> done) override {
    ContactPage p;
    phones_asked.push_back(e164);
    if (Scripted(c, &p)) return done(std::move(p));
    p.http_status = 404;
    for (const auto& e : contacts) {
      if (e.phone != e164) continue;
      p.http_status = 200;
      p.contacts.push_back({e.id, e.version,
                            R"({"id":)" + e.id + R"(,"phone_number":")" + e.phone +
                                R"(","first_name":"A)" + e.id + R"(","updated_at":")" + e.version +
                                R"("})"});
    }
    done(std::move(p));
  }

  void RefreshToken(const Credentials& c, std::function<void(TokenGrant)> done) override {
    refreshes++;
    TokenGrant g;
    g.ok = c.refresh_token != "spent";
    g.access_token = "a2";
    g.refresh_token = "r2";
    g.expires_in_s = 86400;
    done(g);
  }
};

class BackfillTest : public testing::Test {
 protected:
  BackfillTest() : normalizer_("US") {
    deps_.log = &log_;
    deps_.client = &vendor_;
    deps_.normalizer = &normalizer_;
    deps_.now_us = [this] { return now_; };
    deps_.sleep_us = [this](int64_t us) {
      slept_.push_back(us);
      now_ += us;
    };
    deps_.credentials.access_token = "a1";
    deps_.credentials.refresh_token = "r1";
    opts_.system = "ghl";
    opts_.page_size = 2;
    opts_.run_id = "run-1";
  }

  Status Run(BackfillStats* st) {
    progress_calls_ = 0;
    return RunBackfill(
        opts_, deps_, [this](const BackfillStats&) { progress_calls_++; }, st);
  }

  std::vector<Event> Imported(const std::string& system) {
    std::vector<Event> out;
    EXPECT_TRUE(log_.ReadStream("default", "backfill:" + system, 0, 1000, &out).ok());
    return out;
  }

  MemoryEventLog log_;
  ScriptedVendor vendor_;
  Normalizer normalizer_;
  BackfillDeps deps_;
  BackfillOptions opts_;
  int64_t now_ = 1'000'000'000'000'000;
  std::vector<int64_t> slept_;
  int progress_calls_ = 0;
};

TEST_F(BackfillTest, PagesThroughEveryContactAsImportedEventsThatMapToFacts) {
  for (int i = 1; i <= 5; ++i)
    vendor_.contacts.push_back({"g" + std::to_string(i), "+1205555010" + std::to_string(i),
                                "2026-11-0" + std::to_string(i) + "T10:00:00.000Z"});
  opts_.min_interval_us = 100000;
  BackfillStats st;
  ASSERT_TRUE(Run(&st).ok());
  EXPECT_TRUE(st.finished);
  EXPECT_EQ(st.pages, 3);
  EXPECT_EQ(st.seen, 5);
  EXPECT_EQ(st.imported, 5);
  EXPECT_EQ(st.total, 5);
  EXPECT_EQ(vendor_.cursors_asked, (std::vector<std::string>{"", "2", "4"}));
  EXPECT_GE(progress_calls_, 3);
  // Paced by the rate limit: one request per 100 ms.
  EXPECT_EQ(slept_, (std::vector<int64_t>{100000, 100000}));

  auto events = Imported("ghl");
  ASSERT_EQ(events.size(), 5u);
  const Event& e = events[0];
  EXPECT_EQ(e.type, kContactImportedType);
  ASSERT_TRUE(e.source_time_us.has_value());
  WebhookReceived w;
  ASSERT_TRUE(DecodeWebhookReceived(e.schema_version, e.payload, &w).ok());
  EXPECT_EQ(w.provider_event_id, "backfill/g1/2026-11-01T10:00:00.000Z");
  EXPECT_EQ(w.verification, "api");
  EXPECT_EQ(w.request_id, "run-1");
  // The router reads it with the import mapper: a GoHighLevel fact.
  MapperSettings ms;
  ms.normalizer = &normalizer_;
  std::vector<ContactFact> facts;
  ASSERT_TRUE((*FindMapperFor(kContactImportedType, "ghl"))(w, ms, &facts).ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].external_id, "g1");
  EXPECT_EQ(facts[0].fields.at("phone"), "+12055550101");
  EXPECT_EQ(facts[0].fields.at("first_name"), "Fg1");

  // Nothing left to continue from.
  std::string pos;
  EXPECT_FALSE(log_.GetConsumerState(kBackfillConsumer, "default/ghl", &pos).ok());
}

TEST_F(BackfillTest, RunningAgainImportsOnlyWhatChanged) {
  for (int i = 1; i <= 3; ++i)
    vendor_.contacts.push_back({"g" + std::to_string(i), "+1205555010" + std::to_string(i), "v1"});
  BackfillStats st;
  ASSERT_TRUE(Run(&st).ok());
  EXPECT_EQ(st.imported, 3);
  vendor_.contacts[1].version = "v2";
  ASSERT_TRUE(Run(&st).ok());
  EXPECT_EQ(st.imported, 1);
  EXPECT_EQ(st.unchanged, 2);
  EXPECT_EQ(Imported("ghl").size(), 4u);
}

TEST_F(BackfillTest, AFailedRunContinuesFromItsStoredPosition) {
  for (int i = 1; i <= 6; ++i)
    vendor_.contacts.push_back({"g" + std::to_string(i), "+1205555010" + std::to_string(i), "v1"});
  vendor_.fail_at_cursor = 4;
  BackfillStats st;
  Status s = Run(&st);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find("HTTP 400"), std::string::npos);
  EXPECT_EQ(st.imported, 4);  // the pages read before the failure are kept

  vendor_.fail_at_cursor = -1;
  vendor_.cursors_asked.clear();
  vendor_.sizes_asked.clear();
  opts_.page_size = 5;  // asked with another size: the run keeps its own
  ASSERT_TRUE(Run(&st).ok());
  EXPECT_TRUE(st.resumed);
  EXPECT_EQ(vendor_.cursors_asked, std::vector<std::string>{"4"});
  EXPECT_EQ(vendor_.sizes_asked, std::vector<int>{2}) << "a page-number cursor means nothing with another size";
  EXPECT_EQ(st.imported, 2);
  EXPECT_EQ(Imported("ghl").size(), 6u);

  // --restart reads everything again; all of it is unchanged.
  opts_.restart = true;
  ASSERT_TRUE(Run(&st).ok());
  EXPECT_EQ(st.unchanged, 6);
}

TEST_F(BackfillTest, ThroughTheServiceReadsGoToTheConnectorAndThePositionIsReplicated) {
  for (int i = 1; i <= 5; ++i)
    vendor_.contacts.push_back({"g" + std::to_string(i), "+1205555010" + std::to_string(i), "v1"});
  vendor_.oauth = true;  // the connector actor refreshes; the run never does
  std::vector<ReadAsk> asked;
  deps_.client = nullptr;  // the connector actor's: never used here
  deps_.read = [&](const ReadAsk& ask) {
    asked.push_back(ask);
    std::promise<ContactPage> p;
    vendor_.ListContacts(ask.cursor, ask.page_size, Credentials{"the-connectors", "", 0},
                         [&p](ContactPage page) { p.set_value(std::move(page)); });
    return p.get_future().get();
  };
  std::vector<std::string> replicated;
  deps_.replicate_state = [&](const std::string& tenant, std::string_view consumer,
                              const std::vector<StateOp>& ops) {
    for (const auto& op : ops)
      replicated.push_back(tenant + " " + std::string(consumer) + " " + op.key + " " +
                           (op.erase ? "erased" : op.value));
    return Status::OK();
  };
  int pages = 0;
  deps_.stopping = [&pages] { return pages >= 2; };
  BackfillStats st;
  Status s = RunBackfill(opts_, deps_, [&pages](const BackfillStats& x) { pages = static_cast<int>(x.pages); },
                         &st);
  EXPECT_TRUE(s.IsUnavailable()) << s.ToString();  // stopped between two reads
  EXPECT_EQ(vendor_.refreshes, 0);
  ASSERT_GE(asked.size(), 2u);
  EXPECT_EQ(asked[0].page_size, 2);
  EXPECT_EQ(vendor_.tokens_used[0], "the-connectors");
  // The position went to the partition's next node before each read after it.
  ASSERT_GE(replicated.size(), 2u);
  EXPECT_EQ(replicated[0], "default backfill default/ghl list 2\n") << "a run under way, from its start";
  EXPECT_EQ(replicated.back(), "default backfill default/ghl list 2\n4");

  deps_.stopping = nullptr;
  ASSERT_TRUE(RunBackfill(opts_, deps_, [](const BackfillStats&) {}, &st).ok());
  EXPECT_TRUE(st.resumed);
  EXPECT_EQ(Imported("ghl").size(), 5u);
  EXPECT_EQ(replicated.back(), "default backfill default/ghl erased") << "a finished run leaves none";
}

TEST_F(BackfillTest, RetriesHonourRetryAfterAndGiveUpAfterMaxAttempts) {
  vendor_.contacts.push_back({"g1", "+12055550101", "v1"});
  vendor_.script = {429, 500, 0};
  opts_.retry_base_us = 1000;
  BackfillStats st;
  ASSERT_TRUE(Run(&st).ok());
  ASSERT_EQ(slept_.size(), 3u);
  EXPECT_EQ(slept_[0], 7000000);  // Retry-After of the 429
  EXPECT_EQ(slept_[1], 2000);     // backoff doubles
  EXPECT_EQ(slept_[2], 4000);
  EXPECT_EQ(st.requests, 4);

  vendor_.script = {503, 503, 503};
  opts_.max_attempts = 3;
  opts_.restart = true;
  Status s = Run(&st);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find("after 3 attempts"), std::string::npos);
}

TEST_F(BackfillTest, A401RefreshesTheTokenOnceAndStoresTheGrantFirst) {
  vendor_.contacts.push_back({"g1", "+12055550101", "v1"});
  vendor_.oauth = true;
  vendor_.script = {401};
  BackfillStats st;
  ASSERT_TRUE(Run(&st).ok());
  EXPECT_EQ(vendor_.refreshes, 1);
  EXPECT_EQ(vendor_.tokens_used, (std::vector<std::string>{"a1", "a2"}));
  std::string stored;
  ASSERT_TRUE(log_.GetConsumerState(kCredentialsConsumer, "default/ghl", &stored).ok());
  Credentials c;
  ASSERT_TRUE(DecodeCredentials(stored, &c));
  EXPECT_EQ(c.refresh_token, "r2");

  // The next run starts from the stored grant, not the configured (spent) one.
  vendor_.tokens_used.clear();
  ASSERT_TRUE(Run(&st).ok());
  EXPECT_EQ(vendor_.tokens_used, std::vector<std::string>{"a2"});

  // A 401 right after refreshing is a failure with a hint, not a loop.
  vendor_.script = {401, 401};
  Status s = Run(&st);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find("check the credentials"), std::string::npos);
  EXPECT_EQ(vendor_.refreshes, 2);
}

TEST_F(BackfillTest, AnExpiredTokenIsRefreshedBeforeTheFirstRequest) {
  vendor_.contacts.push_back({"g1", "+12055550101", "v1"});
  vendor_.oauth = true;
  deps_.credentials.expires_at_us = now_ - 1;
  BackfillStats st;
  ASSERT_TRUE(Run(&st).ok());
  EXPECT_EQ(vendor_.refreshes, 1);
  EXPECT_EQ(vendor_.tokens_used, std::vector<std::string>{"a2"});
}

TEST_F(BackfillTest, LookupModeAsksAboutEveryKnownAndImportedPhone) {
  // Known to the engine: two phones in the mappings projection...
  ASSERT_TRUE(log_.CommitConsumer(MappingsProjection::kName, 0,
                                  {StateOp{PhoneKey("default", "+12055550102"), "c2", false},
                                   StateOp{PhoneKey("default", "+12055550101"), "c1", false},
                                   StateOp{PhoneKey("other", "+12055550199"), "c9", false}})
                  .ok());
  // ...and one imported from GoHighLevel, not yet routed.
  vendor_.contacts.push_back({"g3", "(205) 555-0103", "v1"});
  BackfillStats ghl;
  ASSERT_TRUE(Run(&ghl).ok());

  vendor_.list = false;
  vendor_.contacts = {{"7", "+12055550101", "2026-11-01 10:00:00"},
                      {"8", "+12055550103", "2026-11-02 10:00:00"}};
  opts_.system = "aloware";
  BackfillStats st;
  ASSERT_TRUE(Run(&st).ok());
  EXPECT_EQ(vendor_.phones_asked,
            (std::vector<std::string>{"+12055550101", "+12055550102", "+12055550103"}));
  EXPECT_EQ(st.phones, 3);
  EXPECT_EQ(st.not_found, 1);
  EXPECT_EQ(st.imported, 2);
  auto events = Imported("aloware");
  ASSERT_EQ(events.size(), 2u);
  WebhookReceived w;
  ASSERT_TRUE(DecodeWebhookReceived(events[0].schema_version, events[0].payload, &w).ok());
  MapperSettings ms;
  ms.normalizer = &normalizer_;
  std::vector<ContactFact> facts;
  ASSERT_TRUE((*FindMapperFor(kContactImportedType, "aloware"))(w, ms, &facts).ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].system, "aloware");
  EXPECT_EQ(facts[0].external_id, "7");
  EXPECT_EQ(facts[0].fields.at("first_name"), "A7");
}

TEST_F(BackfillTest, LookupSkipsANumberTheVendorRefusesAndGoesOn) {
  ASSERT_TRUE(log_.CommitConsumer(MappingsProjection::kName, 0,
                                  {StateOp{PhoneKey("default", "+12055550101"), "c1", false},
                                   StateOp{PhoneKey("default", "+12055550102"), "c2", false}})
                  .ok());
  vendor_.list = false;
  vendor_.contacts = {{"8", "+12055550102", "2026-11-02 10:00:00"}};
  vendor_.script = {400};  // "Phone number is empty or invalid." for the first
  opts_.system = "aloware";
  BackfillStats st;
  ASSERT_TRUE(Run(&st).ok());
  EXPECT_EQ(st.refused, 1);
  EXPECT_EQ(st.asked, 2);
  EXPECT_EQ(st.imported, 1);
  EXPECT_EQ(vendor_.phones_asked, (std::vector<std::string>{"+12055550101", "+12055550102"}));
}

// A lookup run stopped part way (the vendor refused the 56th number): its
// stored position holds no phone number (an erased person's would stay in
// the data directory), and the next run resumes after the 50 asked.
TEST_F(BackfillTest, AStoppedLookupRunsPositionHoldsNoPhoneAndResumes) {
  std::vector<StateOp> known;
  for (int i = 0; i < 60; ++i) {
    const std::string phone = "+120555501" + std::string(i < 10 ? "0" : "") + std::to_string(i);
    known.push_back(StateOp{PhoneKey("default", phone), "c" + std::to_string(i), false});
  }
  ASSERT_TRUE(log_.CommitConsumer(MappingsProjection::kName, 0, known).ok());
  vendor_.list = false;
  vendor_.script.assign(55, 404);
  vendor_.script.push_back(403);
  opts_.system = "aloware";
  BackfillStats first;
  ASSERT_FALSE(Run(&first).ok());
  std::string pos;
  ASSERT_TRUE(log_.GetConsumerState(kBackfillConsumer, "default/aloware", &pos).ok());
  EXPECT_EQ(pos.find("+1205"), std::string::npos) << pos;
  vendor_.phones_asked.clear();
  BackfillStats again;
  ASSERT_TRUE(Run(&again).ok());
  EXPECT_TRUE(again.resumed);
  ASSERT_EQ(vendor_.phones_asked.size(), 10u) << "resumed after the 50 asked";
  EXPECT_EQ(vendor_.phones_asked.front(), "+12055550150");
}

// The service's runs (app/backfill_jobs.h), their reads answered here as
// the connector actor would (BackfillRead), one page at a time.
class BackfillJobsTest : public testing::Test {
 protected:
  BackfillJobsTest() : normalizer_("US") {
    for (int i = 1; i <= 5; ++i)
      vendor_.contacts.push_back({"g" + std::to_string(i), "+1205555010" + std::to_string(i), "v1"});
  }
  static Config GhlConfig() {
    std::vector<ConfigProblem> problems;
    Config c = Config::Load("",
                            {{"DFM_GHL_API_BASE_URL", "http://127.0.0.1:1"},
                             {"DFM_GHL_ACCESS_TOKEN", "t"},
                             {"DFM_GHL_LOCATION_ID", "loc_sandbox"},
                             {"DFM_GHL_ED25519_PUBLIC_KEY_FILE",
                              std::string(DFM_SOURCE_DIR) + "/etc/dev-keys/ghl-ed25519-public.pem"}},
                            &problems);
    for (const auto& p : problems) EXPECT_FALSE(p.error) << p.message;
    return c;
  }
  std::unique_ptr<BackfillJobs> Jobs() {
    BackfillJobs::Env env;
    env.log = &log_;
    env.normalizer = &normalizer_;
    env.send = [this](const std::string&, const std::string& system, BackfillRead r) {
      if (system != "ghl") return false;
      std::lock_guard<std::mutex> lk(mu_);
      waiting_.push_back(std::move(r));
      return true;
    };
    return std::make_unique<BackfillJobs>(std::move(env));
  }
  // Answers the next read the run asks (within 10 s); false when none came.
  bool AnswerOne() {
    for (int i = 0; i < 1000; ++i) {
      BackfillRead r;
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (!waiting_.empty()) {
          r = std::move(waiting_.front());
          waiting_.pop_front();
        }
      }
      if (r.done) {
        vendor_.ListContacts(r.cursor, r.page_size, Credentials{"the-connectors", "", 0},
                             [&r](ContactPage p) { (*r.done)(std::move(p)); });
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  BackfillJob Only(BackfillJobs* jobs) {
    auto runs = jobs->List("default");
    EXPECT_EQ(runs.size(), 1u);
    return runs.empty() ? BackfillJob{} : runs[0];
  }
  bool WaitState(BackfillJobs* jobs, const std::string& state) {
    for (int i = 0; i < 1000 && Only(jobs).state != state; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return Only(jobs).state == state;
  }

  MemoryEventLog log_;
  Normalizer normalizer_;
  ScriptedVendor vendor_;
  const Config config_ = GhlConfig();
  std::mutex mu_;
  std::deque<BackfillRead> waiting_;
};

TEST_F(BackfillJobsTest, OneRunPerSystemItsReadsThroughTheConnectorAStoppedRunResumed) {
  auto jobs = Jobs();
  BackfillJob job;
  Status started = jobs->Start(config_, "default", "ghl", 2, false, &job);
  ASSERT_TRUE(started.ok()) << started.ToString();
  EXPECT_EQ(job.state, "running");
  BackfillJob again;
  EXPECT_EQ(jobs->Start(config_, "default", "ghl", 2, false, &again).code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(again.run_id, job.run_id) << "the run under way";
  EXPECT_TRUE(jobs->Start(config_, "default", "twilio", 2, false, &again).IsInvalidArgument());
  EXPECT_TRUE(jobs->Start(config_, "default", "aloware", 2, false, &again).IsInvalidArgument())
      << "not configured for the tenant";
  ASSERT_TRUE(AnswerOne());  // the first page: two contacts
  for (int i = 0; i < 100 && Only(jobs.get()).stats.pages < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  jobs->Stop();  // the service stops between two pages
  EXPECT_EQ(Only(jobs.get()).state, "stopped");
  EXPECT_EQ(vendor_.tokens_used.at(0), "the-connectors");
  std::string pos;
  ASSERT_TRUE(log_.GetConsumerState(kBackfillConsumer, "default/ghl", &pos).ok());
  EXPECT_EQ(pos, "list 2\n2");

  // The service starts again: the run carries on from its position.
  {
    std::lock_guard<std::mutex> lk(mu_);
    waiting_.clear();  // answered "the connector stopped" as they go
  }
  auto next = Jobs();
  EXPECT_EQ(next->ResumeStored(config_), 1);
  ASSERT_TRUE(AnswerOne());  // from "2": contacts 3 and 4
  ASSERT_TRUE(AnswerOne());  // from "4": contact 5, the last page
  ASSERT_TRUE(WaitState(next.get(), "done"));
  const BackfillJob done = Only(next.get());
  EXPECT_TRUE(done.stats.resumed);
  EXPECT_EQ(done.stats.imported, 3) << "the three the first run had not read";
  EXPECT_FALSE(log_.GetConsumerState(kBackfillConsumer, "default/ghl", &pos).ok()) << "finished: none left";
  EXPECT_NE(BackfillJobJson(done).find("\"state\":\"done\""), std::string::npos);
  next->Stop();
}

TEST(BackfillCommand, InClusterModeWithNoNodeAnsweringNothingIsWrittenHere) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("dfm-backfill-cluster-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::vector<ConfigProblem> problems;
  Config c = Config::Load("", {{"DFM_STORAGE_DATA_DIR", dir.string()},
                               {"DFM_CLUSTER_ENABLED", "true"},
                               {"DFM_CLUSTER_NATS_URLS", "nats://127.0.0.1:1"},
                               {"DFM_GHL_API_BASE_URL", "http://127.0.0.1:1"},
                               {"DFM_GHL_ACCESS_TOKEN", "t"}},
                          &problems);
  std::ostringstream out, err;
  BackfillCommandArgs args;
  args.system = "ghl";
  EXPECT_EQ(RunBackfillCommand(c, args, out, err), 2);
  EXPECT_NE(err.str().find("no node answers"), std::string::npos) << err.str();
  EXPECT_FALSE(std::filesystem::exists(dir / "CURRENT")) << "no log made where nobody reads it";
  std::filesystem::remove_all(dir);
}

TEST(BackfillProgress, ReadsLikeASentence) {
  BackfillStats s;
  s.pages = 3;
  s.seen = 1500;
  s.total = 10234;
  s.imported = 1480;
  s.unchanged = 20;
  EXPECT_EQ(FormatBackfillProgress("ghl", s, 812.4),
            "ghl: page 3 · 1,500 of 10,234 contacts (14%) · 1,480 new · 20 unchanged · 812/s");
  BackfillStats l;
  l.phones = 4;
  l.asked = 4;
  l.seen = 3;
  l.imported = 3;
  l.finished = true;
  EXPECT_EQ(FormatBackfillProgress("aloware", l, 5),
            "aloware: 4 of 4 phones asked (100%) · 3 found · 3 new · 0 unchanged · 5/s · done");
}

}  // namespace
}  // namespace dfm
