// A walk over a HaloPSA list (GET /api/Users, /api/Client) page by page
// that reads every record present from its start to its end, even when
// records are deleted between two pages (docs/vendors/halopsa.md).
//
// HaloPSA pages by offset (page_no, page_size): a record deleted below the
// page being read moves every later one back, and the one at the page's
// edge would be read by neither page. So each page is asked in id order
// (`order=id&orderdesc=false`, an assumption the document names), the walk
// keeps the highest id read, and before a page whose first id is above it
// reads the record just before the page (page_size=1): one above the
// highest read, or none at all, means records moved back, and the walk
// steps back a page (the rows of a page may then be read twice).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "connectors/common/http_client.h"

namespace dfm {

struct HaloWalkAt {
  int64_t page = 1;     // the page to read
  int64_t read_to = 0;  // the highest id read so far
};

struct HaloWalk {
  // "/api/Users?pageinate=true&includeinactive=true": the list's path and
  // its own parameters; the walk adds the order and the page.
  std::string list;
  std::string key;  // the array of rows in the answer: "users", "clients"
  int page_size = 100;
  std::function<HttpRequest(const std::string& path)> request;  // a GET of `path`
  std::function<void(HttpRequest, HttpCallback)> send;
};

struct HaloPage {
  std::string path;     // of `answer`
  HttpResponse answer;  // the page's; the edge read's when that one failed
  bool unreadable = false;  // `answer` is a 2xx whose rows do not read
  // The first page shorter than asked while record_count says more follow:
  // a page size above HaloPSA's cap, with which offsets cannot be walked.
  bool capped = false;
  int requests = 1;  // 2 with the edge read
  size_t rows = 0;   // the page's rows, read or not
  int64_t total = 0;  // record_count
  std::optional<HaloWalkAt> next;  // none: the walk has ended
  bool ok() const { return answer.status / 100 == 2 && !unreadable && !capped; }
};

// Reads page `at` of `w` (and the edge before it when needed); calls
// `done` once, from `w.send`'s callback. When ok(), `answer.body` is the
// page's.
void ReadHaloPage(const HaloWalk& w, HaloWalkAt at, std::function<void(HaloPage)> done);

// The path of page `page_no` of `page_size` rows of `list`, in id order.
std::string HaloPagePath(const std::string& list, int page_size, int64_t page_no);

}  // namespace dfm
