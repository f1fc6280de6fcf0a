// Who a campaign's audience (campaign.h) names, resolved through the
// tenant's identity index: each member by contact id, E.164 phone or email
// (normalized as the sync normalizes them), every contact with one of the
// tags, the contacts of the list. A contact named twice is reached once.
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

// `members` as a campaign keeps them: each one that names a contact now
// becomes that contact's id, the others stay as given; each once, in the
// order given. So a person's phone or email is not kept in the campaign
// once they are a contact, and their erasure leaves none of it there
// (docs/privacy.md).
std::vector<std::string> MembersAsContacts(const std::vector<std::string>& members,
                                           const AudienceIndex& index,
                                           const Normalizer& normalizer);

}  // namespace dfm
