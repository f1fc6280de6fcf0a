// The consent family of the merge rules (sync/contact_model.h; the rules in
// words: docs/sync-rules.md, "Opt-outs" and "Who may undo an opt-out").
//
// Precedence: an opt-out from anyone applies. An opt-out made by the person
// or by the carrier (or by staff where SyncContext::staff_opt_outs_hold)
// *holds* its channel: only the person's own opt-in on that channel undoes
// it. A staff or system opt-in over a held opt-out is refused: recorded as
// consent.conflict and pushed back (an opt_out push to the system that
// tried). A bare YES is an opt-in only as the reply to an outbound text sent
// after the opt-out, within SyncContext::reply_window_us. A system that holds
// an opt-out as permanent is never sent an opt-in for it.
#include <algorithm>

#include "sync/consent.h"
#include "sync/model_internal.h"

namespace dfm::model {

namespace {

constexpr char kHeld[] = "held";  // contact.opted_out rule: the opt-out holds
// contact.opted_out detail: an identity conflict's opt-out (ConflictOptOuts,
// sync/identity.h), another record's that the contact's address names: no
// statement of what the system holds for the contact's own record there.
constexpr char kByConflict[] = "identity conflict";

bool Holds(Consent::Actor actor, const SyncContext& ctx) {
  return actor != Consent::Actor::kStaff || ctx.staff_opt_outs_hold;
}

ContactState::HeldConsent KnownConsent(const ContactState& s, const std::string& system,
                                       const std::string& channel) {
  auto k = s.known_consent.find(system);
  if (k == s.known_consent.end()) return {};
  auto kc = k->second.find(channel);
  return kc == k->second.end() ? ContactState::HeldConsent{} : kc->second;
}

// Whether an opt-in at `t` answers a confirmation: a text went out on the
// channel after its opt-out, and at most ctx.reply_window_us before `t`.
bool RepliesToConfirmation(const ContactState& s, const std::string& channel, int64_t t,
                           const SyncContext& ctx) {
  auto sent = s.last_outbound_us.find(channel);
  if (sent == s.last_outbound_us.end()) return false;
  auto cur = s.consent.find(channel);
  int64_t since = cur == s.consent.end() ? 0 : cur->second.at_us;
  return sent->second >= since && sent->second <= t && t - sent->second <= ctx.reply_window_us;
}

// Whom a statement concerns: the fact's phone/email, else the contact's.
std::map<std::string, std::string> Whom(const ContactState& s, const ContactFact& fact) {
  std::map<std::string, std::string> who;
  for (const char* f : {fields::kPhone, fields::kEmail}) {
    auto v = Lookup(fact.fields, f);
    if (v && !v->empty()) {
      who[f] = *v;
    } else if (auto cur = Current(s, f); cur && !cur->value.empty()) {
      who[f] = cur->value;
    }
  }
  return who;
}

// The channels of `chans` that `target` keeps (SyncContext::channels; a
// target not listed keeps all).
std::vector<std::string> KeptBy(const SyncContext& ctx, const std::string& target,
                                const std::vector<std::string>& chans) {
  auto group = ctx.channels.find(target);
  if (group == ctx.channels.end()) return chans;
  std::vector<std::string> kept;
  for (const auto& c : chans)
    if (group->second.count(c)) kept.push_back(c);
  return kept;
}

// The channels `target` keeps as one flag (SyncContext::one_flag), or null.
const std::set<std::string>* OneFlag(const SyncContext& ctx, const std::string& target) {
  auto group = ctx.channels.find(target);
  return ctx.one_flag.count(target) && group != ctx.channels.end() ? &group->second : nullptr;
}

// What a push to `target` of `chans` (going `opt_out`) names: the channels
// it keeps; for a one-flag target its whole group when the flag changes
// (each channel's state once the statement applies), else none.
std::vector<std::string> ToTell(const ContactState& s, const SyncContext& ctx,
                                const std::string& target, const std::vector<std::string>& chans,
                                bool opt_out) {
  std::vector<std::string> kept = KeptBy(ctx, target, chans);
  const std::set<std::string>* group = OneFlag(ctx, target);
  if (kept.empty() || !group) return kept;
  bool before = false, after = false;
  for (const auto& ch : *group) {
    before = before || IsOptedOut(s, ch);
    bool now = std::find(chans.begin(), chans.end(), ch) != chans.end() ? opt_out
                                                                       : IsOptedOut(s, ch);
    after = after || now;
  }
  if (before == after) return {};  // the flag stays as it is
  return {group->begin(), group->end()};
}

DomainEvent ConsentPush(const ContactState& s, const ContactFact& fact, const std::string& target,
                        bool opt_out, const std::vector<std::string>& chans,
                        const std::string& reason, const std::map<std::string, std::string>& who,
                        const std::set<std::string>& accepted) {
  DomainEvent p = Base(ev::kPushRequested, s, fact);
  p.system = target;
  auto link = s.links.find(target);
  p.external_id =
      link != s.links.end() ? link->second : (target == fact.system ? fact.external_id : "");
  p.op = opt_out ? "opt_out" : "opt_in";
  p.channel = JoinChannels(chans);
  p.reason = reason;
  p.priority = 10;
  for (const auto& [f, v] : who)
    if (accepted.count(f)) p.fields[f] = v;
  p.push_id = s.contact_id + ":" + target + ":" + FactTag(fact) + ":" + p.op;
  return p;
}

// Tells every target but the fact's own system of `changed`.
void PushToOthers(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                  bool opt_out, const std::vector<std::string>& changed, const std::string& reason,
                  const std::map<std::string, std::string>& who, std::vector<DomainEvent>* out) {
  for (const auto& [target, accepted] : ctx.targets) {
    // It said so itself (PushToOwn: where a push of the engine's there
    // would undo it; PushToDuplicatesSystem: an identity conflict's).
    if (target == fact.system) continue;
    std::vector<std::string> chans;
    for (const auto& ch : changed)  // a permanent opt-out there is never lifted
      if (opt_out || !KnownConsent(s, target, ch).permanent) chans.push_back(ch);
    std::vector<std::string> kept = ToTell(s, ctx, target, chans, opt_out);
    if (kept.empty()) continue;
    out->push_back(ConsentPush(s, fact, target, opt_out, kept, reason, who, accepted));
  }
}

// A statement's own system, which PushToOthers skips (it set the channel
// itself), is told too where the engine's push there would undo it:
// - the person's own opt-in (START texted to a GoHighLevel location's
//   number, which lifts its DND itself) over an opt-out the engine set
//   there: its push on its way, or confirmed after the channel's opt-out
//   (a staff lift set again, the lift's webhook come before the text; an
//   opt-out stated elsewhere). Else that system would keep the person out.
//   The confirmation's time is the engine's clock, the opt-out's the
//   source's: a source clock ahead by more than the push took leaves the
//   system out (as before: safe);
// - an opt-out over an opt-in of the engine's on its way there (a START,
//   then a STOP to the same number): the opt-out is pushed after it, so
//   that it lands last (a contact's consent pushes keep their order).
void PushToOwn(const ContactState& s, const ContactFact& fact, const SyncContext& ctx, bool opt_out,
               const std::vector<std::string>& changed, const std::string& reason,
               const std::map<std::string, std::string>& who, std::vector<DomainEvent>* out) {
  auto target = ctx.targets.find(fact.system);
  if (target == ctx.targets.end()) return;
  auto pend = s.pending_consent.find(fact.system);
  std::vector<std::string> ours;
  for (const auto& ch : changed) {
    const ContactState::HeldConsent known = KnownConsent(s, fact.system, ch);
    if (!opt_out && known.permanent) continue;  // never lifted by the engine
    const ContactState::PendingConsent* p = nullptr;
    if (pend != s.pending_consent.end()) {
      auto it = pend->second.find(ch);
      if (it != pend->second.end()) p = &it->second;
    }
    if (opt_out) {
      if (p && !p->out) ours.push_back(ch);
      continue;
    }
    auto cur = s.consent.find(ch);
    const int64_t since = cur == s.consent.end() ? 0 : cur->second.at_us;
    if ((p && p->out) || (known.out && known.at_us > since)) ours.push_back(ch);
  }
  std::vector<std::string> kept = ToTell(s, ctx, fact.system, ours, opt_out);
  if (kept.empty()) return;
  DomainEvent p =
      ConsentPush(s, fact, fact.system, opt_out, kept,
                  reason + (opt_out ? " (after the engine's opt-in there, on its way)"
                                    : " (the engine's opt-out there, set or on its way)"),
                  who, target->second);
  p.push_id += ":own";
  out->push_back(std::move(p));
}

// An identity conflict's opt-out (fact.consents_only: another record's,
// whose address names the contact) told to that record's own system too,
// which PushToOthers skips: the contact's own record there, and every
// record the address names (GoHighLevel's and HaloPSA's consent pushes set
// each record it finds; Aloware's and Verity's are keyed by the phone), or
// that system could go on texting the person. Its answer links nothing
// (LinksNoRecord): the duplicate stays a conflict until settled.
void PushToDuplicatesSystem(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                            const std::vector<std::string>& changed, const std::string& reason,
                            const std::map<std::string, std::string>& who,
                            std::vector<DomainEvent>* out) {
  auto target = ctx.targets.find(fact.system);
  if (target == ctx.targets.end()) return;
  std::vector<std::string> kept = ToTell(s, ctx, fact.system, changed, /*opt_out=*/true);
  if (kept.empty()) return;
  DomainEvent p = ConsentPush(s, fact, fact.system, /*opt_out=*/true, kept,
                              reason + " (another record's there: every record of the address)",
                              who, target->second);
  p.push_id += kLinksNoRecordTag;
  out->push_back(std::move(p));
}

// A repeated opt-out (the channel is out already): every target but the
// fact's own system that has not confirmed it (known_consent: a 2xx on its
// opt-out push, or its own webhook showing it) is told again (issue 46: a
// STOP after a push a system refused), unless an opt-out of it is on its
// way and not refused; the new push replaces an open refused one at once
// (actors/connector_actor.h), so it names the refused one's channels too.
void PushToUnconfirmed(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                       const std::vector<std::string>& chans, const std::string& reason,
                       const std::map<std::string, std::string>& who, std::vector<DomainEvent>* out) {
  for (const auto& [target, accepted] : ctx.targets) {
    if (target == fact.system) continue;
    std::vector<std::string> unconfirmed, asked = KeptBy(ctx, target, chans);
    auto pend = s.pending_consent.find(target);
    if (pend != s.pending_consent.end())
      for (const auto& [ch, p] : pend->second)
        if (p.out && p.refused && IsOptedOut(s, ch) &&
            std::find(asked.begin(), asked.end(), ch) == asked.end())
          asked.push_back(ch);
    for (const auto& ch : asked) {
      if (KnownConsent(s, target, ch).out) continue;  // confirmed
      if (pend != s.pending_consent.end()) {
        auto p = pend->second.find(ch);
        if (p != pend->second.end() && p->second.out && !p->second.refused) continue;  // on its way
      }
      unconfirmed.push_back(ch);
    }
    if (unconfirmed.empty()) continue;
    if (const auto* group = OneFlag(ctx, target)) unconfirmed.assign(group->begin(), group->end());
    out->push_back(ConsentPush(s, fact, target, /*opt_out=*/true, unconfirmed,
                               reason + " (again: not confirmed by " + target + ")", who, accepted));
  }
}

// What a statement does to each of its channels (DecideConsent).
// changed: the channel's state changes. marked: it stays out, and this
// opt-out records a holder or a permanent mark it lacked (or the system's
// own record newly shows it); or it stays in, and this is the person's own
// opt-in, recorded so that a late opt-out older than it does not override
// it. refused: a staff or system opt-in over a held
// opt-out. unanswered: a bare YES that answers no confirmation. repeated:
// an opt-out of a channel out already. read_back: a lift inside the skew
// allowance of a system that reads back. known_only: a system's own record
// newly showing a channel in that the engine holds in too (a one-flag
// system cleared over a channel only its flag held out): recorded as what
// the system holds, no statement of the person's.
struct Sorted {
  std::vector<std::string> changed, marked, refused, unanswered, repeated, read_back, known_only;
  std::string held_by;
  // An opt-out that holds, older than the opt-in it overrides on a channel
  // (delivered late): the newest such opt-in's time, else 0.
  int64_t late_at_us = 0;
};

// The person's own explicit opt-in (START, UNSTOP, a provider's report of
// one; not a bare YES): recorded even where the channel is in already
// (since an opt-out: one never opted out has nothing to keep), so that a
// late opt-out older than it does not override it.
bool PersonsOwnOptIn(const Consent& c) {
  return c.change == Consent::Change::kOptIn && c.actor == Consent::Actor::kPerson &&
         !c.needs_reply && !c.snapshot;
}

Sorted SortChannels(const ContactState& s, const ContactFact& fact, const Consent& c,
                    const SyncContext& ctx, int64_t t, bool holds) {
  const bool opt_out = c.change == Consent::Change::kOptOut;
  Sorted r;
  auto& [changed, marked, refused, unanswered, repeated, read_back, known_only, held_by,
         late_at_us] = r;
  for (const auto& ch : c.channels) {
    const ContactState::HeldConsent known = KnownConsent(s, fact.system, ch);
    const bool new_mark = opt_out && c.permanent && !known.permanent;
    if (c.snapshot) {
      auto pend = s.pending_consent.find(fact.system);
      if (pend != s.pending_consent.end() && pend->second.count(ch)) continue;  // ours on its way
      if (known.out == opt_out) {  // the system's setting did not change
        if (new_mark) marked.push_back(ch);
        continue;
      }
      if (t <= known.at_us + (opt_out ? 0 : kSnapshotSkewUs)) {  // written before...
        // ...or a lift right after it: read what the system holds now.
        if (!opt_out && known.out && IsOptedOut(s, ch) && ctx.reads_consent.count(fact.system))
          read_back.push_back(ch);
        continue;
      }
    }
    auto it = s.consent.find(ch);
    if (it == s.consent.end()) {
      // Never opted out: an opt-in changes nothing but what a snapshot's
      // system holds (its next setting then reads as the change it is).
      if (opt_out) {
        changed.push_back(ch);
      } else if (c.snapshot) {
        known_only.push_back(ch);
      }
      continue;
    }
    const ContactState::ChannelConsent& cur = it->second;
    if (!opt_out && !cur.out && c.snapshot) {  // in, held out there until now
      known_only.push_back(ch);
      continue;
    }
    if (cur.out == opt_out) {
      // A system's own record newly showing an opt-out the engine holds is
      // recorded too: it confirms it there (PushToUnconfirmed).
      if (opt_out && ((holds && !cur.held) || new_mark || c.snapshot)) marked.push_back(ch);
      if (opt_out && !c.snapshot) repeated.push_back(ch);
      if (PersonsOwnOptIn(c) && t > cur.person_in_us) marked.push_back(ch);
      continue;
    }
    // Older, unless it is an opt-out that holds and the channel is in by
    // another's lift with no opt-in of the person's since it: had it come
    // in time, that lift would have been refused.
    if (!ConsentSupersedes(opt_out, t, cur.out, cur.at_us)) {
      if (!(holds && !cur.out && t > cur.person_in_us)) continue;
      late_at_us = std::max(late_at_us, cur.at_us);
    }
    if (!opt_out && cur.held && c.actor != Consent::Actor::kPerson) {
      refused.push_back(ch);
      held_by = cur.held_by;
      continue;
    }
    if (!opt_out && c.needs_reply && !RepliesToConfirmation(s, ch, t, ctx)) {
      unanswered.push_back(ch);
      continue;
    }
    changed.push_back(ch);
  }
  return r;
}

}  // namespace

void DecideConsent(const ContactState& s, const ContactFact& fact, const Consent& c,
                   const SyncContext& ctx, int64_t t, std::vector<DomainEvent>* out) {
  const std::map<std::string, std::string> who = Whom(s, fact);
  auto base = [&](std::string_view type, const std::vector<std::string>& chans) {
    DomainEvent e = Base(type, s, fact);
    e.source_time_us = t;
    e.reason = c.reason;
    e.fields = who;
    e.channel = JoinChannels(chans);
    if (!c.message_id.empty()) e.external_id = c.message_id;
    return e;
  };
  if (c.change == Consent::Change::kReview) {
    out->push_back(base(ev::kOptOutFlagged, c.channels));
    return;
  }
  const bool opt_out = c.change == Consent::Change::kOptOut;
  const bool holds = opt_out && Holds(c.actor, ctx);
  const Sorted sorted = SortChannels(s, fact, c, ctx, t, holds);
  const auto& [changed, marked, refused, unanswered, repeated, read_back, known_only, held_by,
               late_at_us] = sorted;
  auto statement = [&](const std::vector<std::string>& chans) {
    DomainEvent e = base(opt_out ? ev::kOptedOut : ev::kOptedIn, chans);
    e.actor = ActorName(c.actor);
    if (holds) e.rule = kHeld;
    if (opt_out && c.permanent) e.detail = "permanent";
    if (fact.consents_only) e.detail = kByConflict;
    return e;
  };
  if (!changed.empty()) {
    DomainEvent e = statement(changed);
    if (late_at_us > t) {
      // Dated at the opt-in it overrides, so that every fold of the log
      // (the opt-out registry, erasures, the status page), which orders
      // statements by time, sees it win there; the webhook keeps its own.
      e.source_time_us = late_at_us;
      e.reason += " (delivered after a newer opt-in it overrides; dated at that opt-in)";
    }
    out->push_back(e);
    if (opt_out) RefusePendingSends(s, fact, ctx, changed, e, out);
    PushToOthers(s, fact, ctx, opt_out, changed, c.reason, who, out);
    if (fact.consents_only) {
      PushToDuplicatesSystem(s, fact, ctx, changed, c.reason, who, out);
    } else if (opt_out || PersonsOwnOptIn(c)) {
      PushToOwn(s, fact, ctx, opt_out, changed, c.reason, who, out);
    }
  }
  if (!marked.empty()) {  // everyone holds it already
    DomainEvent e = statement(marked);
    if (!opt_out) e.reason += " (the channel was in already: recorded)";
    out->push_back(std::move(e));
  }
  if (!repeated.empty()) PushToUnconfirmed(s, fact, ctx, repeated, c.reason, who, out);
  if (!read_back.empty()) {
    DomainEvent p = ReadBackPush(s, fact.system, read_back,
                                 s.contact_id + ":" + fact.system + ":" + FactTag(fact) + ":read",
                                 "a lift within the clock-skew allowance of our opt-out", ctx);
    p.webhook_seq = fact.webhook_seq;
    p.fact_index = fact.fact_index;
    if (p.external_id.empty()) p.external_id = fact.external_id;
    out->push_back(std::move(p));
  }
  if (!refused.empty()) {
    DomainEvent conflict = base(ev::kConsentConflict, refused);
    conflict.actor = ActorName(c.actor);
    if (conflict.external_id.empty()) conflict.external_id = fact.external_id;
    conflict.detail = "opted out by " + (held_by.empty() ? std::string("the person") : held_by) +
                      "; only the person's own opt-in undoes it";
    out->push_back(conflict);
    // Set it again where it was lifted.
    auto target = ctx.targets.find(fact.system);
    if (target != ctx.targets.end()) {
      // One flag (Aloware's is_dnc) is set again whole.
      std::vector<std::string> chans = KeptBy(ctx, fact.system, refused);
      if (const auto* group = OneFlag(ctx, fact.system); group && !chans.empty())
        chans.assign(group->begin(), group->end());
      if (!chans.empty()) {
        DomainEvent p = ConsentPush(s, fact, fact.system, /*opt_out=*/true, chans,
                                    "consent held: " + conflict.detail, who, target->second);
        p.push_id += ":held";
        out->push_back(std::move(p));
      }
    }
  }
  if (!known_only.empty()) out->push_back(base(ev::kConsentKnown, known_only));
  if (!unanswered.empty()) {
    DomainEvent f = base(ev::kOptOutFlagged, unanswered);
    f.reason = c.reason + ", not a reply to a confirmation: the opt-out holds";
    out->push_back(std::move(f));
  }
}

void DecideCarrierOptOut(const ContactState& s, const DomainEvent& dead, const SyncContext& ctx,
                         int64_t t, std::vector<DomainEvent>* out) {
  ContactFact f;  // the provider's statement, made by its refusal
  f.system = dead.system;
  f.kind = ContactFact::Kind::kUpsert;
  Consent c;
  c.change = Consent::Change::kOptOut;
  c.actor = Consent::Actor::kCarrier;
  std::string channel = dead.channel;
  if (auto m = s.messages.find(dead.message_key); channel.empty() && m != s.messages.end())
    channel = m->second.channel;
  c.channels = {channel.empty() ? std::string(channels::kSms) : channel};
  c.reason = "recipient opted out at " + dead.system;
  // A second refusal decides again whatever the first's did not settle.
  DecideReportedConsent(s, f, c, ctx, t, "refused", dead.push_id, out);
}

void DecideReportedConsent(const ContactState& s, const ContactFact& fact, const Consent& c,
                           const SyncContext& ctx, int64_t t, std::string_view how,
                           const std::string& report_push_id, std::vector<DomainEvent>* out) {
  const size_t first = out->size();
  DecideConsent(s, fact, c, ctx, t, out);
  for (size_t i = first; i < out->size(); ++i)
    if (!(*out)[i].push_id.empty() && (*out)[i].type == ev::kPushRequested)
      (*out)[i].push_id.append(":").append(how).append(":").append(report_push_id);
}

void ApplyConsentStatement(ContactState* s, const DomainEvent& e) {
  for (const auto& ch : SplitChannels(e.channel)) {
    // The system lifted it (refused, or over a channel that was not out):
    // it holds the channel in.
    if (e.type == ev::kConsentConflict || e.type == ev::kConsentKnown) {
      s->known_consent[e.system][ch] = {false, e.source_time_us, false};
      continue;
    }
    const bool out = e.type == ev::kOptedOut;
    ContactState::ChannelConsent& c = s->consent[ch];
    if (out) {
      // Events written before actors were recorded hold (read as the person's).
      const bool holds = e.rule == kHeld || e.actor.empty();
      if (holds && !(c.out && c.held)) c.held_by = e.reason + " via " + e.system;
      c.held = (c.out && c.held) || holds;
      c.at_us = c.out ? std::max(c.at_us, e.source_time_us) : e.source_time_us;
    } else {
      c.held = false;
      c.held_by.clear();
      c.at_us = c.out ? e.source_time_us : std::max(c.at_us, e.source_time_us);
      // Events written before actors were recorded: read as the person's.
      if (e.actor.empty() || e.actor == ActorName(Consent::Actor::kPerson))
        c.person_in_us = std::max(c.person_in_us, e.source_time_us);
    }
    c.out = out;
    if (e.detail == kByConflict) continue;  // said of another record there
    s->known_consent[e.system][ch] = {out, e.source_time_us, out && e.detail == "permanent"};
  }
}

void SettleConsentPush(ContactState* s, const DomainEvent& e,
                       const ContactState::HeldConsent* held) {
  auto& pend = s->pending_consent[e.system];
  for (const auto& ch : SplitChannels(e.channel)) {
    auto it = pend.find(ch);
    bool latest = it == pend.end() || it->second.push_id == e.push_id;
    if (it != pend.end() && latest) pend.erase(it);
    if (held && latest) {
      // A confirmed push keeps what the system said about permanence.
      bool permanent = held->out && KnownConsent(*s, e.system, ch).permanent;
      s->known_consent[e.system][ch] = {held->out, held->at_us, permanent};
    }
  }
  if (pend.empty()) s->pending_consent.erase(e.system);
}

}  // namespace dfm::model
