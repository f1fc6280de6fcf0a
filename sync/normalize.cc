#include "sync/normalize.h"

#include <phonenumbers/phonenumberutil.h>

#include "util/strings.h"

namespace dfm {

Normalizer::Normalizer(std::string default_region) : region_(std::move(default_region)) {}

std::optional<std::string> Normalizer::Phone(std::string_view raw) const {
  using i18n::phonenumbers::PhoneNumber;
  using i18n::phonenumbers::PhoneNumberUtil;
  std::string_view t = TrimSpace(raw);
  if (t.empty() || t.size() > 64) return std::nullopt;
  const PhoneNumberUtil* util = PhoneNumberUtil::GetInstance();
  PhoneNumber number;
  if (util->Parse(std::string(t), region_, &number) != PhoneNumberUtil::NO_PARSING_ERROR) {
    return std::nullopt;
  }
  if (!util->IsPossibleNumber(number)) return std::nullopt;
  std::string out;
  util->Format(number, PhoneNumberUtil::E164, &out);
  return out;
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
