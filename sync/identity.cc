#include "sync/identity.h"

#include <cctype>

#include "sync/consent.h"

namespace dfm {

namespace {
std::string Key(char kind, std::initializer_list<std::string_view> parts) {
  std::string k(1, kind);
  for (auto p : parts) {
    k += '/';
    k.append(p);
  }
  return k;
}
}  // namespace

std::string ExternalIdKey(std::string_view tenant, std::string_view system,
                          std::string_view external_id) {
  return Key('x', {tenant, system, external_id});
}
std::string PhoneKey(std::string_view tenant, std::string_view e164) {
  return Key('p', {tenant, e164});
}
std::string EmailKey(std::string_view tenant, std::string_view email) {
  return Key('e', {tenant, email});
}

std::string FoldedEmail(std::string_view email) {
  const size_t at = email.rfind('@');
  if (at == std::string_view::npos) return std::string(email);
  const size_t plus = email.substr(0, at).find('+');
  if (plus == std::string_view::npos || plus == 0) return std::string(email);
  return std::string(email.substr(0, plus)) + std::string(email.substr(at));
}

std::string FoldedEmailKey(std::string_view tenant, std::string_view email) {
  return Key('f', {tenant, FoldedEmail(email)});
}

std::string CompanyDomainOfEmail(std::string_view email) {
  const size_t at = email.rfind('@');
  if (at == std::string_view::npos) return "";
  std::string domain(email.substr(at + 1));
  for (char& c : domain) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const char* kFree[] = {"gmail.com",   "googlemail.com", "yahoo.com", "hotmail.com",
                                "outlook.com", "live.com",       "aol.com",   "icloud.com",
                                "me.com",      "msn.com",        "proton.me", "protonmail.com"};
  for (const char* f : kFree)
    if (domain == f) return "";
  return domain;
}

Resolution Resolve(const ContactFact& fact, const IdentityLookup& lookup,
                   bool fold_plus_addressing) {
  Resolution r;
  if (!fact.external_id.empty()) {
    if (auto c = lookup(ExternalIdKey(fact.tenant, fact.system, fact.external_id))) {
      r.kind = Resolution::Kind::kMatched;
      r.contact_id = *c;
      r.matched_by = "external_id";
      return r;
    }
  }
  std::optional<std::string> by_phone, by_email;
  auto p = fact.fields.find(fields::kPhone);
  if (p != fact.fields.end() && !p->second.empty()) by_phone = lookup(PhoneKey(fact.tenant, p->second));
  auto e = fact.fields.find(fields::kEmail);
  if (e != fact.fields.end() && !e->second.empty()) {
    // The address as a contact holds it first: folding matches plus
    // addresses nobody holds exactly, never takes one that somebody does.
    by_email = lookup(EmailKey(fact.tenant, e->second));
    if (!by_email && fold_plus_addressing)
      by_email = lookup(FoldedEmailKey(fact.tenant, e->second));
  }
  if (by_phone && by_email && *by_phone != *by_email) {
    r.kind = Resolution::Kind::kAmbiguous;
    r.candidates = {{*by_phone, "phone"}, {*by_email, "email"}};
    return r;
  }
  if (by_phone || by_email) {
    r.kind = Resolution::Kind::kMatched;
    r.contact_id = by_phone ? *by_phone : *by_email;
    r.matched_by = by_phone ? "phone" : "email";
    return r;
  }
  if (fact.kind == ContactFact::Kind::kDelete) {
    r.reason = "delete of a contact the engine does not know";
    return r;
  }
  bool has_phone = p != fact.fields.end() && !p->second.empty();
  bool has_email = e != fact.fields.end() && !e->second.empty();
  if (!has_phone && !has_email) {
    r.reason = "a contact needs a phone or an email; the fact has neither";
    return r;
  }
  r.kind = Resolution::Kind::kNew;
  r.contact_id = NewContactId(fact.webhook_id);
  return r;
}

namespace {

// Whether an opt-out of `channel` concerns the holder of the address
// `matched_by` ("phone" or "email") names.
bool ReachedBy(const std::string& channel, const std::string& matched_by) {
  const bool by_phone =
      channel == channels::kSms || channel == channels::kCall || channel == channels::kWhatsApp;
  if (channel == channels::kEmail) return matched_by == "email";
  return by_phone ? matched_by == "phone" : true;
}

}  // namespace

std::vector<std::pair<std::string, ContactFact>> ConflictOptOuts(
    const ContactFact& fact, const std::vector<std::pair<std::string, std::string>>& candidates) {
  std::vector<std::pair<std::string, ContactFact>> out;
  if (fact.kind != ContactFact::Kind::kUpsert) return out;
  for (const auto& [contact, matched_by] : candidates) {
    const char* address = matched_by == "phone" ? fields::kPhone : fields::kEmail;
    auto held = fact.fields.find(address);
    if (held == fact.fields.end() || held->second.empty()) continue;
    ContactFact f;
    f.kind = ContactFact::Kind::kUpsert;
    f.consents_only = true;
    f.tenant = fact.tenant;
    f.system = fact.system;
    f.source_time_us = fact.source_time_us;
    f.fields.emplace(address, held->second);
    for (const Consent& c : fact.consents) {
      if (c.change != Consent::Change::kOptOut) continue;
      Consent mine = c;
      mine.channels.clear();
      // A statement of the other record, not a reading of the candidate's
      // own there: its setting and permanence are no evidence of theirs.
      mine.snapshot = false;
      mine.permanent = false;
      for (const std::string& ch : c.channels)
        if (ReachedBy(ch, matched_by)) mine.channels.push_back(ch);
      if (!mine.channels.empty()) f.consents.push_back(std::move(mine));
    }
    if (f.consents.empty()) continue;
    f.imported = fact.imported;
    f.webhook_seq = fact.webhook_seq;
    f.fact_index = fact.fact_index;
    f.webhook_id = fact.webhook_id;
    f.correlation_id = fact.correlation_id;
    f.recorded_at_us = fact.recorded_at_us;
    out.emplace_back(contact, std::move(f));
  }
  return out;
}

std::string NewContactId(const EventId& webhook_id, size_t n) {
  std::string id = "c" + webhook_id.ToString();
  if (n) id += "-" + std::to_string(n);
  return id;
}

}  // namespace dfm
