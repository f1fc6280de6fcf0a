// Enrichment rules (docs/sync-rules.md, "Enrichment"): when to ask the
// enrichment system about a contact, and what its answer may change.
//
// - A contact is asked about once it exists with an email or a company
//   domain (or name), when the tenant has an enrichment system, and neither
//   this contact nor, by the enrichments projection, the same email or
//   company domain was enriched within ctx.enrich_again_us. The request is
//   a push (op "enrich") to that system's connector, which has its own
//   limits, retries and budget: the contact's sync to the other systems
//   never waits for it.
// - The answer (push.succeeded of op "enrich", fields = what it answered)
//   is recorded as contact.enriched, and fills only fields the contact
//   holds empty: a value a person or an owning system set is never
//   overridden. The filled fields are decided as a fact of the enrichment
//   system, so they reach the other systems by the usual rules.
#include "sync/identity.h"
#include "sync/model_internal.h"

namespace dfm::model {

namespace {

// The company domain a contact's values name: the stated one, else the
// email's (sync/identity.h).
std::string DomainOf(const std::string& stated, const std::string& email) {
  return !stated.empty() ? stated : CompanyDomainOfEmail(email);
}

std::string Value(const ContactState& s, const ContactFact& fact, const char* field) {
  if (const std::string* v = Lookup(fact.fields, field); v && !v->empty()) return *v;
  const Attributed* a = Current(s, field);
  return a ? a->value : std::string();
}

}  // namespace

void DecideEnrichmentRequest(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                             const std::vector<DomainEvent>& decided, std::vector<DomainEvent>* out) {
  if (ctx.enrichment.empty() || fact.system == ctx.enrichment) return;
  if (s.enrich_requested_us != 0 && ctx.now_us - s.enrich_requested_us < ctx.enrich_again_us) return;
  bool exists = s.exists && !s.deleted;
  for (const auto& e : decided) {
    if (e.type == ev::kContactCreated || e.type == ev::kContactChanged) exists = true;
    if (e.type == ev::kPushRequested && e.op == "enrich") return;
  }
  if (!exists) return;
  const std::string email = Value(s, fact, fields::kEmail);
  const std::string company = Value(s, fact, fields::kCompanyName);
  const std::string domain = DomainOf(Value(s, fact, fields::kCompanyDomain), email);
  if (email.empty() && domain.empty() && company.empty()) return;
  if (ctx.last_enriched) {
    const int64_t last = ctx.last_enriched(email, domain);
    if (last != 0 && ctx.now_us - last < ctx.enrich_again_us) return;  // that person, lately
  }
  DomainEvent p = Base(ev::kPushRequested, s, fact);
  p.system = ctx.enrichment;
  p.external_id.clear();
  p.op = "enrich";
  p.push_id = s.contact_id + ":" + ctx.enrichment + ":" + FactTag(fact) + ":enrich";
  for (const char* f : {fields::kEmail, fields::kFirstName, fields::kLastName, fields::kCompanyName})
    if (std::string v = Value(s, fact, f); !v.empty()) p.fields[f] = v;
  if (!domain.empty()) p.fields[fields::kCompanyDomain] = domain;
  out->push_back(std::move(p));
}

void DecideEnriched(const ContactState& s, const DomainEvent& answer, const SyncContext& ctx,
                    std::vector<DomainEvent>* out) {
  DomainEvent e;
  e.type = std::string(ev::kContactEnriched);
  e.contact_id = s.contact_id;
  e.system = answer.system;
  e.push_id = answer.push_id;
  e.fields = answer.fields;
  e.detail = answer.detail;
  bool matched = false;
  for (const auto& [f, v] : answer.fields) matched = matched || f.rfind("asked.", 0) != 0;
  e.outcome = matched ? "matched" : "no match";
  out->push_back(e);
  ContactFact fill;
  fill.system = answer.system;  // no webhook_seq: the contact's own facts are all decided
  fill.source_time_us = ctx.now_us;
  for (const auto& [f, v] : answer.fields) {
    if (f.rfind("asked.", 0) == 0) continue;
    const Attributed* cur = Current(s, f);
    if (!v.empty() && (!cur || cur->value.empty())) fill.fields[f] = v;  // empty fields only
  }
  if (fill.fields.empty() || !s.exists || s.deleted) return;
  // The pushes it calls for are named after the answer, so a later
  // enrichment's are not taken for these (push ids and their idempotency
  // keys are unique per answer).
  for (auto& d : Decide(s, fill, ctx)) {
    if (!d.push_id.empty()) d.push_id += ":" + answer.push_id;
    out->push_back(std::move(d));
  }
}

}  // namespace dfm::model
