#include "replay-tools/replay.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "events/webhook_received.h"
#include "storage/rocksdb_event_log.h"
#include "sync/identity.h"
#include "sync/settle.h"

namespace dfm {

namespace {

struct FactAt {
  uint64_t webhook_seq = 0;
  EventId webhook_id;
  ContactFact fact;
  // Where and when the contact decided it: the webhook's position and
  // time, or a later settlement's for a fact held back by an identity
  // conflict until then.
  uint64_t decided_seq = 0;
  int64_t decided_at_us = 0;
  // Whose decisions it is compared with (Gathered::settled_for): the
  // webhook's id (bytes), or for a settled fact that id marked as the
  // settlement's (SettledKey), apart from the opt-outs the conflict's
  // candidates decided at the webhook's place.
  std::string key;
};

std::string SettledKey(const EventId& webhook) {
  return std::string(webhook.AsBytes()) + "/settled";
}

bool IsSettledKey(const std::string& key) {
  constexpr std::string_view kSettled = "/settled";
  return key.size() >= kSettled.size() &&
         key.compare(key.size() - kSettled.size(), kSettled.size(), kSettled) == 0;
}

}  // namespace

std::string PushKey(const DomainEvent& p) {
  const char* place = HasOptOutTag(p, kNewRecordTag) ? "record"
                      : LinksNoRecord(p)             ? "duplicate"
                                                     : "";
  return p.system + "\n" + p.op + "\n" + p.message_key + "\n" + p.channel + "\n" + place;
}

namespace {

bool InContacts(const std::vector<ContactMatch>& cs, const ContactMatch& c) {
  if (cs.empty()) return true;
  for (const auto& x : cs)
    if (x == c) return true;
  return false;
}

// What the router recorded for fact `n` of the webhook `e` instead of
// routing it, and what became of an identity conflict, found by the keys
// they are recorded under (sync/settle.h) wherever they are in the log,
// inside the replay's window or not: nothing (routed), a rejection, a
// quarantine of the whole webhook (fact 0's key), or a conflict still
// open, dismissed, settled to a contact, or settled and refused.
struct ConflictEnd {
  enum class Kind {
    kNone,
    kRejected,
    kQuarantined,
    kOpen,
    kDismissed,
    kSettled,
    kRefused
  } kind = Kind::kNone;
  std::string contact_id;  // kSettled, kRefused: the contact it was settled to
  Event settlement;        // kSettled, kRefused
  // The conflict's candidates (kOpen and after): its opt-outs went to them
  // at once (ConflictOptOuts), whatever became of it.
  std::vector<std::pair<std::string, std::string>> candidates;
};

Status FindConflictEnd(const EventLog& log, const Event& e, size_t n, ConflictEnd* out) {
  *out = ConflictEnd();
  uint64_t seq = 0;
  Status s = log.LookupIdempotency(e.tenant, kDecisionKeySystem, SourceDecisionKey(e.seq, n), &seq);
  if (s.IsNotFound()) return Status::OK();
  Event recorded;
  if (s.ok()) s = ReadEventBySeq(log, seq, &recorded);
  if (!s.ok()) return s;
  if (recorded.type == ev::kFactRejected) out->kind = ConflictEnd::Kind::kRejected;
  if (recorded.type == ev::kWebhookQuarantined) out->kind = ConflictEnd::Kind::kQuarantined;
  if (recorded.type != ev::kIdentityConflict) return Status::OK();
  out->kind = ConflictEnd::Kind::kOpen;
  DomainEvent conflict;
  if (AsDomainEvent(recorded, &conflict)) out->candidates = std::move(conflict.candidates);
  s = log.LookupIdempotency(e.tenant, kDecisionKeySystem, SettleIdempotencyKey(recorded.seq), &seq);
  if (s.IsNotFound()) return Status::OK();
  if (s.ok()) s = ReadEventBySeq(log, seq, &out->settlement);
  if (!s.ok()) return s;
  DomainEvent settled;
  if (!AsDomainEvent(out->settlement, &settled))
    return Status::Corruption("settlement " + std::to_string(seq) + " does not read");
  if (settled.contact_id.empty()) {
    out->kind = ConflictEnd::Kind::kDismissed;
    return Status::OK();
  }
  out->contact_id = settled.contact_id;
  out->kind = ConflictEnd::Kind::kSettled;
  // The router refuses a settlement whose fact's id reached another contact
  // meanwhile: a fact.rejected under the settlement's own key.
  s = log.LookupIdempotency(e.tenant, kDecisionKeySystem, SourceDecisionKey(seq, 0), &seq);
  if (s.ok()) out->kind = ConflictEnd::Kind::kRefused;
  return s.IsNotFound() ? Status::OK() : s;
}

// The facts of the window's webhooks, by the contact they reached: as the
// engine routed them, or as a settlement put them; none held back.
struct Gathered {
  std::map<std::pair<std::string, std::string>, std::vector<FactAt>> by_contact;
  // identity.settled id -> the settled fact's key (SettledKey of the
  // webhook it settled): its decisions are that fact's (sync/settle.h).
  // Found from the webhook's conflict, so a settlement recorded after the
  // window counts too.
  std::map<std::string, std::string> settled_for;
};

Status GatherFacts(const EventLog& log, const ReplayOptions& o, MappingsView& mappings,
                   ReplayPlan* plan, Gathered* g) {
  Status lookup;  // the first failed lookup of a conflict's end, which stops the scan
  Status s = ScanWindow(log, o.from_us, o.to_us, 1, [&](const Event& e) {
    plan->events_read++;
    if (!o.tenant.empty() && e.tenant != o.tenant) return true;
    if (e.type != WebhookReceived::kType && e.type != kContactImportedType) return true;
    WebhookReceived w;
    if (!DecodeWebhookReceived(e.schema_version, e.payload, &w).ok()) return true;
    const InboundMapper* m = FindMapperFor(e.type, w.system);
    if (!m) return true;
    std::vector<ContactFact> facts;
    if (!(*m)(w, o.mapper.For(e.tenant, w.system), &facts).ok())
      return true;  // quarantined then and now
    plan->webhooks++;
    bool quarantined = false;  // then, though it maps now: none of its facts was applied
    for (size_t n = 0; n < facts.size(); ++n) {
      ContactFact& f = facts[n];
      StampFact(&f, e, static_cast<uint32_t>(n));
      plan->facts++;
      ConflictEnd end;
      if (!quarantined) {
        lookup = FindConflictEnd(log, e, n, &end);
        if (!lookup.ok()) return false;
        quarantined = end.kind == ConflictEnd::Kind::kQuarantined;
      }
      for (auto& [contact, opt_outs] : ConflictOptOuts(f, end.candidates)) {
        ContactMatch c{e.tenant, contact};
        if (InContacts(o.contacts, c))
          g->by_contact[{e.tenant, contact}].push_back(FactAt{e.seq, e.id, std::move(opt_outs),
                                                              e.seq, f.recorded_at_us,
                                                              std::string(e.id.AsBytes())});
      }
      if (quarantined || end.kind == ConflictEnd::Kind::kRejected ||
          end.kind == ConflictEnd::Kind::kOpen || end.kind == ConflictEnd::Kind::kDismissed ||
          end.kind == ConflictEnd::Kind::kRefused) {
        plan->held_back++;  // the engine applied it to no contact: neither does a replay
        continue;
      }
      Resolution r;
      if (end.kind == ConflictEnd::Kind::kSettled) {  // the contact the person chose
        r.kind = Resolution::Kind::kMatched;
        r.contact_id = end.contact_id;
        g->settled_for[std::string(end.settlement.id.AsBytes())] = SettledKey(e.id);
      } else {
        r = Resolve(
            f, [&](const std::string& key) { return mappings.Get(key); },
            o.context && o.context(e.tenant).fold_plus_addressing);
      }
      if (r.kind == Resolution::Kind::kNew) {
        // Named by the webhook that created it, if it did.
        r.contact_id = NewContactId(e.id, n);
        std::vector<Event> one;
        if (!log.ReadStream(e.tenant, ContactStream(r.contact_id), 1, 1, &one).ok() ||
            one.empty()) {
          plan->unresolved++;
          continue;
        }
      } else if (r.kind != Resolution::Kind::kMatched) {
        plan->unresolved++;
        continue;
      }
      ContactMatch c{e.tenant, r.contact_id};
      if (!InContacts(o.contacts, c)) continue;
      const bool settled = end.kind == ConflictEnd::Kind::kSettled;
      const int64_t at = settled ? end.settlement.recorded_at_us : f.recorded_at_us;
      g->by_contact[{e.tenant, r.contact_id}].push_back(
          FactAt{e.seq, e.id, std::move(f), settled ? end.settlement.seq : e.seq, at,
                 settled ? SettledKey(e.id) : std::string(e.id.AsBytes())});
    }
    return true;
  });
  return lookup.ok() ? s : lookup;
}

// The key of a push a replay asked to re-drive: its tenant, cause (the
// webhook's id), contact, PushKey and fact (each item is the push the
// rules call for now, numbered as the replay numbers the webhook's facts),
// so that re-driving one contact's push, one message's or one fact's hides
// no other's.
std::string RedrivenKey(const std::string& tenant, const std::string& cause,
                        const std::string& contact_id, const DomainEvent& push) {
  return tenant + "\n" + cause + "\n" + contact_id + "\n" + PushKey(push) + "\n" +
         std::to_string(push.fact_index);
}

// Pushes a replay already asked to re-drive (RedrivenKey): not missing
// again, whatever became of them.
Status ReadRedriven(const EventLog& log, const Gathered& g, std::set<std::string>* requested) {
  std::set<std::string> tenants_seen;
  for (const auto& [key, facts] : g.by_contact) tenants_seen.insert(key.first);
  for (const auto& t : tenants_seen) {
    std::vector<Event> replays;
    Status s = log.ReadWholeStream(t, kReplayStream, &replays);
    if (!s.ok()) return s;
    for (const auto& e : replays) {
      ReplayRequest r;
      if (!DecodeReplayRequest(e.payload, &r).ok()) continue;
      for (const auto& it : r.items)
        requested->insert(RedrivenKey(t, it.cause, it.contact_id, it.push));
    }
  }
  return Status::OK();
}

// A contact's stream decoded, with the pushes each fact's key caused (a
// settled fact's under its SettledKey; a re-drive's under the webhook it
// answers too) and the seq of each key's first decision.
std::vector<DomainEvent> DecodeCauses(const std::vector<Event>& stream,
                                      const std::map<std::string, std::string>& settled_for,
                                      std::map<std::string, std::vector<DomainEvent>>* caused,
                                      std::map<std::string, uint64_t>* first_decision) {
  std::vector<DomainEvent> decoded(stream.size());
  for (size_t i = 0; i < stream.size(); ++i) {
    const Event& e = stream[i];
    if (!AsDomainEvent(e, &decoded[i])) continue;
    std::string cause(e.causation_id.AsBytes());
    if (auto settled = settled_for.find(cause); settled != settled_for.end())
      cause = settled->second;
    if (!first_decision->count(cause)) (*first_decision)[cause] = e.seq;
    if (decoded[i].type != ev::kPushRequested) continue;
    (*caused)[cause].push_back(decoded[i]);
    // A re-drive counts for the webhook it answers (sync/redrive.h: detail).
    if (auto answered = RedriveCause(decoded[i]))
      (*caused)[std::string(answered->AsBytes())].push_back(decoded[i]);
  }
  return decoded;
}

// The PushKeys one side holds for more than one of the webhook's facts
// (two facts of a batch asking the same of one system): those are told
// apart by fact too. A re-drive keeps its push's fact, so it still takes
// that push's place.
std::set<std::string> KeysOfSeveralFacts(const std::vector<const DomainEvent*>& then,
                                         const std::vector<DomainEvent>& now) {
  std::set<std::string> several;
  std::map<std::string, uint32_t> first_then, first_now;
  auto note = [&several](std::map<std::string, uint32_t>* first, const DomainEvent& d) {
    auto [it, fresh] = first->emplace(PushKey(d), d.fact_index);
    if (!fresh && it->second != d.fact_index) several.insert(it->first);
  };
  for (const DomainEvent* d : then) note(&first_then, *d);
  for (const auto& d : now) note(&first_now, d);
  return several;
}

// One webhook's pushes for a contact, as they were (`then`) and as they are
// decided now: the same, different, missing (or re-driven since) or extra.
// Matched by PushKey, and by fact where a key is asked by several facts;
// not for a settled fact (the router numbered its facts at the settlement,
// the replay at the webhook).
void ComparePushes(const ReplayOptions& o, const ContactMatch& c, const FactAt& fact,
                   const std::vector<DomainEvent>& then,
                   const std::vector<DomainEvent>& pending_now,
                   const std::set<std::string>& requested, ReplayPlan* plan) {
  std::vector<const DomainEvent*> then_kept;
  for (const auto& d : then)
    if (o.system.empty() || d.system == o.system) then_kept.push_back(&d);
  const std::set<std::string> several =
      IsSettledKey(fact.key) ? std::set<std::string>{} : KeysOfSeveralFacts(then_kept, pending_now);
  auto key = [&several](const DomainEvent& d) {
    std::string k = PushKey(d);
    if (several.count(k)) k += "\n" + std::to_string(d.fact_index);
    return k;
  };
  std::map<std::string, DomainEvent> then_by_key, now_by_key;
  for (const DomainEvent* d : then_kept) then_by_key[key(*d)] = *d;
  for (const auto& d : pending_now) now_by_key[key(d)] = d;
  for (const auto& [k, d] : now_by_key) {
    auto t = then_by_key.find(k);
    if (t == then_by_key.end() &&
        requested.count(RedrivenKey(c.tenant, fact.webhook_id.ToString(), c.contact_id, d))) {
      plan->redriven++;
    } else if (t == then_by_key.end()) {
      plan->diffs.push_back({"missing",
                             c,
                             fact.webhook_seq,
                             fact.webhook_id.ToString(),
                             fact.fact.recorded_at_us,
                             d,
                             {}});
    } else if (t->second.fields != d.fields || t->second.external_id != d.external_id) {
      plan->diffs.push_back({"different", c, fact.webhook_seq, fact.webhook_id.ToString(),
                             fact.fact.recorded_at_us, d, t->second});
    } else {
      plan->same++;
    }
  }
  for (const auto& [k, d] : then_by_key)
    if (!now_by_key.count(k))
      plan->diffs.push_back({"extra",
                             c,
                             fact.webhook_seq,
                             fact.webhook_id.ToString(),
                             fact.fact.recorded_at_us,
                             {},
                             d});
}

// One contact's facts decided again in the order it decided them (a
// settled fact where its settlement is), each against the state it met,
// and each webhook's pushes compared with those it caused.
Status ReplayContact(const EventLog& log, const ReplayOptions& o, const std::string& tenant,
                     const std::string& contact_id, std::vector<FactAt>* facts_in,
                     const std::map<std::string, std::string>& settled_for,
                     const std::set<std::string>& requested, ReplayPlan* plan) {
  std::vector<FactAt>& facts = *facts_in;
  std::stable_sort(facts.begin(), facts.end(),
                   [](const FactAt& a, const FactAt& b) { return a.decided_seq < b.decided_seq; });
  SyncContext ctx = o.context(tenant);
  std::vector<Event> stream;
  Status s = log.ReadWholeStream(tenant, ContactStream(contact_id), &stream);
  if (!s.ok()) return s;
  plan->events_read += stream.size();
  // The events each webhook caused, and where they begin.
  std::map<std::string, std::vector<DomainEvent>> caused;  // webhook id bytes -> pushes
  std::map<std::string, uint64_t> first_decision;
  std::vector<DomainEvent> decoded = DecodeCauses(stream, settled_for, &caused, &first_decision);
  // Where each fact's state ends: before its own decisions, or before
  // the next decided webhook's.
  std::vector<uint64_t> boundary(facts.size(), UINT64_MAX);
  uint64_t next = UINT64_MAX;
  for (size_t i = facts.size(); i-- > 0;) {
    auto it = first_decision.find(facts[i].key);
    if (it != first_decision.end()) next = it->second;
    boundary[i] = next;
  }
  ContactState state;
  state.contact_id = contact_id;
  state.message_memory_us = ctx.message_memory_us;  // as the contact actor keeps it
  size_t applied = 0;
  std::set<std::string> compared;  // keys already diffed (several facts, one webhook)
  ContactState scratch;
  std::vector<DomainEvent> pending_now;  // the pushes of the webhook being decided
  for (size_t i = 0; i < facts.size(); ++i) {
    while (applied < stream.size() && stream[applied].seq < boundary[i]) {
      if (!decoded[applied].type.empty())
        Apply(&state, decoded[applied], stream[applied].seq, stream[applied].recorded_at_us);
      applied++;
    }
    const std::string& wid = facts[i].key;
    bool first_of_webhook = i == 0 || facts[i - 1].key != wid;
    if (first_of_webhook) scratch = state;
    scratch.last_fact_seq = 0;
    scratch.last_fact_index = 0;
    ctx.now_us = facts[i].decided_at_us;
    std::vector<DomainEvent> now = Decide(scratch, facts[i].fact, ctx);
    for (const auto& d : now) Apply(&scratch, d, 0, facts[i].decided_at_us);
    // Compare the webhook's pushes once all its facts for this contact are decided.
    if (first_of_webhook) pending_now.clear();
    for (auto& d : now)
      if (d.type == ev::kPushRequested && (o.system.empty() || d.system == o.system))
        pending_now.push_back(d);
    bool last_of_webhook = i + 1 == facts.size() || facts[i + 1].key != wid;
    if (!last_of_webhook || compared.count(wid)) continue;
    compared.insert(wid);
    ComparePushes(o, ContactMatch{tenant, contact_id}, facts[i], caused[wid], pending_now,
                  requested, plan);
  }
  return Status::OK();
}

}  // namespace

Status PlanReplay(const EventLog& log, const ReplayOptions& o, ReplayPlan* plan) {
  *plan = ReplayPlan();
  if (!o.mapper || !o.context) return Status::InvalidArgument("replay needs mappers and rules");
  std::optional<MappingsView> own;
  if (o.mappings == nullptr) {
    own.emplace(log);
    Status s = own->Load();
    if (!s.ok()) return s;
  }
  MappingsView& mappings = o.mappings ? *o.mappings : *own;
  Gathered g;
  Status s = GatherFacts(log, o, mappings, plan, &g);
  std::set<std::string> requested;
  if (s.ok()) s = ReadRedriven(log, g, &requested);
  for (auto& [key, facts] : g.by_contact) {
    if (!s.ok()) break;
    plan->contacts++;
    s = ReplayContact(log, o, key.first, key.second, &facts, g.settled_for, requested, plan);
  }
  return s;
}

Status FindDeadLetters(const EventLog& log, const DeadLetterFilter& f,
                       std::vector<DeadLetter>* out) {
  out->clear();
  std::map<std::string, std::pair<Event, DomainEvent>> requests;  // push id -> request
  std::set<std::string> redriven;  // request event ids named by replays
  // cause -> when it was first asked for, as the replay that re-drove it said
  std::map<std::string, int64_t> first_asked;
  std::vector<DeadLetter> dead;
  uint64_t from = f.from_us ? FirstSeqAtOrAfter(log, f.from_us) : 1;
  // A dead letter's request comes before it: scan from the start for them,
  // keep only the dead letters inside the window.
  Status s = ScanEvents(log, 1, 0, [&](const Event& e) {
    if (!f.tenant.empty() && e.tenant != f.tenant) return true;
    if (e.type == kReplayRequestedType) {
      ReplayRequest r;
      if (DecodeReplayRequest(e.payload, &r).ok())
        for (const auto& it : r.items) {
          redriven.insert(it.cause);
          if (it.asked_at_us != 0) first_asked[it.cause] = it.asked_at_us;
        }
      return true;
    }
    if (e.type != ev::kPushRequested && e.type != ev::kPushDeadLettered) return true;
    DomainEvent d;
    if (!DecodeDomainEvent(e.type, e.payload, &d).ok()) return true;
    if (e.type == ev::kPushRequested) {
      requests[d.push_id] = {e, d};
      return true;
    }
    if (e.seq < from || (f.to_us && e.recorded_at_us >= f.to_us)) return true;
    if (!f.push_id.empty() && d.push_id != f.push_id) return true;
    if (!f.system.empty() && d.system != f.system) return true;
    if (d.outcome == kWithdrawnOutcome) return true;  // settled, nothing to re-drive
    auto req = requests.find(d.push_id);
    if (req == requests.end()) return true;
    ContactMatch c{e.tenant, d.contact_id.empty() ? req->second.second.contact_id : d.contact_id};
    if (!InContacts(f.contacts, c)) return true;
    DeadLetter dl;
    dl.contact = c;
    dl.request = req->second.second;
    dl.request_id = req->second.first.id.ToString();
    // When it was first asked for: a re-drive's own time would give a text
    // that keeps dying a new window at every re-drive.
    dl.request_at_us = req->second.first.recorded_at_us;
    if (auto cause = RedriveCause(req->second.second)) {
      auto first = first_asked.find(cause->ToString());
      if (first != first_asked.end()) dl.request_at_us = first->second;
    }
    dl.reason = d.reason;
    dl.at_us = e.recorded_at_us;
    dl.seq = e.seq;
    dead.push_back(std::move(dl));
    return true;
  });
  if (!s.ok()) return s;
  for (auto& d : dead)
    if (!redriven.count(d.request_id)) out->push_back(std::move(d));
  return Status::OK();
}

}  // namespace dfm
