#include "connectors/halopsa/paged_walk.h"

#include <simdjson.h>

#include <algorithm>
#include <utility>

namespace dfm {
namespace {

// The ids of the rows under `key` in order (rows without one are counted
// in *rows only) and record_count; false when the answer does not read.
bool ReadIds(const std::string& body, const std::string& key, std::vector<int64_t>* ids,
             size_t* rows, int64_t* total) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array list;
  if (parser.parse(body).get(doc) || doc[key].get(list)) return false;
  for (simdjson::dom::element row : list) {
    ++*rows;
    int64_t id = 0;
    double decimal = 0;  // HaloPSA may send 18.0 (clients_cache.cc)
    if (row["id"].get(id) && !row["id"].get(decimal)) id = static_cast<int64_t>(decimal);
    if (id > 0) ids->push_back(id);
  }
  int64_t count = 0;
  if (!doc["record_count"].get(count)) *total = count;
  return true;
}

}  // namespace

std::string HaloPagePath(const std::string& list, int page_size, int64_t page_no) {
  return list + "&order=id&orderdesc=false&page_size=" + std::to_string(page_size) +
         "&page_no=" + std::to_string(page_no);
}

void ReadHaloPage(const HaloWalk& w, HaloWalkAt at, std::function<void(HaloPage)> done) {
  const std::string path = HaloPagePath(w.list, w.page_size, at.page);
  w.send(w.request(path), [w, at, path, done = std::move(done)](HttpResponse resp) mutable {
    HaloPage p;
    p.path = path;
    p.answer = std::move(resp);
    if (p.answer.status / 100 != 2) return done(std::move(p));
    std::vector<int64_t> ids;
    if (!ReadIds(p.answer.body, w.key, &ids, &p.rows, &p.total)) {
      p.unreadable = true;
      return done(std::move(p));
    }
    const bool full = p.rows == static_cast<size_t>(w.page_size);
    if (at.page == 1 && !full && p.total > static_cast<int64_t>(p.rows)) {
      p.capped = true;
      return done(std::move(p));
    }
    const int64_t high = ids.empty() ? at.read_to : std::max(at.read_to, ids.back());
    std::optional<HaloWalkAt> next;
    if (full) next = HaloWalkAt{at.page + 1, high};
    if (at.page == 1 || (!ids.empty() && ids.front() <= at.read_to)) {
      p.next = next;  // it begins among the rows read: nothing between
      return done(std::move(p));
    }
    // The row just before the page: above the highest read, or none (rows
    // below were deleted), the rest moved back past it, unread.
    p.requests = 2;
    const std::string edge = HaloPagePath(w.list, 1, (at.page - 1) * w.page_size);
    w.send(w.request(edge), [w, at, next, edge, p = std::move(p),
                             done = std::move(done)](HttpResponse e) mutable {
      std::vector<int64_t> edge_id;
      size_t edge_rows = 0;
      int64_t total = 0;
      if (e.status / 100 != 2 || !ReadIds(e.body, w.key, &edge_id, &edge_rows, &total)) {
        p.unreadable = e.status / 100 == 2;
        p.path = edge;
        p.answer = std::move(e);
        return done(std::move(p));
      }
      const bool moved = edge_rows == 0 || (!edge_id.empty() && edge_id.front() > at.read_to);
      p.next = moved ? HaloWalkAt{at.page - 1, at.read_to} : next;
      done(std::move(p));
    });
  });
}

}  // namespace dfm
