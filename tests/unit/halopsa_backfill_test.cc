// HaloPSA backfill: the users listed page by page in id order, none skipped
// when a user already read is deleted between two pages (offset paging then
// moves the rest back). The real client over a HaloPSA kept in memory.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>

#include "connectors/connector.h"
#include "connectors/halopsa/halopsa.h"
#include "tests/support/connector_settings.h"

namespace dfm {
namespace {

// GET /api/Users?pageinate=true&page_size=&page_no=[&order=id], answered at
// once: by id when asked, else by name (HaloPSA's default order is not
// documented); `after_page` runs after each answer.
class PagedHalo : public HttpClient {
 public:
  std::map<int64_t, std::string> users;  // id -> name
  std::vector<std::string> paths;
  std::function<void(int64_t page_no, int64_t page_size)> after_page;
  int64_t cap = 1000;  // the most users a page holds, whatever is asked

  void Send(HttpRequest req, HttpCallback cb) override {
    const std::string path = req.url.substr(req.url.find("/api/"));
    paths.push_back(path);
    const int64_t size = std::min(cap, Param(path, "page_size")), no = Param(path, "page_no");
    std::vector<std::pair<std::string, int64_t>> order;  // (sort key, id)
    const bool by_id = path.find("order=id") != std::string::npos;
    for (const auto& [id, name] : users) order.push_back({by_id ? "" : name, id});
    std::sort(order.begin(), order.end());
    std::string list;
    for (size_t i = static_cast<size_t>((no - 1) * size);
         i < order.size() && i < static_cast<size_t>(no * size); ++i)
      list += std::string(list.empty() ? "" : ",") + R"({"id":)" + std::to_string(order[i].second) +
              R"(,"name":")" + users[order[i].second] + R"("})";
    HttpResponse r;
    r.status = 200;
    r.body = R"({"record_count":)" + std::to_string(users.size()) + R"(,"page_no":)" +
             std::to_string(no) + R"(,"page_size":)" + std::to_string(size) + R"(,"users":[)" +
             list + "]}";
    cb(r);
    if (after_page) after_page(no, size);
  }

 private:
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

}  // namespace
}  // namespace dfm
