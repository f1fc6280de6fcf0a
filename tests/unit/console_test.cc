// The console's handling of requests (console/console.h): who may ask
// what, per tenant, within which limits; keys made and revoked through the
// log; the page's sign-in and its masking. Over the in-memory log, without
// HTTP (the integration tests drive it over HTTP, in Chromium).
#include "console/console.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <thread>

#include "app/shared_control.h"
#include "console/api_keys.h"
#include "console/remote_read.h"
#include "console/shared_keys.h"
#include "events/webhook_received.h"
#include "projections/runner.h"
#include "projections/sync_projections.h"
#include "replay-tools/story.h"
#include "storage/access_log.h"
#include "storage/cas_store.h"
#include "storage/memory_event_log.h"
#include "sync/domain_event.h"
#include "sync/sync_control.h"
#include "tests/support/conflicts.h"
#include "tests/support/console_fixture.h"
#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

using testing::TempDir;

TEST_F(ConsoleTest, WithoutACredentialTheApiAnswers401InItsErrorShape) {
  Start();
  ApiResponse a = Call("GET", "/v1/events");
  EXPECT_EQ(a.status, 401);
  EXPECT_NE(a.body.find("\"error\":\"unauthorized\""), std::string::npos) << a.body;
  EXPECT_EQ(HeaderOf(a, "WWW-Authenticate"), "Bearer");
  EXPECT_EQ(Call("GET", "/v1/events", "dfm_0000000000000000_" + std::string(64, '0')).status, 401);
  EXPECT_EQ(Call("GET", "/v1/events", "admin-secret").status, 401)
      << "the admin token is taken only where the admin endpoints are";
  EXPECT_EQ(Call("GET", "/v1/events", "admin-secret", "", true).status, 200);
  EXPECT_EQ(counters_.auth_failures.load(), 3u);
  EXPECT_EQ(Call("GET", "/v1/nothing", "admin-secret", "", true).status, 404);
  EXPECT_EQ(Call("PUT", "/v1/events", "admin-secret", "", true).status, 405);
  EXPECT_EQ(Call("GET", "/v1/openapi.json").status, 200) << "the document is public";
}

TEST_F(ConsoleTest, EachRoleDoesWhatItMayAndNoMore) {
  Start();
  const std::string viewer = MakeKey("viewer", "*"), op = MakeKey("operator", "*"),
                    admin = MakeKey("admin", "*");
  EXPECT_EQ(Call("GET", "/v1/audit/violations", viewer).status, 200);
  ApiResponse no = Call("POST", "/v1/admin/settle", viewer, R"({"conflict":1,"dismiss":true})", true);
  EXPECT_EQ(no.status, 403);
  EXPECT_NE(no.body.find("\"error\":\"forbidden\""), std::string::npos);
  // An operator gets past the role to the endpoint's own checks.
  EXPECT_EQ(Call("POST", "/v1/admin/settle", op, R"({"conflict":1,"dismiss":true})", true).status,
            404);
  EXPECT_EQ(Call("GET", "/v1/admin/keys", op, "", true).status, 403);
  ApiResponse keys = Call("GET", "/v1/admin/keys", admin, "", true);
  EXPECT_EQ(keys.status, 200);
  EXPECT_EQ(keys.body.find("\"token\""), std::string::npos) << "a listing never shows a token";
  EXPECT_NE(keys.body.find("\"role\":\"operator\""), std::string::npos) << keys.body;
  // The admin paths are not on the main listener when the admin one is set.
  EXPECT_EQ(Call("GET", "/v1/admin/keys", admin).status, 404);
}

TEST_F(ConsoleTest, AKeySeesItsOwnTenantOnly) {
  Start();
  const std::string acme = MakeKey("viewer", "acme");
  EXPECT_EQ(Call("GET", "/v1/events", acme).status, 200) << "its own tenant by default";
  EXPECT_EQ(Call("GET", "/v1/events?tenant=acme", acme).status, 200);
  ApiResponse other = Call("GET", "/v1/events?tenant=default", acme);
  EXPECT_EQ(other.status, 403) << other.body;
  ApiResponse unknown = Call("GET", "/v1/events?tenant=nobody", acme);
  EXPECT_EQ(std::make_pair(unknown.status, unknown.body), std::make_pair(other.status, other.body))
      << "another tenant's name, known or not, answered alike";
  EXPECT_EQ(Call("GET", "/v1/events?tenant=nobody", MakeKey("viewer", "*")).status, 404);
  AddContact("default", "c-default");
  EXPECT_EQ(Call("GET", "/v1/contacts/trace?contact=%2B12055550142", acme).status, 404)
      << "another tenant's contact is not found";
  const std::string all = MakeKey("viewer", "*");
  ApiResponse trace = Call("GET", "/v1/contacts/trace?contact=%2B12055550142", all);
  EXPECT_EQ(trace.status, 200) << trace.body;
  EXPECT_EQ(trace.body.rfind("{\"items\":[", 0), 0u);
  EXPECT_NE(trace.body.find("c-default"), std::string::npos);
  // An acme admin makes acme keys only.
  const std::string acme_admin = MakeKey("admin", "acme");
  ApiResponse made = Call("POST", "/v1/admin/keys", acme_admin,
                          R"({"name":"x","role":"viewer","tenant":"default"})", true);
  EXPECT_EQ(made.status, 403);
  ApiResponse named = Call("POST", "/v1/admin/keys", acme_admin,
                           R"({"name":"x","role":"viewer","tenant":"nobody"})", true);
  EXPECT_EQ(std::make_pair(named.status, named.body), std::make_pair(made.status, made.body))
      << "another tenant's name, known or not, answered alike";
}

// A query string that does not parse (a '%' not followed by two hex
// digits) was read as none: its `tenant` dropped, a key of every tenant
// acted on "default", and a read lost its filters. It is refused whole,
// and so is a new key's tenant that is not a string (it was read as left
// out: the caller's own, "default" for the admin token).
TEST_F(ConsoleTest, AQueryThatDoesNotParseIsRefusedNotReadAsNone) {
  Start();
  const std::string all = MakeKey("operator", "*");
  std::vector<Event> before;
  ASSERT_TRUE(log_.Read(1, 1000, &before).ok());
  ApiResponse made =
      Call("POST", "/v1/customers?tenant=acme&utm=50%", all, R"({"id":"acme-co","name":"Acme"})");
  EXPECT_EQ(made.status, 400) << made.body;
  EXPECT_NE(made.body.find("bad_parameter"), std::string::npos) << made.body;
  ApiResponse read = Call("GET", "/v1/events?tenant=acme&after=1&x=%zz", MakeKey("viewer", "acme"));
  EXPECT_EQ(read.status, 400) << read.body;
  std::vector<Event> after;
  ASSERT_TRUE(log_.Read(1, 1000, &after).ok());
  EXPECT_EQ(after.size(), before.size() + 2) << "only the viewer key and its admin.action";
  for (const char* body : {R"({"name":"x","role":"admin","tenant":["acme"]})",
                           R"({"name":"x","role":"admin","tenant":7})",
                           R"({"name":"x","role":"admin","tenant":null})"}) {
    ApiResponse key = Call("POST", "/v1/admin/keys", "admin-secret", body, true);
    EXPECT_EQ(key.status, 400) << body << " " << key.body;
  }
  EXPECT_EQ(
      Call("POST", "/v1/customers?tenant=acme", all, R"({"id":"acme-co","name":"Acme"})").status,
      201)
      << "the same call, its query well formed";
}

// POST /v1/admin/erase refused because the person's consent pushes are
// on their way (FailedPrecondition, app/erase.h) answers 409
// consent_pushes_open, nothing recorded; "force": true is handed on, and
// its admin.action says the erasure was forced.
TEST_F(ConsoleTest, AnErasureHeldByConsentPushesAnswers409UntilForced) {
  Start();
  std::vector<bool> asked;
  console_->SetEraseHandler([&](const std::string&, const std::string&, const std::string&,
                                const std::string&, bool force, EraseAnswer* a) {
    asked.push_back(force);
    if (!force) return Status::FailedPrecondition("opt_out to aloware on its way");
    a->seq = 7;
    return Status::OK();
  });
  std::vector<Event> before;
  ASSERT_TRUE(log_.Read(1, 1000, &before).ok());
  ApiResponse held =
      Call("POST", "/v1/admin/erase", "admin-secret", R"({"contact":"c1","reason":"r"})", true);
  EXPECT_EQ(held.status, 409) << held.body;
  EXPECT_NE(held.body.find("consent_pushes_open"), std::string::npos) << held.body;
  EXPECT_NE(held.body.find("opt_out to aloware"), std::string::npos) << held.body;
  std::vector<Event> after;
  ASSERT_TRUE(log_.Read(1, 1000, &after).ok());
  EXPECT_EQ(after.size(), before.size()) << "no admin.action for an erasure not made";
  EXPECT_EQ(Call("POST", "/v1/admin/erase", "admin-secret",
                 R"({"contact":"c1","reason":"r","force":"yes"})", true)
                .status,
            400);
  ApiResponse forced = Call("POST", "/v1/admin/erase", "admin-secret",
                            R"({"contact":"c1","reason":"r","force":true})", true);
  EXPECT_EQ(forced.status, 200) << forced.body;
  EXPECT_EQ(asked, (std::vector<bool>{false, true}));
  ASSERT_TRUE(log_.Read(1, 1000, &after).ok());
  ASSERT_EQ(after.size(), before.size() + 1);
  EXPECT_NE(after.back().payload.find("\"action\":\"erase_forced\""), std::string::npos)
      << after.back().payload;
}

// A reload is recorded before it is put in place: with the log unable to
// write, the answer is 503 and the configuration in use stays (it was
// applied, then the admin.action failed: live and unrecorded).
TEST_F(ConsoleTest, AReloadTheLogCannotRecordIsNotPutInPlace) {
  Start();
  int applied = 0;
  console_->SetReloadHandler([&](std::string* summary, const ReloadRecorder& record) {
    *summary = "systems changed: acme/verity";
    if (Status s = record ? record(*summary) : Status::OK(); !s.ok()) return s;
    ++applied;  // as Reloader puts it in place: after the record
    return Status::OK();
  });
  log_.FailWrites(true);
  ApiResponse refused = Call("POST", "/v1/admin/reload", "admin-secret", "", true);
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(applied, 0);
  log_.FailWrites(false);
  ApiResponse done = Call("POST", "/v1/admin/reload", "admin-secret", "", true);
  EXPECT_EQ(done.status, 200) << done.body;
  EXPECT_NE(done.body.find("\"summary\":\"systems changed: acme/verity\""), std::string::npos)
      << done.body;
  EXPECT_EQ(applied, 1);
  std::vector<Event> all;
  ASSERT_TRUE(log_.Read(1, 1000, &all).ok());
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.back().type, "admin.action");
  EXPECT_NE(all.back().payload.find("\"action\":\"reload\""), std::string::npos);
  console_->SetReloadHandler([](std::string*, const ReloadRecorder&) {
    return Status::InvalidArgument("configuration refused, the one in use stays: x");
  });
  EXPECT_EQ(Call("POST", "/v1/admin/reload", "admin-secret", "", true).status, 422);
}

// SIGHUP's reload runs on the console's worker, never on the I/O thread
// that took the signal (a reload waiting behind another's durable record
// would hold it), and records nothing.
TEST_F(ConsoleTest, ASighupReloadRunsOffTheCallersThreadUnrecorded) {
  Start();
  std::promise<std::pair<std::thread::id, bool>> ran;
  console_->SetReloadHandler([&](std::string* summary, const ReloadRecorder& record) {
    *summary = "nothing changed";
    ran.set_value({std::this_thread::get_id(), static_cast<bool>(record)});
    return Status::OK();
  });
  console_->ReloadInBackground();
  auto got = ran.get_future();
  ASSERT_EQ(got.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  const auto [where, recorded] = got.get();
  EXPECT_NE(where, std::this_thread::get_id());
  EXPECT_FALSE(recorded);
}

// The admin routes count a key's calls against its own tenant, as the
// others do: one tenant's admins spending the minute's calls leave
// another's (revoking a leaked key, pausing a system) answered, and its
// remaining count says nothing of theirs.
TEST_F(ConsoleTest, AdminCallsCountAgainstTheKeysOwnTenant) {
  StopTheClock();
  Start({{"DFM_API_RATE_LIMIT_PER_KEY", "10"}, {"DFM_API_RATE_LIMIT_PER_TENANT", "2"}});
  const std::string acme = MakeKey("admin", "acme");
  const std::string ours = MakeKey("admin", "default");
  EXPECT_EQ(Call("GET", "/v1/admin/keys", acme, "", true).status, 200);
  EXPECT_EQ(Call("GET", "/v1/admin/keys", acme, "", true).status, 200);
  EXPECT_EQ(Call("GET", "/v1/admin/keys", acme, "", true).status, 429) << "acme's two spent";
  ApiResponse theirs = Call("GET", "/v1/admin/keys", ours, "", true);
  EXPECT_EQ(theirs.status, 200) << theirs.body;
  EXPECT_EQ(HeaderOf(theirs, "X-RateLimit-Remaining"), "1");
}

TEST(RemoteReadTest, RequestsAndAnswersRoundTripAndOthersAreRefused) {
  RemoteRead r{"/v1/events", "acme", {{"contact", "+1 205 555 0142"}, {"limit", "5\"\n"}}}, back;
  ASSERT_TRUE(DecodeRemoteRead(EncodeRemoteRead(r), &back));
  EXPECT_EQ(back.route, r.route);
  EXPECT_EQ(back.tenant, r.tenant);
  EXPECT_EQ(back.params, r.params);
  ApiResponse a, b;
  a.status = 404;
  a.content_type = "text/csv; charset=utf-8";
  a.body = "phone,at\n\"x\"";
  ASSERT_TRUE(DecodeReadAnswer(EncodeReadAnswer(a), &b));
  EXPECT_EQ(b.status, 404);
  EXPECT_EQ(b.content_type, a.content_type);
  EXPECT_EQ(b.body, a.body);
  for (const char* bad : {"", "{}", R"({"v":2,"route":"/v1/events","tenant":"a","params":[]})",
                          R"({"v":1,"route":"/v1/events","tenant":"a","params":[["k"]]})",
                          R"({"v":1,"route":"/v1/events","tenant":"a","params":[["k",1]]})"})
    EXPECT_FALSE(DecodeRemoteRead(bad, &back)) << bad;
  for (const char* bad : {"[]", R"({"v":1,"status":42,"content_type":"x","body":""})",
                          R"({"v":1,"status":200,"body":""})"})
    EXPECT_FALSE(DecodeReadAnswer(bad, &b)) << bad;

  ContactStory story;
  story.tenant = "acme";
  story.contact_id = "c1";
  story.phone = "+1 205 *** **42";
  story.where = {{"GoHighLevel", "g1"}, {"Aloware", ""}};
  story.consent = {{"sms", true, 1'795'000'000'000'000, "Verity", "keyword STOP", "the person"}};
  story.timeline = {{1'795'000'000'000'000, "Verity", "texted STOP"}};
  story.waiting = {"an upsert to Aloware, retrying"};
  story.findings = {"f1"};
  story.it_report = "line 1\nline 2";
  std::vector<ContactStory> stories;
  ASSERT_TRUE(DecodeStories(EncodeStories({story, story}), &stories));
  ASSERT_EQ(stories.size(), 2u);
  EXPECT_EQ(stories[1].where, story.where);
  ASSERT_EQ(stories[1].consent.size(), 1u);
  EXPECT_TRUE(stories[1].consent[0].opted_out);
  EXPECT_EQ(stories[1].consent[0].how, "keyword STOP");
  EXPECT_EQ(stories[1].timeline[0].what, "texted STOP");
  EXPECT_EQ(stories[1].waiting, story.waiting);
  EXPECT_EQ(stories[1].it_report, story.it_report);
  EXPECT_FALSE(DecodeStories(R"({"v":1,"stories":[{"tenant":"a"}]})", &stories));
}

TEST(RemoteReadTest, ErasureAnswersRoundTripWithTheirOutcome) {
  EraseAnswer a{42, true, 3, 9, 2, 1}, b;
  Status s;
  ASSERT_TRUE(DecodeEraseAnswer(EncodeEraseAnswer(Status::OK(), a), &s, &b));
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(b.seq, 42u);
  EXPECT_TRUE(b.already);
  EXPECT_EQ(b.keys, 3u);
  EXPECT_EQ(b.events, 9u);
  EXPECT_EQ(b.sources, 2u);
  EXPECT_EQ(b.subjects, 1u);
  ASSERT_TRUE(DecodeEraseAnswer(EncodeEraseAnswer(Status::NotFound("no contact c9"), {}), &s, &b));
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_EQ(s.message(), "no contact c9");
  ASSERT_TRUE(DecodeEraseAnswer(EncodeEraseAnswer(Status::IOError("disk"), {}), &s, &b));
  EXPECT_TRUE(s.IsUnavailable());
  for (const char* bad : {"", "{}", R"({"v":2,"code":"ok","message":"","seq":1,"already":false,"keys":0,)"
                                    R"("events":0,"sources":0,"subjects":0})",
                          R"({"v":1,"code":"ok","message":"","seq":"1"})"})
    EXPECT_FALSE(DecodeEraseAnswer(bad, &s, &b)) << bad;
}

// GET /v1/audit/opt-outs?email=: the address as the log keeps it (lower
// case); one whose "+" the query string made a space is refused, never
// answered with no opt-outs.
TEST_F(ConsoleTest, AnOptOutsReadByEmailTakesTheAddressAsTheLogKeepsIt) {
  Start();
  const std::string viewer = MakeKey("viewer", "*");
  DomainEvent d;
  d.type = std::string(ev::kOptedOut);
  d.contact_id = "c-1";
  d.system = "ghl";
  d.channel = "email";
  d.actor = "person";
  d.reason = "unsubscribe";
  d.source_time_us = 1'795'000'000'000'000;
  d.fields = {{"email", "ann+promo@example.com"}};
  AppendOutcome out;
  ASSERT_TRUE(log_.Append(ToDraft(d, "default", ContactStream("c-1"), {}, {}), &out).ok());
  for (const std::string q : {"ann%2Bpromo%40example.com", "ANN%2BPromo@Example.com"}) {
    ApiResponse r = Call("GET", "/v1/audit/opt-outs?email=" + q, viewer);
    EXPECT_EQ(r.status, 200) << q << ": " << r.body;
    EXPECT_NE(r.body.find("c-1"), std::string::npos) << q << ": " << r.body;
  }
  ApiResponse spaced = Call("GET", "/v1/audit/opt-outs?email=ann+promo@example.com", viewer);
  EXPECT_EQ(spaced.status, 400) << spaced.body;
  EXPECT_NE(spaced.body.find("%2B"), std::string::npos) << spaced.body;
  EXPECT_EQ(Call("GET", "/v1/audit/opt-outs?phone=nobody", viewer).status, 400);
}

TEST_F(ConsoleTest, InClusterModeReadsAreAnsweredFromThePartitionsNode) {
  Start();
  const std::string viewer = MakeKey("viewer", "*");
  // The tenant's events are in the partition's log, not this node's.
  MemoryEventLog partition;
  AddContact("default", "c-remote", &partition);
  std::vector<std::string> asked;
  Status down;  // what the ask meets; OK: the owner answers
  console_->SetRemoteReads([&](const std::string& tenant, std::string request,
                               std::function<void(Status, std::string)> done) {
    asked.push_back(tenant);
    if (!down.ok()) return done(down, "");
    console_->AnswerRemoteRead(partition, std::move(request),
                               [done](std::string answer) { done(Status::OK(), std::move(answer)); });
  });
  ApiResponse trace = Call("GET", "/v1/contacts/trace?contact=%2B12055550142", viewer);
  EXPECT_EQ(trace.status, 200) << trace.body;
  EXPECT_NE(trace.body.find("c-remote"), std::string::npos) << trace.body;
  EXPECT_FALSE(HeaderOf(trace, "X-RateLimit-Limit").empty()) << "the asked node's limits";
  ApiResponse csv = Call("GET", "/v1/audit/opt-outs?format=csv", viewer);
  EXPECT_EQ(csv.status, 200);
  EXPECT_EQ(csv.content_type, "text/csv; charset=utf-8");
  const uint64_t rejected = counters_.rejected.load();
  EXPECT_EQ(Call("GET", "/v1/events?limit=0", viewer).status, 400);
  EXPECT_EQ(counters_.rejected.load(), rejected + 1) << "counted where it was asked";
  EXPECT_EQ(asked, (std::vector<std::string>{"default", "default", "default"}));

  // The page's search too: each tenant's node tells its stories (several
  // tenants: only to a key signed in; nobody else's search asks at all).
  asked.clear();
  EXPECT_EQ(Call("POST", "/docs/visual", "", "q=%28205%29+555-0142").body.find("c-remote"),
            std::string::npos);
  EXPECT_TRUE(asked.empty());
  ApiResponse in = Call("POST", "/docs/visual/sign-in", "", "key=" + viewer);
  const std::string cookie = HeaderOf(in, "Set-Cookie");
  const std::map<std::string, std::string> session = {
      {"cookie", cookie.substr(0, cookie.find(';'))}};
  ApiResponse search = Call("POST", "/docs/visual", "", "q=%28205%29+555-0142", false, session);
  EXPECT_EQ(search.status, 200);
  EXPECT_NE(search.body.find("contact:c-remote"), std::string::npos) << search.body;
  EXPECT_NE(search.body.find("Lovelace"), std::string::npos) << "shown once signed in";
  EXPECT_EQ(asked, (std::vector<std::string>{"default", "acme"}));
  EXPECT_EQ(Call("POST", "/docs/visual", "", "q=nothing", false, session).body.find("contact:"),
            std::string::npos);
  EXPECT_EQ(asked.size(), 2u) << "a query naming nothing is answered without asking";

  // The partition moving, or its node dead: said so, never an empty answer.
  down = Status::NotFound("no node runs partition 3 now");
  ApiResponse gone = Call("GET", "/v1/contacts/trace?contact=%2B12055550142", viewer);
  EXPECT_EQ(gone.status, 503);
  EXPECT_NE(gone.body.find("\"error\":\"owner_unreachable\""), std::string::npos) << gone.body;
  EXPECT_NE(gone.body.find("partition 3"), std::string::npos) << gone.body;
  EXPECT_EQ(HeaderOf(gone, "Retry-After"), "2");
  ApiResponse partial = Call("POST", "/docs/visual", "", "q=%28205%29+555-0142", false, session);
  EXPECT_EQ(partial.status, 200);
  EXPECT_NE(partial.body.find("Part of the cluster did not answer"), std::string::npos) << partial.body;
}

// One tenant: anybody may search, and the partition's node tells the story
// masked.
TEST_F(ConsoleTest, InClusterModeAnAnonymousSearchIsAnsweredMasked) {
  StartOneTenant();
  MemoryEventLog partition;
  AddContact("default", "c-remote", &partition);
  std::vector<std::string> asked;
  console_->SetRemoteReads([&](const std::string& tenant, std::string request,
                               std::function<void(Status, std::string)> done) {
    asked.push_back(tenant);
    console_->AnswerRemoteRead(partition, std::move(request), [done](std::string answer) {
      done(Status::OK(), std::move(answer));
    });
  });
  ApiResponse search = Call("POST", "/docs/visual", "", "q=%28205%29+555-0142");
  EXPECT_EQ(search.status, 200);
  EXPECT_NE(search.body.find("contact:c-remote"), std::string::npos) << search.body;
  EXPECT_EQ(search.body.find("Lovelace"), std::string::npos) << "shown without sign-in";
  EXPECT_EQ(asked, (std::vector<std::string>{"default"}));
}

TEST_F(ConsoleTest, InClusterModeAdminWritesArePlannedOnThePartitionsNode) {
  Start();
  // The conflict is in the partition's log; this node's log is its front's
  // (in a cluster, the ingest stream), where the settlement is appended.
  MemoryEventLog partition;
  AppendOutcome conflict;
  ASSERT_TRUE(testing::AppendIdentityConflict(&partition, "default", &conflict).ok());
  int asked = 0;
  console_->SetRemoteReads([&](const std::string&, std::string request,
                               std::function<void(Status, std::string)> done) {
    ++asked;
    console_->AnswerRemoteRead(partition, std::move(request),
                               [done](std::string answer) { done(Status::OK(), std::move(answer)); });
  });
  auto settle = [&](const std::string& body) {
    return Call("POST", "/v1/admin/settle", "admin-secret", body, /*admin_listener=*/true);
  };
  const std::string seq = std::to_string(conflict.seq);
  const uint64_t head = log_.LastSequence();
  ApiResponse unknown = settle(R"({"conflict":99,"contact":"contact-a"})");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_NE(unknown.body.find("unknown_conflict"), std::string::npos);
  EXPECT_EQ(settle(R"({"conflict":)" + seq + R"(,"contact":"contact-z"})").status, 422);
  EXPECT_EQ(settle(R"({"conflict":)" + seq + "}").status, 400) << "refused before asking";
  EXPECT_EQ(asked, 2);
  EXPECT_EQ(log_.LastSequence(), head) << "nothing appended for a refusal";

  ApiResponse ok = settle(R"({"conflict":)" + seq + R"(,"contact":"contact-a","reason":"checked"})");
  EXPECT_EQ(ok.status, 200) << ok.body;
  ASSERT_EQ(log_.LastSequence(), head + 2);
  std::vector<Event> read;
  ASSERT_TRUE(log_.Read(head + 1, 2, &read).ok());
  EXPECT_EQ(read.at(0).type, ev::kIdentitySettled);
  EXPECT_EQ(read.at(0).causation_id, conflict.id) << "caused by the partition's conflict";
  EXPECT_EQ(read.at(0).stream, SourceStream("ghl"));
  // The tenant's: the ingest stream sends it to the tenant's partition.
  EXPECT_EQ(read.at(0).tenant, "default");
  EXPECT_EQ(read.at(1).type, "admin.action");
  ApiResponse again = settle(R"({"conflict":)" + seq + R"(,"contact":"contact-a"})");
  EXPECT_NE(again.body.find("\"status\":\"duplicate\""), std::string::npos) << again.body;

  // A replay of a push the partition's log holds no dead letter of.
  ApiResponse replay = Call("POST", "/v1/admin/replay", "admin-secret",
                            R"({"items":[{"contact_id":"c-1","push":{"system":"ghl","op":"upsert"}}]})", true);
  EXPECT_EQ(replay.status, 422) << replay.body;
  EXPECT_NE(replay.body.find("not_redrivable"), std::string::npos) << replay.body;
}

TEST_F(ConsoleTest, LimitsPerKeyAndPerTenantWithTheirHeaders) {
  StopTheClock();
  Start({{"DFM_API_RATE_LIMIT_PER_KEY", "2"}, {"DFM_API_RATE_LIMIT_PER_TENANT", "3"}});
  const std::string a = MakeKey("viewer", "*"), b = MakeKey("viewer", "*");
  ApiResponse first = Call("GET", "/v1/events", a);
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(HeaderOf(first, "X-RateLimit-Limit"), "2");
  EXPECT_EQ(HeaderOf(first, "X-RateLimit-Remaining"), "1");
  EXPECT_FALSE(HeaderOf(first, "X-RateLimit-Reset").empty());
  EXPECT_EQ(Call("GET", "/v1/events", a).status, 200);
  ApiResponse over = Call("GET", "/v1/events", a);
  EXPECT_EQ(over.status, 429);
  EXPECT_NE(over.body.find("\"error\":\"rate_limited\""), std::string::npos);
  EXPECT_EQ(HeaderOf(over, "Retry-After"), HeaderOf(over, "X-RateLimit-Reset"));
  EXPECT_EQ(HeaderOf(over, "X-RateLimit-Remaining"), "0");
  // The tenant's limit (3) binds another key of the same tenant.
  EXPECT_EQ(Call("GET", "/v1/events", b).status, 200);
  ApiResponse tenant_over = Call("GET", "/v1/events", b);
  EXPECT_EQ(tenant_over.status, 429);
  EXPECT_NE(tenant_over.body.find("tenant default"), std::string::npos) << tenant_over.body;
  EXPECT_EQ(Call("GET", "/v1/events?tenant=acme", b).status, 200) << "another tenant's own budget";
  EXPECT_EQ(Call("GET", "/v1/events", "admin-secret", "", true).status, 200)
      << "the local admin token is not limited";
  EXPECT_EQ(counters_.rate_limited.load(), 2u);
}

TEST_F(ConsoleTest, KeysAreMadeAndRevokedThroughTheLogWithWhoAsked) {
  Start();
  const std::string token = MakeKey("viewer", "acme");
  std::string id, secret;
  ASSERT_TRUE(SplitApiKey(token, &id, &secret));
  std::vector<Event> all;
  ASSERT_TRUE(log_.Read(1, 100, &all).ok());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].type, kApiKeyCreated);
  EXPECT_EQ(all[0].tenant, "acme");
  EXPECT_EQ(all[0].payload.find(secret), std::string::npos);
  EXPECT_EQ(all[1].type, "admin.action");
  EXPECT_NE(all[1].payload.find("\"action\":\"key.create\""), std::string::npos);
  EXPECT_NE(all[1].payload.find("\"request_id\":\"req-test\""), std::string::npos);
  EXPECT_NE(all[1].payload.find("\"credential\":\"admin-token\""), std::string::npos);
  EXPECT_EQ(Call("GET", "/v1/events", token).status, 200);
  ApiResponse revoked = Call("DELETE", "/v1/admin/keys/" + id, "admin-secret", "", true);
  EXPECT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_EQ(Call("GET", "/v1/events", token).status, 401) << "at once";
  EXPECT_EQ(Call("DELETE", "/v1/admin/keys/ffffffffffffffff", "admin-secret", "", true).status, 404);
  // A console started anew reads the same keys from the log.
  console_ = std::make_unique<Console>(config_, &log_, SystemClock::Instance(), &counters_);
  ASSERT_TRUE(console_->Start().ok());
  console_->SetAdminToken("admin-secret");
  EXPECT_EQ(Call("GET", "/v1/events", token).status, 401);
  // Bad bodies are refused with the shape.
  for (const char* body : {"", "{}", R"({"name":"x","role":"root"})",
                           R"({"name":"x","role":"viewer","tenant":"nobody"})"})
    EXPECT_EQ(Call("POST", "/v1/admin/keys", "admin-secret", body, true).status, 400) << body;
}

TEST_F(ConsoleTest, ThePageMasksUntilAViewerSignsIn) {
  StartOneTenant();
  AddContact("default", "c1");
  const std::string viewer = MakeKey("viewer", "*");
  ApiResponse page = Call("GET", "/docs/visual");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(HeaderOf(page, "Content-Security-Policy").find("script-src 'nonce-"), std::string::npos);
  ApiResponse search = Call("POST", "/docs/visual", "", "q=%28205%29+555-0142");
  EXPECT_EQ(search.status, 200);
  EXPECT_NE(search.body.find("contact:c1"), std::string::npos) << "found by any spelling";
  for (const char* pii : {"+12055550142", "555-0142", "Lovelace", "ada@example.com"})
    EXPECT_EQ(search.body.find(pii), std::string::npos) << pii << " shown without sign-in";

  ApiResponse bad = Call("POST", "/docs/visual/sign-in", "", "key=dfm_nope");
  EXPECT_EQ(bad.status, 303);
  EXPECT_EQ(HeaderOf(bad, "Location"), "../visual?signin=failed");
  EXPECT_EQ(HeaderOf(bad, "Set-Cookie"), "");
  ApiResponse in = Call("POST", "/docs/visual/sign-in", "", "key=" + viewer);
  EXPECT_EQ(in.status, 303);
  const std::string cookie = HeaderOf(in, "Set-Cookie");
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos);
  const std::string value = cookie.substr(0, cookie.find(';'));
  ApiResponse shown = Call("POST", "/docs/visual", "", "q=ada%40example.com", false, {{"cookie", value}});
  EXPECT_NE(shown.body.find("+12055550142"), std::string::npos);
  EXPECT_NE(shown.body.find("Ada Lovelace"), std::string::npos);
  EXPECT_NE(shown.body.find("Signed in: test viewer"), std::string::npos);

  // Revoking the key ends its session.
  std::string id, secret;
  ASSERT_TRUE(SplitApiKey(viewer, &id, &secret));
  ASSERT_EQ(Call("DELETE", "/v1/admin/keys/" + id, "admin-secret", "", true).status, 200);
  ApiResponse after = Call("POST", "/docs/visual", "", "q=ada%40example.com", false, {{"cookie", value}});
  EXPECT_EQ(after.body.find("+12055550142"), std::string::npos);
}

// A staff opt-in refused over the person's STOP (consent.conflict) is on
// the page for a person to look at, through the opt-out registry.
TEST_F(ConsoleTest, ThePageListsConsentConflictsForAPerson) {
  StartOneTenant();
  EXPECT_EQ(Call("GET", "/docs/visual").body.find("For a person to look at"), std::string::npos);
  ASSERT_TRUE(testing::AppendConsentConflict(&log_, "default", "c-conflict").ok());
  SyncProjections projections;
  ProjectionRunner runner(&log_, projections.All());
  ASSERT_TRUE(runner.CatchUp().ok());
  ApiResponse page = Call("GET", "/docs/visual");
  EXPECT_NE(page.body.find("For a person to look at"), std::string::npos);
  EXPECT_NE(page.body.find("contact:c-conflict"), std::string::npos);
  EXPECT_NE(page.body.find("Staff or a system setting in GoHighLevel tried to opt sms back in"),
            std::string::npos);
  EXPECT_NE(page.body.find("1 consent conflict waits for a person"), std::string::npos);
}

// A vendor's id may be the person's number (Genesys's channel id, a
// WhatsApp preference's wa_id): shown in clear on the page without a
// sign-in ("Found in Genesys (id ...)", where it exists) and in the story's
// webhook lines, though the phone itself was masked.
TEST_F(ConsoleTest, AnIdThatMayBeAPhoneIsMaskedUntilSignIn) {
  StartOneTenant();
  AddContact("default", "c1");
  DomainEvent d;
  d.type = std::string(ev::kContactLinked);
  d.contact_id = "c1";
  d.system = "genesys";
  d.external_id = "16505551234";
  AppendOutcome out;
  ASSERT_TRUE(log_.Append(ToDraft(d, "default", ContactStream("c1"), {}, {}), &out).ok());
  ApiResponse search = Call("POST", "/docs/visual", "", "q=contact%3Ac1");
  EXPECT_NE(search.body.find("16*******34"), std::string::npos) << search.body;
  EXPECT_EQ(search.body.find("6505551234"), std::string::npos) << "shown without sign-in";

  WebhookReceived w;
  w.system = "whatsapp";
  w.provider_event_id = "p:16505551234:marketing_messages:stop:1763661600";
  w.body = "{}";
  Event e;
  e.type = std::string(WebhookReceived::kType);
  e.schema_version = WebhookReceived::kSchemaVersion;
  e.payload = EncodeWebhookReceived(w);
  EXPECT_EQ(TellEvent(e, false).what.find("6505551234"), std::string::npos);
  EXPECT_NE(TellEvent(e, true).what.find("16505551234"), std::string::npos)
      << "revealed when asked";
}

TEST_F(ConsoleTest, AnonymousSearchCanBeTurnedOff) {
  StartOneTenant({{"DFM_API_ANONYMOUS_SEARCH", "false"}});
  AddContact("default", "c1");
  ApiResponse search = Call("POST", "/docs/visual", "", "q=%2B12055550142");
  EXPECT_EQ(search.status, 200);
  EXPECT_EQ(search.body.find("contact:c1"), std::string::npos);
  EXPECT_NE(search.body.find("Sign in with a viewer key to search"), std::string::npos);
}

// Issue 47: every call of the keyed and admin API is in the access log
// with who asked, from where and the answer; the route's pattern, never
// the path, query, body or a secret.
TEST_F(ConsoleTest, EveryKeyedAndAdminCallIsInTheAccessLog) {
  Start();
  const std::string viewer = MakeKey("viewer", "*");
  EXPECT_EQ(Call("GET", "/v1/contacts/trace?ref=%2B12055550142", viewer).status / 100, 4);
  EXPECT_EQ(Call("GET", "/v1/events", "dfm_00000000000000aa_" + std::string(64, '0')).status, 401);
  EXPECT_EQ(Call("GET", "/v1/openapi.json").status, 200);  // public: not the keyed API
  EXPECT_EQ(Call("POST", "/docs/visual/sign-in", "", "key=" + viewer).status, 303);  // a key used
  std::vector<AccessRecord> all;
  uint64_t damaged = 0;
  ASSERT_TRUE(ReadAccessLog(dir_.path(), [&all](const AccessRecord& r) {
    all.push_back(r);
    return true;
  }, &damaged).ok());
  EXPECT_EQ(damaged, 0u);
  ASSERT_EQ(all.size(), 4u) << "the key made, the trace, the refused call, the sign-in";
  EXPECT_EQ(all[3].route, "/docs/visual/sign-in");
  EXPECT_EQ(all[3].key_name, "test viewer");
  EXPECT_EQ(all[3].credential, all[1].credential);
  EXPECT_EQ(all[0].credential, "admin-token");
  EXPECT_EQ(all[0].route, "/v1/admin/keys");
  EXPECT_EQ(all[0].status, 201);
  EXPECT_EQ(all[1].credential.rfind("key:", 0), 0u);
  EXPECT_EQ(all[1].key_name, "test viewer");
  EXPECT_EQ(all[1].role, "viewer");
  EXPECT_EQ(all[1].route, "/v1/contacts/trace");
  EXPECT_EQ(all[1].client, "127.0.0.1");
  EXPECT_EQ(all[2].credential, "none");
  EXPECT_EQ(all[2].key_id, "00000000000000aa") << "the id a refused token named";
  EXPECT_EQ(all[2].status, 401);
  std::ifstream in(dir_.path() + "/access.log");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.rfind("dfm-access 1\n", 0), 0u);
  EXPECT_EQ(text.find("12055550142"), std::string::npos) << "no personal data";
  EXPECT_EQ(text.find(viewer.substr(22)), std::string::npos) << "no secret";
  EXPECT_EQ(text.find("admin-secret"), std::string::npos);
}

// An access record that cannot be written is counted for operators
// (dfm_access_log_failures_total, DfmAccessLogUnwritten); the call is
// still answered.
TEST_F(ConsoleTest, AnAccessRecordNotWrittenIsCounted) {
  ASSERT_TRUE(std::filesystem::create_directory(dir_.path() + "/access.log"));
  Start();
  const std::string viewer = MakeKey("viewer", "*");  // 201: MakeKey checks it
  EXPECT_EQ(Call("GET", "/v1/events", viewer).status, 200);
  EXPECT_EQ(counters_.access_log_failures.load(), 2u);
}

// The keys a cluster's nodes share, in a store that can be made
// unreachable (NATS down).
class UnreachableKeys : public CasStore {
 public:
  explicit UnreachableKeys(EventLog* log) : inner_(NewLogCasStore(log, "keys")) {}
  Status Get(const std::string& k, Entry* e) override { return down ? Down() : inner_->Get(k, e); }
  Status Create(const std::string& k, const std::string& v) override {
    return down || read_only ? Down() : inner_->Create(k, v);
  }
  Status Update(const std::string& k, const std::string& v, uint64_t rev) override {
    return down || read_only ? Down() : inner_->Update(k, v, rev);
  }
  Status Keys(std::vector<std::string>* keys) override {
    return down ? Down() : inner_->Keys(keys);
  }
  std::atomic<bool> down{false};
  std::atomic<bool> read_only{false};  // read, not written (no quorum)

 private:
  static Status Down() { return Status::Unavailable("NATS unreachable"); }
  std::unique_ptr<CasStore> inner_;
};

// A node that cannot read the shared keys, or share a change it made,
// says so (dfm_api_keys_stale, dfm_api_keys_unshared) until it can.
TEST_F(ConsoleTest, SharedKeysNotReadOrNotWrittenAreCounted) {
  Start();
  MemoryEventLog bucket_log;
  auto bucket = std::make_shared<UnreachableKeys>(&bucket_log);
  bucket->down = true;
  console_->SetSharedKeys(std::make_shared<SharedKeys>(bucket));
  EXPECT_EQ(counters_.shared_keys_stale.load(), 1u);
  MakeKey("viewer", "*");  // made here, not shared
  EXPECT_EQ(counters_.keys_unshared.load(), 1u);
  bucket->down = false;  // the poll, every second, catches up
  for (int i = 0; i < 300 && (counters_.shared_keys_stale.load() || counters_.keys_unshared.load());
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(counters_.shared_keys_stale.load(), 0u);
  EXPECT_EQ(counters_.keys_unshared.load(), 0u);
  std::vector<std::string> shared;
  ASSERT_TRUE(bucket->Keys(&shared).ok());
  EXPECT_EQ(shared.size(), 1u) << "the key reached the bucket";
  console_.reset();  // its poller reads bucket_log, which ends with this body
}

// A revocation a node could not share survives the node's restart: the
// node refuses the key at once, and shares the revocation when the
// bucket is back. (In cluster mode the front's own log does not hold the
// key's events: a new, empty log here.)
TEST_F(ConsoleTest, ARevocationNotSharedIsSharedAfterARestart) {
  Start();
  MemoryEventLog bucket_log;
  auto bucket = std::make_shared<UnreachableKeys>(&bucket_log);
  console_->SetSharedKeys(std::make_shared<SharedKeys>(bucket));
  const std::string token = MakeKey("viewer", "*");
  std::string id, secret;
  ASSERT_TRUE(SplitApiKey(token, &id, &secret));
  bucket->down = true;
  ASSERT_EQ(Call("DELETE", "/v1/admin/keys/" + id, "admin-secret", "", true).status, 200);
  EXPECT_EQ(counters_.keys_unshared.load(), 1u);
  EXPECT_TRUE(std::filesystem::exists(dir_.Sub("keys-unshared")));

  console_.reset();  // the node restarts; the bucket is still down
  MemoryEventLog front_log;
  console_ = std::make_unique<Console>(config_, &front_log, SystemClock::Instance(), &counters_);
  ASSERT_TRUE(console_->Start().ok());
  console_->SetAdminToken("admin-secret");
  console_->SetSharedKeys(std::make_shared<SharedKeys>(bucket));
  EXPECT_EQ(counters_.keys_unshared.load(), 1u) << "still to share";
  bucket->read_only = true;  // the bucket read (its creation of the key), not written
  bucket->down = false;
  for (int i = 0; i < 300 && counters_.shared_keys_stale.load(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(counters_.shared_keys_stale.load(), 0u);
  EXPECT_EQ(counters_.keys_unshared.load(), 1u);
  EXPECT_EQ(Call("GET", "/v1/events", token).status, 401)
      << "revoked here, whatever the bucket says";
  bucket->read_only = false;
  for (int i = 0; i < 300 && (counters_.keys_unshared.load() || counters_.shared_keys_stale.load());
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(counters_.keys_unshared.load(), 0u);
  EXPECT_EQ(counters_.shared_keys_stale.load(), 0u) << "the bucket folded here";
  EXPECT_EQ(Call("GET", "/v1/events", token).status, 401)
      << "the bucket's creation, and the revocation";
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("keys-unshared")));
  ApiKeyRegistry other;  // another node's, folding the bucket
  size_t n = 0;
  ASSERT_TRUE(SharedKeys(bucket).FoldInto(&other, &n).ok());
  ASSERT_TRUE(other.Find(id).has_value());
  EXPECT_TRUE(other.Find(id)->revoked) << "the revocation reached the bucket";
  console_.reset();  // its poller reads bucket_log
}

TEST(AccessLogTest, RotatesAndReadsOldestFirstSkippingADamagedLine) {
  testing::TempDir dir;
  {
    AccessLog log(dir.path(), /*max_bytes=*/600, /*keep=*/2);
    for (int i = 0; i < 12; ++i) {
      AccessRecord r;
      r.at_us = 1000 + i;
      r.method = "GET";
      r.route = "/v1/events";
      r.status = 200;
      ASSERT_TRUE(log.Record(r).ok());
    }
  }
  std::ofstream(dir.path() + "/access.log", std::ios::app) << "0000 cut short";
  std::vector<int64_t> seen;
  uint64_t damaged = 0;
  ASSERT_TRUE(ReadAccessLog(dir.path(), [&seen](const AccessRecord& r) {
    seen.push_back(r.at_us);
    return true;
  }, &damaged).ok());
  EXPECT_EQ(damaged, 1u);
  ASSERT_FALSE(seen.empty());
  EXPECT_LT(seen.size(), 12u) << "the oldest file beyond `keep` is gone";
  EXPECT_EQ(seen.back(), 1011);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(seen.back() - seen.front() + 1, static_cast<int64_t>(seen.size())) << "no gap";
}

// Cluster mode: a pause is answered once every node holds it (its ack of
// the shared sequence), or at the deadline naming the nodes that do not.
TEST_F(ConsoleTest, AClusterPauseIsAnsweredOnceEveryNodeHoldsIt) {
  Start();
  MemoryEventLog bucket_log;
  std::shared_ptr<CasStore> bucket = NewLogCasStore(&bucket_log, "control");
  auto here = std::make_shared<SharedControl>(bucket);
  SharedControl there(bucket);
  here->SetNode("n1");
  there.SetNode("n2");
  auto control = std::make_shared<SyncControl>();
  here->Subscribe([control](const std::vector<Event>& events) {
    for (const auto& e : events) control->Apply(e);
  });
  SyncControl on_there;
  there.Subscribe([&on_there](const std::vector<Event>& events) {
    for (const auto& e : events) on_there.Apply(e);
  });
  SyncControlHooks hooks;
  hooks.control = control;
  hooks.share = [here](const Event& e, uint64_t* count) { return here->Publish(e, count); };
  hooks.waiting = [here](uint64_t count, std::vector<std::string>* nodes,
                         std::vector<std::string>* waiting) {
    *nodes = {"n1", "n2"};
    return here->Waiting(*nodes, count, waiting);
  };
  hooks.held_wait_ms = 300;
  console_->SetSyncControl(std::move(hooks));

  const auto began = std::chrono::steady_clock::now();
  ApiResponse a =
      Call("POST", "/v1/admin/sync/pause", "admin-secret", R"({"system":"verity"})", true);
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_GE(std::chrono::steady_clock::now() - began, std::chrono::milliseconds(300))
      << "waited for n2";
  EXPECT_NE(a.body.find(R"("nodes":{"held":["n1"],"waiting":["n2"]})"), std::string::npos)
      << a.body;
  EXPECT_FALSE(on_there.PausedBy("acme", "verity")) << "n2 has not read it";

  std::atomic<bool> stop{false};
  std::thread reader([&] {  // n2 reads the shared pauses now
    while (!stop.load()) {
      (void)there.Poll();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  a = Call("POST", "/v1/admin/sync/pause", "admin-secret", R"({"reason":"every system"})", true);
  const bool held_there = on_there.PausedBy("acme", "ghl").has_value();
  stop = true;
  reader.join();
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_NE(a.body.find(R"("nodes":{"held":["n1","n2"],"waiting":[]})"), std::string::npos)
      << a.body;
  EXPECT_TRUE(held_there) << "held by n2 when answered";
}

// The admin API's pause and resume: recorded (event and admin.action),
// applied once durable, the connectors woken; a key of one tenant acts on
// its own tenant only; bodies and names checked.
TEST_F(ConsoleTest, SyncPauseAndResumeAreRecordedAndScoped) {
  Start();
  auto control = std::make_shared<SyncControl>();
  int woken = 0;
  SyncControlHooks hooks;
  hooks.control = control;
  hooks.wake = [&woken] { ++woken; };
  console_->SetSyncControl(std::move(hooks));
  ApiResponse a = Call("POST", "/v1/admin/sync/pause", "admin-secret",
                       R"({"system":"verity","reason":"vendor incident"})", true);
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_NE(a.body.find("\"paused\":true"), std::string::npos) << a.body;
  EXPECT_TRUE(control->PausedBy("acme", "verity"));
  EXPECT_FALSE(control->PausedBy("acme", "ghl"));
  EXPECT_EQ(woken, 1);
  std::vector<Event> events;
  ASSERT_TRUE(log_.Read(1, 100, &events).ok());
  bool paused = false, action = false;
  for (const auto& e : events) {
    paused |= e.type == kSyncPaused && e.stream == kSyncControlStream;
    action |= e.type == "admin.action" && e.payload.find("sync.pause") != std::string::npos;
  }
  EXPECT_TRUE(paused && action);
  EXPECT_EQ(Call("POST", "/v1/admin/sync/pause", "admin-secret", R"({"system":"nope"})", true).status, 400);
  EXPECT_EQ(Call("POST", "/v1/admin/sync/pause", "admin-secret", R"({"tenant":"nope"})", true).status, 400);
  EXPECT_EQ(Call("POST", "/v1/admin/sync/resume", "admin-secret", R"({"concurrency":0})", true).status, 400);
  const std::string viewer = MakeKey("viewer", "acme"), op = MakeKey("operator", "acme");
  EXPECT_EQ(Call("POST", "/v1/admin/sync/pause", viewer, "", true).status, 403) << "operators pause";
  EXPECT_EQ(Call("POST", "/v1/admin/sync/pause", op, R"({"tenant":"default"})", true).status, 403);
  ApiResponse mine = Call("POST", "/v1/admin/sync/resume", op, R"({"concurrency":2})", true);
  ASSERT_EQ(mine.status, 200) << mine.body;
  EXPECT_TRUE(control->PausedBy("acme", "verity")) << "a pause of every tenant is not one tenant's to lift";
  EXPECT_EQ(control->Limit("acme", "ghl"), 2);
  ASSERT_EQ(Call("POST", "/v1/admin/sync/resume", "admin-secret", R"({"system":"verity"})", true).status, 200);
  EXPECT_FALSE(control->PausedBy("acme", "verity"));
  EXPECT_EQ(control->Limit("default", "ghl"), 0) << "another tenant's connectors are not limited";
  ApiResponse state = Call("GET", "/v1/admin/sync", op, "", true);
  EXPECT_EQ(state.status, 200);
  EXPECT_NE(state.body.find("\"concurrency\":2"), std::string::npos) << state.body;
  // Another tenant's pause and who made it are not one tenant's key's to see.
  ASSERT_EQ(Call("POST", "/v1/admin/sync/pause", "admin-secret",
                 R"({"tenant":"default","reason":"default's own incident"})", true)
                .status,
            200);
  state = Call("GET", "/v1/admin/sync", op, "", true);
  EXPECT_EQ(state.body.find("default's own incident"), std::string::npos) << state.body;
  EXPECT_NE(state.body.find("\"paused\":false"), std::string::npos) << state.body;
  EXPECT_NE(
      Call("GET", "/v1/admin/sync", "admin-secret", "", true).body.find("default's own incident"),
      std::string::npos)
      << "a key of every tenant sees it";
}

// A campaign's start check that cannot read the contacts or the opt-out
// registry answers 503 (ask again), not 422 "0 reachable", and the
// campaign stays a draft.
TEST_F(ConsoleTest, ACampaignCheckThatCannotReadTheProjectionsAnswers503) {
  Start();
  AddContact("acme", "c1");
  SyncProjections projections;
  ProjectionRunner runner(&log_, projections.All());
  ASSERT_TRUE(runner.CatchUp().ok());
  const std::string op = MakeKey("operator", "acme");
  ASSERT_EQ(Call("POST", "/v1/customers", op, R"({"id":"acme","name":"Acme"})").status, 201);
  ApiResponse made = Call("POST", "/v1/campaigns", op,
                          R"({"id":"spring","customer":"acme","audience":{"members":["+12055550142"]},)"
                          R"("steps":[{"channel":"sms","template":"Hi"}]})");
  ASSERT_EQ(made.status, 201) << made.body;
  ApiResponse check = Call("POST", "/v1/campaigns/spring/validate", op);
  ASSERT_EQ(check.status, 200) << check.body;
  EXPECT_NE(check.body.find("1 named, 1 reachable"), std::string::npos) << check.body;
  for (const char* consumer : {OptOutRegistryProjection::kName, ContactViewProjection::kName}) {
    log_.FailStateReads(consumer, true);
    ApiResponse failed = Call("POST", "/v1/campaigns/spring/validate", op);
    EXPECT_EQ(failed.status, 503) << consumer << ": " << failed.body;
    ApiResponse start = Call("POST", "/v1/campaigns/spring/start", op);
    EXPECT_EQ(start.status, 503) << consumer << ": " << start.body;
    log_.FailStateReads(consumer, false);
  }
  ApiResponse now = Call("GET", "/v1/campaigns/spring", op);
  EXPECT_NE(now.body.find("\"state\":\"draft\""), std::string::npos) << now.body;
}

}  // namespace
}  // namespace dfm
