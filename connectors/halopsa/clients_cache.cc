#include "connectors/halopsa/clients_cache.h"

#include <simdjson.h>

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

std::string HostOfWebsite(std::string_view w) {
  std::string s = AsciiLower(TrimSpace(w));
  if (size_t scheme = s.find("://"); scheme != std::string::npos) s = s.substr(scheme + 3);
  if (size_t end = s.find_first_of("/:?#"); end != std::string::npos) s = s.substr(0, end);
  if (s.compare(0, 4, "www.") == 0) s = s.substr(4);
  return s;
}

void HaloClientsCache::Replace(std::vector<HaloClientRecord> all, int64_t now_us) {
  std::lock_guard<std::mutex> lock(mu_);
  clients_ = std::move(all);
  loaded_us_ = now_us;
}

void HaloClientsCache::Add(HaloClientRecord c) {
  std::lock_guard<std::mutex> lock(mu_);
  clients_.push_back(std::move(c));
}

bool HaloClientsCache::Fresh(int64_t now_us) const {
  std::lock_guard<std::mutex> lock(mu_);
  return loaded_us_ >= 0 && now_us - loaded_us_ < kFreshUs;
}

std::optional<HaloClientRecord> HaloClientsCache::Find(std::string_view company,
                                                       std::string_view domain) const {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string name = AsciiLower(TrimSpace(company));
  const std::string dom = AsciiLower(TrimSpace(domain));
  if (!name.empty())
    for (const auto& c : clients_)
      if (AsciiLower(TrimSpace(c.name)) == name) return c;
  if (!dom.empty())
    for (const auto& c : clients_)
      if (c.domain == dom || (!c.website.empty() && HostOfWebsite(c.website) == dom)) return c;
  return std::nullopt;
}

}  // namespace dfm
