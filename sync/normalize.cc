#include "sync/normalize.h"

#include <phonenumbers/phonenumberutil.h>

#include <functional>
#include <mutex>
#include <vector>

#include "util/strings.h"

namespace dfm {

Normalizer::Normalizer(std::string default_region) : region_(std::move(default_region)) {}

namespace {

// What ParsePhone() gave for the texts seen last, by region, shared by
// every thread: always the parse's own answer, since parsing depends only
// on the text and the region. Parsing (ICU regular expressions, ~9 µs) is
// the costly part of mapping a webhook; a conversation's numbers recur,
// but a tenant's senders are many (bench/README.md (b): 10,000 senders
// missed a per-thread cache of 1,024 most of the time).
//
// Two-way: a key's set of two slots is its hash's, and a newer key takes
// the slot of the set used less recently; sixteen locks, each over the
// sets of its own. A key is the region and at most 64 characters, so the
// memory is bounded: ~5 MiB of slots, made on first use, plus what longer
// keys and answers hold. Like the numbers in flight, it is never written
// anywhere.
class PhoneCache {
 public:
  // Two slots to a set: 10,000 numbers in 32,768 sets of two miss a few
  // in a thousand, where one slot each missed ~14% (two numbers of a
  // slot taking turns, each miss a parse of ~7 us).
  static constexpr size_t kSets = 1 << 15, kLocks = 16;

  // True and *e164 set when `key` is cached.
  bool Find(const std::string& key, size_t hash, std::optional<std::string>* e164) {
    Set& set = sets_[hash & (kSets - 1)];
    std::lock_guard<std::mutex> lk(locks_[(hash & (kSets - 1)) % kLocks].mu);
    for (int i = 0; i < 2; ++i) {
      Slot& s = set.slots[i];
      if (!s.used || s.key != key) continue;
      *e164 = s.e164;
      set.recent = i;
      return true;
    }
    return false;
  }

  // Into an empty slot of its set, else over the one used less recently.
  void Put(std::string key, size_t hash, const std::optional<std::string>& e164) {
    Set& set = sets_[hash & (kSets - 1)];
    std::lock_guard<std::mutex> lk(locks_[(hash & (kSets - 1)) % kLocks].mu);
    const int i = !set.slots[0].used ? 0 : !set.slots[1].used ? 1 : 1 - set.recent;
    Slot& s = set.slots[i];
    s.used = true;
    s.key = std::move(key);
    s.e164 = e164;
    set.recent = i;
  }

 private:
  struct Slot {
    bool used = false;
    std::string key;
    std::optional<std::string> e164;
  };
  struct Set {
    Slot slots[2];
    int recent = 0;  // the slot found or put last
  };
  // kSets is a multiple of kLocks: set i is guarded by lock i % kLocks.
  static_assert(kSets % kLocks == 0);
  struct alignas(64) Lock {  // a cache line each: threads on other locks do not meet
    std::mutex mu;
  };
  std::vector<Set> sets_ = std::vector<Set>(kSets);
  Lock locks_[kLocks];
};

PhoneCache& SharedPhoneCache() {
  static PhoneCache* const cache = new PhoneCache();  // never destroyed: threads may outlive main
  return *cache;
}

std::optional<std::string> ParsePhone(std::string_view text, const std::string& region) {
  using i18n::phonenumbers::PhoneNumber;
  using i18n::phonenumbers::PhoneNumberUtil;
  const PhoneNumberUtil* util = PhoneNumberUtil::GetInstance();
  PhoneNumber number;
  if (util->Parse(std::string(text), region, &number) != PhoneNumberUtil::NO_PARSING_ERROR) {
    return std::nullopt;
  }
  if (!util->IsPossibleNumber(number)) return std::nullopt;
  std::string out;
  util->Format(number, PhoneNumberUtil::E164, &out);
  return out;
}

}  // namespace

std::optional<std::string> Normalizer::Phone(std::string_view raw) const {
  std::string_view t = TrimSpace(raw);
  if (t.empty() || t.size() > 64) return std::nullopt;
  std::string key;
  key.reserve(region_.size() + 1 + t.size());
  key.append(region_).push_back('\n');
  key.append(t.data(), t.size());
  PhoneCache& cache = SharedPhoneCache();
  const size_t hash = std::hash<std::string>{}(key);
  std::optional<std::string> e164;
  if (cache.Find(key, hash, &e164)) return e164;
  e164 = ParsePhone(t, region_);
  cache.Put(std::move(key), hash, e164);
  return e164;
}

std::optional<std::string> Normalizer::Email(std::string_view raw) {
  std::string_view t = TrimSpace(raw);
  if (t.empty() || t.size() > 320) return std::nullopt;
  size_t at = t.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= t.size() ||
      t.find('@', at + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  if (t.find_first_of(" \t\r\n,;<>") != std::string_view::npos) return std::nullopt;
  return AsciiLower(t);
}

}  // namespace dfm
