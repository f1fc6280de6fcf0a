// Which contact a fact concerns (the router's rule, pure).
//
// Order: a known (system, external id) first, then the phone, then the
// email (normalized: trimmed, lower-case; and with plus addressing folded
// when the tenant asks). When the phone names one contact and the email another, the fact
// is ambiguous: it becomes an identity.conflict for a person to settle and
// is applied to neither (never a silent merge), but for its opt-outs
// (ConflictOptOuts). A fact that matches nothing
// starts a new contact, which needs a phone or an email.
#pragma once

#include <functional>
#include <optional>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

#include "sync/fact.h"

namespace dfm {

struct Resolution {
  enum class Kind { kMatched, kNew, kAmbiguous, kRejected };
  Kind kind = Kind::kRejected;
  std::string contact_id;  // kMatched, kNew
  std::string matched_by;  // "external_id", "phone", "email"
  std::vector<std::pair<std::string, std::string>> candidates;  // kAmbiguous
  std::string reason;                                          // kRejected
};

// Keys of the mappings projection that identify a contact within a tenant
// (the same phone in two tenants is two people).
std::string ExternalIdKey(std::string_view tenant, std::string_view system,
                          std::string_view external_id);  // "x/<tenant>/<system>/<id>"
std::string PhoneKey(std::string_view tenant, std::string_view e164);   // "p/<tenant>/<phone>"
std::string EmailKey(std::string_view tenant, std::string_view email);  // "e/<tenant>/<email>"
// The same email with its local part's "+tag" dropped ("ann+news@x.com" ->
// "ann@x.com"): the key a tenant that counts plus addresses as one person
// (SyncContext::fold_plus_addressing) matches by. Kept for every email.
std::string FoldedEmail(std::string_view email);
std::string FoldedEmailKey(std::string_view tenant, std::string_view email);  // "f/<tenant>/<folded>"
// The company an email names: its domain, lower-case, unless it is a free
// mail provider's ("gmail.com": no company to learn); "" then, and for a
// string without '@'.
std::string CompanyDomainOfEmail(std::string_view email);

// Looks a key of the mappings projection up (the keys above).
using IdentityLookup = std::function<std::optional<std::string>(const std::string& key)>;

// `fold_plus_addressing`: match emails by FoldedEmailKey (the same person
// writes "ann+news@x.com" and "ann@x.com"), else exactly.
Resolution Resolve(const ContactFact& fact, const IdentityLookup& lookup,
                   bool fold_plus_addressing = false);

// The opt-outs of an ambiguous fact (Resolution::Kind::kAmbiguous:
// `candidates` as Resolve gave them), which land at once rather than wait
// for a person to settle the conflict: each goes to the candidate holding
// the address its channel reaches (sms, call and whatsapp the phone's, email
// the email's; a channel neither reaches, e.g. GoHighLevel's "gmb", both).
// Each fact returned is `fact` reduced to what that candidate may be told:
// its own address alone in `fields`, no external id, no activities, only
// the opt-outs (their channels cut to the candidate's; statements, neither
// snapshots nor permanent: the setting is another record's), `consents_only`
// set. Decided so, an opt-out records nothing of what the fact's system
// holds for the candidate's own record there (contact.opted_out detail
// "identity conflict"); it is pushed there too, to every record of the
// candidate's address, linking none (LinksNoRecord). Opt-ins and
// statements for review wait for the settlement: a duplicate record's
// lift is no evidence about either person.
// Empty when `fact` states no opt-out.
std::vector<std::pair<std::string, ContactFact>> ConflictOptOuts(
    const ContactFact& fact, const std::vector<std::pair<std::string, std::string>>& candidates);

// The id of a contact first seen in the webhook `webhook_id` (the n-th new
// contact of that webhook): deterministic, so deciding the same webhook
// again after a crash names the same contact.
std::string NewContactId(const EventId& webhook_id, size_t n = 0);

}  // namespace dfm
