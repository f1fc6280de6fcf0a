#include "replay-tools/story.h"

#include "connectors/connector.h"
#include "events/describe.h"
#include "events/webhook_received.h"
#include "replay-tools/tool_log.h"
#include "sync/redrive.h"
#include "util/json.h"
#include "util/logging.h"

namespace dfm {

namespace {

// The vendor's name for what the webhook says, as its connector tells it.
std::string WebhookKind(const WebhookReceived& w) {
  const Connector* c = FindConnector(w.system);
  return c && c->describe_webhook ? c->describe_webhook(w) : "";
}

std::string Fields(const std::map<std::string, std::string>& f, bool reveal) {
  std::string s;
  for (const auto& [k, v] : f) {
    if (!s.empty()) s += ", ";
    s += k;
    if (reveal) s += "=" + v;
  }
  return s;
}

std::string Val(const std::string& field, const std::string& v, bool reveal) {
  if (v.empty()) return "(none)";
  return reveal ? v : MaskValue(field, v);
}

// A person's note, in parentheses, or nothing.
std::string Note(const std::string& reason) { return reason.empty() ? "" : " (" + reason + ")"; }

std::string TellDomain(const Event& e, const DomainEvent& d, bool reveal) {
  const std::string& t = d.type;
  // A vendor's id may be the person's number (Genesys, WhatsApp).
  auto ext = [&](const std::string& id) {
    return id.empty() ? "" : " id " + (reveal ? id : MaskDigitRuns(id));
  };
  if (t == ev::kContactCreated)
    return "contact created from " + d.system + ext(d.external_id) + " (" +
           Fields(d.fields, reveal) + ")";
  if (t == ev::kContactChanged) {
    if (d.changes.empty()) return "values stated again by " + d.system + " (no change; they stand as of then)";
    std::string s = "changed by " + d.system + ":";
    for (const auto& c : d.changes)
      s += " " + c.field + " " + Val(c.field, c.old_value, reveal) + " -> " +
           Val(c.field, c.new_value, reveal) + ";";
    if (!s.empty() && s.back() == ';') s.pop_back();
    return s;
  }
  if (t == ev::kContactLinked)
    return "linked to " + d.system + ext(d.external_id) + " (via " + d.via + ")";
  if (t == ev::kContactDeleted) return "deleted in " + d.system;
  if (t == ev::kConflictRecorded)
    return "conflict on " + d.field + ": kept " + d.kept.system + "'s value, refused " +
           d.lost.system + "'s (rule: " + d.rule + ")";
  if (t == ev::kEchoSuppressed)
    return "echo from " + d.system + " suppressed (" + Fields(d.fields, reveal) +
           ": our own push coming back)";
  if (t == ev::kPushRequested) {
    std::string s = "push " + d.push_id + " -> " + d.system + " " + d.op;
    if (!d.channel.empty()) s += " " + d.channel;
    if (!d.fields.empty()) s += " (" + Fields(d.fields, reveal) + ")";
    if (d.priority) s += " priority " + std::to_string(d.priority);
    if (!d.detail.empty()) s += " [" + d.detail + "]";
    return s;
  }
  if (t == ev::kPushAttempted) {
    std::string s = "attempt " + std::to_string(d.attempt) + " of " + d.push_id + " -> " +
                    d.system + ": " + d.outcome;
    if (d.http_status) s += " HTTP " + std::to_string(d.http_status);
    if (!d.detail.empty()) s += " (" + d.detail + ")";
    if (d.next_attempt_us) s += ", next at " + FormatToolTime(d.next_attempt_us);
    return s;
  }
  if (t == ev::kPushSending)
    return "sending " + d.push_id + " -> " + d.system + " (recorded before attempt " +
           std::to_string(d.attempt) + ")";
  if (t == ev::kPushHeld)
    return "sending " + d.push_id + " -> " + d.system + " held before attempt " +
           std::to_string(d.attempt) + " (" + d.reason + "): not sent";
  if (t == ev::kPushSucceeded)
    return "push " + d.push_id + " -> " + d.system + " succeeded" + ext(d.external_id);
  if (t == ev::kPushDeadLettered)
    return "push " + d.push_id + " -> " + d.system + " DEAD-LETTERED after " +
           std::to_string(d.attempt) + " attempt(s): " + d.reason;
  if (t == ev::kRedriveSkipped)
    return "re-drive of " + d.op + " -> " + d.system + " skipped: " + d.reason;
  if (t == ev::kFactRejected) return d.system + " fact rejected: " + d.reason;
  if (t == ev::kIdentityConflict) {
    std::string s = d.system + " fact matched several contacts:";
    for (const auto& [c, by] : d.candidates) s += " " + c + " (by " + by + ")";
    return s + "; nothing was changed";
  }
  if (t == ev::kIdentitySettled) {  // the person's note may name a phone or email
    const std::string note = reveal ? Note(d.reason) : "";
    if (d.contact_id.empty()) return d.system + " identity conflict dismissed" + note;
    return d.system + " identity conflict settled: its fact goes to " + d.contact_id + note;
  }
  if (t == ev::kWebhookQuarantined) return "webhook from " + d.system + " quarantined: " + d.reason;
  if (t == ev::kMessageLogged) {
    std::string s = d.channel + " logged from " + d.system;
    for (const char* k : {"direction", "status", "duration_s", "disposition"})
      if (auto it = d.fields.find(k); it != d.fields.end())
        s += std::string(" ") + k + "=" + it->second;
    return s + " (message " + d.message_key + ")";
  }
  if (t == ev::kMessageStatus)
    return d.system + " reports message " + d.message_key + " " + d.outcome;
  if (IsWithdrawal(d))
    return "send of message " + d.message_key + " via " + d.system + " withdrawn: " + d.reason;
  if (t == ev::kMessageRefused)
    return "send of message " + d.message_key + " via " + d.system + " REFUSED: " + d.reason;
  if (t == ev::kOptedOut || t == ev::kOptedIn) {
    std::string who;
    for (const auto& [k, v] : d.fields) who += (who.empty() ? "" : ", ") + Val(k, v, reveal);
    return std::string(t == ev::kOptedOut ? "OPTED OUT of " : "opted in to ") + d.channel +
           " via " + d.system + " (" + d.reason + ")" + (who.empty() ? "" : " for " + who);
  }
  if (t == ev::kOptOutFlagged)
    return "possible opt-out flagged for a person: " + d.reason + " via " + d.system;
  if (t == ev::kConsentKnown)
    return d.system + " now holds " + d.channel + " not opted out (" + d.reason +
           "; its one flag cleared, nobody's opt-in)";
  (void)e;
  return t;
}

}  // namespace

EventStory TellEvent(const Event& e, bool reveal) {
  EventStory s;
  if (e.type == WebhookReceived::kType || e.type == kContactImportedType) {
    WebhookReceived w;
    if (!DecodeWebhookReceived(e.schema_version, e.payload, &w).ok()) {
      s.what = "unreadable " + e.type;
      return s;
    }
    s.system = s.webhook_system = w.system;
    std::string kind = WebhookKind(w);
    s.what = std::string(e.type == kContactImportedType ? "imported from " : "webhook from ") +
             w.system + (kind.empty() ? "" : ": " + kind) + " (provider id " +
             (reveal ? w.provider_event_id : MaskDigitRuns(w.provider_event_id)) + ", " +
             std::to_string(w.body.size()) + " bytes)";
    s.decoded = true;
    return s;
  }
  if (e.type == kReplayRequestedType) {
    ReplayRequest r;
    if (DecodeReplayRequest(e.payload, &r).ok()) {
      // (the operator's reason may name a phone or email, as a settlement's note)
      s.what = "replay requested: " + std::to_string(r.items.size()) + " push(es) to re-drive" +
               (reveal ? Note(r.reason) : "");
      s.decoded = true;
    } else {
      s.what = "unreadable replay.requested";
    }
    return s;
  }
  if (AsDomainEvent(e, &s.domain)) {
    s.decoded = true;
    s.system = s.domain.system;
    s.what = TellDomain(e, s.domain, reveal);
    return s;
  }
  s.what = e.type;
  return s;
}

JsonObject EventJson(const Event& e, const EventStory& story, bool reveal) {
  JsonObject o = JsonObject::Extend(DescribeEventJson(e, reveal));
  o.Str("system", story.system).Str("what", story.what);
  return o;
}

}  // namespace dfm
