// HaloPSA consent (issue 46): an opt-out reaches every user of the person
// (its own id and each with the email, staff may have made two), carrying
// only neversendemails; a user gone is skipped; read_consent reads them
// all. The real client over a HaloPSA kept in memory.
#include <gtest/gtest.h>

#include <map>

#include "connectors/connector.h"
#include "connectors/halopsa/halopsa.h"
#include "tests/support/connector_settings.h"
#include "util/strings.h"

namespace dfm {
namespace {

struct User {
  std::string email;
  bool never = false;
};

// GET /api/Users?search=, GET /api/Users/{id}, POST /api/Users [{id, ...}],
// answered at once.
class UsersHalo : public HttpClient {
 public:
  std::map<int64_t, User> users;
  std::map<int64_t, User> search_copy;  // what a lagging search still lists
  bool gone_as_400 = false;             // GET of a deleted user: 400 "does not exist"
  std::vector<HttpRequest> seen;

  void Send(HttpRequest req, HttpCallback cb) override {
    seen.push_back(req);
    cb(Do(req));
  }

 private:
  static std::string View(int64_t id, const User& u) {
    return R"({"id":)" + std::to_string(id) + R"(,"emailaddress":")" + u.email +
           R"(","neversendemails":)" + (u.never ? "true" : "false") + "}";
  }
  HttpResponse Do(const HttpRequest& req) {
    HttpResponse r;
    r.status = 200;
    const std::string path = req.url.substr(req.url.find("/api/"));
    if (req.method == "GET" && path.rfind("/api/Users?", 0) == 0) {
      const std::string term = path.substr(path.find("search=") + 7);
      std::string list;
      std::map<int64_t, User> listed = users;
      for (const auto& [id, u] : search_copy) listed[id] = u;
      for (const auto& [id, u] : listed)
        if (UrlEscape(u.email) == term) list += (list.empty() ? "" : ",") + View(id, u);
      r.body = R"({"record_count":1,"users":[)" + list + "]}";
    } else if (req.method == "GET" && path.rfind("/api/Users/", 0) == 0) {
      auto it = users.find(std::strtoll(path.c_str() + 11, nullptr, 10));
      if (it == users.end()) {
        r.status = gone_as_400 ? 400 : 404;
        r.body = gone_as_400 ? R"("User does not exist.")" : "Not found";
      } else {
        r.body = View(it->first, it->second);
      }
    } else if (req.method == "POST" && path == "/api/Users") {
      const size_t at = req.body.find("\"id\":");
      const int64_t id = std::strtoll(req.body.c_str() + at + 5, nullptr, 10);
      auto it = users.find(id);
      if (it == users.end()) {
        r.status = 400;
        r.body = R"("User )" + std::to_string(id) + R"( does not exist.")";
      } else {
        it->second.never = req.body.find("\"neversendemails\":true") != std::string::npos;
        r.status = 201;
        r.body = View(id, it->second);
      }
    } else {
      r.status = 404;
    }
    return r;
  }
};

SystemSettings HaloSettings() { return testing::DefaultSettings("halopsa", {{"api_base_url", "http://halo.test"}}); }

PushResult Push(VendorClient* c, const std::string& op, const std::string& own,
                const std::string& after = "") {
  PushRequest req;
  req.push_id = "c1:halopsa:1";
  req.contact_id = "c1";
  req.op = op;
  req.channel = "email";
  req.external_id = own;
  req.fields["email"] = "ann@umbrella.test";
  if (!after.empty()) req.fields["after"] = after;
  PushResult out;
  c->Push(req, Credentials{"token", "", 0}, [&out](PushResult r) { out = std::move(r); });
  return out;
}

TEST(HaloConsent, AnOptOutReachesEveryUserOfThePersonAndOnlyTheFlag) {
  UsersHalo halo;
  halo.users = {{7, {"ann@umbrella.test"}}, {9, {"ann@umbrella.test"}}, {11, {"bob@umbrella.test"}}};
  auto client = NewHaloClient(HaloSettings(), &halo);
  PushResult r = Push(client.get(), "opt_out", "9");
  ASSERT_EQ(r.http_status, 200) << r.detail;
  EXPECT_EQ(r.answered.at("ids"), "9,7") << "its own first, then the duplicate";
  EXPECT_EQ(r.external_id, "9");
  EXPECT_TRUE(halo.users[7].never && halo.users[9].never);
  EXPECT_FALSE(halo.users[11].never);
  for (const auto& req : halo.seen) {
    if (req.method != "POST") continue;
    EXPECT_EQ(req.body.find("emailaddress"), std::string::npos) << req.body;
    EXPECT_NE(req.body.find("neversendemails"), std::string::npos) << req.body;
  }
}

TEST(HaloConsent, AUserGoneIsSkippedTheOthersCount) {
  UsersHalo halo;
  halo.users = {{7, {"ann@umbrella.test"}}};
  auto client = NewHaloClient(HaloSettings(), &halo);
  PushResult r = Push(client.get(), "opt_out", "5");  // its own, merged away
  ASSERT_EQ(r.http_status, 200) << r.detail;
  EXPECT_EQ(r.answered.at("ids"), "7");
  EXPECT_EQ(r.external_id, "") << "the user found is not made the contact's own";
  halo.users.clear();
  r = Push(client.get(), "opt_out", "5");
  EXPECT_EQ(r.http_status, 422) << "nobody to set: said so";
}

// The person's linked user deleted in HaloPSA: every later upsert was
// answered 400 "User 5 does not exist." and dead-lettered, for good (the
// link is never cleared). The user is looked for again, once.
TEST(HaloUpsert, ALinkedUserDeletedSinceIsFoundAnew) {
  UsersHalo halo;
  halo.users = {{12, {"ann@umbrella.test"}}};  // staff made her again
  auto client = NewHaloClient(HaloSettings(), &halo);
  PushResult r = Push(client.get(), "upsert", "5");
  ASSERT_EQ(r.http_status, 201) << r.detail;
  EXPECT_EQ(r.external_id, "12") << "the user found by her email";
  EXPECT_EQ(halo.seen.size(), 3u) << "the save refused, the search, the save";
  halo.users.clear();
  halo.seen.clear();
  r = Push(client.get(), "upsert", "5");
  EXPECT_NE(r.http_status / 100, 2) << "none found: made anew, which this fake does not do";
  EXPECT_EQ(halo.seen.at(1).method, "GET") << "looked for";
  EXPECT_LT(halo.seen.size(), 6u) << "once, never a loop";
}

TEST(HaloConsent, ReadBackShowsOutOnlyWhenEveryUserHoldsIt) {
  UsersHalo halo;
  halo.users = {{7, {"ann@umbrella.test", true}}, {9, {"other@umbrella.test", true}}};
  auto client = NewHaloClient(HaloSettings(), &halo);
  PushResult r = Push(client.get(), "read_consent", "9");
  ASSERT_EQ(r.http_status, 200) << r.detail;
  EXPECT_EQ(r.answered.at("held.email"), "out") << "its own read by id, the duplicate by email";
  EXPECT_EQ(r.detail, "read 2 HaloPSA users");
  halo.users[7].never = false;  // staff lifted it on the duplicate
  r = Push(client.get(), "read_consent", "9");
  EXPECT_EQ(r.answered.at("held.email"), "in");
  halo.users.clear();
  r = Push(client.get(), "read_consent", "9");
  EXPECT_EQ(r.http_status, 200);
  EXPECT_EQ(r.answered.count("held.email"), 0u) << "no record: nothing it could hold";
}

// A read that follows a consent push of ours (field "after") reads the
// person's own user by id however the search lists it: right after our
// opt-in the search may still show neversendemails set. Its own user gone,
// it answers nothing (the search's copies may be as old).
TEST(HaloConsent, AReadAfterOurPushReadsItsOwnUserById) {
  UsersHalo halo;
  halo.users = {{9, {"ann@umbrella.test", false}}};
  halo.search_copy = {{9, {"ann@umbrella.test", true}}};
  auto client = NewHaloClient(HaloSettings(), &halo);
  EXPECT_EQ(Push(client.get(), "read_consent", "9").answered.at("held.email"), "out")
      << "the search's copy";
  halo.seen.clear();
  PushResult r = Push(client.get(), "read_consent", "9", "opt_in");
  ASSERT_EQ(r.http_status, 200) << r.detail;
  EXPECT_EQ(r.answered.at("held.email"), "in") << "as the opt-in left it";
  ASSERT_EQ(halo.seen.size(), 2u);
  EXPECT_NE(halo.seen[1].url.find("/api/Users/9"), std::string::npos);
  halo.users.clear();  // deleted: GET answers 404 here, 400 "does not exist" at times
  r = Push(client.get(), "read_consent", "9", "opt_in");
  EXPECT_EQ(r.http_status, 200);
  EXPECT_EQ(r.answered.count("held.email"), 0u);
  halo.gone_as_400 = true;
  r = Push(client.get(), "read_consent", "9", "opt_in");
  EXPECT_EQ(r.http_status, 200) << r.detail;
  EXPECT_EQ(r.answered.count("held.email"), 0u);
}

}  // namespace
}  // namespace dfm
