#include "connectors/halopsa/clients_cache.h"

#include <simdjson.h>

#include <algorithm>
#include <set>

#include "util/strings.h"

namespace dfm {

namespace {

int64_t Number(simdjson::dom::object o, const char* key) {
  double d = 0;
  int64_t n = 0;
  if (!o[key].get(n)) return n;
  if (!o[key].get(d)) return static_cast<int64_t>(d);  // HaloPSA sends ids as 18.0 too
  return 0;
}

std::string Text(simdjson::dom::object o, const char* key) {
  std::string_view v;
  return o[key].get(v) ? std::string() : std::string(v);
}

HaloClientRecord Read(simdjson::dom::object o) {
  HaloClientRecord c;
  c.id = Number(o, "id");
  c.name = Text(o, "name");
  c.domain = AsciiLower(TrimSpace(Text(o, "domain")));
  c.website = Text(o, "website");
  c.main_site_id = Number(o, "main_site_id");
  return c;
}

}  // namespace

bool ReadHaloClients(std::string_view body, bool single, std::vector<HaloClientRecord>* out,
                     int64_t* record_count) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body.data(), body.size()).get(doc)) return false;
  simdjson::dom::object o;
  if (doc.get(o)) return false;
  if (single) {
    HaloClientRecord c = Read(o);
    if (c.id <= 0) return false;
    out->push_back(std::move(c));
    return true;
  }
  simdjson::dom::array clients;
  if (o["clients"].get(clients)) return false;
  for (simdjson::dom::element e : clients) {
    simdjson::dom::object co;
    if (!e.get(co)) out->push_back(Read(co));
  }
  if (record_count) *record_count = Number(o, "record_count");
  return true;
}

void KeepOncePerId(std::vector<HaloClientRecord>* records) {
  std::stable_sort(
      records->begin(), records->end(),
      [](const HaloClientRecord& a, const HaloClientRecord& b) { return a.id < b.id; });
  records->erase(std::unique(records->begin(), records->end(),
                             [](const HaloClientRecord& a, const HaloClientRecord& b) {
                               return a.id == b.id;
                             }),
                 records->end());
}

std::string HostOfWebsite(std::string_view w) {
  std::string s = AsciiLower(TrimSpace(w));
  if (size_t scheme = s.find("://"); scheme != std::string::npos) s = s.substr(scheme + 3);
  if (size_t end = s.find_first_of("/:?#"); end != std::string::npos) s = s.substr(0, end);
  if (s.compare(0, 4, "www.") == 0) s = s.substr(4);
  return s;
}

void HaloClientsCache::Replace(std::vector<HaloClientRecord> all, int64_t now_us, int64_t listed_from_us) {
  std::lock_guard<std::mutex> lock(mu_);
  clients_ = std::move(all);
  std::vector<std::pair<int64_t, HaloClientRecord>> kept;
  for (auto& [at, c] : added_) {
    if (at < listed_from_us) continue;  // the walk saw it, or HaloPSA no longer has it
    kept.emplace_back(at, c);
    const int64_t id = c.id;
    if (std::none_of(clients_.begin(), clients_.end(), [id](const HaloClientRecord& x) { return x.id == id; }))
      clients_.push_back(c);
  }
  added_ = std::move(kept);
  loaded_us_ = now_us;
  Changed();
}

void HaloClientsCache::Add(HaloClientRecord c, int64_t now_us) {
  std::lock_guard<std::mutex> lock(mu_);
  added_.emplace_back(now_us, c);
  clients_.push_back(std::move(c));
  Changed();
}

bool HaloClientsCache::Fresh(int64_t now_us) const {
  std::lock_guard<std::mutex> lock(mu_);
  return loaded_us_ >= 0 && now_us - loaded_us_ < kFreshUs;
}

void HaloClientsCache::Invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  loaded_us_ = -1;
}

namespace {

bool HasDomain(const HaloClientRecord& c, const std::string& dom) {
  return c.domain == dom || (!c.website.empty() && HostOfWebsite(c.website) == dom);
}

// The lowest id among the Clients `match` takes.
template <class Match>
const HaloClientRecord* Lowest(const std::vector<HaloClientRecord>& all, Match match) {
  const HaloClientRecord* best = nullptr;
  for (const auto& c : all)
    if (match(c) && (!best || c.id < best->id)) best = &c;
  return best;
}

}  // namespace

std::optional<HaloClientRecord> HaloClientsCache::FindLocked(std::string_view company,
                                                             std::string_view domain) const {
  const std::string name = AsciiLower(TrimSpace(company));
  const std::string dom = AsciiLower(TrimSpace(domain));
  if (!name.empty())
    if (auto* c = Lowest(clients_, [&](const HaloClientRecord& x) { return AsciiLower(TrimSpace(x.name)) == name; }))
      return *c;
  if (!dom.empty())
    if (auto* c = Lowest(clients_, [&](const HaloClientRecord& x) { return HasDomain(x, dom); })) return *c;
  return std::nullopt;
}

std::optional<HaloClientRecord> HaloClientsCache::Find(std::string_view company,
                                                       std::string_view domain) const {
  std::lock_guard<std::mutex> lock(mu_);
  return FindLocked(company, domain);
}

std::vector<std::string> HaloClientsCache::Keys(std::string_view company, std::string_view domain) {
  std::vector<std::string> keys;
  const std::string name = AsciiLower(TrimSpace(company));
  const std::string dom = AsciiLower(TrimSpace(domain));
  if (!name.empty()) keys.push_back("n:" + name);
  if (!dom.empty()) keys.push_back("d:" + dom);
  return keys;
}

std::optional<HaloClientRecord> HaloClientsCache::FindOrJoin(std::string_view company, std::string_view domain,
                                                             Then then, bool* creator) {
  std::lock_guard<std::mutex> lock(mu_);
  *creator = false;
  if (auto c = FindLocked(company, domain)) return c;
  const std::vector<std::string> keys = Keys(company, domain);
  for (const auto& k : keys) {
    auto it = creating_.find(k);
    if (it == creating_.end()) continue;
    it->second->push_back(std::move(then));
    return std::nullopt;
  }
  auto waiting = std::make_shared<std::vector<Then>>();
  for (const auto& k : keys) creating_[k] = waiting;
  *creator = true;
  return std::nullopt;
}

void HaloClientsCache::Created(std::string_view company, std::string_view domain,
                               const std::optional<HaloClientRecord>& made, int64_t now_us) {
  std::shared_ptr<std::vector<Then>> waiting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool held = made && std::any_of(clients_.begin(), clients_.end(),
                                          [&made](const HaloClientRecord& c) { return c.id == made->id; });
    if (made && !held) {
      added_.emplace_back(now_us, *made);
      clients_.push_back(*made);
      Changed();
    }
    for (const auto& k : Keys(company, domain)) {
      auto it = creating_.find(k);
      if (it == creating_.end()) continue;
      waiting = it->second;
      creating_.erase(it);
    }
  }
  if (waiting)
    for (auto& then : *waiting) then(made);
}

std::vector<std::vector<HaloClientRecord>> HaloClientsCache::Duplicates() const {
  std::lock_guard<std::mutex> lock(mu_);
  return DuplicatesLocked();
}

std::string HaloClientsCache::DuplicatesText() const {
  std::lock_guard<std::mutex> lock(mu_);
  return duplicates_text_;
}

void HaloClientsCache::Changed() { duplicates_text_ = DescribeHaloDuplicates(DuplicatesLocked()); }

std::string DescribeHaloDuplicates(const std::vector<std::vector<HaloClientRecord>>& groups) {
  std::string out;
  for (const auto& g : groups) {
    std::string ids;
    for (const auto& c : g) ids += (ids.empty() ? "" : ", ") + std::to_string(c.id);
    const std::string what = !g[0].name.empty() ? g[0].name : g[0].domain;
    out += (out.empty() ? "" : " ") + std::string("HaloPSA holds ") + std::to_string(g.size()) +
           " Clients for \"" + what + "\" (ids " + ids + "): new users go to " + std::to_string(g[0].id) + ".";
  }
  return out;
}

std::vector<std::vector<HaloClientRecord>> HaloClientsCache::DuplicatesLocked() const {
  std::map<std::string, std::vector<HaloClientRecord>> groups;
  for (const auto& c : clients_) {
    const std::string name = AsciiLower(TrimSpace(c.name));
    if (!name.empty()) groups["n:" + name].push_back(c);
    const std::string dom = !c.domain.empty() ? c.domain : c.website.empty() ? "" : HostOfWebsite(c.website);
    if (!dom.empty()) groups["d:" + dom].push_back(c);
  }
  std::vector<std::vector<HaloClientRecord>> out;
  std::set<std::vector<int64_t>> seen;
  for (auto& [key, g] : groups) {
    std::sort(g.begin(), g.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    g.erase(std::unique(g.begin(), g.end(), [](const auto& a, const auto& b) { return a.id == b.id; }), g.end());
    if (g.size() < 2) continue;
    std::vector<int64_t> ids;
    for (const auto& c : g) ids.push_back(c.id);
    if (seen.insert(ids).second) out.push_back(std::move(g));
  }
  return out;
}

}  // namespace dfm
