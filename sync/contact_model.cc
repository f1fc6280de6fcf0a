#include "sync/contact_model.h"

#include <algorithm>

#include "sync/consent.h"
#include "sync/model_internal.h"
#include "util/strings.h"

namespace dfm {

namespace model {

const Attributed* Current(const ContactState& s, const std::string& f) {
  auto it = s.fields.find(f);
  return it == s.fields.end() ? nullptr : &it->second;
}

const std::string* Lookup(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? nullptr : &it->second;
}

DomainEvent Base(std::string_view type, const ContactState& s, const ContactFact& fact) {
  DomainEvent e;
  e.type = std::string(type);
  e.contact_id = s.contact_id;
  e.system = fact.system;
  e.external_id = fact.external_id;
  e.webhook_seq = fact.webhook_seq;
  e.fact_index = fact.fact_index;
  return e;
}

}  // namespace model

using model::Base;
using model::Current;
using model::DecideActivity;
using model::Lookup;
using model::MessagePush;
using model::OptedOut;
using model::ReportStatus;

namespace {

bool HasIdentity(const std::map<std::string, std::string>& f) {
  auto p = Lookup(f, fields::kPhone);
  auto e = Lookup(f, fields::kEmail);
  return (p && !p->empty()) || (e && !e->empty());
}

// push.requested for every target whose known values differ from `merged`
// (or that does not have the contact yet), the fact's own system included
// when one of its values lost.
void RequestPushes(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                   const std::map<std::string, std::string>& merged,
                   const std::map<std::string, std::map<std::string, std::string>>& known,
                   std::vector<DomainEvent>* out) {
  for (const auto& [target, accepted] : ctx.targets) {
    if (ctx.messages_only.count(target)) continue;  // it holds no contacts
    if (!KeyFieldMissing(ctx, target, merged).empty()) continue;
    std::map<std::string, std::string> diff =
        FieldsToPush(s, target, accepted, merged, known, /*ignore_pending=*/false);
    if (diff.empty()) continue;  // it holds (or is being sent) all it accepts
    DomainEvent p = Base(ev::kPushRequested, s, fact);
    p.system = target;
    auto link = s.links.find(target);
    p.external_id = link != s.links.end() ? link->second
                                          : (target == fact.system ? fact.external_id : "");
    p.op = "upsert";
    p.fields = std::move(diff);
    p.push_id = s.contact_id + ":" + target + ":" + FactTag(fact);
    out->push_back(std::move(p));
  }
}

}  // namespace

std::string KeyFieldMissing(const SyncContext& ctx, const std::string& target,
                            const std::map<std::string, std::string>& values) {
  auto key = ctx.key_field.find(target);
  if (key == ctx.key_field.end()) return "";
  const std::string* v = Lookup(values, key->second);
  return v && !v->empty() ? "" : key->second;
}

std::map<std::string, std::string> FieldsToPush(
    const ContactState& s, const std::string& target, const std::set<std::string>& accepted,
    const std::map<std::string, std::string>& values,
    const std::map<std::string, std::map<std::string, std::string>>& known, bool ignore_pending) {
  auto kit = known.find(target);
  auto pit = ignore_pending ? s.pending.end() : s.pending.find(target);  // on their way: held
  std::map<std::string, std::string> diff;
  for (const auto& [f, v] : values) {
    if (!accepted.count(f)) continue;
    // What the target will hold: a value on its way there, else what it
    // holds. (Not what it holds when another value is on its way: that
    // value lands after, and had left a newer one unsent; the simulation
    // found it, tests/sim seed 114.)
    const std::string* k = pit == s.pending.end() ? nullptr : Lookup(pit->second, f);
    if (!k) k = kit == known.end() ? nullptr : Lookup(kit->second, f);
    if (!k || *k != v) diff[f] = v;
  }
  if (diff.empty()) return diff;
  // The vendor matches (and the connector looks up) by phone and email:
  // always send them.
  for (const char* id : {fields::kPhone, fields::kEmail}) {
    auto m = Lookup(values, id);
    if (m && accepted.count(id)) diff[id] = *m;
  }
  return diff;
}

bool IsOptedOut(const ContactState& s, const std::string& channel) {
  auto it = s.consent.find(channel);
  return it != s.consent.end() && it->second.out;
}

const std::set<std::string>* ToldChannels(const ContactState& s, const std::string& system,
                                          const std::string& record) {
  auto sys = s.told.find(system);
  if (sys == s.told.end()) return nullptr;
  auto rec = sys->second.find(record);
  return rec == sys->second.end() ? nullptr : &rec->second;
}

namespace model {

bool OptedOut(const ContactState& s, const std::vector<DomainEvent>& decided,
              const std::string& channel, std::string* why) {
  bool out = IsOptedOut(s, channel);
  if (out && why) *why = channel + " opted out";
  for (const auto& e : decided) {
    if (e.type != ev::kOptedOut && e.type != ev::kOptedIn) continue;
    for (const auto& ch : SplitChannels(e.channel)) {
      if (ch != channel) continue;
      out = e.type == ev::kOptedOut;
      if (out && why) *why = channel + " opted out (" + e.reason + " via " + e.system + ")";
    }
  }
  return out;
}

}  // namespace model

bool ErasedOptOut(const ContactState& s, const SyncContext& ctx, const std::string& channel,
                  std::string* why) {
  if (!ctx.erased_consent) return false;
  auto own = s.consent.find(channel);
  for (const char* f : {fields::kPhone, fields::kEmail}) {
    auto v = s.fields.find(f);
    if (v == s.fields.end() || v->second.value.empty()) continue;
    std::optional<ErasedConsent> c = ctx.erased_consent(v->second.value, channel);
    if (!c || !c->out) continue;
    // The contact's own opt-in after the erasure stands.
    if (own != s.consent.end() && own->second.at_us > c->at_us) continue;
    if (why) *why = channel + " opted out before an erasure (its " + f + "'s earlier owner)";
    return true;
  }
  return false;
}

namespace {

// Tags -> lists: the lists of ctx.lists_target that the tags map to,
// before and after this fact.
void DecideLists(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                 const std::vector<DomainEvent>& decided, std::vector<DomainEvent>* out) {
  if (ctx.tag_lists.empty() || !ctx.targets.count(ctx.lists_target)) return;
  const Attributed* cur = Current(s, fields::kTags);
  std::string before = cur ? cur->value : "", after = before;
  bool changed = false;
  for (const auto& e : decided) {
    if (e.type == ev::kContactCreated) {
      if (auto t = Lookup(e.fields, fields::kTags)) after = *t, changed = true;
    } else if (e.type == ev::kContactChanged) {
      for (const auto& c : e.changes)
        if (c.field == fields::kTags) after = c.new_value, changed = true;
    }
  }
  if (!changed) return;
  auto lists = [&](const std::string& tags) {
    std::set<std::string> l;
    for (const auto& tag : SplitChannels(tags, '\n')) {
      auto it = ctx.tag_lists.find(tag);
      if (it != ctx.tag_lists.end()) l.insert(it->second);
    }
    return l;
  };
  std::set<std::string> was = lists(before), now = lists(after);
  // Never onto a dialer's list while the person is opted out of calls
  // (their own opt-out, as decided so far, or an erased earlier owner's of
  // the number): nothing is added, and a removal (which takes the contact
  // out of every list) writes nothing back.
  const bool no_calls =
      OptedOut(s, decided, channels::kCall, nullptr) || ErasedOptOut(s, ctx, channels::kCall, nullptr);
  if (no_calls) now.clear();
  std::vector<std::string> add, remove;
  for (const auto& l : now)
    if (!was.count(l)) add.push_back(l);
  for (const auto& l : was)
    if (!now.count(l)) remove.push_back(l);
  if (add.empty() && remove.empty()) return;
  DomainEvent p = MessagePush(s, fact, ctx, ctx.lists_target, "lists", "");
  p.message_key.clear();
  p.fields["lists_add"] = JoinChannels(add);
  p.fields["lists_remove"] = JoinChannels(remove);
  p.fields["lists_keep"] = JoinChannels(std::vector<std::string>(now.begin(), now.end()));
  p.push_id = s.contact_id + ":" + ctx.lists_target + ":" + FactTag(fact) + ":lists";
  out->push_back(std::move(p));
}

// A mark_dnc push of `record` in `system`, the contact deleted in
// `deleted_in`; its id is the fact's (FactTag).
DomainEvent MarkDnc(const ContactState& s, const ContactFact& fact, const std::string& system,
                    const std::string& record, const std::string& deleted_in) {
  DomainEvent p = Base(ev::kPushRequested, s, fact);
  p.system = system;
  p.external_id = record;
  p.op = "mark_dnc";
  p.push_id = s.contact_id + ":" + system + ":" + FactTag(fact);
  p.reason = "deleted in " + deleted_in;
  auto ph = Current(s, fields::kPhone);
  if (ph) p.fields[fields::kPhone] = ph->value;
  return p;
}

// A fact deleting the contact: contact.deleted, and every other system
// that holds it told to mark it do-not-contact.
std::vector<DomainEvent> DecideDelete(const ContactState& s, const ContactFact& fact,
                                      const SyncContext& ctx, int64_t t) {
  std::vector<DomainEvent> out;
  if (!s.exists || s.deleted) return out;
  DomainEvent d = Base(ev::kContactDeleted, s, fact);
  d.source_time_us = t;
  out.push_back(d);
  for (const auto& [system, ext] : s.links) {
    if (system == fact.system || !ctx.targets.count(system) || !ctx.marks_dnc.count(system))
      continue;
    out.push_back(MarkDnc(s, fact, system, ext, fact.system));
  }
  return out;
}

// A fact about a contact not known yet: contact.created (or the fact
// rejected without a phone or an email), and pushes to the other systems.
std::vector<DomainEvent> DecideNewContact(const ContactState& s, const ContactFact& fact,
                                          const SyncContext& ctx, int64_t t) {
  std::vector<DomainEvent> out;
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

// What a fact's fields do to an existing contact's, field by field.
struct FieldMerge {
  std::map<std::string, std::string> echoed;  // our own pushes coming back
  std::set<std::string> stale;  // fields the system itself has since changed again
  std::vector<FieldChange> changes;
  // Fields whose merged value this system set and now states again, later:
  // the value stands as of this time (ApplyContactEvent moves it on), so an
  // older edit of the system's arriving after it cannot replace it. Found
  // by the simulation (tests/sim, seed 93): Gus at 4, Gus at 9, then a late
  // Flo at 8 had ended as Flo.
  bool restated = false;
  std::vector<DomainEvent> conflicts;
  std::map<std::string, std::string> merged;  // the contact's fields after the changes
};

FieldMerge MergeFields(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                       int64_t t) {
  const ContactState::PushMemo* memo = nullptr;
  if (auto it = s.pushed.find(fact.system); it != s.pushed.end()) memo = &it->second;
  static const std::map<std::string, std::string> kEmpty;
  auto kit = s.known.find(fact.system);
  const auto& known_s = kit == s.known.end() ? kEmpty : kit->second;

  FieldMerge r;
  for (const auto& [f, a] : s.fields) r.merged[f] = a.value;

  for (const auto& [f, v] : fact.fields) {
    if (const Attributed* m = Current(s, f);
        m && m->value == v && m->system == fact.system && t > m->source_time_us)
      r.restated = true;
    const std::string* k = Lookup(known_s, f);
    if (k && *k == v) continue;  // the system did not change it
    if (memo) {
      auto fit = memo->find(f);
      if (fit != memo->end()) {
        auto vit = fit->second.find(v);
        if (vit != fit->second.end() && ctx.now_us - vit->second <= ctx.policy.echo_window_us) {
          r.echoed[f] = v;
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
    const std::string& field = f;  // a lambda may not capture a structured binding (C++17)
    auto conflict = [&](const Attributed& kept, const Attributed& lost, const char* rule) {
      DomainEvent c = Base(ev::kConflictRecorded, s, fact);
      c.field = field;
      c.kept = kept;
      c.lost = lost;
      c.rule = rule;
      r.conflicts.push_back(std::move(c));
    };
    if (owner && *owner != fact.system && cur && cur->system == *owner) {
      conflict(*cur, incoming, "owner");
      continue;
    }
    if (cur && cur->system == fact.system && cur->source_time_us > t) {
      // The system's own older edit arriving late (webhooks out of order),
      // owner or not: its newer value stands.
      conflict(*cur, incoming, "newer");
      r.stale.insert(f);
      continue;
    }
    // What the enrichment filled in (empty fields only, stamped when its
    // answer was decided) gives way to a value a system of the person's
    // says, whenever it was said: a staff edit made before the answer but
    // delivered after it stands.
    const bool over_fill = cur && !ctx.enrichment.empty() && cur->system == ctx.enrichment &&
                           fact.system != ctx.enrichment && !v.empty();
    if (owner && *owner == fact.system) {
      if (cur && cur->system != fact.system && cur->source_time_us > t) {
        conflict(incoming, *cur, "owner");
      }
    } else if (cur && cur->source_time_us > t && !over_fill) {
      conflict(*cur, incoming, "newer");
      if (cur->system == fact.system) r.stale.insert(f);
      continue;
    }
    r.changes.push_back({f, cur ? cur->value : std::string(), v});
    r.merged[f] = v;
  }
  return r;
}

// The contact part of a fact (contact_model.h, the rules): a deletion, a
// new contact, or an existing one merged field by field.
std::vector<DomainEvent> DecideContact(const ContactState& s, const ContactFact& fact,
                                       const SyncContext& ctx, int64_t t) {
  if (fact.kind == ContactFact::Kind::kDelete) return DecideDelete(s, fact, ctx, t);
  if (!s.exists) return DecideNewContact(s, fact, ctx, t);
  // A change from before the deletion, delivered late, is history: it
  // neither revives the contact nor pushes its fields (its consents and
  // activities are still decided).
  if (s.deleted && t <= s.deleted_at_us) return {};
  bool new_link = false;
  if (!fact.external_id.empty()) {
    auto it = s.links.find(fact.system);
    new_link = it == s.links.end() || it->second != fact.external_id;
  }
  FieldMerge merge = MergeFields(s, fact, ctx, t);
  std::vector<DomainEvent> out;
  if (!HasIdentity(merge.merged)) {
    DomainEvent r = Base(ev::kFactRejected, s, fact);
    r.reason = "the change would leave the contact without a phone or an email";
    out.push_back(std::move(r));
    return out;
  }
  if (new_link) {
    DomainEvent l = Base(ev::kContactLinked, s, fact);
    l.via = fact.imported ? "import" : "webhook";
    l.fields = fact.fields;
    out.push_back(std::move(l));
  }
  if (!merge.changes.empty() || (merge.restated && merge.echoed.empty())) {
    DomainEvent c = Base(ev::kContactChanged, s, fact);
    c.source_time_us = t;
    c.changes = merge.changes;
    c.fields = fact.fields;  // what the system holds now
    out.push_back(std::move(c));
  } else if (!merge.echoed.empty() && merge.conflicts.empty()) {
    DomainEvent e = Base(ev::kEchoSuppressed, s, fact);
    e.fields = merge.echoed;
    out.push_back(std::move(e));
  }
  for (auto& c : merge.conflicts) out.push_back(std::move(c));

  if (!merge.changes.empty() || !merge.conflicts.empty() || new_link) {
    auto known = s.known;
    for (const auto& [f, v] : fact.fields)
      if (!merge.stale.count(f)) known[fact.system][f] = v;
    RequestPushes(s, fact, ctx, merge.merged, known, &out);
  }
  // A record a push of ours made, its echo first (a push there on its way,
  // or the fact's values ours): marked as a deleted contact's. Not a record
  // staff made with the contact's values while nothing of ours was on its
  // way (the echo window may be long past, or a value in conflict).
  const bool ours = s.pending.count(fact.system) || !merge.echoed.empty();
  if (new_link && ours) model::MarkRecordAfterDeletion(s, fact, fact.external_id, "", ctx, &out);
  return out;
}

}  // namespace

std::optional<DomainEvent> WithdrawnAtStart(const DomainEvent& request, const SyncContext& ctx) {
  if (request.op != "mark_dnc" || !ctx.targets.count(request.system) ||
      !ctx.takes_no_marks.count(request.system))
    return std::nullopt;
  DomainEvent dead;
  dead.type = std::string(ev::kPushDeadLettered);
  dead.contact_id = request.contact_id;
  dead.system = request.system;
  dead.push_id = request.push_id;
  dead.op = request.op;
  dead.channel = request.channel;
  dead.outcome = std::string(kWithdrawnOutcome);
  dead.reason = request.system + " takes no do-not-contact marks: not asked again";
  return dead;
}

namespace model {

void MarkRecordAfterDeletion(const ContactState& s, const ContactFact& fact,
                             const std::string& record, const std::string& answered,
                             const SyncContext& ctx, std::vector<DomainEvent>* out) {
  if (!s.deleted || record.empty() || !ctx.targets.count(fact.system) ||
      !ctx.marks_dnc.count(fact.system))
    return;
  if (fact.system == s.deleted_in && record == s.deleted_record) return;  // gone there
  for (const DomainEvent& e : *out)
    if (e.type == ev::kContactCreated || e.type == ev::kContactChanged) return;  // back
  if (ctx.record_holder) {  // a record two people share is another's too
    const std::string holder = ctx.record_holder(fact.system, record);
    if (!holder.empty() && holder != s.contact_id) return;
  }
  DomainEvent p = MarkDnc(s, fact, fact.system, record, s.deleted_in);
  p.push_id.append(":mark_dnc").append(kNewRecordTag);
  if (!answered.empty()) p.push_id.append(":").append(answered);
  out->push_back(std::move(p));
}

void MarkRecordMadeAfterDeletion(const ContactState& s, const DomainEvent& ok,
                                 const SyncContext& ctx, std::vector<DomainEvent>* out) {
  ContactFact made;  // no webhook: its tag is "0"
  made.system = ok.system;
  made.external_id = RecordMadeBy(s, ok, *out);
  MarkRecordAfterDeletion(s, made, made.external_id, ok.push_id, ctx, out);
}

}  // namespace model

std::vector<DomainEvent> Decide(const ContactState& s, const ContactFact& fact,
                                const SyncContext& ctx) {
  if (fact.webhook_seq != 0 && (fact.webhook_seq < s.last_fact_seq ||
                                (fact.webhook_seq == s.last_fact_seq &&
                                 fact.fact_index <= s.last_fact_index)))
    return {};  // decided
  const int64_t t = fact.source_time_us ? fact.source_time_us
                                        : (fact.recorded_at_us ? fact.recorded_at_us : ctx.now_us);
  // A stranger's opt-in or flagged text is no reason to create a contact.
  bool consent_only = !s.exists && fact.kind == ContactFact::Kind::kUpsert &&
                      !fact.consents.empty() && fact.external_id.empty();
  for (const auto& [f, v] : fact.fields)
    if (f != fields::kPhone && f != fields::kEmail) consent_only = false;
  for (const Consent& c : fact.consents)
    if (c.change == Consent::Change::kOptOut) consent_only = false;
  // A stranger's delivery status is no reason either; a text or call is.
  bool status_only = !fact.activities.empty();
  for (const Activity& a : fact.activities)
    if (a.kind != Activity::Kind::kStatus) status_only = false;
  if (!s.exists && fact.kind == ContactFact::Kind::kUpsert && fact.external_id.empty() &&
      status_only) {
    bool only_ids = true;
    for (const auto& [f, v] : fact.fields)
      if (f != fields::kPhone && f != fields::kEmail) only_ids = false;
    if (only_ids && (fact.consents.empty() || consent_only)) consent_only = true;
  }
  if (fact.consents_only) consent_only = true;  // an identity conflict's opt-outs
  std::vector<DomainEvent> out;
  if (!consent_only) out = DecideContact(s, fact, ctx, t);
  if (fact.kind != ContactFact::Kind::kUpsert) return out;
  for (const auto& e : out)
    if (e.type == ev::kFactRejected) return out;
  for (const Consent& c : fact.consents) {
    model::DecideConsent(s, fact, c, ctx, t, &out);
    model::DecideClassifierRequest(s, fact, c, ctx, t, &out);
  }
  model::MergeConsentPushes(&out, 0);
  model::KeepOneFlagAsItEnds(s, ctx, &out);
  model::PushToNewRecord(s, fact, ctx, &out);
  DecideLists(s, fact, ctx, out, &out);  // after the fact's own opt-outs: it reads them
  if (s.exists || !consent_only)
    for (const Activity& a : fact.activities) DecideActivity(s, fact, a, ctx, t, &out);
  if (!consent_only) model::DecideEnrichmentRequest(s, fact, ctx, out, &out);
  return out;
}

std::vector<DomainEvent> DecideReport(const ContactState& s, const std::vector<DomainEvent>& report,
                                      const SyncContext& ctx) {
  std::vector<DomainEvent> out;
  for (const auto& e : report) {
    if (e.type == ev::kPushSucceeded && e.op == "enrich") model::DecideEnriched(s, e, ctx, &out);
    if (e.type == ev::kPushSucceeded && e.op == "classify") model::DecideClassified(s, e, ctx, &out);
    if (e.type == ev::kPushSucceeded && (e.op == "opt_out" || e.op == "opt_in"))
      model::DecideReadAfterConsentPush(s, e, ctx, &out);
    if (e.type == ev::kPushSucceeded && e.op == "read_consent") model::DecideReadBack(s, e, ctx, &out);
    if (e.type == ev::kPushSucceeded && e.op == "upsert") {
      model::PushToRecordMade(s, e, ctx, &out);
      model::MarkRecordMadeAfterDeletion(s, e, ctx, &out);
    }
    if (e.type == ev::kPushSucceeded && e.fields.count("answer.contact_id")) {
      model::DecideFoundAnew(s, e, ctx, &out);
      if (e.op != "upsert") {  // the record it linked
        model::PushToRecordMade(s, e, ctx, &out);
        model::MarkRecordMadeAfterDeletion(s, e, ctx, &out);
      }
    }
    if (e.type != ev::kPushDeadLettered || e.op != "send" || e.message_key.empty()) continue;
    if (e.outcome == kRecipientOptedOut)
      model::DecideCarrierOptOut(s, e, ctx, ctx.now_us, &out);
    // Each death is told once: the first send's report ends in ":dead",
    // a re-driven send's in ":dead:replay<seq>:<item>" (its own push id's
    // tail), so a text that dies again after a re-drive is reported again
    // rather than taken for the first report and deduplicated.
    std::string suffix = "dead";
    size_t redrive = e.push_id.find(":replay");
    if (redrive != std::string::npos) suffix += e.push_id.substr(redrive);
    for (auto& p : ReportTextNotSent(s, e.message_key, e.system + " did not send it: " + e.reason,
                                     0, suffix, ctx))
      out.push_back(std::move(p));
  }
  return out;
}

std::vector<DomainEvent> ReportTextNotSent(const ContactState& s, const std::string& message_key,
                                           const std::string& reason, uint64_t seq,
                                           const std::string& suffix, const SyncContext& ctx) {
  std::vector<DomainEvent> out;
  auto m = s.messages.find(message_key);
  if (m == s.messages.end() || m->second.origin != ctx.conversations) return out;
  auto asked = m->second.ids.find(ctx.conversations);
  if (asked == m->second.ids.end()) return out;
  ContactFact none;
  none.webhook_seq = seq;
  ReportStatus(s, none, ctx, message_key, asked->second, "failed", reason, &out);
  for (auto& p : out) p.push_id += ":" + suffix;
  return out;
}

}  // namespace dfm
