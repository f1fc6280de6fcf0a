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
// an opt-out as permanent is never sent an opt-in for it. Whom a statement
// tells, and with which push: sync/consent_pushes.h.
#include <algorithm>

#include "sync/consent.h"
#include "sync/consent_pushes.h"
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
  // Of the address the refused send went to (its dead letter names it;
  // one written before it did: the contact's now).
  for (const char* field : {fields::kPhone, fields::kEmail}) {
    auto v = dead.fields.find(field);
    if (v != dead.fields.end() && !v->second.empty()) f.fields[field] = v->second;
  }
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
  MergeConsentPushes(out, first);
}

void ApplyConsentStatement(ContactState* s, const DomainEvent& e) {
  for (const auto& ch : SplitChannels(e.channel)) {
    // The system lifted it (refused, or over a channel that was not out):
    // it holds the channel in, on a record its statement may not name (a
    // text's id, a read back of every record), so no record of it is
    // known to hold the channel any more.
    if (e.type == ev::kConsentConflict || e.type == ev::kConsentKnown) {
      s->known_consent[e.system][ch] = {false, e.source_time_us, false};
      ForgetTold(s, e.system, ch);
      continue;
    }
    const bool out = e.type == ev::kOptedOut;
    ContactState::ChannelConsent& c = s->consent[ch];
    if (out && !c.out) ForgetTold(s, "", ch);  // no record holds it yet: its pushes tell them
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
    // Permanence is the system's setting's: an opt-out there that is not
    // one (a STOP texted to its number) keeps a permanent mark it holds.
    ContactState::HeldConsent& known = s->known_consent[e.system][ch];
    const bool permanent = out && (e.detail == "permanent" || (known.out && known.permanent));
    known = {out, e.source_time_us, permanent};
  }
}

void ForgetTold(ContactState* s, const std::string& system, const std::string& channel) {
  for (auto sys = s->told.begin(); sys != s->told.end();) {
    if (!system.empty() && sys->first != system) {
      ++sys;
      continue;
    }
    for (auto rec = sys->second.begin(); rec != sys->second.end();) {
      rec->second.erase(channel);
      rec = rec->second.empty() ? sys->second.erase(rec) : std::next(rec);
    }
    sys = sys->second.empty() ? s->told.erase(sys) : std::next(sys);
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
  // A channel still named by the ended push's id was asked under it by
  // another push of the same fact, before one push per id
  // (MergeConsentPushes), which nothing sent: it is on its way no more,
  // and what the system holds of it is not learnt.
  for (auto it = pend.begin(); it != pend.end();)
    it = it->second.push_id == e.push_id ? pend.erase(it) : std::next(it);
  if (pend.empty()) s->pending_consent.erase(e.system);
}

}  // namespace dfm::model
