#include "replay-tools/access_audit.h"

#include <cstdio>

#include "storage/access_log.h"
#include "util/clock.h"

namespace dfm {

int RunAccessAudit(const std::string& data_dir, int64_t since_us, const std::string& key, bool json,
                   std::ostream& out, std::ostream& err) {
  uint64_t damaged = 0, shown = 0;
  if (!json) out << "time                      status  method route                          who                                client\n";
  Status s = ReadAccessLog(
      data_dir,
      [&](const AccessRecord& r) {
        if (r.at_us < since_us) return true;
        if (!key.empty() && !(key == "none" ? r.credential == "none" : r.key_id == key)) return true;
        ++shown;
        if (json) {
          std::string line = EncodeAccessRecord(r);
          out << line.substr(9);  // without the crc
          return true;
        }
        std::string who = r.credential;
        if (!r.key_name.empty()) who += " (" + r.key_name + (r.role.empty() ? "" : ", " + r.role) + ")";
        if (r.credential == "none" && !r.key_id.empty()) who = "none (presented key " + r.key_id + ")";
        char row[512];
        std::snprintf(row, sizeof row, "%-25s %6d  %-6s %-30s %-34s %s\n", FormatIso8601Millis(r.at_us).c_str(),
                      r.status, r.method.c_str(), r.route.c_str(), who.c_str(), r.client.c_str());
        out << row;
        return true;
      },
      &damaged);
  if (!s.ok()) {
    err << "dfm audit access: " << s.ToString() << "\n";
    return 2;
  }
  if (damaged > 0) err << "dfm audit access: " << damaged << " damaged line(s) skipped\n";
  if (!json) out << shown << " call(s)\n";
  return 0;
}

}  // namespace dfm
