#include "replay-tools/webhook_audit.h"

#include <map>
#include <ostream>

#include "connectors/connector.h"
#include "events/webhook_received.h"
#include "replay-tools/tool_log.h"
#include "util/json.h"

namespace dfm {

Status CountWebhooks(const EventLog& log, const MapperSource& mapper, const WebhookAuditOptions& o,
                     std::vector<WebhookCount>* out) {
  std::map<std::pair<std::string, std::string>, WebhookCount> counts;
  std::vector<ContactFact> facts;
  Status s = ScanWindow(log, o.since_us, o.until_us, 1, [&](const Event& e) {
    if (e.type != WebhookReceived::kType || (!o.tenant.empty() && e.tenant != o.tenant)) return true;
    WebhookReceived w;
    const bool readable = !e.erased() && DecodeWebhookReceived(e.schema_version, e.payload, &w).ok();
    WebhookCount& c = counts[{e.tenant, readable ? w.system : std::string("(erased)")}];
    c.tenant = e.tenant;
    c.system = readable ? w.system : "(erased)";
    c.webhooks++;
    if (!readable) {
      c.unreadable++;
      return true;
    }
    const InboundMapper* m = FindMapperFor(e.type, w.system);
    if (!m) return true;
    facts.clear();
    if (!(*m)(w, mapper.For(e.tenant, w.system), &facts).ok()) {
      c.unreadable++;
      return true;
    }
    c.facts += facts.size();
    if (facts.size() > 1) c.batched++;
    c.largest = std::max<uint64_t>(c.largest, facts.size());
    return true;
  });
  if (!s.ok()) return s;
  out->clear();
  for (auto& [key, c] : counts) out->push_back(std::move(c));
  return Status::OK();
}

int PrintWebhookCounts(const std::vector<WebhookCount>& counts, bool json, std::ostream& out) {
  if (json) {
    for (const auto& c : counts)
      out << JsonObject()
                 .Str("tenant", c.tenant)
                 .Str("system", c.system)
                 .UInt("webhooks", c.webhooks)
                 .UInt("batched", c.batched)
                 .UInt("facts", c.facts)
                 .UInt("largest", c.largest)
                 .UInt("unreadable", c.unreadable)
                 .Finish()
          << "\n";
    return 0;
  }
  Table t({"TENANT", "SYSTEM", "WEBHOOKS", "BATCHED", "FACTS", "LARGEST", "UNREADABLE"});
  for (const auto& c : counts)
    t.Add({c.tenant, c.system, std::to_string(c.webhooks), std::to_string(c.batched), std::to_string(c.facts),
           std::to_string(c.largest), std::to_string(c.unreadable)});
  if (t.size() == 0) {
    out << "no webhooks\n";
    return 0;
  }
  t.Print(out);
  return 0;
}

}  // namespace dfm
