#include "sync/identity.h"

#include <cctype>

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

std::string NewContactId(const EventId& webhook_id, size_t n) {
  std::string id = "c" + webhook_id.ToString();
  if (n) id += "-" + std::to_string(n);
  return id;
}

}  // namespace dfm
