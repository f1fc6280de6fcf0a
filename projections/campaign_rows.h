// Row helpers shared by the campaign projections' two files
// (campaign_projections.cc, campaign_task_projection.cc); not for other
// users.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/event_log.h"

namespace dfm {
namespace campaign_rows {

// "<kind>/<tenant>/<contact>/<when, 20 digits>/<what>": a contact's dated rows.
inline std::string DatedKey(char kind, const std::string& tenant, const std::string& contact,
                            int64_t at_us, const std::string& what) {
  char when[24];
  std::snprintf(when, sizeof when, "%020lld", static_cast<long long>(at_us));
  return std::string(1, kind) + "/" + tenant + "/" + contact + "/" + when + "/" + what;
}

// Visits the times of `contact`'s dated rows of `kind` at or after `since_us`
// until `each` says false.
inline Status ScanDated(const EventLog& log, const char* consumer, char kind,
                        const std::string& tenant, const std::string& contact, int64_t since_us,
                        const std::function<bool(int64_t)>& each) {
  const std::string prefix = std::string(1, kind) + "/" + tenant + "/" + contact + "/";
  return log.ScanConsumerState(consumer, prefix, [&](std::string_view key, std::string_view) {
    int64_t when = 0;
    std::from_chars(key.data() + prefix.size(),
                    key.data() + std::min(key.size(), prefix.size() + 20), when);
    return when < since_us || each(when);
  });
}

// Every row of `consumer` under `prefix`, decoded; Corruption (after
// reading the others) when one does not read.
template <typename Row>
Status ReadRows(const EventLog& log, const char* consumer, const std::string& prefix,
                bool (*decode)(std::string_view, Row*), std::vector<Row>* out) {
  out->clear();
  bool bad = false;
  Status s = log.ScanConsumerState(consumer, prefix, [&](std::string_view, std::string_view row) {
    Row r;
    if (decode(row, &r))
      out->push_back(std::move(r));
    else
      bad = true;
    return true;
  });
  if (!s.ok()) return s;
  return bad ? Status::Corruption(std::string("a row of ") + consumer + " that does not read")
             : Status::OK();
}

}  // namespace campaign_rows
}  // namespace dfm
