#include "sync/contact_model.h"

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

std::vector<DomainEvent> Decide(const ContactState& s, const ContactFact& fact,
                                const SyncContext& ctx) {
  std::vector<DomainEvent> out;
  if (fact.webhook_seq != 0 && fact.webhook_seq <= s.last_fact_seq) return out;  // decided
  const int64_t t = fact.source_time_us ? fact.source_time_us
                                        : (fact.recorded_at_us ? fact.recorded_at_us : ctx.now_us);

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

void Apply(ContactState* s, const DomainEvent& e, uint64_t seq, int64_t recorded_at_us) {
  if (seq != 0 && seq <= s->last_event_seq) return;
  if (seq != 0) s->last_event_seq = seq;
  if (e.webhook_seq > s->last_fact_seq &&
      (e.type == ev::kContactCreated || e.type == ev::kContactChanged ||
       e.type == ev::kContactLinked || e.type == ev::kContactDeleted ||
       e.type == ev::kConflictRecorded || e.type == ev::kEchoSuppressed ||
       e.type == ev::kPushRequested || e.type == ev::kFactRejected)) {
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
  } else if (e.type == ev::kPushDeadLettered) {
    s->pushed.erase(e.system);  // it never arrived: the values may be sent again
    s->pending.erase(e.system);
  } else if (e.type == ev::kPushSucceeded) {
    if (!e.external_id.empty()) s->links[e.system] = e.external_id;
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
