// Classifier rules (docs/sync-rules.md, "A second opinion on near
// misses"): when to ask the classifier about a text, and what its verdict
// may change.
//
// - A text the keyword rule flags (a kReview consent: an opt-out word
//   inside a longer text) is sent to ctx.classifier, when the tenant has
//   one, as a push (op "classify", fields body, at_us and the sender's
//   phone or email, channel and reason
//   the flag's, message_key its message id). The flag (opt_out.flagged) is
//   decided first and never waits: the push has its own limits, retries and
//   dead letters, and a classifier that is off or down changes nothing.
// - Its answer (push.succeeded of op "classify": verdict, confidence,
//   model, prompt_version, min_confidence) is recorded as
//   consent.classified. An opt_out verdict at least min_confidence sure is
//   the person's opt-out of the flagged channels, dated when they sent the
//   text, with reason "classifier" and the message as its cause, decided by
//   the same rule as every opt-out (a newer opt-in still wins). Any other
//   verdict leaves the text flagged for a person.
#include <cstdlib>

#include "sync/consent.h"
#include "sync/model_internal.h"

namespace dfm::model {

void DecideClassifierRequest(const ContactState& s, const ContactFact& fact, const Consent& c,
                             const SyncContext& ctx, int64_t t, std::vector<DomainEvent>* out) {
  if (ctx.classifier.empty() || c.change != Consent::Change::kReview || c.message_id.empty()) return;
  const Activity* text = nullptr;
  for (const Activity& a : fact.activities)
    if (a.kind == Activity::Kind::kText && !a.body.empty()) text = &a;
  if (!text) return;
  DomainEvent p = Base(ev::kPushRequested, s, fact);
  p.system = ctx.classifier;
  p.external_id.clear();
  p.op = "classify";
  p.message_key = c.message_id;
  p.channel = JoinChannels(c.channels);
  p.reason = c.reason;
  p.fields = {{"body", text->body}, {"at_us", std::to_string(t)}};
  for (const char* f : {fields::kPhone, fields::kEmail})  // whom it concerns, as the flag says
    if (auto v = fact.fields.find(f); v != fact.fields.end() && !v->second.empty()) p.fields[f] = v->second;
  p.push_id = s.contact_id + ":" + ctx.classifier + ":classify:" + c.message_id;
  out->push_back(std::move(p));
}

void DecideClassified(const ContactState& s, const DomainEvent& answer, const SyncContext& ctx,
                      std::vector<DomainEvent>* out) {
  auto field = [&](const char* k) {
    auto it = answer.fields.find(k);
    return it == answer.fields.end() ? std::string() : it->second;
  };
  DomainEvent e;
  e.type = std::string(ev::kConsentClassified);
  e.contact_id = s.contact_id;
  e.system = answer.system;
  e.push_id = answer.push_id;
  e.message_key = answer.message_key;
  e.external_id = answer.message_key;
  e.channel = answer.channel;
  for (const char* k : {"verdict", "confidence", "model", "prompt_version", "min_confidence"})
    e.fields[k] = field(k);
  const double confidence = std::strtod(field("confidence").c_str(), nullptr);
  const double needed = std::strtod(field("min_confidence").c_str(), nullptr);
  const bool apply = field("verdict") == "opt_out" && confidence >= needed && needed > 0;
  e.outcome = apply ? "opt_out" : "flagged";
  out->push_back(e);
  if (!apply) return;
  int64_t at = std::strtoll(field("asked.at_us").c_str(), nullptr, 10);
  if (at <= 0) at = ctx.now_us;
  ContactFact f;
  f.system = answer.system;
  f.source_time_us = at;
  for (const char* k : {fields::kPhone, fields::kEmail})
    if (std::string v = field(("asked." + std::string(k)).c_str()); !v.empty()) f.fields[k] = v;
  Consent c;
  c.change = Consent::Change::kOptOut;
  c.channels = SplitChannels(answer.channel);
  c.reason = "classifier";
  c.actor = Consent::Actor::kPerson;
  c.message_id = answer.message_key;
  // Each verdict's opt-out goes out as its own push, not as a duplicate
  // of the first one's.
  DecideReportedConsent(s, f, c, ctx, at, "classified", answer.push_id, out);
}

}  // namespace dfm::model
