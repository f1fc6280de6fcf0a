#include "replay-tools/trace.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "campaigns/campaign.h"
#include "connectors/connector.h"
#include "events/webhook_received.h"
#include "projections/campaign_projections.h"
#include "replay-tools/story.h"
#include "sync/consent.h"
#include "sync/domain_event.h"
#include "sync/fact.h"
#include "sync/redrive.h"

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

// What every contact's trace shares: the listed events and the webhooks
// already listed as some decision's cause.
struct Listing {
  const TraceOptions& o;
  std::map<uint64_t, TraceEntry> entries;
  std::set<uint64_t> causes_seen;

  // Lists `e` (once) as the contact's, when it is in the window.
  void Add(const Event& e, const std::string& contact_id) {
    if (o.since_us && e.recorded_at_us < o.since_us) return;
    if (o.until_us && e.recorded_at_us >= o.until_us) return;
    if (entries.count(e.seq)) return;
    EventStory s = TellEvent(e, o.reveal);
    entries[e.seq] = TraceEntry{e.seq,      e.recorded_at_us, e.id.ToString(), e.tenant,
                                contact_id, s.system,         e.type,          s.what};
  }
  // Adds `note` to `e`'s line after listing it.
  void AddNoted(const Event& e, const std::string& contact_id, const std::string& note) {
    Add(e, contact_id);
    if (auto it = entries.find(e.seq); it != entries.end()) it->second.what += note;
  }
};

// One contact's trace, step by step: its stream (Fold), the router's and
// the replays' records naming it, the webhooks that mention it and decided
// nothing, then the findings.
class ContactTracer {
 public:
  ContactTracer(const EventLog& log, Listing* listing, const ContactMatch& c)
      : log_(log), o_(listing->o), listing_(listing), c_(c) {
    pc_.contact = c;
  }

  Status Run(Trace::PerContact* out) {
    std::vector<Event> stream;
    Status s = log_.ReadWholeStream(c_.tenant, ContactStream(c_.contact_id), &stream);
    if (!s.ok()) return s;
    for (const Event& e : stream) Fold(e);
    // A conflict names contacts that existed: none before the contact's
    // first event.
    if (s = ListConflicts(stream.empty() ? 1 : stream.front().seq); !s.ok()) return s;
    if (s = ListReplays(); !s.ok()) return s;
    if (s = ScanQuietWebhooks(); !s.ok()) return s;
    FindPushes();
    FindTargets();
    FindTheRest();
    for (auto& [name, sys] : systems_)
      if (!name.empty()) pc_.systems.push_back(sys);
    Status steps = CampaignSteps(log_, c_, &pc_.campaign_steps);
    if (!steps.ok())
      pc_.findings.push_back("its campaign steps could not be read (" + steps.ToString() + ")");
    *out = std::move(pc_);
    return Status::OK();
  }

 private:
  // One event of the contact's stream: listed with its cause, what it
  // tells of the contact's identity, and (up to --until) its pushes,
  // consent and counts.
  void Fold(const Event& e) {
    listing_->Add(e, c_.contact_id);
    ListCause(e);
    DomainEvent d;
    if (!AsDomainEvent(e, &d)) return;
    LearnIdentity(d);
    // The findings describe the contact as of --until (events before
    // --since count: they are its history).
    if (o_.until_us && e.recorded_at_us >= o_.until_us) return;
    if (!d.system.empty() && d.type != ev::kMessageLogged && d.type != ev::kMessageStatus)
      systems_[d.system].system = d.system;
    if (!TrackPush(e, d)) TrackTheRest(e, d);
  }

  // The webhook (or other source event) that caused `e`, looked up once
  // per cause: a webhook causes several decisions.
  void ListCause(const Event& e) {
    if (e.causation_id.IsZero() || !cause_ids_.insert(e.causation_id).second) return;
    Event cause;
    if (!ReadEventById(log_, e.causation_id, &cause).ok() || IsContactStream(cause.stream) ||
        !listing_->causes_seen.insert(cause.seq).second)
      return;
    listing_->Add(cause, c_.contact_id);
    if (!first_cause_ || cause.seq < first_cause_) first_cause_ = cause.seq;
    // A settlement's decisions answer the webhook it settled.
    DomainEvent settled;
    if (cause.type == ev::kIdentitySettled && AsDomainEvent(cause, &settled))
      listing_->causes_seen.insert(settled.webhook_seq);
  }

  // Its links, ids, phones and emails, for matching webhooks.
  void LearnIdentity(const DomainEvent& d) {
    if (d.type == ev::kContactCreated || d.type == ev::kContactLinked ||
        (d.type == ev::kPushSucceeded && !IsMessageOp(d.op) && !LinksNoRecord(d))) {
      if (!d.external_id.empty()) {
        who_.external.insert({d.system, d.external_id});
        systems_[d.system].link = d.external_id;
      }
      if (auto ids = d.fields.find("answer.ids");
          ids != d.fields.end() && d.type == ev::kPushSucceeded) {
        auto& others = systems_[d.system].other_ids;
        for (const auto& id : SplitChannels(ids->second))
          if (std::find(others.begin(), others.end(), id) == others.end()) others.push_back(id);
      }
    }
    for (const auto& [f, v] : d.fields) {
      if (d.type != ev::kContactCreated) break;
      if (f == fields::kPhone) who_.phones.insert(v);
      if (f == fields::kEmail) who_.emails.insert(v);
    }
    for (const auto& ch : d.changes) {
      if (ch.field == fields::kPhone) who_.phones.insert(ch.new_value);
      if (ch.field == fields::kEmail) who_.emails.insert(ch.new_value);
    }
  }

  // A push's life; false when `d` is not one of its events.
  bool TrackPush(const Event& e, const DomainEvent& d) {
    if (d.type == ev::kPushRequested) {
      auto& p = pushes_[d.push_id];
      p.system = d.system;
      p.op = d.op;
      p.seq = e.seq;
      p.at_us = e.recorded_at_us;
      systems_[d.system].requested++;
    } else if (d.type == ev::kPushAttempted) {
      auto& p = pushes_[d.push_id];
      p.attempts = std::max(p.attempts, d.attempt);
      if (p.state == "requested" || p.state == "retrying")
        p.state = d.outcome == "retry"     ? "retrying"
                  : d.outcome == "refused" ? "refused (kept open)"
                                           : p.state;
      p.detail = d.outcome + (d.http_status ? " HTTP " + std::to_string(d.http_status) : "") +
                 (d.detail.empty() ? "" : " (" + d.detail + ")");
    } else if (d.type == ev::kPushSucceeded) {
      pushes_[d.push_id].state = "succeeded";
      pushes_[d.push_id].seq = e.seq;
    } else if (d.type == ev::kPushDeadLettered) {
      auto& p = pushes_[d.push_id];
      p.state = "dead";
      p.detail = d.reason;
      p.seq = e.seq;
      p.at_us = e.recorded_at_us;
    } else {
      return false;
    }
    return true;
  }

  // Refusals, skips, echoes, conflicts and consent.
  void TrackTheRest(const Event& e, const DomainEvent& d) {
    if (d.type == ev::kMessageRefused) {
      // A campaign's withdrawal, or a send nobody could deliver, is no
      // consent refusal.
      if (!IsWithdrawal(d) && d.rule != kNotDeliverableRule) refused_++;
      if (!d.push_id.empty()) pushes_[d.push_id].state = "cancelled";
    } else if (d.type == ev::kRedriveSkipped) {
      systems_[d.system].skipped++;
    } else if (d.type == ev::kEchoSuppressed) {
      echoes_++;
    } else if (d.type == ev::kConflictRecorded) {
      conflicts_++;
    } else if (d.type == ev::kOptedOut || d.type == ev::kOptedIn) {
      // As the opt-out registry and the contact actor (ConsentSupersedes).
      const bool opted_out = d.type == ev::kOptedOut;
      const int64_t at = HappenedAt(e, d);
      for (const auto& ch : SplitChannels(d.channel)) {
        auto it = consent_.find(ch);
        if (it == consent_.end() ||
            ConsentSupersedes(opted_out, at, it->second.first, it->second.second))
          consent_[ch] = {opted_out, at};
      }
    }
  }

  // The router's records about webhooks that reached no contact
  // (conflicts naming this one), from `since` on. The source streams hold
  // every webhook: scanned, not kept.
  Status ListConflicts(uint64_t since) {
    for (const Connector* source : Connectors()) {
      const std::string& system = source->system;
      std::vector<std::pair<uint64_t, EventId>> open;  // naming this contact
      std::set<EventId> settled;                       // conflict ids
      Status s = log_.ScanStream(
          c_.tenant, SourceStream(system),
          [&](const Event& e) {
            DomainEvent d;
            if (e.type != ev::kIdentityConflict && e.type != ev::kIdentitySettled) return true;
            if (o_.until_us && e.recorded_at_us >= o_.until_us) return true;
            if (!AsDomainEvent(e, &d)) return true;
            bool mine = false;
            for (const auto& [cid, by] : d.candidates) mine = mine || cid == c_.contact_id;
            if (!mine) return true;
            listing_->Add(e, c_.contact_id);
            if (e.type == ev::kIdentityConflict) {
              open.emplace_back(e.seq, e.id);
            } else {
              settled.insert(e.causation_id);
            }
            return true;
          },
          since);
      if (!s.ok()) return s;
      for (const auto& [seq, id] : open) {
        if (settled.count(id)) continue;
        pc_.findings.push_back("a " + system + " webhook's fact (conflict " + std::to_string(seq) +
                               ") matched this contact and another one; nothing was changed. "
                               "Settle it: dfm conflicts settle " +
                               std::to_string(seq) + " --contact <id> (or --dismiss).");
      }
    }
    return Status::OK();
  }

  // The replays naming the contact.
  Status ListReplays() {
    std::vector<Event> replays;
    Status s = log_.ReadWholeStream(c_.tenant, kReplayStream, &replays);
    if (!s.ok()) return s;
    for (const auto& e : replays) {
      ReplayRequest r;
      if (!DecodeReplayRequest(e.payload, &r).ok()) continue;
      for (const auto& item : r.items)
        if (item.contact_id == c_.contact_id) {
          listing_->Add(e, c_.contact_id);
          break;
        }
    }
    return Status::OK();
  }

  // Webhooks that mention the contact but decided nothing.
  Status ScanQuietWebhooks() {
    if (!o_.scan_webhooks || !o_.mapper || !(first_cause_ || o_.since_us)) return Status::OK();
    const uint64_t from = o_.since_us ? 1 : first_cause_;
    return ScanWindow(log_, o_.since_us, o_.until_us, from, [&](const Event& e) {
      LookAtWebhook(e);
      return true;
    });
  }

  // A webhook no decision of the contact's names: listed when it mentions
  // the contact (unreadable, or saying what was known).
  void LookAtWebhook(const Event& e) {
    if (e.tenant != c_.tenant || listing_->causes_seen.count(e.seq)) return;
    if (e.type != WebhookReceived::kType && e.type != kContactImportedType) return;
    WebhookReceived w;
    if (!DecodeWebhookReceived(e.schema_version, e.payload, &w).ok()) return;
    if (!who_.MayMention(w.body)) return;
    const InboundMapper* m = FindMapperFor(e.type, w.system);
    if (!m) return;
    std::vector<ContactFact> facts;
    if (!(*m)(w, o_.mapper.For(e.tenant, w.system), &facts).ok()) {
      unreadable_++;
      listing_->AddNoted(e, c_.contact_id, ": unreadable, quarantined");
      return;
    }
    for (const auto& f : facts) {
      if (!who_.Matches(f)) continue;
      silent_++;
      listing_->AddNoted(e, c_.contact_id, ": decided nothing (what it says was already known)");
      return;
    }
  }

  // Each system's push counts; a push dead with nothing of its kind
  // landed since, and one still open.
  void FindPushes() {
    std::map<std::string, uint64_t> last_success;  // system + op -> seq
    for (const auto& [id, p] : pushes_)
      if (p.state == "succeeded")
        last_success[p.system + "/" + p.op] = std::max(last_success[p.system + "/" + p.op], p.seq);
    for (const auto& [id, p] : pushes_) {
      auto& sys = systems_[p.system];
      sys.system = p.system;
      if (p.state == "succeeded") sys.succeeded++;
      if (p.state == "dead") sys.dead++;
      if (p.state == "requested" || p.state == "retrying") sys.unsettled++;
      sys.last = p.op + " " + p.state;
      if (p.state == "dead" && last_success[p.system + "/" + p.op] < p.seq) {
        pc_.findings.push_back(
            "push " + id + " (" + p.op + " -> " + p.system + ") was dead-lettered at " +
            FormatToolTime(p.at_us) + " after " + std::to_string(p.attempts) +
            " attempt(s): " + p.detail + "; nothing of that kind reached " + p.system +
            " since. Re-drive it: dfm replay dead-letters --push " + id + " --execute");
      }
      if (p.state == "requested" || p.state == "retrying") {
        pc_.findings.push_back(
            "push " + id + " (" + p.op + " -> " + p.system + ") is not settled yet" +
            (p.attempts ? ": attempt " + std::to_string(p.attempts) + " " + p.detail
                        : ": not attempted yet") +
            "; the connector retries it");
      }
    }
  }

  // A configured target never asked to hold the contact.
  void FindTargets() {
    auto t = o_.targets.find(c_.tenant);
    if (t == o_.targets.end()) return;
    for (const auto& target : t->second) {
      auto sys = systems_.find(target);
      if (sys != systems_.end() && (sys->second.requested > 0 || !sys->second.link.empty()))
        continue;
      systems_[target].system = target;
      std::string key;
      if (auto kf = o_.key_fields.find(c_.tenant); kf != o_.key_fields.end()) {
        auto f = kf->second.find(target);
        if (f != kf->second.end()) key = f->second;
      }
      const std::set<std::string>* known = key == fields::kPhone   ? &who_.phones
                                           : key == fields::kEmail ? &who_.emails
                                                                   : nullptr;
      if (known && std::all_of(known->begin(), known->end(),
                               [](const std::string& v) { return v.empty(); })) {
        pc_.findings.push_back(target + " holds contacts only with a " + key +
                               ", and this contact has none: no upsert is asked of it until it "
                               "has one (docs/sync-rules.md).");
        continue;
      }
      pc_.findings.push_back(target +
                             " was never asked to hold this contact: no push to it was ever "
                             "requested (was its connector configured when the webhooks came?). "
                             "`dfm replay --contact " +
                             c_.contact_id +
                             " --from <first webhook>` shows what the rules would push now.");
    }
  }

  // Consent, the quiet and unreadable webhooks, echoes and conflicts.
  void FindTheRest() {
    auto& f = pc_.findings;
    for (const auto& [ch, st] : consent_)
      if (st.first)
        f.push_back("opted out of " + ch + " since " + FormatToolTime(st.second) +
                    ": sends to it are refused" +
                    (refused_ ? " (" + std::to_string(refused_) + " refused)" : ""));
    if (silent_)
      f.push_back(std::to_string(silent_) +
                  " webhook(s) about this contact changed nothing: what they said was "
                  "already known (or was our own push coming back)");
    if (unreadable_)
      f.push_back(std::to_string(unreadable_) +
                  " webhook(s) mentioning this contact could not be read "
                  "and were quarantined (dfm events --type webhook.quarantined)");
    if (echoes_) f.push_back(std::to_string(echoes_) + " echo(es) of our own pushes suppressed");
    if (conflicts_)
      f.push_back(std::to_string(conflicts_) +
                  " conflicting value(s) refused by the merge rules "
                  "(dfm events --contact " +
                  c_.contact_id + " --type contact.conflict_recorded)");
    if (f.empty()) f.push_back("every push settled; nothing is missing");
  }

  const EventLog& log_;
  const TraceOptions& o_;
  Listing* listing_;
  const ContactMatch& c_;
  Trace::PerContact pc_;
  Identity who_;
  std::map<std::string, PushTrack> pushes_;  // push id -> track
  std::map<std::string, TraceSystem> systems_;
  std::map<std::string, std::pair<bool, int64_t>> consent_;  // channel -> (out, at)
  std::set<EventId> cause_ids_;
  uint64_t first_cause_ = 0;
  int refused_ = 0, echoes_ = 0, conflicts_ = 0, silent_ = 0, unreadable_ = 0;
};

}  // namespace

Status BuildTrace(const EventLog& log, const std::vector<ContactMatch>& contacts,
                  const TraceOptions& o, Trace* out) {
  *out = Trace();
  Listing listing{o, {}, {}};
  for (const auto& c : contacts) {
    Trace::PerContact pc;
    Status s = ContactTracer(log, &listing, c).Run(&pc);
    if (!s.ok()) return s;
    out->contacts.push_back(std::move(pc));
  }
  for (auto& [seq, e] : listing.entries) out->entries.push_back(std::move(e));
  return Status::OK();
}

}  // namespace dfm
