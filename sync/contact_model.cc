#include "sync/contact_model.h"

#include <algorithm>

#include "sync/consent.h"

namespace dfm {

namespace {

const Attributed* Current(const ContactState& s, const std::string& f) {
  auto it = s.fields.find(f);
  return it == s.fields.end() ? nullptr : &it->second;
}

const std::string* Lookup(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? nullptr : &it->second;
}

bool HasIdentity(const std::map<std::string, std::string>& f) {
  auto p = Lookup(f, fields::kPhone);
  auto e = Lookup(f, fields::kEmail);
  return (p && !p->empty()) || (e && !e->empty());
}

DomainEvent Base(std::string_view type, const ContactState& s, const ContactFact& fact) {
  DomainEvent e;
  e.type = std::string(type);
  e.contact_id = s.contact_id;
  e.system = fact.system;
  e.external_id = fact.external_id;
  e.webhook_seq = fact.webhook_seq;
  return e;
}

// push.requested for every target whose known values differ from `merged`
// (or that does not have the contact yet), the fact's own system included
// when one of its values lost.
void RequestPushes(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                   const std::map<std::string, std::string>& merged,
                   const std::map<std::string, std::map<std::string, std::string>>& known,
                   std::vector<DomainEvent>* out) {
  for (const auto& [target, accepted] : ctx.targets) {
    auto kit = known.find(target);
    auto pit = s.pending.find(target);  // pushes on their way count as held
    std::map<std::string, std::string> diff;
    for (const auto& [f, v] : merged) {
      if (!accepted.count(f)) continue;
      const std::string* k = pit == s.pending.end() ? nullptr : Lookup(pit->second, f);
      if (!k || *k != v) k = kit == known.end() ? nullptr : Lookup(kit->second, f);
      if (!k || *k != v) diff[f] = v;
    }
    if (diff.empty()) continue;  // it holds (or is being sent) all it accepts
    // The vendor matches (and the connector looks up) by phone and email:
    // always send them.
    for (const char* id : {fields::kPhone, fields::kEmail}) {
      auto m = Lookup(merged, id);
      if (m && accepted.count(id)) diff[id] = *m;
    }
    DomainEvent p = Base(ev::kPushRequested, s, fact);
    p.system = target;
    auto link = s.links.find(target);
    p.external_id = link != s.links.end() ? link->second
                                          : (target == fact.system ? fact.external_id : "");
    p.op = "upsert";
    p.fields = std::move(diff);
    p.push_id = s.contact_id + ":" + target + ":" + std::to_string(fact.webhook_seq);
    out->push_back(std::move(p));
  }
}

}  // namespace

MergePolicy MergePolicy::Defaults() {
  MergePolicy p;
  for (const char* f : {fields::kFirstName, fields::kLastName, fields::kEmail, fields::kAddress1,
                        fields::kCity, fields::kState, fields::kPostalCode, fields::kCountry,
                        fields::kTags}) {
    p.owner[f] = "ghl";
  }
  p.owner["disposition"] = "aloware";
  return p;
}

namespace {

// One consent statement of an upsert fact, after the fact's contact part.
void DecideConsent(const ContactState& s, const ContactFact& fact, const Consent& c,
                   const SyncContext& ctx, int64_t t, std::vector<DomainEvent>* out) {
  // Who it concerns: the fact's phone/email, else the contact's.
  std::map<std::string, std::string> who;
  for (const char* f : {fields::kPhone, fields::kEmail}) {
    auto v = Lookup(fact.fields, f);
    if (v && !v->empty()) {
      who[f] = *v;
    } else if (auto cur = Current(s, f); cur && !cur->value.empty()) {
      who[f] = cur->value;
    }
  }
  std::string contact_id = s.contact_id;
  auto base = [&](std::string_view type) {
    DomainEvent e = Base(type, s, fact);
    e.contact_id = contact_id;
    e.source_time_us = t;
    e.reason = c.reason;
    e.fields = who;
    if (!c.message_id.empty()) e.external_id = c.message_id;
    return e;
  };
  if (c.change == Consent::Change::kReview) {
    DomainEvent f = base(ev::kOptOutFlagged);
    f.channel = JoinChannels(c.channels);
    out->push_back(std::move(f));
    return;
  }
  const bool opt_out = c.change == Consent::Change::kOptOut;
  std::vector<std::string> changed;
  for (const auto& ch : c.channels) {
    if (c.snapshot) {
      auto pend = s.pending_consent.find(fact.system);
      if (pend != s.pending_consent.end() && pend->second.count(ch)) continue;  // ours on its way
      ContactState::HeldConsent known;
      if (auto k = s.known_consent.find(fact.system); k != s.known_consent.end()) {
        auto kc = k->second.find(ch);
        if (kc != k->second.end()) known = kc->second;
      }
      if (known.out == opt_out) continue;  // the system's setting did not change
      if (t <= known.at_us + (opt_out ? 0 : kSnapshotSkewUs)) continue;  // written before
    }
    auto it = s.consent.find(ch);
    if (it == s.consent.end()) {
      if (opt_out) changed.push_back(ch);  // never opted out: an opt-in changes nothing
      continue;
    }
    if (it->second.out == opt_out) continue;
    if (it->second.at_us > t || (it->second.at_us == t && it->second.out)) continue;  // older
    changed.push_back(ch);
  }
  if (changed.empty()) return;
  DomainEvent e = base(opt_out ? ev::kOptedOut : ev::kOptedIn);
  e.channel = JoinChannels(changed);
  out->push_back(e);
  for (const auto& [target, accepted] : ctx.targets) {
    if (target == fact.system) continue;  // it said so itself
    std::vector<std::string> kept = changed;
    auto group = ctx.channels.find(target);
    if (group != ctx.channels.end()) {
      kept.clear();
      for (const auto& c1 : changed)
        if (group->second.count(c1)) kept.push_back(c1);
    }
    if (kept.empty()) continue;
    if (group != ctx.channels.end() && ctx.one_flag.count(target)) {
      // One flag for the group: its state before and after this statement.
      auto is_out = [&](const std::string& ch) {
        auto it = s.consent.find(ch);
        return it != s.consent.end() && it->second.out;
      };
      bool before = false, after = false;
      for (const auto& ch : group->second) {
        before = before || is_out(ch);
        bool now = std::find(changed.begin(), changed.end(), ch) != changed.end() ? opt_out
                                                                                   : is_out(ch);
        after = after || now;
      }
      if (before == after) continue;  // the flag stays as it is
      kept.assign(group->second.begin(), group->second.end());
    }
    DomainEvent p = Base(ev::kPushRequested, s, fact);
    p.contact_id = contact_id;
    p.system = target;
    auto link = s.links.find(target);
    p.external_id = link != s.links.end() ? link->second : "";
    p.op = opt_out ? "opt_out" : "opt_in";
    p.channel = JoinChannels(kept);
    p.reason = c.reason;
    p.priority = 10;
    for (const auto& [f, v] : who)
      if (accepted.count(f)) p.fields[f] = v;
    p.push_id = contact_id + ":" + target + ":" + std::to_string(fact.webhook_seq) + ":" + p.op;
    out->push_back(std::move(p));
  }
}

std::vector<DomainEvent> DecideContact(const ContactState& s, const ContactFact& fact,
                                       const SyncContext& ctx, int64_t t) {
  std::vector<DomainEvent> out;
  if (fact.kind == ContactFact::Kind::kDelete) {
    if (!s.exists || s.deleted) return out;
    DomainEvent d = Base(ev::kContactDeleted, s, fact);
    d.source_time_us = t;
    out.push_back(d);
    for (const auto& [system, ext] : s.links) {
      if (system == fact.system || !ctx.targets.count(system)) continue;
      DomainEvent p = Base(ev::kPushRequested, s, fact);
      p.system = system;
      p.external_id = ext;
      p.op = "mark_dnc";
      p.push_id = s.contact_id + ":" + system + ":" + std::to_string(fact.webhook_seq);
      p.reason = "deleted in " + fact.system;
      auto ph = Current(s, fields::kPhone);
      if (ph) p.fields[fields::kPhone] = ph->value;
      out.push_back(std::move(p));
    }
    return out;
  }

  if (!s.exists) {
    if (!HasIdentity(fact.fields)) {
      DomainEvent r = Base(ev::kFactRejected, s, fact);
      r.contact_id.clear();
      r.reason = "a contact needs a phone or an email; the fact has neither";
      out.push_back(std::move(r));
      return out;
    }
    DomainEvent c = Base(ev::kContactCreated, s, fact);
    c.source_time_us = t;
    c.fields = fact.fields;
    out.push_back(c);
    std::map<std::string, std::map<std::string, std::string>> known;
    known[fact.system] = fact.fields;
    RequestPushes(s, fact, ctx, fact.fields, known, &out);
    return out;
  }

  // An existing contact.
  bool new_link = false;
  if (!fact.external_id.empty()) {
    auto it = s.links.find(fact.system);
    new_link = it == s.links.end() || it->second != fact.external_id;
  }
  const ContactState::PushMemo* memo = nullptr;
  if (auto it = s.pushed.find(fact.system); it != s.pushed.end()) memo = &it->second;
  static const std::map<std::string, std::string> kEmpty;
  auto kit = s.known.find(fact.system);
  const auto& known_s = kit == s.known.end() ? kEmpty : kit->second;

  std::map<std::string, std::string> echoed;
  std::set<std::string> stale;  // fields the system itself has since changed again
  std::vector<FieldChange> changes;
  std::vector<DomainEvent> conflicts;
  std::map<std::string, std::string> merged;
  for (const auto& [f, a] : s.fields) merged[f] = a.value;

  for (const auto& [f, v] : fact.fields) {
    const std::string* k = Lookup(known_s, f);
    if (k && *k == v) continue;  // the system did not change it
    if (memo) {
      auto fit = memo->find(f);
      if (fit != memo->end()) {
        auto vit = fit->second.find(v);
        if (vit != fit->second.end() && ctx.now_us - vit->second <= ctx.policy.echo_window_us) {
          echoed[f] = v;
          continue;
        }
      }
    }
    const Attributed* cur = Current(s, f);
    if (cur && cur->value == v) continue;  // agrees with the merged value
    if (!cur && v.empty()) continue;       // empty where nothing is known: no change
    Attributed incoming{v, fact.system, t};
    auto owner_it = ctx.policy.owner.find(f);
    const std::string* owner = owner_it == ctx.policy.owner.end() ? nullptr : &owner_it->second;
    auto conflict = [&](const Attributed& kept, const Attributed& lost, const char* rule) {
      DomainEvent c = Base(ev::kConflictRecorded, s, fact);
      c.field = f;
      c.kept = kept;
      c.lost = lost;
      c.rule = rule;
      conflicts.push_back(std::move(c));
    };
    if (owner && *owner != fact.system && cur && cur->system == *owner) {
      conflict(*cur, incoming, "owner");
      continue;
    }
    if (cur && cur->system == fact.system && cur->source_time_us > t) {
      // The system's own older edit arriving late (webhooks out of order),
      // owner or not: its newer value stands.
      conflict(*cur, incoming, "newer");
      stale.insert(f);
      continue;
    }
    if (owner && *owner == fact.system) {
      if (cur && cur->system != fact.system && cur->source_time_us > t) {
        conflict(incoming, *cur, "owner");
      }
    } else if (cur && cur->source_time_us > t) {
      conflict(*cur, incoming, "newer");
      if (cur->system == fact.system) stale.insert(f);
      continue;
    }
    changes.push_back({f, cur ? cur->value : std::string(), v});
    merged[f] = v;
  }

  if (!HasIdentity(merged)) {
    DomainEvent r = Base(ev::kFactRejected, s, fact);
    r.reason = "the change would leave the contact without a phone or an email";
    out.push_back(std::move(r));
    return out;
  }
  if (new_link) {
    DomainEvent l = Base(ev::kContactLinked, s, fact);
    l.via = "webhook";
    l.fields = fact.fields;
    out.push_back(std::move(l));
  }
  if (!changes.empty()) {
    DomainEvent c = Base(ev::kContactChanged, s, fact);
    c.source_time_us = t;
    c.changes = changes;
    c.fields = fact.fields;  // what the system holds now
    out.push_back(std::move(c));
  } else if (!echoed.empty() && conflicts.empty()) {
    DomainEvent e = Base(ev::kEchoSuppressed, s, fact);
    e.fields = echoed;
    out.push_back(std::move(e));
  }
  for (auto& c : conflicts) out.push_back(std::move(c));

  if (!changes.empty() || !conflicts.empty() || new_link) {
    auto known = s.known;
    for (const auto& [f, v] : fact.fields)
      if (!stale.count(f)) known[fact.system][f] = v;
    RequestPushes(s, fact, ctx, merged, known, &out);
  }
  return out;
}

// A consent push ended: its channels are no longer on their way (unless a
// later push for them is), and on success the system holds `held`.
void SettleConsentPush(ContactState* s, const DomainEvent& e, const ContactState::HeldConsent* held) {
  auto& pend = s->pending_consent[e.system];
  for (const auto& ch : SplitChannels(e.channel)) {
    auto it = pend.find(ch);
    bool latest = it == pend.end() || it->second.push_id == e.push_id;
    if (it != pend.end() && latest) pend.erase(it);
    if (held && latest) s->known_consent[e.system][ch] = *held;
  }
  if (pend.empty()) s->pending_consent.erase(e.system);
}

}  // namespace

std::vector<DomainEvent> Decide(const ContactState& s, const ContactFact& fact,
                                const SyncContext& ctx) {
  if (fact.webhook_seq != 0 && fact.webhook_seq <= s.last_fact_seq) return {};  // decided
  const int64_t t = fact.source_time_us ? fact.source_time_us
                                        : (fact.recorded_at_us ? fact.recorded_at_us : ctx.now_us);
  // A stranger's opt-in or flagged text is no reason to create a contact.
  bool consent_only = !s.exists && fact.kind == ContactFact::Kind::kUpsert &&
                      !fact.consents.empty() && fact.external_id.empty();
  for (const auto& [f, v] : fact.fields)
    if (f != fields::kPhone && f != fields::kEmail) consent_only = false;
  for (const Consent& c : fact.consents)
    if (c.change == Consent::Change::kOptOut) consent_only = false;
  std::vector<DomainEvent> out;
  if (!consent_only) out = DecideContact(s, fact, ctx, t);
  if (fact.kind != ContactFact::Kind::kUpsert) return out;
  for (const auto& e : out)
    if (e.type == ev::kFactRejected) return out;
  for (const Consent& c : fact.consents) DecideConsent(s, fact, c, ctx, t, &out);
  return out;
}

void Apply(ContactState* s, const DomainEvent& e, uint64_t seq, int64_t recorded_at_us) {
  if (seq != 0 && seq <= s->last_event_seq) return;
  if (seq != 0) s->last_event_seq = seq;
  if (e.webhook_seq > s->last_fact_seq &&
      (e.type == ev::kContactCreated || e.type == ev::kContactChanged ||
       e.type == ev::kContactLinked || e.type == ev::kContactDeleted ||
       e.type == ev::kConflictRecorded || e.type == ev::kEchoSuppressed ||
       e.type == ev::kPushRequested || e.type == ev::kFactRejected ||
       e.type == ev::kOptedOut || e.type == ev::kOptedIn || e.type == ev::kOptOutFlagged)) {
    s->last_fact_seq = e.webhook_seq;
  }
  if (s->contact_id.empty()) s->contact_id = e.contact_id;
  if (e.type == ev::kContactCreated) {
    s->exists = true;
    s->deleted = false;
    for (const auto& [f, v] : e.fields) s->fields[f] = Attributed{v, e.system, e.source_time_us};
    if (!e.external_id.empty()) s->links[e.system] = e.external_id;
    for (const auto& [f, v] : e.fields) s->known[e.system][f] = v;
  } else if (e.type == ev::kContactChanged) {
    s->exists = true;
    s->deleted = false;
    for (const auto& c : e.changes)
      s->fields[c.field] = Attributed{c.new_value, e.system, e.source_time_us};
    for (const auto& [f, v] : e.fields) s->known[e.system][f] = v;
    s->pushed.erase(e.system);  // a real edit ends the echo window
  } else if (e.type == ev::kContactLinked) {
    s->links[e.system] = e.external_id;
    for (const auto& [f, v] : e.fields) s->known[e.system][f] = v;
  } else if (e.type == ev::kContactDeleted) {
    s->deleted = true;
  } else if (e.type == ev::kConflictRecorded) {
    // The losing system still holds its value, unless it lost to its own
    // newer value (an out-of-order webhook).
    if (e.kept.system != e.lost.system && !e.lost.system.empty())
      s->known[e.lost.system][e.field] = e.lost.value;
  } else if (e.type == ev::kEchoSuppressed) {
    for (const auto& [f, v] : e.fields) s->known[e.system][f] = v;
  } else if (e.type == ev::kPushRequested && (e.op == "opt_out" || e.op == "opt_in")) {
    for (const auto& ch : SplitChannels(e.channel))
      s->pending_consent[e.system][ch] = {e.op == "opt_out", e.push_id};
  } else if (e.type == ev::kPushRequested) {
    if (e.op == "upsert") {
      auto& memo = s->pushed[e.system];
      for (const auto& [f, v] : e.fields) memo[f][v] = recorded_at_us;
      // Forget pushes older than any sensible echo window (a day).
      constexpr int64_t kDayUs = 24LL * 3600 * 1000000;
      for (auto& [f, values] : memo) {
        for (auto it = values.begin(); it != values.end();)
          it = it->second < recorded_at_us - kDayUs ? values.erase(it) : std::next(it);
      }
      for (const auto& [f, v] : e.fields) s->pending[e.system][f] = v;
    }
  } else if (e.type == ev::kOptedOut || e.type == ev::kOptedIn) {
    bool out = e.type == ev::kOptedOut;
    for (const auto& ch : SplitChannels(e.channel)) {
      s->consent[ch] = {out, e.source_time_us};
      s->known_consent[e.system][ch] = {out, e.source_time_us};
    }
  } else if (e.type == ev::kPushDeadLettered) {
    s->pushed.erase(e.system);  // it never arrived: the values may be sent again
    s->pending.erase(e.system);
    if (e.op == "opt_out" || e.op == "opt_in") SettleConsentPush(s, e, nullptr);
  } else if (e.type == ev::kPushSucceeded) {
    if (!e.external_id.empty()) s->links[e.system] = e.external_id;
    if (e.op == "opt_out" || e.op == "opt_in") {
      ContactState::HeldConsent held{e.op == "opt_out", recorded_at_us};
      SettleConsentPush(s, e, &held);
    }
    auto& pending = s->pending[e.system];
    for (const auto& [f, v] : e.fields) {
      s->known[e.system][f] = v;
      auto it = pending.find(f);
      if (it != pending.end() && it->second == v) pending.erase(it);
    }
    if (pending.empty()) s->pending.erase(e.system);
  }
}

}  // namespace dfm
