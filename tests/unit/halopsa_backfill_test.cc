// HaloPSA lists walked page by page in id order (paged_walk.h): the
// backfill's users and a push's Clients, none skipped when a record already
// read is deleted between two pages (offset paging then moves the rest
// back). The real client over a HaloPSA kept in memory.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <map>
#include <set>

#include "connectors/connector.h"
#include "connectors/halopsa/halopsa.h"
#include "tests/support/connector_settings.h"

namespace dfm {
namespace {

// GET /api/Users and /api/Client ?pageinate=true&page_size=&page_no=
// [&order=id], answered at once: by id when asked, else by name
// (HaloPSA's default order is not documented); `after_page` runs after
// each users page, `after_client_page` after each Client page. Also what
// a push of a new user asks: a users search (none found), a Client's site
// (its main_site_id, its own id) and the POSTs, kept in `posted`.
class PagedHalo : public HttpClient {
 public:
  std::map<int64_t, std::string> users;    // id -> name
  std::map<int64_t, std::string> clients;  // id -> name
  std::vector<std::string> paths;
  std::vector<std::pair<std::string, std::string>> posted;  // (path, body)
  std::function<void(int64_t page_no, int64_t page_size)> after_page, after_client_page;
  int64_t cap = 1000;  // the most rows a page holds, whatever is asked

  void Send(HttpRequest req, HttpCallback cb) override {
    const std::string path = req.url.substr(req.url.find("/api/"));
    paths.push_back(path);
    HttpResponse r;
    r.status = 200;
    if (req.method == "POST") {
      posted.push_back({path, req.body});
      r.status = 201;
      r.body = path == "/api/Client" ? R"({"id":9000,"name":"new","main_site_id":9000})"
                                     : R"({"id":5000})";
      return cb(r);
    }
    if (path.rfind("/api/Users?search=", 0) == 0) {
      r.body = R"({"record_count":0,"users":[]})";
      return cb(r);
    }
    const bool of_users = path.rfind("/api/Users?", 0) == 0;
    const std::map<int64_t, std::string>& rows = of_users ? users : clients;
    r.body = Page(rows, path, of_users ? "users" : "clients");
    // Served, then changed, then answered: the request the answer leads
    // to sees the change.
    const int64_t size = std::min(cap, Param(path, "page_size")), no = Param(path, "page_no");
    auto& after = of_users ? after_page : after_client_page;
    if (after) after(no, size);
    cb(r);
  }

 private:
  std::string Page(const std::map<int64_t, std::string>& rows, const std::string& path,
                   const std::string& key) const {
    const int64_t size = std::min(cap, Param(path, "page_size")), no = Param(path, "page_no");
    std::vector<std::pair<std::string, int64_t>> order;  // (sort key, id)
    const bool by_id = path.find("order=id") != std::string::npos;
    for (const auto& [id, name] : rows) order.push_back({by_id ? "" : name, id});
    std::sort(order.begin(), order.end());
    std::string list;
    for (size_t i = static_cast<size_t>((no - 1) * size);
         i < order.size() && i < static_cast<size_t>(no * size); ++i)
      list += std::string(list.empty() ? "" : ",") + R"({"id":)" + std::to_string(order[i].second) +
              R"(,"name":")" + rows.at(order[i].second) + R"(","main_site_id":)" +
              std::to_string(order[i].second) + "}";
    return R"({"record_count":)" + std::to_string(rows.size()) + R"(,"page_no":)" +
           std::to_string(no) + R"(,"page_size":)" + std::to_string(size) + R"(,")" + key +
           R"(":[)" + list + "]}";
  }

  static int64_t Param(const std::string& path, const std::string& name) {
    const size_t at = path.find(name + "=");
    return at == std::string::npos ? 0
                                   : std::strtoll(path.c_str() + at + name.size() + 1, nullptr, 10);
  }
};

// Every id the backfill lists from `cursor` on, page by page, to its end.
std::set<int64_t> ListAll(VendorClient* c, int page_size, std::string cursor = "") {
  std::set<int64_t> seen;
  for (int pages = 0; pages < 50; ++pages) {
    ContactPage p;
    c->ListContacts(cursor, page_size, Credentials{"token", "", 0},
                    [&p](ContactPage got) { p = std::move(got); });
    EXPECT_EQ(p.http_status, 200) << p.detail;
    for (const auto& contact : p.contacts) seen.insert(std::stoll(contact.external_id));
    if (p.next_cursor.empty()) return seen;
    cursor = p.next_cursor;
  }
  ADD_FAILURE() << "the walk does not end";
  return seen;
}

SystemSettings Settings() {
  return testing::DefaultSettings("halopsa", {{"api_base_url", "http://halo.test"}});
}

TEST(HaloBackfill, ADeletionBetweenPagesSkipsNobody) {
  PagedHalo halo;
  for (int64_t id = 1; id <= 7; ++id) halo.users[id] = "user " + std::to_string(8 - id);
  bool deleted = false;
  halo.after_page = [&](int64_t no, int64_t size) {
    if (no == 1 && size == 3 && !deleted) deleted = halo.users.erase(2) == 1;
  };
  auto client = NewHaloClient(Settings(), &halo);
  EXPECT_EQ(ListAll(client.get(), 3), (std::set<int64_t>{1, 2, 3, 4, 5, 6, 7}))
      << "user 4 moved onto the first page as user 2 went";
  ASSERT_TRUE(deleted);
  for (const auto& path : halo.paths)
    EXPECT_NE(path.find("&order=id&orderdesc=false"), std::string::npos) << path;
}

// Users below deleted until the next page is empty and no user stands
// before it: the walk steps back rather than ends, and finds the last.
TEST(HaloBackfill, ADeletionThatEmptiesTheNextPageSkipsNobody) {
  PagedHalo halo;
  for (int64_t id = 1; id <= 7; ++id) halo.users[id] = "u";
  halo.after_page = [&](int64_t no, int64_t size) {
    if (no == 2 && size == 3)
      for (int64_t id = 1; id <= 4; ++id) halo.users.erase(id);
  };
  auto client = NewHaloClient(Settings(), &halo);
  EXPECT_EQ(ListAll(client.get(), 3), (std::set<int64_t>{1, 2, 3, 4, 5, 6, 7}));
}

// A vendor that answers fewer users than asked with more to come (a page
// size above its cap): said so, never walked with offsets that skip.
TEST(HaloBackfill, APageSizeAboveTheVendorsCapIsRefusedNotWalked) {
  PagedHalo halo;
  halo.cap = 2;
  for (int64_t id = 1; id <= 5; ++id) halo.users[id] = "u";
  auto client = NewHaloClient(Settings(), &halo);
  ContactPage p;
  client->ListContacts("", 3, Credentials{"token", "", 0}, [&p](ContactPage got) { p = got; });
  EXPECT_EQ(p.http_status, 400) << "refused, not retried";
  EXPECT_NE(p.detail.find("smaller page size"), std::string::npos) << p.detail;
  EXPECT_TRUE(p.contacts.empty());
}

TEST(HaloBackfill, AQuietWalkReadsEachPageOnceAndOneEdgeUserAPage) {
  PagedHalo halo;
  for (int64_t id = 10; id < 17; ++id) halo.users[id] = "u";
  auto client = NewHaloClient(Settings(), &halo);
  ContactPage second;
  client->ListContacts("2:12", 3, Credentials{"token", "", 0},
                       [&second](ContactPage got) { second = got; });
  EXPECT_EQ(second.requests, 2) << "the page and the user before it, both counted";
  halo.paths.clear();
  EXPECT_EQ(ListAll(client.get(), 3).size(), 7u);
  EXPECT_EQ(halo.paths.size(), 5u) << "pages 1, 2 and 3 and the users before pages 2 and 3";
  // A cursor of an older build (a bare page number) starts again.
  halo.paths.clear();
  EXPECT_EQ(ListAll(client.get(), 3, "3").size(), 7u);
  EXPECT_NE(halo.paths.front().find("page_no=1"), std::string::npos);
}

// A Client deleted below the page being read while a new user's company
// is looked for (offset paging moves the rest back): the company's Client,
// at the page's edge, is still found; no second one is made.
TEST(HaloClientsWalk, ADeletionBetweenPagesHidesNoClient) {
  PagedHalo halo;
  char name[16];
  for (int64_t id = 1; id <= 150; ++id) {  // in the same order by name as by id
    std::snprintf(name, sizeof(name), "Company %03d", static_cast<int>(id));
    halo.clients[id] = name;
  }
  bool deleted = false;
  halo.after_client_page = [&](int64_t no, int64_t) {
    if (no == 1 && !deleted) deleted = halo.clients.erase(7) == 1;
  };
  auto client = NewHaloClient(Settings(), &halo);
  PushRequest req;
  req.op = "upsert";
  req.push_id = "p1";
  req.fields = {
      {"email", "ada@company101.test"}, {"company_name", "Company 101"}, {"first_name", "Ada"}};
  PushResult got;
  client->Push(req, Credentials{"token", "", 0}, [&got](PushResult r) { got = std::move(r); });
  ASSERT_TRUE(deleted);
  EXPECT_EQ(got.http_status / 100, 2) << got.detail;
  ASSERT_EQ(halo.posted.size(), 1u) << "a Client made again";
  EXPECT_EQ(halo.posted[0].first, "/api/Users");
  EXPECT_NE(halo.posted[0].second.find("\"client_id\":101"), std::string::npos)
      << halo.posted[0].second;
  int first_page = 0;  // read again after the edge read found Client 101 moved onto it
  for (const auto& path : halo.paths)
    first_page += path.find("page_size=100&page_no=1") != std::string::npos;
  EXPECT_EQ(first_page, 2) << "the walk did not step back";
  for (const auto& path : halo.paths) {
    if (path.rfind("/api/Client?", 0) == 0) {
      EXPECT_NE(path.find("&order=id&orderdesc=false"), std::string::npos) << path;
    }
  }
}

}  // namespace
}  // namespace dfm
