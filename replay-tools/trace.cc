#include "replay-tools/trace.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <ostream>
#include <set>

#include "campaigns/campaign.h"
#include "connectors/connector.h"
#include "projections/campaign_projections.h"
#include "events/webhook_received.h"
#include "replay-tools/story.h"
#include "sync/consent.h"
#include "sync/domain_event.h"
#include "sync/fact.h"
#include "sync/redrive.h"
#include "util/json.h"

namespace dfm {

namespace {

struct PushTrack {
  std::string system, op, state = "requested", detail;
  int attempts = 0;
  uint64_t seq = 0;
  int64_t at_us = 0;
};

bool ContainsNoCase(std::string_view hay, std::string_view needle) {
  if (needle.empty() || needle.size() > hay.size()) return false;
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  });
  return it != hay.end();
}

// What the contact is known by, for matching webhook bodies.
struct Identity {
  std::set<std::string> phones, emails;
  std::set<std::pair<std::string, std::string>> external;  // (system, id)
  // Cheap tests on raw bodies before a body is mapped: the last four digits
  // of each phone survive every formatting; emails and ids appear as is.
  bool MayMention(std::string_view body) const {
    for (const auto& p : phones)
      if (p.size() >= 4 && body.find(p.substr(p.size() - 4)) != std::string_view::npos) return true;
    for (const auto& e : emails)
      if (ContainsNoCase(body, e)) return true;
    for (const auto& [s, id] : external)
      if (body.find(id) != std::string_view::npos) return true;
    return false;
  }
  bool Matches(const ContactFact& f) const {
    if (!f.external_id.empty() && external.count({f.system, f.external_id})) return true;
    auto p = f.fields.find(fields::kPhone);
    if (p != f.fields.end() && phones.count(p->second)) return true;
    auto m = f.fields.find(fields::kEmail);
    return m != f.fields.end() && emails.count(m->second);
  }
};

// The steps of every campaign of the contact's tenant that made the
// contact a task.
Status CampaignSteps(const EventLog& log, const ContactMatch& c,
                     std::vector<TraceCampaignStep>* out) {
  std::vector<CampaignView> campaigns;
  Status s = ListCampaigns(log, c.tenant, &campaigns);
  if (!s.ok()) return s;
  for (const CampaignView& v : campaigns)
    for (size_t i = 0; i < v.spec.steps.size(); ++i) {
      Task t;
      s = ReadCampaignTask(log, c.tenant, v.spec.id, static_cast<int>(i), c.contact_id, &t);
      if (s.IsNotFound()) break;  // no later step either
      if (!s.ok()) return s;
      out->push_back({v.spec.id, std::string(ChannelName(v.spec.steps[i].channel)),
                      std::string(TaskStateName(t.state)), t.reason, t.step, t.due_us,
                      t.changed_us});
    }
  return Status::OK();
}

}  // namespace

Status BuildTrace(const EventLog& log, const std::vector<ContactMatch>& contacts,
                  const TraceOptions& o, Trace* out) {
  *out = Trace();
  std::map<uint64_t, TraceEntry> entries;
  std::set<uint64_t> causes_seen;
  auto add = [&](const Event& e, const std::string& contact_id) {
    if (o.since_us && e.recorded_at_us < o.since_us) return;
    if (o.until_us && e.recorded_at_us >= o.until_us) return;
    if (entries.count(e.seq)) return;
    EventStory s = TellEvent(e, o.reveal);
    entries[e.seq] = TraceEntry{e.seq,      e.recorded_at_us, e.id.ToString(), e.tenant,
                                contact_id, s.system,         e.type,          s.what};
  };

  for (const auto& c : contacts) {
    Trace::PerContact pc;
    pc.contact = c;
    Identity who;
    std::map<std::string, PushTrack> pushes;  // push id -> track
    std::map<std::string, TraceSystem> systems;
    std::map<std::string, std::pair<bool, int64_t>> consent;  // channel -> (out, at)
    int refused = 0, echoes = 0, conflicts = 0;
    uint64_t first_cause = 0;
    std::vector<Event> stream;
    std::set<EventId> cause_ids;
    Status read = log.ReadWholeStream(c.tenant, ContactStream(c.contact_id), &stream);
    if (!read.ok()) return read;
    for (const auto& e : stream) {
      add(e, c.contact_id);
      Event cause;  // looked up once per cause: a webhook causes several decisions
      if (!e.causation_id.IsZero() && cause_ids.insert(e.causation_id).second &&
          ReadEventById(log, e.causation_id, &cause).ok() && !IsContactStream(cause.stream) &&
          causes_seen.insert(cause.seq).second) {
        add(cause, c.contact_id);
        if (!first_cause || cause.seq < first_cause) first_cause = cause.seq;
        // A settlement's decisions answer the webhook it settled.
        DomainEvent settled;
        if (cause.type == ev::kIdentitySettled && AsDomainEvent(cause, &settled))
          causes_seen.insert(settled.webhook_seq);
      }
      DomainEvent d;
      if (!AsDomainEvent(e, &d)) continue;
      if (d.type == ev::kContactCreated || d.type == ev::kContactLinked ||
          (d.type == ev::kPushSucceeded && !IsMessageOp(d.op) && !LinksNoRecord(d))) {
        if (!d.external_id.empty()) {
          who.external.insert({d.system, d.external_id});
          systems[d.system].link = d.external_id;
        }
        if (auto ids = d.fields.find("answer.ids"); ids != d.fields.end() && d.type == ev::kPushSucceeded) {
          auto& others = systems[d.system].other_ids;
          for (const auto& id : SplitChannels(ids->second))
            if (std::find(others.begin(), others.end(), id) == others.end()) others.push_back(id);
        }
      }
      for (const auto& [f, v] : d.fields) {
        if (d.type != ev::kContactCreated) break;
        if (f == fields::kPhone) who.phones.insert(v);
        if (f == fields::kEmail) who.emails.insert(v);
      }
      for (const auto& ch : d.changes) {
        if (ch.field == fields::kPhone) who.phones.insert(ch.new_value);
        if (ch.field == fields::kEmail) who.emails.insert(ch.new_value);
      }
      // The findings describe the contact as of --until (events before
      // --since count: they are its history).
      if (o.until_us && e.recorded_at_us >= o.until_us) continue;
      if (!d.system.empty() && d.type != ev::kMessageLogged && d.type != ev::kMessageStatus)
        systems[d.system].system = d.system;
      if (d.type == ev::kPushRequested) {
        auto& p = pushes[d.push_id];
        p.system = d.system;
        p.op = d.op;
        p.seq = e.seq;
        p.at_us = e.recorded_at_us;
        systems[d.system].requested++;
      } else if (d.type == ev::kPushAttempted) {
        auto& p = pushes[d.push_id];
        p.attempts = std::max(p.attempts, d.attempt);
        if (p.state == "requested" || p.state == "retrying")
          p.state = d.outcome == "retry" ? "retrying" : d.outcome == "refused" ? "refused (kept open)" : p.state;
        p.detail = d.outcome + (d.http_status ? " HTTP " + std::to_string(d.http_status) : "") +
                   (d.detail.empty() ? "" : " (" + d.detail + ")");
      } else if (d.type == ev::kPushSucceeded) {
        pushes[d.push_id].state = "succeeded";
        pushes[d.push_id].seq = e.seq;
      } else if (d.type == ev::kPushDeadLettered) {
        pushes[d.push_id].state = "dead";
        pushes[d.push_id].detail = d.reason;
        pushes[d.push_id].seq = e.seq;
        pushes[d.push_id].at_us = e.recorded_at_us;
      } else if (d.type == ev::kMessageRefused) {
        // A campaign's withdrawal, or a send nobody could deliver, is no
        // consent refusal.
        if (!IsWithdrawal(d) && d.rule != kNotDeliverableRule) refused++;
        if (!d.push_id.empty()) pushes[d.push_id].state = "cancelled";
      } else if (d.type == ev::kRedriveSkipped) {
        systems[d.system].skipped++;
      } else if (d.type == ev::kEchoSuppressed) {
        echoes++;
      } else if (d.type == ev::kConflictRecorded) {
        conflicts++;
      } else if (d.type == ev::kOptedOut || d.type == ev::kOptedIn) {
        // As the opt-out registry and the contact actor (ConsentSupersedes).
        const bool opted_out = d.type == ev::kOptedOut;
        const int64_t at = HappenedAt(e, d);
        for (const auto& ch : SplitChannels(d.channel)) {
          auto it = consent.find(ch);
          if (it == consent.end() ||
              ConsentSupersedes(opted_out, at, it->second.first, it->second.second))
            consent[ch] = {opted_out, at};
        }
      }
    }

    // The router's records about webhooks that reached no contact
    // (conflicts naming this one) and replays naming it.
    // A conflict names contacts that existed: none before the contact's
    // first event. The source streams hold every webhook: scanned, not kept.
    const uint64_t since = stream.empty() ? 1 : stream.front().seq;
    for (const Connector* source : Connectors()) {
      const std::string& system = source->system;
      std::vector<std::pair<uint64_t, EventId>> open_conflicts;  // naming this contact
      std::map<EventId, std::string> settled;                    // conflict id -> contact chosen
      Status s = log.ScanStream(
          c.tenant, SourceStream(system),
          [&](const Event& e) {
            DomainEvent d;
            if (e.type != ev::kIdentityConflict && e.type != ev::kIdentitySettled) return true;
            if (o.until_us && e.recorded_at_us >= o.until_us) return true;
            if (!AsDomainEvent(e, &d)) return true;
            bool mine = false;
            for (const auto& [cid, by] : d.candidates) mine = mine || cid == c.contact_id;
            if (!mine) return true;
            add(e, c.contact_id);
            if (e.type == ev::kIdentityConflict) {
              open_conflicts.emplace_back(e.seq, e.id);
            } else {
              settled[e.causation_id] = d.contact_id;
            }
            return true;
          },
          since);
      if (!s.ok()) return s;
      for (const auto& [seq, id] : open_conflicts) {
        if (settled.count(id)) continue;
        pc.findings.push_back("a " + system + " webhook's fact (conflict " + std::to_string(seq) +
                              ") matched this contact and another one; nothing was changed. "
                              "Settle it: dfm conflicts settle " +
                              std::to_string(seq) + " --contact <id> (or --dismiss).");
      }
    }
    {
      std::vector<Event> replays;
      Status s = log.ReadWholeStream(c.tenant, kReplayStream, &replays);
      if (!s.ok()) return s;
      for (const auto& e : replays) {
        ReplayRequest r;
        if (!DecodeReplayRequest(e.payload, &r).ok()) continue;
        for (const auto& item : r.items)
          if (item.contact_id == c.contact_id) {
            add(e, c.contact_id);
            break;
          }
      }
    }

    // Webhooks that mention the contact but decided nothing.
    int silent = 0, unreadable = 0;
    if (o.scan_webhooks && o.mapper && (first_cause || o.since_us)) {
      Status s = ScanWindow(
          log, o.since_us, o.until_us, o.since_us ? 1 : first_cause, [&](const Event& e) {
            if (e.tenant != c.tenant || causes_seen.count(e.seq)) return true;
            if (e.type != WebhookReceived::kType && e.type != kContactImportedType) return true;
            WebhookReceived w;
            if (!DecodeWebhookReceived(e.schema_version, e.payload, &w).ok()) return true;
            if (!who.MayMention(w.body)) return true;
            const InboundMapper* m = FindMapperFor(e.type, w.system);
            if (!m) return true;
            std::vector<ContactFact> facts;
            if (!(*m)(w, o.mapper.For(e.tenant, w.system), &facts).ok()) {
              unreadable++;
              add(e, c.contact_id);
              if (entries.count(e.seq)) entries[e.seq].what += ": unreadable, quarantined";
              return true;
            }
            for (const auto& f : facts) {
              if (!who.Matches(f)) continue;
              silent++;
              add(e, c.contact_id);
              if (entries.count(e.seq))
                entries[e.seq].what += ": decided nothing (what it says was already known)";
              break;
            }
            return true;
          });
      if (!s.ok()) return s;
    }

    // Findings.
    std::map<std::string, uint64_t> last_success;  // system + op -> seq
    for (const auto& [id, p] : pushes)
      if (p.state == "succeeded")
        last_success[p.system + "/" + p.op] = std::max(last_success[p.system + "/" + p.op], p.seq);
    for (const auto& [id, p] : pushes) {
      auto& sys = systems[p.system];
      sys.system = p.system;
      if (p.state == "succeeded") sys.succeeded++;
      if (p.state == "dead") sys.dead++;
      if (p.state == "requested" || p.state == "retrying") sys.unsettled++;
      sys.last = p.op + " " + p.state;
      if (p.state == "dead" && last_success[p.system + "/" + p.op] < p.seq) {
        pc.findings.push_back(
            "push " + id + " (" + p.op + " -> " + p.system + ") was dead-lettered at " +
            FormatToolTime(p.at_us) + " after " + std::to_string(p.attempts) +
            " attempt(s): " + p.detail + "; nothing of that kind reached " + p.system +
            " since. Re-drive it: dfm replay dead-letters --push " + id + " --execute");
      }
      if (p.state == "requested" || p.state == "retrying") {
        pc.findings.push_back(
            "push " + id + " (" + p.op + " -> " + p.system + ") is not settled yet" +
            (p.attempts ? ": attempt " + std::to_string(p.attempts) + " " + p.detail
                        : ": not attempted yet") +
            "; the connector retries it");
      }
    }
    auto t = o.targets.find(c.tenant);
    if (t != o.targets.end()) {
      for (const auto& target : t->second) {
        auto sys = systems.find(target);
        if (sys != systems.end() && (sys->second.requested > 0 || !sys->second.link.empty()))
          continue;
        systems[target].system = target;
        std::string key;
        if (auto kf = o.key_fields.find(c.tenant); kf != o.key_fields.end()) {
          auto f = kf->second.find(target);
          if (f != kf->second.end()) key = f->second;
        }
        const std::set<std::string>* known = key == fields::kPhone   ? &who.phones
                                             : key == fields::kEmail ? &who.emails
                                                                     : nullptr;
        if (known && std::all_of(known->begin(), known->end(),
                                 [](const std::string& v) { return v.empty(); })) {
          pc.findings.push_back(target + " holds contacts only with a " + key +
                                ", and this contact has none: no upsert is asked of it until it "
                                "has one (docs/sync-rules.md).");
          continue;
        }
        pc.findings.push_back(target +
                              " was never asked to hold this contact: no push to it was ever "
                              "requested (was its connector configured when the webhooks came?). "
                              "`dfm replay --contact " +
                              c.contact_id +
                              " --from <first webhook>` shows what the rules would push now.");
      }
    }
    for (const auto& [ch, st] : consent)
      if (st.first)
        pc.findings.push_back("opted out of " + ch + " since " + FormatToolTime(st.second) +
                              ": sends to it are refused" +
                              (refused ? " (" + std::to_string(refused) + " refused)" : ""));
    if (silent)
      pc.findings.push_back(std::to_string(silent) +
                            " webhook(s) about this contact changed nothing: what they said was "
                            "already known (or was our own push coming back)");
    if (unreadable)
      pc.findings.push_back(std::to_string(unreadable) +
                            " webhook(s) mentioning this contact could not be read "
                            "and were quarantined (dfm events --type webhook.quarantined)");
    if (echoes)
      pc.findings.push_back(std::to_string(echoes) + " echo(es) of our own pushes suppressed");
    if (conflicts)
      pc.findings.push_back(std::to_string(conflicts) +
                            " conflicting value(s) refused by the merge rules "
                            "(dfm events --contact " +
                            c.contact_id + " --type contact.conflict_recorded)");
    if (pc.findings.empty()) pc.findings.push_back("every push settled; nothing is missing");
    for (auto& [name, s] : systems)
      if (!name.empty()) pc.systems.push_back(s);
    Status steps = CampaignSteps(log, c, &pc.campaign_steps);
    if (!steps.ok())
      pc.findings.push_back("its campaign steps could not be read (" + steps.ToString() + ")");
    out->contacts.push_back(std::move(pc));
  }
  for (auto& [seq, e] : entries) out->entries.push_back(std::move(e));
  return Status::OK();
}

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
                   .Raw("other_ids", [&] {
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
      sys.Add({s.system, ids, std::to_string(s.requested),
               std::to_string(s.succeeded), std::to_string(s.dead), std::to_string(s.unsettled),
               s.last.empty() ? "-" : s.last});
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
