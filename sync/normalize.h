// Identity normalization: the one spelling of a phone number and an email
// address that matching, the opt-out registry and pushes all use.
//
// Thread-safe: libphonenumber's PhoneNumberUtil is a process-wide singleton
// with immutable metadata, and Phone() keeps recent answers in one cache
// for all threads (65,536 slots, in memory only, never logged).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace dfm {

class Normalizer {
 public:
  // `default_region`: ISO 3166-1 alpha-2 code used for numbers written
  // without a country code ("(205) 555-0142" with "US" -> "+12055550142").
  explicit Normalizer(std::string default_region = "US");

  // E.164 ("+12055550142"), or nullopt when the text is not a possible
  // number for its region. Valid-range checks are deliberately not applied:
  // fictional ranges (555-01xx) and newly allocated ranges still match.
  std::optional<std::string> Phone(std::string_view raw) const;

  // Trimmed and lower-cased; nullopt unless it has the shape local@domain
  // with no spaces.
  static std::optional<std::string> Email(std::string_view raw);

  const std::string& default_region() const { return region_; }

 private:
  std::string region_;
};

}  // namespace dfm
