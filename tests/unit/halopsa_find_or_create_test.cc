// HaloPSA's find-or-create of a company's Client under concurrency and
// restarts (issue 51): the real client (connectors/halopsa/client.cc) over
// a HaloPSA kept in memory whose answers come in a seeded random order,
// some lost after the work was done, with "restarts" (a new client, its
// requests in flight carried out or not, unanswered). Invariant: one
// Client per company, and every user filed under it.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "connectors/connector.h"
#include "connectors/halopsa/halopsa.h"
#include "tests/support/connector_settings.h"
#include "util/strings.h"

namespace dfm {
namespace {

// HaloPSA's Users and Client routes as the connector uses them, answered
// when the test says.
class MemoryHalo : public HttpClient {
 public:
  struct Waiting {
    HttpRequest req;
    HttpCallback cb;
  };
  std::vector<Waiting> waiting;
  std::map<int64_t, std::string> clients;                  // id -> name
  std::map<int64_t, std::pair<std::string, int64_t>> users;  // id -> email, client id

  void Send(HttpRequest req, HttpCallback cb) override { waiting.push_back({std::move(req), std::move(cb)}); }

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
  // A restart: each request in flight was carried out or not; none answered.
  void Orphan(std::mt19937& rng) {
    for (auto& w : waiting)
      if (rng() % 2) Do(w.req);
    waiting.clear();
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

TEST(HaloFindOrCreate, OneClientPerCompanyWhateverTheOrderLossesAndRestarts) {
  const char* kCompanies[] = {"Umbrella Labs", "Initrode Labs", "Globex"};
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    std::mt19937 rng(seed);
    MemoryHalo halo;
    std::unique_ptr<VendorClient> client = NewHaloClient(HaloSettings(), &halo);
    // Each user: pushed until a push of it succeeds (the connector retries).
    struct User {
      std::string email, company;
      bool done = false, in_flight = false;
    };
    std::vector<User> people;
    for (int i = 0; i < 9; ++i) {
      const std::string company = kCompanies[rng() % 3];
      people.push_back({"u" + std::to_string(i) + "@" + AsciiLower(company.substr(0, 4)) + ".com", company});
    }
    auto push = [&](size_t p) {
      PushRequest req;
      req.op = "upsert";
      req.push_id = "p" + std::to_string(p);
      req.fields = {{"email", people[p].email}, {"company_name", people[p].company}, {"first_name", "X"}};
      people[p].in_flight = true;
      client->Push(req, Credentials{"tok", "", 0}, [&people, p](PushResult r) {
        people[p].in_flight = false;
        if (r.http_status / 100 == 2) people[p].done = true;
      });
    };
    for (int step = 0; step < 2000; ++step) {
      for (size_t p = 0; p < people.size(); ++p)
        if (!people[p].done && !people[p].in_flight && rng() % 3 == 0) push(p);
      if (halo.waiting.empty()) {
        if (std::all_of(people.begin(), people.end(), [](const User& u) { return u.done; })) break;
        continue;
      }
      if (rng() % 40 == 0) {  // kill -9 and start again: the cache is gone
        halo.Orphan(rng);
        for (auto& u : people) u.in_flight = false;
        client = NewHaloClient(HaloSettings(), &halo);
        continue;
      }
      halo.Answer(rng() % halo.waiting.size(), rng() % 10 == 0);
    }
    std::map<std::string, int> per_company;
    for (const auto& [id, name] : halo.clients) per_company[name]++;
    for (const auto& [name, n] : per_company) EXPECT_EQ(n, 1) << "seed " << seed << ": " << name;
    for (const auto& u : people) {
      EXPECT_TRUE(u.done) << "seed " << seed;
      for (const auto& [id, held] : halo.users) {
        if (held.first == u.email) {
          EXPECT_EQ(halo.clients[held.second], u.company) << "seed " << seed;
        }
      }
    }
    if (::testing::Test::HasFailure()) break;
  }
}

}  // namespace
}  // namespace dfm
