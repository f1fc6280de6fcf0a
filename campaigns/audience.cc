#include "campaigns/audience.h"

#include <algorithm>
#include <set>

namespace dfm {

namespace {

// "#" and 32 lowercase hex digits: a member kept as its hash (an email may
// begin with "#" too, and is never that long and all hex).
bool IsHashedMember(const std::string& m) {
  return m.size() == 33 && m[0] == '#' &&
         std::all_of(m.begin() + 1, m.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// The contact a member names: a hashed phone or email, an email, else a
// phone, else a contact id.
std::optional<std::string> Member(const std::string& m, const AudienceIndex& index,
                                  const Normalizer& normalizer) {
  if (IsHashedMember(m)) return index.by_hash ? index.by_hash(m.substr(1)) : std::nullopt;
  if (m.find('@') != std::string::npos) {
    auto email = Normalizer::Email(m);
    return email && index.by_email ? index.by_email(*email) : std::nullopt;
  }
  if (index.exists && index.exists(m)) return m;
  auto phone = normalizer.Phone(m);
  return phone && index.by_phone ? index.by_phone(*phone) : std::nullopt;
}

}  // namespace

ResolvedAudience ResolveAudience(const Audience& audience, const AudienceIndex& index,
                                 const Normalizer& normalizer) {
  ResolvedAudience out;
  auto add = [&out](const std::string& contact) { out.contacts.push_back(contact); };
  for (const auto& tag : audience.tags)
    if (index.with_tag) index.with_tag(tag, add);
  if (!audience.list.empty() && index.in_list) index.in_list(audience.list, add);
  for (const auto& m : audience.members) {
    auto contact = Member(m, index, normalizer);
    if (contact) {
      add(*contact);
    } else {
      out.unresolved.push_back(m);
    }
  }
  std::sort(out.contacts.begin(), out.contacts.end());
  out.contacts.erase(std::unique(out.contacts.begin(), out.contacts.end()), out.contacts.end());
  return out;
}

std::vector<std::string> MembersAsContacts(const std::vector<std::string>& members,
                                           const AudienceIndex& index,
                                           const Normalizer& normalizer, const MemberHash& hash) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& m : members) {
    std::optional<std::string> contact = Member(m, index, normalizer);
    std::string kept = contact ? *contact : m;
    if (!contact && hash && !IsHashedMember(m)) {  // a phone or email: hashed
      std::optional<std::string> identity = m.find('@') != std::string::npos
                                                ? Normalizer::Email(m)
                                                : normalizer.Phone(m);
      if (identity) kept = "#" + hash(*identity);
    }
    if (seen.insert(kept).second) out.push_back(std::move(kept));
  }
  return out;
}

}  // namespace dfm
