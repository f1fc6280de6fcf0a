// PrintTrace: a trace as a table per contact or as JSON lines
// (docs/replay-tools.md, `dfm trace`).
#include <ostream>

#include "replay-tools/tool_log.h"
#include "replay-tools/trace.h"
#include "util/json.h"

namespace dfm {

void PrintTrace(const Trace& t, bool json, std::ostream& out) {
  if (json) {
    for (const auto& e : t.entries) {
      out << JsonObject()
                 .Str("kind", "event")
                 .UInt("seq", e.seq)
                 .Str("recorded_at", FormatToolTime(e.at_us))
                 .Str("event_id", e.event_id)
                 .Str("tenant", e.tenant)
                 .Str("contact_id", e.contact_id)
                 .Str("system", e.system)
                 .Str("type", e.type)
                 .Str("what", e.what)
                 .Finish()
          << "\n";
    }
    for (const auto& c : t.contacts) {
      for (const auto& s : c.systems)
        out << JsonObject()
                   .Str("kind", "system")
                   .Str("contact_id", c.contact.contact_id)
                   .Str("system", s.system)
                   .Str("link", s.link)
                   .Raw("other_ids",
                        [&] {
                          JsonArray ids;
                          for (const auto& id : s.other_ids)
                            if (id != s.link) ids.Str(id);
                          return ids.Finish();
                        }())
                   .Int("requested", s.requested)
                   .Int("succeeded", s.succeeded)
                   .Int("dead", s.dead)
                   .Int("unsettled", s.unsettled)
                   .Int("skipped", s.skipped)
                   .Finish()
            << "\n";
      for (const auto& st : c.campaign_steps)
        out << JsonObject()
                   .Str("kind", "campaign_step")
                   .Str("contact_id", c.contact.contact_id)
                   .Str("campaign", st.campaign)
                   .Int("step", st.step)
                   .Str("channel", st.channel)
                   .Str("state", st.state)
                   .Str("reason", st.reason)
                   .Str("due_at", FormatToolTime(st.due_us))
                   .Str("changed_at", st.changed_us ? FormatToolTime(st.changed_us) : "")
                   .Finish()
            << "\n";
      for (const auto& f : c.findings)
        out << JsonObject()
                   .Str("kind", "finding")
                   .Str("contact_id", c.contact.contact_id)
                   .Str("finding", f)
                   .Finish()
            << "\n";
    }
    return;
  }
  Table table({"SEQ", "RECORDED", "SYSTEM", "WHAT"}, 140);
  for (const auto& e : t.entries)
    table.Add({std::to_string(e.seq), FormatToolTime(e.at_us), e.system, e.what});
  table.Print(out);
  for (const auto& c : t.contacts) {
    out << "\ncontact " << c.contact.contact_id << " (tenant " << c.contact.tenant << ")\n";
    Table sys({"SYSTEM", "ID THERE", "PUSHES", "SUCCEEDED", "DEAD", "UNSETTLED", "LAST"});
    for (const auto& s : c.systems) {
      std::string ids = s.link.empty() ? "-" : s.link;
      for (const auto& other : s.other_ids)
        if (other != s.link) ids += " +" + other;
      sys.Add({s.system, ids, std::to_string(s.requested), std::to_string(s.succeeded),
               std::to_string(s.dead), std::to_string(s.unsettled), s.last.empty() ? "-" : s.last});
    }
    sys.Print(out);
    if (!c.campaign_steps.empty()) {
      out << "campaign steps:\n";
      for (const auto& st : c.campaign_steps)
        out << "  - " << st.campaign << " step " << st.step << " (" << st.channel
            << "): " << st.state << (st.reason.empty() ? "" : " (" + st.reason + ")") << ", due "
            << FormatToolTime(st.due_us) << "\n";
    }
    out << "why:\n";
    for (const auto& f : c.findings) out << "  - " << f << "\n";
  }
}

}  // namespace dfm
