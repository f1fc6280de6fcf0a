// Who a campaign's audience (campaign.h) names, resolved through the
// tenant's identity index: each member by contact id, E.164 phone or email
// (normalized as the sync normalizes them) or keyed hash ("#<hex>", below),
// every contact with one of the tags, the contacts of the list. A contact
// named twice is reached once.
//
// Pure: the caller hands in the lookups (the mappings and contacts
// projections in the service).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "campaigns/campaign.h"
#include "sync/normalize.h"

namespace dfm {

struct AudienceIndex {
  std::function<bool(const std::string& contact_id)> exists;
  std::function<std::optional<std::string>(const std::string& e164)> by_phone;
  std::function<std::optional<std::string>(const std::string& email)> by_email;
  // The contact whose phone (E.164) or email hashes (MemberHash) to `hex`.
  std::function<std::optional<std::string>(const std::string& hex)> by_hash;
  // Calls `each` with every contact that has `tag` / is in `list`.
  using Each = std::function<void(const std::string& contact_id)>;
  std::function<void(const std::string& tag, const Each& each)> with_tag;
  std::function<void(const std::string& list, const Each& each)> in_list;
};

struct ResolvedAudience {
  std::vector<std::string> contacts;    // sorted, each once
  std::vector<std::string> unresolved;  // members that name no contact, as given
};

ResolvedAudience ResolveAudience(const Audience& audience, const AudienceIndex& index,
                                 const Normalizer& normalizer);

// A member's keyed hash of its normalized phone or email (sync/erasure.h's
// SubjectHash under the tenant log's secret), as hex.
using MemberHash = std::function<std::string(const std::string& identity)>;

// `members` as a campaign keeps them: each one that names a contact now
// becomes that contact's id; a phone or email that names nobody becomes
// "#" and its hash (`hash`; kept as given when `hash` is empty: a log that
// seals nothing); anything else stays as given; each once, in the order
// given. So no phone or email stays with a campaign in clear, and an
// erased person's is found by nobody: their mappings are gone
// (docs/privacy.md). A hashed member is looked for again (by_hash) when
// the campaign starts.
std::vector<std::string> MembersAsContacts(const std::vector<std::string>& members,
                                           const AudienceIndex& index,
                                           const Normalizer& normalizer,
                                           const MemberHash& hash = nullptr);

}  // namespace dfm
