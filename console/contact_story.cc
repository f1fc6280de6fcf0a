#include "console/contact_story.h"

#include <algorithm>
#include <map>
#include <set>

#include "connectors/connector.h"
#include "events/webhook_received.h"
#include "sync/consent.h"
#include "sync/contact_model.h"
#include "sync/fact.h"
#include "util/logging.h"

namespace dfm {

namespace {

std::string NameOf(const std::string& system) {
  const Connector* c = FindConnector(system);
  return c ? c->name : system;
}

std::string WhoInWords(const std::string& actor) {
  if (actor == "staff") return "staff or a system setting";
  if (actor == "carrier") return "the carrier";
  return "the person";  // events before actors were recorded read as the person's
}

struct PushSeen {
  std::string system, op, state = "requested", detail;
  int attempts = 0;
  int64_t requested_us = 0, last_us = 0;
  EventId request_id, correlation_id;
};

// The request id (X-Request-ID) of the webhook a chain started from, "" when
// it did not start from one.
std::string WebhookRequestId(const EventLog& log, const EventId& root) {
  if (root.IsZero()) return "";
  uint64_t seq = 0;
  std::vector<Event> found;
  if (!log.LookupEventId(root, &seq).ok() || !log.Read(seq, 1, &found).ok() || found.empty())
    return "";
  WebhookReceived w;
  if (found[0].type != WebhookReceived::kType ||
      !DecodeWebhookReceived(found[0].schema_version, found[0].payload, &w).ok())
    return "";
  return w.request_id;
}

std::string ItReport(const EventLog& log, const ContactStory& s,
                     const std::map<std::string, PushSeen>& pushes, const std::string& ref) {
  // The problem a person would ask about: the newest push that died, else
  // the oldest one still being retried.
  const std::pair<const std::string, PushSeen>* worst = nullptr;
  for (const auto& p : pushes) {
    if (p.second.state == "dead" && (!worst || worst->second.state != "dead" ||
                                     p.second.last_us > worst->second.last_us))
      worst = &p;
    if (p.second.state == "retrying" && (!worst || (worst->second.state == "retrying" &&
                                                    p.second.requested_us < worst->second.requested_us)))
      worst = &p;
  }
  std::string r = "Contact: " + ref + " (tenant " + s.tenant + ", contact:" + s.contact_id + ")\n";
  if (!worst) {
    r += "System: all connected systems\nAction: keep the contact in sync\n";
    r += "Expected: every system holds the contact's latest details\n";
    r += "Observed: nothing failed; every change the log knows of was delivered\n";
    return r;
  }
  const PushSeen& p = worst->second;
  const std::string name = NameOf(p.system);
  r += "System: " + name + "\n";
  r += "Action: " + OpInWords(p.op) + "\n";
  r += "Time: " + FormatToolTime(p.last_us ? p.last_us : p.requested_us) + " (first asked " +
       FormatToolTime(p.requested_us) + ")\n";
  r += "Expected: " + name + " takes the change\n";
  r += "Observed: " +
       std::string(p.state == "dead" ? "given up (dead letter) after "
                                     : "still being retried after ") +
       std::to_string(p.attempts) + " attempt(s)" + (p.detail.empty() ? "" : ": " + p.detail) +
       "\n";
  std::string request_id = WebhookRequestId(log, p.correlation_id);
  r += "Request ids: push " + worst->first + ", event " + p.request_id.ToString();
  if (!request_id.empty()) r += ", webhook X-Request-ID " + request_id;
  r += "\n";
  return r;
}

// One event of the contact's own stream, in plain words; "" to keep what
// `dfm trace` says. `reveal`: values may be named.
std::string Plain(const DomainEvent& d, bool reveal) {
  const std::string who = NameOf(d.system);
  if (d.type == ev::kContactCreated) return "Contact created from " + who;
  if (d.type == ev::kContactChanged) {
    std::string f;
    for (const auto& c : d.changes) f += (f.empty() ? "" : ", ") + c.field;
    return who + " changed " + (f.empty() ? std::string("the contact") : f);
  }
  if (d.type == ev::kContactLinked)  // an id may be the person's number (Genesys, WhatsApp)
    return "Found in " + who + " (id " + (reveal ? d.external_id : MaskDigitRuns(d.external_id)) +
           ")";
  if (d.type == ev::kContactDeleted) return "Deleted in " + who;
  if (d.type == ev::kEchoSuppressed) return who + " sent our own change back: ignored, as it should be";
  if (d.type == ev::kConflictRecorded)
    return who + "'s value of " + d.field + " was not taken (" +
           (d.rule == "owner" ? "another system owns that field" : "an older change") + ")";
  if (d.type == ev::kPushRequested && d.channel == channels::kDraft)
    return "Asked " + who + " to draft a campaign's text";
  if (d.type == ev::kPushRequested) return "Asked " + who + " to " + OpInWords(d.op);
  if (d.type == ev::kPushAttempted) {
    const std::string status = d.http_status ? " (HTTP " + std::to_string(d.http_status) + ")" : "";
    if (d.outcome == "ok") return who + " answered OK" + status;
    if (d.outcome == "retry") return who + " did not take it" + status + "; trying again later";
    if (d.outcome == "refused")
      return who + " refused it" + status + "; an opt-out is never given up on: trying again later";
    return who + " refused it" + status;
  }
  if (d.type == ev::kPushSending) return "Sending to " + who + " (recorded before the request)";
  if (d.type == ev::kPushHeld)
    return "Held before sending to " + who + " (" + d.reason + "); not sent";
  if (d.type == ev::kPushSucceeded) return who + " took the change";
  if (d.type == ev::kPushDeadLettered) return "Gave up on " + who + ": " + d.reason;
  if (d.type == ev::kMessageLogged && d.channel == channels::kDraft)
    return "A campaign asked for its text to be drafted";
  if (d.type == ev::kMessageLogged) {
    const auto dir = d.fields.find("direction");
    const bool out = dir != d.fields.end() && dir->second == "outbound";
    return std::string(d.channel == "call" ? "A call" : "A text") + (out ? " to" : " from") +
           " the person, through " + who;
  }
  if (d.type == ev::kMessageStatus) return who + " reports a text " + d.outcome;
  if (d.type == ev::kMessageRefused && d.channel == channels::kDraft)
    return "A campaign's text was not drafted: " + d.reason;
  if (IsWithdrawal(d))
    return std::string("A campaign's ") +
           (d.channel == channels::kEmail  ? "email"
            : d.channel == channels::kCall ? "call"
                                           : "text") +
           " to the person was " + d.reason;
  if (d.type == ev::kMessageRefused)
    return "A text to the person was not sent (" + d.reason + ")";
  if (d.type == ev::kOptedOut)
    return "Opted out of " + d.channel + " through " + who + " (" + d.reason + ", by " +
           WhoInWords(d.actor) + ")";
  if (d.type == ev::kOptedIn)
    return "Opted back in to " + d.channel + " through " + who + " (" + d.reason + ", by " +
           WhoInWords(d.actor) + ")";
  if (d.type == ev::kConsentConflict)
    return "Staff in " + who + " tried to opt " + d.channel +
           " back in; refused, the person's opt-out holds";
  if (d.type == ev::kConsentKnown)
    return who + " now shows " + d.channel +
           " not opted out (its one flag cleared; nobody had opted it out)";
  if (d.type == ev::kOptOutFlagged) return "A text that only looks like an opt-out, left for a person";
  (void)reveal;
  return "";
}

}  // namespace

std::string OpInWords(const std::string& op) {
  static const std::map<std::string, std::string> kWords = {
      {"upsert", "create or update the contact"},
      {"mark_dnc", "mark the contact do-not-call"},
      {"opt_out", "set do-not-disturb (an opt-out)"},
      {"opt_in", "lift do-not-disturb (an opt-in)"},
      {"send", "send a text"},
      {"message", "record a text on the conversation"},
      {"call", "record a call on the conversation"},
      {"message_status", "report a text's delivery status"},
      {"note", "add a call's note"},
      {"tags", "tag the contact"},
      {"lists", "update the contact's lists"},
  };
  auto it = kWords.find(op);
  return it == kWords.end() ? op : it->second;
}

namespace {

// What the contact's own stream says, read once: its state, each
// channel's consent, its pushes, and its events in plain words.
struct StreamRead {
  ContactState state;
  std::map<std::string, StoryChannel> consent;
  std::map<std::string, std::pair<bool, int64_t>> current;  // channel -> (out, at)
  std::map<std::string, PushSeen> pushes;
  std::map<uint64_t, std::string> plain;  // seq -> the event in plain words

  void Fold(const Event& e, bool reveal) {
    DomainEvent d;
    if (!AsDomainEvent(e, &d)) return;
    Apply(&state, d, e.seq, e.recorded_at_us);
    std::string words = Plain(d, reveal);
    if (!words.empty()) plain[e.seq] = std::move(words);
    if (d.type == ev::kOptedOut || d.type == ev::kOptedIn) {
      FoldConsent(e, d);
    } else if (d.type == ev::kPushRequested) {
      PushSeen& p = pushes[d.push_id];
      p.system = d.system;
      p.op = d.op;
      p.requested_us = e.recorded_at_us;
      p.request_id = e.id;
      p.correlation_id = e.correlation_id.IsZero() ? e.id : e.correlation_id;
    } else if (d.type == ev::kPushAttempted) {
      PushSeen& p = pushes[d.push_id];
      p.attempts = std::max(p.attempts, d.attempt);
      p.last_us = e.recorded_at_us;
      if (d.outcome == "retry" || d.outcome == "refused") p.state = "retrying";
      p.detail = (d.http_status ? "HTTP " + std::to_string(d.http_status) : std::string()) +
                 (d.detail.empty() ? "" : (d.http_status ? ": " : "") + d.detail);
    } else if (SettlesPush(d)) {
      PushSeen& p = pushes[d.push_id];
      p.state = d.type == ev::kPushDeadLettered ? "dead" : "settled";
      p.last_us = e.recorded_at_us;
      if (d.type == ev::kPushDeadLettered && !d.reason.empty()) p.detail = d.reason;
    }
  }

  // As the opt-out registry and the contact actor (ConsentSupersedes).
  void FoldConsent(const Event& e, const DomainEvent& d) {
    const bool opted_out = d.type == ev::kOptedOut;
    const int64_t at = HappenedAt(e, d);
    for (const auto& ch : SplitChannels(d.channel)) {
      auto it = current.find(ch);
      if (it != current.end() &&
          !ConsentSupersedes(opted_out, at, it->second.first, it->second.second))
        continue;
      current[ch] = {opted_out, at};
      consent[ch] =
          StoryChannel{ch, opted_out, at, NameOf(d.system), d.reason, WhoInWords(d.actor)};
    }
  }
};

// The name, phone and email, masked unless `reveal`.
void TellWho(const ContactState& state, bool reveal, ContactStory* story) {
  auto field = [&](const char* f) {
    auto it = state.fields.find(f);
    if (it == state.fields.end() || it->second.value.empty()) return std::string();
    return reveal ? it->second.value : MaskValue(f, it->second.value);
  };
  story->name = field(fields::kFirstName);
  const std::string last = field(fields::kLastName);
  if (!last.empty()) story->name += (story->name.empty() ? "" : " ") + last;
  story->phone = field(fields::kPhone);
  story->email = field(fields::kEmail);
}

// Each system the contact is in or should be (the tenant's targets), with
// its id there and its other records (duplicates).
void TellWhere(const ContactState& state, const Trace::PerContact& pc, const StoryOptions& o,
               ContactStory* story) {
  std::set<std::string> systems;
  if (auto t = o.targets.find(story->tenant); t != o.targets.end()) systems = t->second;
  for (const auto& [sys, id] : state.links) systems.insert(sys);
  for (const auto& sys : systems) {
    auto l = state.links.find(sys);
    std::string id = l == state.links.end() ? "" : l->second;
    std::string also;  // its other records (duplicates) there
    for (const auto& ts : pc.systems)
      for (const auto& other : ts.other_ids)
        if (ts.system == sys && other != id) also += (also.empty() ? "" : ", ") + other;
    if (!also.empty()) id += (id.empty() ? "" : " ") + std::string("(also ") + also + ")";
    story->where.emplace_back(NameOf(sys), o.reveal ? std::move(id) : MaskDigitRuns(id));
  }
}

// The newest kStoryLines of the trace's events of the contact, newest
// first, in plain words where the stream gave them.
void TellTimeline(const Trace& trace, const std::map<uint64_t, std::string>& plain,
                  ContactStory* story) {
  for (auto it = trace.entries.rbegin();
       it != trace.entries.rend() && story->timeline.size() < kStoryLines; ++it) {
    if (it->contact_id != story->contact_id) continue;
    auto words = plain.find(it->seq);
    std::string what = words != plain.end() ? words->second : it->what;
    if (words == plain.end() && it->type == WebhookReceived::kType) {
      const size_t colon = it->what.find(':');
      what = "Webhook: " + it->what.substr(colon == std::string::npos ? 0 : colon + 2);
    }
    story->timeline.push_back(
        StoryLine{it->at_us, it->system.empty() ? "" : NameOf(it->system), what});
  }
}

// The pushes not settled: waiting their turn or being tried again.
void TellWaiting(const std::map<std::string, PushSeen>& pushes, ContactStory* story) {
  for (const auto& [id, p] : pushes) {
    if (p.state != "requested" && p.state != "retrying") continue;
    std::string line = NameOf(p.system) + ": " + OpInWords(p.op) + ", asked " +
                       FormatToolTime(p.requested_us) + " -- ";
    line += p.attempts == 0 ? "waiting its turn (one change per contact at a time, opt-outs first)"
                            : "being tried again after " + std::to_string(p.attempts) +
                                  " attempt(s)" + (p.detail.empty() ? "" : " (" + p.detail + ")");
    story->waiting.push_back(std::move(line));
  }
}

}  // namespace

Status BuildContactStories(const EventLog& log, const std::string& query,
                           const Normalizer& normalizer, const StoryOptions& o,
                           std::vector<ContactStory>* out) {
  out->clear();
  ContactRef ref;
  Status s = ParseContactRef(query, normalizer, &ref);
  if (!s.ok()) return Status::InvalidArgument(s.message());
  std::vector<ContactMatch> matches;
  s = ResolveContacts(log, ref, o.tenants, &matches);
  if (!s.ok() || matches.empty()) return s;
  TraceOptions to;
  to.reveal = o.reveal;
  to.scan_webhooks = false;  // the page answers at once; `dfm trace` scans
  to.targets = o.targets;
  Trace trace;
  s = BuildTrace(log, matches, to, &trace);
  if (!s.ok()) return s;
  const bool personal = ref.kind == ContactRef::Kind::kPhone || ref.kind == ContactRef::Kind::kEmail;
  const std::string shown_ref =
      o.reveal || !personal
          ? query
          : MaskValue(ref.kind == ContactRef::Kind::kEmail ? fields::kEmail : fields::kPhone, ref.value);
  for (const auto& pc : trace.contacts) {
    ContactStory story;
    story.tenant = pc.contact.tenant;
    story.contact_id = pc.contact.contact_id;
    StreamRead read;
    s = log.ScanStream(story.tenant, ContactStream(story.contact_id), [&](const Event& e) {
      read.Fold(e, o.reveal);
      return true;
    });
    if (!s.ok()) return s;
    TellWho(read.state, o.reveal, &story);
    TellWhere(read.state, pc, o, &story);
    for (auto& [ch, c] : read.consent) story.consent.push_back(std::move(c));
    TellTimeline(trace, read.plain, &story);
    TellWaiting(read.pushes, &story);
    story.findings = pc.findings;
    story.it_report = ItReport(log, story, read.pushes, shown_ref);
    out->push_back(std::move(story));
  }
  return Status::OK();
}

}  // namespace dfm
