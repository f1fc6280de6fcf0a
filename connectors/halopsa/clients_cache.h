// HaloPSA's Clients (companies) as the connector keeps them to match a new
// user to one (docs/vendors/halopsa.md section 3): by company name, else
// by the company's email domain (the Client's `domain`, else its
// `website`'s host). Pure: the client fills it from GET /api/Client pages.
// Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dfm {

struct HaloClientRecord {
  int64_t id = 0;
  std::string name, domain, website;
  int64_t main_site_id = 0;
};

// One page of GET /api/Client ({record_count, clients: [...]}), or a
// saved Client (POST's answer, `single`). False when it does not read.
bool ReadHaloClients(std::string_view body, bool single, std::vector<HaloClientRecord>* out,
                     int64_t* record_count);

// "https://www.Acme.io/about" -> "acme.io".
std::string HostOfWebsite(std::string_view website);

class HaloClientsCache {
 public:
  // Loaded this long ago at most, it is trusted for a miss too.
  static constexpr int64_t kFreshUs = 10LL * 60 * 1000000;

  void Replace(std::vector<HaloClientRecord> all, int64_t now_us);
  void Add(HaloClientRecord c);
  bool Fresh(int64_t now_us) const;
  // By name (case-insensitive), else by domain; nullopt when none.
  std::optional<HaloClientRecord> Find(std::string_view company, std::string_view domain) const;

 private:
  mutable std::mutex mu_;
  std::vector<HaloClientRecord> clients_;
  int64_t loaded_us_ = -1;
};

}  // namespace dfm
