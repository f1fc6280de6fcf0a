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
// Direct-mapped: a key's slot is its hash's, and a newer key takes the
// slot over; sixteen locks, each over the slots of its own. A key is the
// region and at most 64 characters, so the memory is bounded: ~5 MiB of
// slots, made on first use, plus what longer keys and answers hold. Like
// the numbers in flight, it is never written anywhere.
class PhoneCache {
 public:
  static constexpr size_t kSlots = 1 << 16, kLocks = 16;

  // True and *e164 set when `key` is cached.
  bool Find(const std::string& key, size_t hash, std::optional<std::string>* e164) {
    Slot& s = slots_[hash & (kSlots - 1)];
    std::lock_guard<std::mutex> lk(locks_[hash % kLocks].mu);
    if (!s.used || s.key != key) return false;
    *e164 = s.e164;
    return true;
  }

  void Put(std::string key, size_t hash, const std::optional<std::string>& e164) {
    Slot& s = slots_[hash & (kSlots - 1)];
    std::lock_guard<std::mutex> lk(locks_[hash % kLocks].mu);
    s.used = true;
    s.key = std::move(key);
    s.e164 = e164;
  }

 private:
  struct Slot {
    bool used = false;
    std::string key;
    std::optional<std::string> e164;
  };
  // kSlots is a multiple of kLocks: slot i is guarded by lock i % kLocks.
  static_assert(kSlots % kLocks == 0);
  struct alignas(64) Lock {  // a cache line each: threads on other locks do not meet
    std::mutex mu;
  };
  std::vector<Slot> slots_ = std::vector<Slot>(kSlots);
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
