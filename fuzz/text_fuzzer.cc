// libFuzzer target: the small parsers every webhook goes through: phone
// numbers (libphonenumber behind Normalizer), emails, ISO-8601 and HTTP
// dates, form bodies and %-escapes, the folded email key.
#include <cstddef>
#include <cstdint>
#include <string>

#include "connectors/common/probe.h"
#include "connectors/common/webhook_source.h"
#include "sync/identity.h"
#include "sync/normalize.h"
#include "util/clock.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const dfm::Normalizer us("US");
  const std::string in(reinterpret_cast<const char*>(data), size);
  (void)us.Phone(in);
  (void)dfm::Normalizer::Email(in);
  (void)dfm::ParseIso8601Micros(in);
  (void)dfm::ParseHttpDate(in);
  (void)dfm::ParseForm(in);
  bool ok = false;
  (void)dfm::UrlDecode(in, true, &ok);
  (void)dfm::FoldedEmail(in);
  (void)dfm::CompanyDomainOfEmail(in);
  return 0;
}
