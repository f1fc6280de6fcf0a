// Read back (docs/sync-rules.md, "Opt-outs"): what a system holds of a
// person's consent is read from it where its client can (SyncContext::
// reads_consent: an op "read_consent" push, answered as push.succeeded with
// held.<channel> = "out" | "in"):
// - after an opt-out push it took (not after a re-application: one round);
// - after an opt-in push it took that named the record it set (not a
//   one-flag system's): a staff opt-out made there while the opt-in was on
//   its way came as a webhook read for a restatement of what it held
//   before ("ours on its way", or dated before the answer), and would be
//   lost. A channel the read shows out that the engine holds in, not
//   stated since, with nothing of ours on its way there and the system
//   known to hold it in, is that system's staff opt-out, decided as its
//   webhook would have been (DecideFoundOptedOut);
// - when its webhook lifts an opt-out within the clock-skew allowance of
//   what it was known to hold (consent_rules.cc), which is otherwise taken
//   for a restatement of an older setting.
// A channel the engine holds opted out that the system shows opted in is
// set there again (an opt_out push, ":reapply"); when the opt-out holds
// (the person's or the carrier's), that is a consent.conflict as a staff
// lift is. A read-back never opts anyone in. A read after an opt-in only
// looks for opt-outs (what it asked: asked.after = "opt_in"). A read after
// any consent push of ours reads the records it set by id (fields after,
// ids: its client's contract, docs/connectors.md).
#include <algorithm>
#include <cstdlib>
#include <string>

#include "sync/consent.h"
#include "sync/consent_pushes.h"
#include "sync/model_internal.h"

namespace dfm::model {

namespace {

constexpr char kReapply[] = ":reapply";
// A read's fields: the consent push it follows ("after": "opt_out",
// "opt_in") and the records that push set ("ids", its answer.ids), which
// its client then reads by id, never a lagging search's copy; for an
// opt-in's, when its answer was decided ("since", µs). Answered back as
// "asked.<field>".
constexpr char kAfter[] = "after";
constexpr char kIds[] = "ids";
constexpr char kSince[] = "since";
constexpr char kAskedAfter[] = "asked.after";
constexpr char kAskedSince[] = "asked.since";

bool EndsWith(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// A push to `target` about `chans` of op `op`, its id `push_id`.
DomainEvent PushTo(const ContactState& s, const std::string& target, const std::string& op,
                   const std::vector<std::string>& chans, const std::string& push_id,
                   const std::string& reason, const SyncContext& ctx) {
  DomainEvent p;
  p.type = std::string(ev::kPushRequested);
  p.contact_id = s.contact_id;
  p.system = target;
  auto link = s.links.find(target);
  if (link != s.links.end()) p.external_id = link->second;
  p.op = op;
  p.channel = JoinChannels(chans);
  p.reason = reason;
  p.priority = 10;
  auto accepted = ctx.targets.find(target);
  for (const char* f : {fields::kPhone, fields::kEmail}) {
    auto cur = Current(s, f);
    if (cur && !cur->value.empty() && (accepted == ctx.targets.end() || accepted->second.count(f)))
      p.fields[f] = cur->value;
  }
  p.push_id = push_id;
  return p;
}

// The read after `ok`, a consent push a reading system took.
DomainEvent ReadAfter(const ContactState& s, const DomainEvent& ok, const std::string& reason,
                      const SyncContext& ctx) {
  DomainEvent p = PushTo(s, ok.system, "read_consent", SplitChannels(ok.channel),
                         ok.push_id + ":read", reason, ctx);
  p.fields[kAfter] = ok.op;
  auto set = ok.fields.find("answer.ids");
  if (set != ok.fields.end() && !set->second.empty()) p.fields[kIds] = set->second;
  return p;
}

}  // namespace

DomainEvent ReadBackPush(const ContactState& s, const std::string& target,
                         const std::vector<std::string>& chans, const std::string& push_id,
                         const std::string& reason, const SyncContext& ctx) {
  return PushTo(s, target, "read_consent", chans, push_id, reason, ctx);
}

void DecideReadAfterConsentPush(const ContactState& s, const DomainEvent& ok,
                                const SyncContext& ctx, std::vector<DomainEvent>* out) {
  if (!ctx.reads_consent.count(ok.system) || EndsWith(ok.push_id, kReapply)) return;
  if (ok.op == "opt_out") {
    out->push_back(ReadAfter(s, ok, "read back after the opt-out", ctx));
  } else if (ok.op == "opt_in" && !ok.external_id.empty() && !ctx.one_flag.count(ok.system)) {
    // Not a one-flag system's: its flag covers several channels, and one
    // read still set cannot tell a clear it did not take from a staff DNC.
    DomainEvent p = ReadAfter(s, ok, "read back after the opt-in", ctx);
    p.external_id = ok.external_id;
    for (const char* f : {fields::kPhone, fields::kEmail}) {  // where the opt-in looked
      auto it = ok.fields.find(f);
      if (it != ok.fields.end()) p.fields[f] = it->second;
    }
    // The latest of our clock and the channels' statements (the START's
    // source clock may run ahead of ours): nothing before it is "since".
    int64_t since = ctx.now_us;
    for (const auto& ch : SplitChannels(ok.channel)) {
      auto cur = s.consent.find(ch);
      if (cur != s.consent.end()) since = std::max(since, cur->second.at_us);
    }
    p.fields[kSince] = std::to_string(since);
    out->push_back(std::move(p));
  }
}

namespace {

// A read after our opt-in (DecideReadAfterConsentPush) that shows channels
// out: each the engine holds in, not stated again since the opt-in's
// answer (a later STOP and START, a staff setting and lift), with no
// consent push of ours on its way to that system and the system known to
// hold it in, is the system's staff opt-out (as its DND webhook would
// state it), dated at the answer (not before the opt-in's statement).
void DecideFoundOptedOut(const ContactState& s, const DomainEvent& answer, const SyncContext& ctx,
                         std::vector<DomainEvent>* out) {
  auto pend = s.pending_consent.find(answer.system);
  auto since_it = answer.fields.find(kAskedSince);
  const int64_t since =
      since_it == answer.fields.end() ? 0 : std::strtoll(since_it->second.c_str(), nullptr, 10);
  std::vector<std::string> found;
  for (const auto& ch : SplitChannels(answer.channel)) {
    auto shown = answer.fields.find("held." + ch);
    if (shown == answer.fields.end() || shown->second != "out" || IsOptedOut(s, ch)) continue;
    auto cur = s.consent.find(ch);
    if (cur != s.consent.end() && cur->second.at_us > since) continue;        // stated since
    if (pend != s.pending_consent.end() && pend->second.count(ch)) continue;  // ours on its way
    if (KnownConsent(s, answer.system, ch).out) continue;  // its setting was decided already
    found.push_back(ch);
  }
  if (found.empty()) return;
  ContactFact f;  // the system's setting, as read
  f.system = answer.system;
  f.kind = ContactFact::Kind::kUpsert;
  f.external_id = answer.external_id;
  Consent c;
  c.change = Consent::Change::kOptOut;
  c.actor = Consent::Actor::kStaff;
  c.snapshot = true;
  c.channels = std::move(found);
  c.reason = answer.system + " shows it opted out (read back after the opt-in)";
  // Dated at the answer, or just after the opt-in's statement where a
  // source clock ahead of ours dated that later: the setting came after it.
  const int64_t t = std::max(ctx.now_us, since + 1);
  DecideReportedConsent(s, f, c, ctx, t, "read", answer.push_id, out);
}

}  // namespace

void DecideReadBack(const ContactState& s, const DomainEvent& answer, const SyncContext& ctx,
                    std::vector<DomainEvent>* out) {
  auto after = answer.fields.find(kAskedAfter);
  if (after != answer.fields.end() && after->second == "opt_in") {
    DecideFoundOptedOut(s, answer, ctx, out);
    return;
  }
  std::vector<std::string> lifted, held;
  std::string held_by;
  for (const auto& ch : SplitChannels(answer.channel)) {
    auto shown = answer.fields.find("held." + ch);
    if (shown == answer.fields.end() || shown->second != "in" || !IsOptedOut(s, ch)) continue;
    lifted.push_back(ch);
    auto cur = s.consent.find(ch);
    if (cur != s.consent.end() && cur->second.held) {
      held.push_back(ch);
      held_by = cur->second.held_by;
    }
  }
  if (lifted.empty()) return;
  const std::string what = answer.system + " does not hold the opt-out (read back)";
  if (!held.empty()) {
    DomainEvent conflict;
    conflict.type = std::string(ev::kConsentConflict);
    conflict.contact_id = s.contact_id;
    conflict.system = answer.system;
    conflict.external_id = answer.external_id;
    conflict.channel = JoinChannels(held);
    conflict.actor = ActorName(Consent::Actor::kStaff);
    conflict.source_time_us = ctx.now_us;
    conflict.detail = what + "; opted out by " + (held_by.empty() ? std::string("the person") : held_by) +
                      "; only the person's own opt-in undoes it";
    out->push_back(std::move(conflict));
  }
  // Set again: a one-flag system (Aloware's is_dnc) whole.
  std::vector<std::string> chans = lifted;
  auto group = ctx.channels.find(answer.system);
  if (ctx.one_flag.count(answer.system) && group != ctx.channels.end())
    chans.assign(group->second.begin(), group->second.end());
  DomainEvent p = PushTo(s, answer.system, "opt_out", chans, answer.push_id + kReapply, what, ctx);
  if (!answer.external_id.empty()) p.external_id = answer.external_id;
  out->push_back(std::move(p));
}

}  // namespace dfm::model
