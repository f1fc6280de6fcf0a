// HaloPSA's find-or-create of a company's Client under concurrency,
// restarts and several nodes (issue 51), part of the deterministic
// simulation (docs/fuzzing.md): the real client (connectors/halopsa/
// client.cc) over a HaloPSA kept in memory whose answers come in a seeded
// random order, some lost after the work was done, with "kill -9"s (a
// node's new client, its requests in flight carried out or not,
// unanswered) and a simulated wall clock for the claims' ages. Nodes
// share their records (connectors/common/vendor_records.h) as a cluster's
// nodes share the NATS bucket; a single node keeps them in its log.
// Invariant: one Client per real-world key (company), and every user
// filed under it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <random>

#include "connectors/common/vendor_records.h"
#include "connectors/connector.h"
#include "connectors/halopsa/halopsa.h"
#include "storage/cas_store.h"
#include "storage/memory_event_log.h"
#include "tests/support/connector_settings.h"
#include "util/strings.h"

namespace dfm {
namespace {

// HaloPSA's Users and Client routes as the connector uses them, answered
// when the test says.
class MemoryHalo {
 public:
  struct Waiting {
    int node = 0;
    HttpRequest req;
    HttpCallback cb;
  };
  std::vector<Waiting> waiting;
  std::map<int64_t, std::string> clients;                  // id -> name
  std::map<int64_t, std::pair<std::string, int64_t>> users;  // id -> email, client id

  // What node `node`'s client sends through.
  class Link : public HttpClient {
   public:
    Link(MemoryHalo* halo, int node) : halo_(halo), node_(node) {}
    void Send(HttpRequest req, HttpCallback cb) override {
      halo_->waiting.push_back({node_, std::move(req), std::move(cb)});
    }

   private:
    MemoryHalo* halo_;
    int node_;
  };

  // Carries out request `i`'s work; answers it unless `lose`.
  void Answer(size_t i, bool lose) {
    Waiting w = std::move(waiting[i]);
    waiting.erase(waiting.begin() + static_cast<long>(i));
    HttpResponse r = Do(w.req);
    if (lose) {
      r = HttpResponse();
      r.error = "timeout";
    }
    w.cb(std::move(r));
  }
  // Node `node` restarts: each of its requests in flight was carried out
  // or not; none answered.
  void Orphan(int node, std::mt19937& rng) {
    std::vector<Waiting> others;
    for (auto& w : waiting) {
      if (w.node != node) {
        others.push_back(std::move(w));
      } else if (rng() % 2) {
        Do(w.req);
      }
    }
    waiting = std::move(others);
  }

 private:
  HttpResponse Do(const HttpRequest& req) {
    HttpResponse r;
    r.status = 200;
    const std::string path = req.url.substr(req.url.find("/api/"));
    if (req.method == "GET" && path.rfind("/api/Users?", 0) == 0) {
      const std::string email = path.substr(path.find("search=") + 7);
      std::string list;
      for (const auto& [id, u] : users)
        if (UrlEscape(u.first) == email)
          list += (list.empty() ? "" : ",") + std::string(R"({"id":)") + std::to_string(id) +
                  R"(,"emailaddress":")" + u.first + R"("})";
      r.body = R"({"record_count":1,"users":[)" + list + "]}";
    } else if (req.method == "GET" && path.rfind("/api/Client?", 0) == 0) {
      std::string list;
      for (const auto& [id, name] : clients)
        list += (list.empty() ? "" : ",") + std::string(R"({"id":)") + std::to_string(id) + R"(,"name":")" +
                name + R"(","main_site_id":)" + std::to_string(id) + "}";
      r.body = R"({"record_count":)" + std::to_string(clients.size()) + R"(,"clients":[)" + list + "]}";
    } else if (req.method == "GET" && path.rfind("/api/Site?client_id=", 0) == 0) {
      const std::string id = path.substr(path.find('=') + 1);
      r.body = R"({"record_count":1,"sites":[{"id":)" + id + R"(,"client_id":)" + id + "}]}";
    } else if (req.method == "POST" && path == "/api/Client") {
      const int64_t id = 100 + static_cast<int64_t>(clients.size());
      const size_t at = req.body.find("\"name\":\"") + 8;
      clients[id] = req.body.substr(at, req.body.find('"', at) - at);
      r.status = 201;
      r.body = R"({"id":)" + std::to_string(id) + R"(,"name":")" + clients[id] + R"(","main_site_id":)" +
               std::to_string(id) + "}";
    } else if (req.method == "POST" && path == "/api/Users" && req.body.find("\"id\":") != std::string::npos) {
      r.status = 201;  // an update of a user found by email
      r.body = "{" + req.body.substr(req.body.find("\"id\":"), req.body.find_first_of(",}", req.body.find("\"id\":")) -
                                                                 req.body.find("\"id\":")) + "}";
    } else if (req.method == "POST" && path == "/api/Users") {
      const int64_t id = 1000 + static_cast<int64_t>(users.size());
      const size_t e = req.body.find("\"emailaddress\":\"") + 16;
      const size_t c = req.body.find("\"client_id\":") + 12;
      users[id] = {req.body.substr(e, req.body.find('"', e) - e), std::strtoll(req.body.c_str() + c, nullptr, 10)};
      r.status = 201;
      r.body = R"({"id":)" + std::to_string(id) + "}";
    } else {
      r.status = 404;
    }
    return r;
  }
};

SystemSettings HaloSettings() { return testing::DefaultSettings("halopsa", {{"api_base_url", "http://127.0.0.1:1"}}); }

// One run: `nodes` nodes (one: the embedded default) push 9 users of 3
// companies until each is filed. False (with the failures reported) when
// an invariant broke.
bool RunSeed(uint32_t seed, int nodes) {
  const char* kCompanies[] = {"Umbrella Labs", "Initrode Labs", "Globex"};
  std::mt19937 rng(seed);
  MemoryHalo halo;
  int64_t now_us = 1'700'000'000'000'000;
  // The records: the log's state (one node: it outlives a restart) or the
  // cluster's bucket; both a CasStore.
  MemoryEventLog log;
  std::shared_ptr<CasStore> store = NewLogCasStore(&log, "vendor_records");
  struct Node {
    std::unique_ptr<MemoryHalo::Link> link;
    std::unique_ptr<VendorClient> client;
    std::shared_ptr<VendorRecords> records;
  };
  std::vector<Node> node(static_cast<size_t>(nodes));
  auto start = [&](int n) {
    Node& at = node[static_cast<size_t>(n)];
    at.link = std::make_unique<MemoryHalo::Link>(&halo, n);
    at.client = NewHaloClient(HaloSettings(), at.link.get());
    // DFM_SIM_NO_RECORDS: without the shared records (the invariant should
    // then break across nodes: the simulation's own check).
    if (!std::getenv("DFM_SIM_NO_RECORDS"))
      at.records = std::make_shared<VendorRecords>(store, "t1/halopsa", [&now_us] { return now_us; });
  };
  for (int n = 0; n < nodes; ++n) start(n);
  // Each user: pushed until a push of it succeeds (the connector retries),
  // by any node (a partition's users may move to another node).
  struct User {
    std::string email, company;
    bool done = false, in_flight = false;
    int on = 0;  // the node its push is on
  };
  std::vector<User> people;
  for (int i = 0; i < 9; ++i) {
    const std::string company = kCompanies[rng() % 3];
    people.push_back({"u" + std::to_string(i) + "@" + AsciiLower(company.substr(0, 4)) + ".com", company});
  }
  auto push = [&](size_t p, int n) {
    PushRequest req;
    req.op = "upsert";
    req.push_id = "p" + std::to_string(p);
    req.fields = {{"email", people[p].email}, {"company_name", people[p].company}, {"first_name", "X"}};
    req.records = node[static_cast<size_t>(n)].records;
    people[p].in_flight = true;
    people[p].on = n;
    node[static_cast<size_t>(n)].client->Push(req, Credentials{"tok", "", 0}, [&people, p](PushResult r) {
      people[p].in_flight = false;
      if (r.http_status / 100 == 2) people[p].done = true;
    });
  };
  for (int step = 0; step < 20000; ++step) {
    now_us += 200'000;  // a claim left by a dead node goes stale after 300 steps
    for (size_t p = 0; p < people.size(); ++p)
      if (!people[p].done && !people[p].in_flight && rng() % 3 == 0) push(p, static_cast<int>(rng() % nodes));
    if (halo.waiting.empty()) {
      if (std::all_of(people.begin(), people.end(), [](const User& u) { return u.done; })) break;
      continue;
    }
    if (rng() % 40 == 0) {  // a node is killed -9 and starts again: its cache is gone
      const int n = static_cast<int>(rng() % nodes);
      halo.Orphan(n, rng);
      for (auto& u : people)
        if (u.on == n) u.in_flight = false;  // its pushes, unanswered, are sent again
      start(n);
      continue;
    }
    halo.Answer(rng() % halo.waiting.size(), rng() % 10 == 0);
  }
  std::map<std::string, int> per_company;
  for (const auto& [id, name] : halo.clients) per_company[name]++;
  for (const auto& [name, n] : per_company) EXPECT_EQ(n, 1) << "seed " << seed << ", nodes " << nodes << ": " << name;
  for (const auto& u : people) {
    EXPECT_TRUE(u.done) << "seed " << seed << ", nodes " << nodes << ": " << u.email << " never filed";
    for (const auto& [id, held] : halo.users) {
      if (held.first == u.email) {
        EXPECT_EQ(halo.clients[held.second], u.company) << "seed " << seed << ", nodes " << nodes;
      }
    }
  }
  return !::testing::Test::HasFailure();
}

uint32_t Seeds() {
  const char* s = std::getenv("DFM_SIM_SEEDS");
  return s ? static_cast<uint32_t>(std::max(1L, std::strtol(s, nullptr, 10) / 10)) : 200;
}

TEST(HaloFindOrCreate, OneClientPerCompanyOnOneNodeWhateverTheOrderLossesAndRestarts) {
  for (uint32_t seed = 1; seed <= Seeds(); ++seed)
    if (!RunSeed(seed, 1)) break;
}

TEST(HaloFindOrCreate, OneClientPerCompanyAcrossThreeNodesSharingTheirRecords) {
  for (uint32_t seed = 1; seed <= Seeds(); ++seed)
    if (!RunSeed(seed, 3)) break;
}

}  // namespace
}  // namespace dfm
