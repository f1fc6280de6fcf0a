// Read back (docs/sync-rules.md, "Opt-outs"): what a system holds of a
// person's consent is read from it where its client can (SyncContext::
// reads_consent: an op "read_consent" push, answered as push.succeeded with
// held.<channel> = "out" | "in"):
// - after an opt-out push it took (not after a re-application: one round);
// - when its webhook lifts an opt-out within the clock-skew allowance of
//   what it was known to hold (consent_rules.cc), which is otherwise taken
//   for a restatement of an older setting.
// A channel the engine holds opted out that the system shows opted in is
// set there again (an opt_out push, ":reapply"); when the opt-out holds
// (the person's or the carrier's), that is a consent.conflict as a staff
// lift is. A read-back never opts anyone in.
#include <algorithm>

#include "sync/consent.h"
#include "sync/model_internal.h"

namespace dfm::model {

namespace {

constexpr char kReapply[] = ":reapply";

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

}  // namespace

DomainEvent ReadBackPush(const ContactState& s, const std::string& target,
                         const std::vector<std::string>& chans, const std::string& push_id,
                         const std::string& reason, const SyncContext& ctx) {
  return PushTo(s, target, "read_consent", chans, push_id, reason, ctx);
}

void DecideReadAfterOptOut(const ContactState& s, const DomainEvent& ok, const SyncContext& ctx,
                           std::vector<DomainEvent>* out) {
  if (ok.op != "opt_out" || !ctx.reads_consent.count(ok.system) || EndsWith(ok.push_id, kReapply)) return;
  out->push_back(ReadBackPush(s, ok.system, SplitChannels(ok.channel), ok.push_id + ":read",
                              "read back after the opt-out", ctx));
}

void DecideReadBack(const ContactState& s, const DomainEvent& answer, const SyncContext& ctx,
                    std::vector<DomainEvent>* out) {
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
