// The consent family's pushes (sync/consent_pushes.h).
#include "sync/consent_pushes.h"

#include <algorithm>

#include "sync/consent.h"

namespace dfm::model {

ContactState::HeldConsent KnownConsent(const ContactState& s, const std::string& system,
                                       const std::string& channel) {
  auto k = s.known_consent.find(system);
  if (k == s.known_consent.end()) return {};
  auto kc = k->second.find(channel);
  return kc == k->second.end() ? ContactState::HeldConsent{} : kc->second;
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
    bool now =
        std::find(chans.begin(), chans.end(), ch) != chans.end() ? opt_out : IsOptedOut(s, ch);
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

// A record the fact newly links (its contact.linked, by a webhook or an
// import: a duplicate the system let somebody make after the person opted
// out, a record made there since, a record of another number or address
// the opt-out's push did not find) is told the channels the contact holds
// out there that it is not known to hold (ContactState::told, by channel:
// a link flipping between two records of the person, both set, asks
// nothing). Consent pushes reach the records their system finds then; a
// record made after them, or not found by them, would be texted. Not
// told: the channels the fact states itself (its record says them;
// DecideConsent decides them), and those with an opt-out of the engine's
// on its way there (a record the engine made: its opt-out follows it).
// One flag (Aloware's is_dnc) is set whole. Its id ends kNewRecordTag; its
// answer links nothing.
void PushToNewRecord(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                     std::vector<DomainEvent>* out) {
  auto target = ctx.targets.find(fact.system);
  if (target == ctx.targets.end() || fact.external_id.empty()) return;
  const bool linked = std::any_of(out->begin(), out->end(), [&fact](const DomainEvent& e) {
    return e.type == ev::kContactLinked && e.system == fact.system &&
           e.external_id == fact.external_id && e.via != "search";
  });
  if (!linked) return;
  std::set<std::string> stated;
  for (const Consent& c : fact.consents) stated.insert(c.channels.begin(), c.channels.end());
  std::vector<std::string> chans = HeldToTell(s, ctx, fact.system, fact.external_id, stated, *out);
  if (chans.empty()) return;
  DomainEvent p = ConsentPush(s, fact, fact.system, /*opt_out=*/true, chans,
                              "held opt-out told to a record of the person's new there",
                              Whom(s, fact), target->second);
  p.external_id = fact.external_id;  // the new record (its webhook linked it)
  p.push_id += kNewRecordTag;
  out->push_back(std::move(p));
}

// The channels a record of `system` new to the contact is told: those out
// (after `decided`) but the ones `stated` by the record itself, those it is
// known to hold (a link flipping back between two records of the person)
// and those with an opt-out of the engine's on its way there (not refused:
// the connector sends a contact's pushes in turn, and that one reaches the
// records its system finds then); kept by the system, a one flag whole.
std::vector<std::string> HeldToTell(const ContactState& s, const SyncContext& ctx,
                                    const std::string& system, const std::string& record,
                                    const std::set<std::string>& stated,
                                    const std::vector<DomainEvent>& decided) {
  const std::set<std::string>* holds = ToldChannels(s, system, record);
  auto pend = s.pending_consent.find(system);
  std::vector<std::string> held;
  for (const auto& [ch, consent] : s.consent) {
    if (stated.count(ch) || (holds && holds->count(ch)) || !OptedOut(s, decided, ch, nullptr))
      continue;
    if (pend != s.pending_consent.end()) {
      auto p = pend->second.find(ch);
      if (p != pend->second.end() && p->second.out && !p->second.refused) continue;  // on its way
    }
    held.push_back(ch);
  }
  std::vector<std::string> chans = KeptBy(ctx, system, held);
  if (chans.empty()) return {};
  if (const auto* group = OneFlag(ctx, system)) chans.assign(group->begin(), group->end());
  return chans;
}

// The record a push's answer names new to the contact (model_internal.h).
std::string RecordMadeBy(const ContactState& s, const DomainEvent& ok,
                         const std::vector<DomainEvent>& out) {
  if (ok.type != ev::kPushSucceeded) return {};
  if (ok.op == "upsert") {
    const std::string* link = Lookup(s.links, ok.system);
    if (!link || *link != ok.external_id) return ok.external_id;
  } else if (const std::string* found = Lookup(ok.fields, "answer.contact_id")) {
    for (const DomainEvent& e : out)  // DecideFoundAnew linked it
      if (e.type == ev::kContactLinked && e.system == ok.system && e.via == "search" &&
          e.external_id == *found)
        return *found;
  }
  return {};
}

// A record a push of the engine's answered with, new to the contact there:
// an upsert's other than the link (staff deleted the linked record and the
// upsert made another; the contact had none there yet, its system's
// connector newly enabled), or one a text's push found or made anew
// (DecideFoundAnew's contact.linked in `out`). Neither push carried
// consent, so the record is told the held opt-outs as a new record is
// (PushToNewRecord). Not where another contact holds the record (a phone
// or email two people share). Its id is the report's:
// "<contact>:<system>:0:opt_out" kNewRecordTag ":<the push's id>".
void PushToRecordMade(const ContactState& s, const DomainEvent& ok, const SyncContext& ctx,
                      std::vector<DomainEvent>* out) {
  const std::string record = RecordMadeBy(s, ok, *out);
  auto target = ctx.targets.find(ok.system);
  if (record.empty() || target == ctx.targets.end()) return;
  std::vector<std::string> chans = HeldToTell(s, ctx, ok.system, record, {}, *out);
  if (chans.empty()) return;
  if (ctx.record_holder) {
    const std::string holder = ctx.record_holder(ok.system, record);
    if (!holder.empty() && holder != s.contact_id) return;
  }
  ContactFact made;  // no webhook: its tag is "0"
  made.system = ok.system;
  made.external_id = record;
  made.kind = ContactFact::Kind::kUpsert;
  DomainEvent p = ConsentPush(s, made, ok.system, /*opt_out=*/true, chans,
                              "held opt-out told to a record a push of the engine's made or found",
                              Whom(s, made), target->second);
  p.external_id = record;
  p.push_id.append(kNewRecordTag).append(":").append(ok.push_id);
  out->push_back(std::move(p));
}

// A fact's consent statements are decided one by one, each against the
// same state, and a statement's new and repeated channels apart, so two
// pushes to one target with one op and tag can be asked (GoHighLevel's
// DND webhook: active channels and permanent ones, two statements; an
// identity conflict's opt-out over a channel a candidate's system never
// confirmed): they share one push id, which the contact actor, the
// connector and pending_consent each hold once, so the second's channels
// would never be sent and stay on their way for ever. Each such push from
// `from` on is merged into the first of its id: their channels in the
// order first asked, the first's reason and fields.
void MergeConsentPushes(std::vector<DomainEvent>* out, size_t from) {
  for (size_t i = from; i < out->size(); ++i) {
    DomainEvent& p = (*out)[i];
    if (p.type != ev::kPushRequested || (p.op != "opt_out" && p.op != "opt_in")) continue;
    for (size_t j = i + 1; j < out->size();) {
      const DomainEvent& q = (*out)[j];
      if (q.type != ev::kPushRequested || q.push_id != p.push_id) {
        ++j;
        continue;
      }
      std::vector<std::string> chans = SplitChannels(p.channel);
      for (const auto& ch : SplitChannels(q.channel))
        if (std::find(chans.begin(), chans.end(), ch) == chans.end()) chans.push_back(ch);
      p.channel = JoinChannels(chans);
      out->erase(out->begin() + static_cast<std::ptrdiff_t>(j));
    }
  }
}

// A one-flag target (Aloware's is_dnc) holds what a fact's statements leave
// it as, however they went one by one: each was decided against the state
// before the fact (ToTell), so a GoHighLevel DND webhook stating SMS
// active and Call inactive, over Call out, asked the flag lifted (Call's
// statement) though SMS had just gone out. Its pushes that contradict the
// flag once every statement applies (an opt_in while a channel it covers
// is out; an opt_out while none is) are dropped.
void KeepOneFlagAsItEnds(const ContactState& s, const SyncContext& ctx,
                         std::vector<DomainEvent>* out) {
  std::map<std::string, bool> ends_out;  // one-flag target -> the flag, every statement applied
  for (const DomainEvent& p : *out) {
    const std::set<std::string>* group = OneFlag(ctx, p.system);
    if (p.type != ev::kPushRequested || (p.op != "opt_out" && p.op != "opt_in") || !group ||
        ends_out.count(p.system))
      continue;
    bool on = false;
    for (const auto& ch : *group) on = on || OptedOut(s, *out, ch, nullptr);
    ends_out[p.system] = on;
  }
  out->erase(std::remove_if(out->begin(), out->end(),
                            [&ends_out](const DomainEvent& p) {
                              auto flag = ends_out.find(p.system);
                              return p.type == ev::kPushRequested && flag != ends_out.end() &&
                                     ((p.op == "opt_in" && flag->second) ||
                                      (p.op == "opt_out" && !flag->second));
                            }),
             out->end());
}

// A repeated opt-out (the channel is out already): every target but the
// fact's own system that has not confirmed it (known_consent: a 2xx on its
// opt-out push, or its own webhook showing it) is told again (issue 46: a
// STOP after a push a system refused), unless an opt-out of it is on its
// way and not refused; the new push replaces an open refused one at once
// (actors/connector_actor.h), so it names the refused one's channels too.
void PushToUnconfirmed(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                       const std::vector<std::string>& chans, const std::string& reason,
                       const std::map<std::string, std::string>& who,
                       std::vector<DomainEvent>* out) {
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
                               reason + " (again: not confirmed by " + target + ")", who,
                               accepted));
  }
}

}  // namespace dfm::model
