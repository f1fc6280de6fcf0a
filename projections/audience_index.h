// A campaign's audience (campaigns/audience.h) looked up in a tenant's
// projections: members by the mappings' phone and email keys, tags by the
// contact view's merged `tags` field, a list by the tags sync.tag_lists maps
// to it. A contact is the tenant's when its phone or email maps back to it
// in that tenant (contact ids are unique across tenants, but the contact
// view is not kept per tenant).
//
// Reads a log's committed projection state: a moment behind its head.
// A tag or list lookup reads every contact's fields once (a scan that
// fails is logged and names nobody); the first hashed member, every phone
// and email of the tenant's mappings.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "campaigns/audience.h"
#include "storage/event_log.h"

namespace dfm {

// The hash a campaign keeps a member who names no contact under
// (campaigns/audience.h): SubjectHash under `log`'s secret; empty for a log
// without a key store (it seals nothing, and keeps members as given).
MemberHash MemberHashOf(const EventLog& log, const std::string& tenant);

// REQUIRES: `log` outlives the index. `tag_lists`: tag -> list id.
// `failed`, when given, is set when a lookup could not read the
// projections (what it resolved is then incomplete).
AudienceIndex ProjectionAudienceIndex(const EventLog& log, const std::string& tenant,
                                      std::map<std::string, std::string> tag_lists,
                                      std::shared_ptr<bool> failed = nullptr);

// Whether the opt-out registry holds the contact's address for `channel`
// opted out (false when it has no such address, or cannot be read now:
// the check at the moment of sending asks again).
bool ContactOptedOut(const EventLog& log, const std::string& tenant, const std::string& contact,
                     const std::string& channel);
// What ContactOptedOut reads: the contact's address for `channel` (*address,
// "" when it has none) and whether the registry holds it opted out (*out).
// Not OK (and nothing to rely on) when the projections cannot be read now.
Status ReadContactOptOut(const EventLog& log, const std::string& tenant, const std::string& contact,
                         const std::string& channel, std::string* address, bool* out);

// The contact's merged fields (the contact view), name -> value; a deleted
// contact's too. An error of the read but NotFound is returned.
Status ReadMergedFields(const EventLog& log, const std::string& contact,
                        std::map<std::string, std::string>* fields);

}  // namespace dfm
