#include "sync/normalize.h"

#include <phonenumbers/phonenumberutil.h>

#include <unordered_map>

#include "util/strings.h"

namespace dfm {

Normalizer::Normalizer(std::string default_region) : region_(std::move(default_region)) {}

namespace {

// Each thread keeps what ParsePhone() gave for the texts it saw last, by
// region, and answers from there: always the parse's own answer, since
// parsing depends only on the text and the region. Parsing (ICU regular
// expressions) is the costly part of mapping a webhook, and the same few
// numbers recur (a conversation is one sender). Emptied when full.
constexpr size_t kPhoneCacheEntries = 1024;

std::unordered_map<std::string, std::optional<std::string>>& PhoneCache() {
  thread_local std::unordered_map<std::string, std::optional<std::string>> cache;
  return cache;
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
  auto& cache = PhoneCache();
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  std::optional<std::string> e164 = ParsePhone(t, region_);
  if (cache.size() >= kPhoneCacheEntries) cache.clear();
  cache.emplace(std::move(key), e164);
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
