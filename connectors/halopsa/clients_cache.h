// HaloPSA's Clients (companies) as the connector keeps them to match a new
// user to one (docs/vendors/halopsa.md section 3): by company name, else
// by the company's email domain (the Client's `domain`, else its
// `website`'s host). Pure: the client fills it from GET /api/Client pages.
// Thread-safe.
//
// Find-or-create is single-flight per company (issue 51): the first push
// that misses a company becomes its creator; every other push for the
// same name or domain waits for that one creation and is filed under its
// Client. Where HaloPSA holds duplicates anyway (made by staff, or by
// another tool), the lowest id is chosen, always, and Duplicates() names
// them for the status page and `dfm diagnose`.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
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

// Keeps the first record of each id, in id order.
void KeepOncePerId(std::vector<HaloClientRecord>* records);

// "https://www.Acme.io/about" -> "acme.io".
std::string HostOfWebsite(std::string_view website);

// `groups` (HaloClientsCache::Duplicates) in words: "HaloPSA holds 2
// Clients for "Umbrella Labs" (ids 12, 15): new users go to 12."; "" for none.
std::string DescribeHaloDuplicates(const std::vector<std::vector<HaloClientRecord>>& groups);

class HaloClientsCache {
 public:
  // Loaded this long ago at most, it is trusted for a miss too.
  static constexpr int64_t kFreshUs = 10LL * 60 * 1000000;

  // Every Client, as a walk of GET /api/Client pages begun at `listed_from_us`
  // found them. A Client added since then (a creation the walk began too
  // early to see) is kept.
  void Replace(std::vector<HaloClientRecord> all, int64_t now_us, int64_t listed_from_us);
  void Add(HaloClientRecord c, int64_t now_us);
  bool Fresh(int64_t now_us) const;
  // The next miss is asked of HaloPSA again (a creation went unanswered:
  // it may exist).
  void Invalidate();
  // By name (case-insensitive), else by domain; nullopt when none. Among
  // several, the lowest id.
  std::optional<HaloClientRecord> Find(std::string_view company, std::string_view domain) const;

  // A push that misses `company` / `domain`: found now (another's creation
  // ended), or nullopt. Then *creator says whether this caller creates it;
  // false: `then` is called once the creation under way ends, with its
  // Client (nullopt: it failed, look again).
  using Then = std::function<void(const std::optional<HaloClientRecord>&)>;
  std::optional<HaloClientRecord> FindOrJoin(std::string_view company, std::string_view domain, Then then,
                                             bool* creator);
  // The creator's creation for `company` / `domain` ended: `made`
  // (nullopt: it failed). Adds it, then calls every waiter.
  void Created(std::string_view company, std::string_view domain, const std::optional<HaloClientRecord>& made,
               int64_t now_us);

  // Clients HaloPSA holds more than once under one name or domain, each
  // group in id order (the first is the one chosen).
  std::vector<std::vector<HaloClientRecord>> Duplicates() const;
  // The same, in words for people ("" when none), kept up to date as the
  // cache changes: cheap to ask often.
  std::string DuplicatesText() const;

  // What a company is known by: "n:<name>" and "d:<domain>", lower case,
  // those it has.
  static std::vector<std::string> Keys(std::string_view company, std::string_view domain);

 private:
  std::optional<HaloClientRecord> FindLocked(std::string_view company, std::string_view domain) const;

  std::vector<std::vector<HaloClientRecord>> DuplicatesLocked() const;
  void Changed();  // REQUIRES: mu_ held

  mutable std::mutex mu_;
  std::string duplicates_text_;
  std::vector<HaloClientRecord> clients_;
  std::vector<std::pair<int64_t, HaloClientRecord>> added_;  // by Add, with when
  int64_t loaded_us_ = -1;
  // Creations under way: "n:<name>" and "d:<domain>" -> the ones waiting.
  std::map<std::string, std::shared_ptr<std::vector<Then>>> creating_;
};

}  // namespace dfm
