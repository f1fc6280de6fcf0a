#include "replay-tools/consent_audit.h"

#include <map>
#include <ostream>

#include "replay-tools/tool_log.h"
#include "sync/domain_event.h"
#include "sync/fact.h"
#include "util/json.h"

namespace dfm {

Status CollectConsentConflicts(const EventLog& log, const std::string& tenant,
                               std::vector<ConsentConflictRecord>* out) {
  out->clear();
  // A conflict and the push that sets it again answer the same webhook.
  std::map<std::string, size_t> by_cause;          // contact \n causation -> record
  std::map<std::string, size_t> by_push;           // push id -> record
  Status s = ScanEvents(log, 1, 0, [&](const Event& e) {
    if (!tenant.empty() && e.tenant != tenant) return true;
    const bool conflict = e.type == ev::kConsentConflict;
    const bool push = e.type == ev::kPushRequested || e.type == ev::kPushSucceeded ||
                      e.type == ev::kPushDeadLettered;
    if (!conflict && !push) return true;
    DomainEvent d;
    if (!DecodeDomainEvent(e.type, e.payload, &d).ok()) return true;
    const std::string cause = d.contact_id + "\n" + std::string(e.causation_id.AsBytes());
    if (conflict) {
      ConsentConflictRecord r;
      r.tenant = e.tenant;
      r.contact_id = d.contact_id;
      if (auto p = d.fields.find(fields::kPhone); p != d.fields.end()) r.phone = p->second;
      if (auto m = d.fields.find(fields::kEmail); m != d.fields.end()) r.email = m->second;
      r.system = d.system;
      r.actor = d.actor;
      r.channel = d.channel;
      r.reason = d.reason;
      r.record = d.external_id;
      r.detail = d.detail;
      r.at_us = HappenedAt(e, d);
      r.recorded_us = e.recorded_at_us;
      r.event_id = e.id.ToString();
      by_cause[cause] = out->size();
      out->push_back(std::move(r));
      return true;
    }
    if (d.op != "opt_out") return true;
    if (e.type == ev::kPushRequested) {
      auto c = by_cause.find(cause);
      if (c == by_cause.end() || (*out)[c->second].system != d.system) return true;
      (*out)[c->second].set_again = "pending";
      by_push[d.push_id] = c->second;
      return true;
    }
    auto p = by_push.find(d.push_id);
    if (p == by_push.end()) return true;
    ConsentConflictRecord& r = (*out)[p->second];
    if (r.set_again == "succeeded") return true;  // a later dead re-drive changes nothing
    r.set_again = e.type == ev::kPushSucceeded ? "succeeded" : "dead";
    if (e.type == ev::kPushSucceeded) r.set_again_at_us = e.recorded_at_us;
    return true;
  });
  return s;
}

int PrintConsentConflicts(const std::vector<ConsentConflictRecord>& rs, bool json,
                          std::ostream& out) {
  if (json) {
    for (const auto& r : rs)
      out << JsonObject()
                 .Str("happened_at", FormatToolTime(r.at_us))
                 .Str("recorded_at", FormatToolTime(r.recorded_us))
                 .Str("tenant", r.tenant)
                 .Str("contact_id", r.contact_id)
                 .Str("phone", r.phone)
                 .Str("email", r.email)
                 .Str("system", r.system)
                 .Str("actor", r.actor)
                 .Str("channel", r.channel)
                 .Str("reason", r.reason)
                 .Str("record", r.record)
                 .Str("held_by", r.detail)
                 .Str("set_again", r.set_again)
                 .Str("set_again_at", r.set_again_at_us ? FormatToolTime(r.set_again_at_us) : "")
                 .Str("event_id", r.event_id)
                 .Finish()
          << "\n";
  } else {
    Table t({"AT", "PHONE", "CHANNEL", "TRIED IN", "BY", "WHAT", "HELD BY", "SET AGAIN", "EVENT"},
            80);
    for (const auto& r : rs)
      t.Add({FormatToolTime(r.at_us), r.phone, r.channel, r.system, r.actor, r.reason, r.detail,
             r.set_again + (r.set_again_at_us ? " " + FormatToolTime(r.set_again_at_us) : ""),
             r.event_id});
    if (t.size()) t.Print(out);
    out << rs.size() << " consent conflict(s) for a person to look at\n";
  }
  return rs.empty() ? 0 : 1;
}

}  // namespace dfm
