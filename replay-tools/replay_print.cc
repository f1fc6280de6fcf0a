// `dfm replay` and `dfm replay dead-letters`: what they print, as a
// table or JSON lines (replay-tools/replay.h).
#include <ostream>

#include "replay-tools/replay.h"
#include "replay-tools/story.h"
#include "util/json.h"

namespace dfm {

namespace {

std::string PushJson(const DomainEvent& d, bool reveal) {
  if (d.type.empty()) return "null";
  JsonObject o;
  o.Str("system", d.system).Str("op", d.op);
  if (!d.channel.empty()) o.Str("channel", d.channel);
  if (!d.message_key.empty()) o.Str("message_key", d.message_key);
  if (!d.push_id.empty()) o.Str("push_id", d.push_id);
  if (!d.external_id.empty()) o.Str("external_id", d.external_id);
  JsonObject fields;
  for (const auto& [k, v] : d.fields) fields.Str(k, reveal ? v : MaskValue(k, v));
  o.Raw("fields", fields.Finish());
  return o.Finish();
}

std::string PushWords(const DomainEvent& d, bool reveal) {
  std::string s = d.op + " -> " + d.system;
  if (!d.channel.empty()) s += " " + d.channel;
  if (!d.message_key.empty()) s += " message " + d.message_key;
  std::string f;
  for (const auto& [k, v] : d.fields) f += (f.empty() ? "" : ", ") + k + (reveal ? "=" + v : "");
  if (!f.empty()) s += " (" + f + ")";
  return s;
}

}  // namespace

bool TextAgeLimit::TooOld(const DomainEvent& push, int64_t asked_at_us) const {
  return push.op == "send" && TextTooOldToResend(asked_at_us, now_us, max_text_age_us);
}

std::string TextAgeLimit::Note(const DomainEvent& push, int64_t asked_at_us) const {
  if (!TooOld(push, asked_at_us)) return "";
  return "asked " + FormatAgeHoursMinutes(now_us - asked_at_us) + " ago, limit " +
         std::to_string(max_text_age_us / 3600000000) + " h";
}

std::string TextAgeLimit::Json(const DomainEvent& push, int64_t asked_at_us) const {
  if (!TooOld(push, asked_at_us)) return "";
  return JsonObject()
      .Int("age_min", (now_us - asked_at_us) / 60000000)
      .Int("limit_h", max_text_age_us / 3600000000)
      .Finish();
}

namespace {

// After a listing's table: the texts a re-drive would skip for their age,
// each named by `who` with its note. `dead_letters`: they were reported
// failed when they died, so a re-drive tells nobody again.
void PrintTooOld(const std::vector<std::pair<std::string, std::string>>& too_old, bool dead_letters,
                 std::ostream& out) {
  if (too_old.empty()) return;
  out << too_old.size()
      << " text(s) too old to re-send (sync.redrive_max_text_age_h): a re-drive skips them"
      << (dead_letters
              ? " (each was reported failed when it died)\n"
              : ", and tells the system that asked for one it failed if the sender never had it\n");
  for (const auto& [who, note] : too_old) out << "  " << who << ": " << note << "\n";
}

}  // namespace

void PrintReplayPlan(const ReplayPlan& p, bool json, bool reveal, std::ostream& out,
                     const TextAgeLimit& age) {
  auto too_old = [&](const PushDiff& d) {
    return d.kind == "missing" && age.TooOld(d.now, d.webhook_at_us);
  };
  uint64_t stale_texts = 0;
  for (const auto& d : p.diffs) stale_texts += too_old(d) ? 1 : 0;
  if (json) {
    for (const auto& d : p.diffs) {
      JsonObject o;
      o.Str("kind", d.kind)
          .Str("tenant", d.contact.tenant)
          .Str("contact_id", d.contact.contact_id)
          .UInt("webhook_seq", d.webhook_seq)
          .Str("webhook_id", d.webhook_id)
          .Raw("now", PushJson(d.now, reveal))
          .Raw("then", PushJson(d.then, reveal));
      if (too_old(d)) o.Raw("too_old_to_re_send", age.Json(d.now, d.webhook_at_us));
      out << o.Finish() << "\n";
    }
    out << JsonObject()
               .Str("kind", "summary")
               .UInt("webhooks", p.webhooks)
               .UInt("facts", p.facts)
               .UInt("contacts", p.contacts)
               .UInt("same", p.same)
               .UInt("diffs", p.diffs.size())
               .UInt("unresolved", p.unresolved)
               .UInt("held_back", p.held_back)
               .UInt("redriven", p.redriven)
               .UInt("texts_too_old_to_re_send", stale_texts)
               .Finish()
        << "\n";
    return;
  }
  Table t({"DIFF", "CONTACT", "WEBHOOK", "NOW (current rules)", "THEN (requested)"}, 70);
  std::vector<std::pair<std::string, std::string>> stale;
  for (const auto& d : p.diffs) {
    t.Add({d.kind, d.contact.contact_id, std::to_string(d.webhook_seq),
           d.now.type.empty() ? "-" : PushWords(d.now, reveal),
           d.then.type.empty() ? "-" : PushWords(d.then, reveal)});
    if (too_old(d))
      stale.emplace_back(
          "contact " + d.contact.contact_id + ", webhook " + std::to_string(d.webhook_seq),
          age.Note(d.now, d.webhook_at_us));
  }
  if (t.size()) t.Print(out);
  out << "replayed " << p.webhooks << " webhook(s), " << p.facts << " fact(s), " << p.contacts
      << " contact(s): " << p.same << " push(es) agree, " << p.diffs.size() << " differ";
  if (p.redriven) out << ", " << p.redriven << " already asked of a replay";
  if (p.unresolved) out << ", " << p.unresolved << " fact(s) name no contact now";
  if (p.held_back)
    out << ", " << p.held_back << " fact(s) the engine applied to no contact (rejected, "
        << "quarantined, or an identity conflict open, dismissed or refused when settled)";
  out << "\n";
  PrintTooOld(stale, false, out);
}

void PrintDeadLetters(const std::vector<DeadLetter>& dead, bool json, std::ostream& out,
                      const TextAgeLimit& age) {
  if (json) {
    for (const auto& d : dead) {
      JsonObject o;
      o.Str("kind", "dead_letter")
          .Str("tenant", d.contact.tenant)
          .Str("contact_id", d.contact.contact_id)
          .Str("push_id", d.request.push_id)
          .Str("system", d.request.system)
          .Str("op", d.request.op)
          .Str("request_id", d.request_id)
          .Str("dead_lettered_at", FormatToolTime(d.at_us))
          .Str("reason", d.reason);
      if (age.TooOld(d.request, d.request_at_us))
        o.Raw("too_old_to_re_send", age.Json(d.request, d.request_at_us));
      out << o.Finish() << "\n";
    }
    return;
  }
  Table t({"DEAD AT", "PUSH", "SYSTEM", "OP", "REASON"}, 70);
  std::vector<std::pair<std::string, std::string>> stale;
  for (const auto& d : dead) {
    t.Add({FormatToolTime(d.at_us), d.request.push_id, d.request.system, d.request.op, d.reason});
    if (age.TooOld(d.request, d.request_at_us))
      stale.emplace_back(d.request.push_id, age.Note(d.request, d.request_at_us));
  }
  t.Print(out);
  out << dead.size() << " dead letter(s) not re-driven\n";
  PrintTooOld(stale, true, out);
}

}  // namespace dfm
