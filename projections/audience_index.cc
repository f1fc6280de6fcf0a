#include "projections/audience_index.h"

#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "projections/sync_projections.h"
#include "sync/consent.h"
#include "sync/erasure.h"
#include "sync/fact.h"
#include "util/logging.h"

namespace dfm {

namespace {

// Reads of a log's projections; any error but NotFound sets *failed (the
// answer is then not to be trusted: a lookup that found nothing).
struct Reader {
  const EventLog* log;
  std::shared_ptr<bool> failed;

  bool Get(const char* consumer, const std::string& key, std::string* v) const {
    Status s = log->GetConsumerState(consumer, key, v);
    if (!s.ok() && !s.IsNotFound()) *failed = true;
    return s.ok();
  }
  // The merged value of a contact's field ("" when it has none).
  std::string Field(const std::string& contact, const char* field) const {
    std::string v;
    if (!Get(ContactViewProjection::kName, "f/" + contact + "/" + field, &v)) return "";
    const size_t space = v.find(' ');  // "<system that set it> <value>"
    return space == std::string::npos ? "" : v.substr(space + 1);
  }
  std::optional<std::string> Mapped(const std::string& key) const {
    std::string id;
    if (!Get(MappingsProjection::kName, key, &id) || id.empty()) return std::nullopt;
    return id;
  }
  bool Deleted(const std::string& contact) const {
    std::string v;
    return Get(ContactViewProjection::kName, "d/" + contact, &v) && v == "1";
  }
  bool OfTenant(const std::string& tenant, const std::string& contact) const {
    if (contact.empty() || Deleted(contact)) return false;
    const std::string phone = Field(contact, fields::kPhone);
    if (!phone.empty() && Mapped("p/" + tenant + "/" + phone) == contact) return true;
    const std::string email = Field(contact, fields::kEmail);
    return !email.empty() && Mapped("e/" + tenant + "/" + email) == contact;
  }
  // Calls `each` with every contact of `tenant` whose tags hold one of `tags`.
  void WithTags(const std::string& tenant, const std::set<std::string>& tags,
                const AudienceIndex::Each& each) const;
};

// AudienceIndex::by_hash: every phone and email the tenant's mappings
// hold, by hash, read at the first lookup (a campaign's start reads them
// once); copies share what was read. One thread at a time, as every
// AudienceIndex.
struct HashIndex {
  Reader r;
  std::string tenant;
  MemberHash hash;
  std::shared_ptr<std::map<std::string, std::string>> contacts =
      std::make_shared<std::map<std::string, std::string>>();  // hash -> contact id
  std::shared_ptr<bool> read = std::make_shared<bool>(false);

  std::optional<std::string> operator()(const std::string& hex) const {
    if (!*read) {
      *read = true;
      for (const char* kind : {"p/", "e/"}) {
        const std::string prefix = kind + tenant + "/";
        Status s = r.log->ScanConsumerState(
            MappingsProjection::kName, prefix, [&](std::string_view key, std::string_view id) {
              (*contacts)[hash(std::string(key.substr(prefix.size())))] = std::string(id);
              return true;
            });
        if (!s.ok()) {
          *r.failed = true;
          Logger("campaigns")->warn("event=audience_hashes_unread tenant={} error=\"{}\"", tenant,
                                    s.ToString());
        }
      }
    }
    auto it = contacts->find(hex);
    if (it == contacts->end() || it->second.empty() || r.Deleted(it->second)) return std::nullopt;
    return it->second;
  }
};

void Reader::WithTags(const std::string& tenant, const std::set<std::string>& tags,
                      const AudienceIndex::Each& each) const {
  const std::string suffix = std::string("/") + fields::kTags;
  std::vector<std::string> found;
  Status s = log->ScanConsumerState(
      ContactViewProjection::kName, "f/", [&](std::string_view key, std::string_view value) {
        if (key.size() <= suffix.size() + 2 || key.substr(key.size() - suffix.size()) != suffix)
          return true;
        const size_t space = value.find(' ');
        if (space == std::string_view::npos) return true;
        std::string_view list = value.substr(space + 1);
        while (!list.empty()) {
          const size_t nl = list.find('\n');
          if (tags.count(std::string(list.substr(0, nl)))) {
            found.emplace_back(key.substr(2, key.size() - 2 - suffix.size()));
            break;
          }
          if (nl == std::string_view::npos) break;
          list.remove_prefix(nl + 1);
        }
        return true;
      });
  if (!s.ok()) {
    *failed = true;
    Logger("campaigns")
        ->warn("event=audience_tags_unread tenant={} error=\"{}\"", tenant, s.ToString());
  }
  for (const auto& c : found)
    if (OfTenant(tenant, c)) each(c);
}

}  // namespace

MemberHash MemberHashOf(const EventLog& log, const std::string& tenant) {
  const std::string key = log.SubjectHashKey();
  if (key.empty()) return nullptr;
  auto hasher = std::make_shared<const SubjectHasher>(key, tenant);
  return [hasher](const std::string& identity) { return (*hasher)(identity); };
}

AudienceIndex ProjectionAudienceIndex(const EventLog& log, const std::string& tenant,
                                      std::map<std::string, std::string> tag_lists,
                                      std::shared_ptr<bool> failed) {
  AudienceIndex ix;
  const Reader r{&log, failed ? std::move(failed) : std::make_shared<bool>(false)};
  ix.exists = [r, tenant](const std::string& id) { return r.OfTenant(tenant, id); };
  ix.by_phone = [r, tenant](const std::string& e164) -> std::optional<std::string> {
    auto id = r.Mapped("p/" + tenant + "/" + e164);
    return id && !r.Deleted(*id) ? id : std::nullopt;
  };
  ix.by_email = [r, tenant](const std::string& email) -> std::optional<std::string> {
    auto id = r.Mapped("e/" + tenant + "/" + email);
    return id && !r.Deleted(*id) ? id : std::nullopt;
  };
  ix.with_tag = [r, tenant](const std::string& tag, const AudienceIndex::Each& each) {
    r.WithTags(tenant, {tag}, each);
  };
  if (MemberHash hash = MemberHashOf(log, tenant)) ix.by_hash = HashIndex{r, tenant, hash};
  auto lists = std::make_shared<std::map<std::string, std::string>>(std::move(tag_lists));
  ix.in_list = [r, tenant, lists](const std::string& list, const AudienceIndex::Each& each) {
    std::set<std::string> tags;
    for (const auto& [tag, id] : *lists)
      if (id == list) tags.insert(tag);
    if (!tags.empty()) r.WithTags(tenant, tags, each);
  };
  return ix;
}

namespace {

// The registry's word on the contact's address for `channel`: "" when it
// has none (or there is no address), "in", "out", or "unknown" when the
// registry cannot be read now. *address: the address it looked up.
std::string RegistryWord(const EventLog& log, const std::string& tenant, const std::string& contact,
                         const std::string& channel, std::string* address) {
  const Reader r{&log, std::make_shared<bool>(false)};
  *address = r.Field(contact, channel == channels::kEmail ? fields::kEmail : fields::kPhone);
  if (*r.failed) return "unknown";
  if (address->empty()) return "";
  std::string status;
  Status s = log.GetConsumerState(OptOutRegistryProjection::kName,
                                  "o/" + tenant + "/" + *address + "/" + channel, &status);
  if (s.IsNotFound()) return "";
  if (!s.ok()) return "unknown";
  return status.rfind("out", 0) == 0 ? "out" : "in";
}

}  // namespace

bool ContactOptedOut(const EventLog& log, const std::string& tenant, const std::string& contact,
                     const std::string& channel) {
  std::string address;
  return RegistryWord(log, tenant, contact, channel, &address) == "out";
}

Status ReadContactOptOut(const EventLog& log, const std::string& tenant, const std::string& contact,
                         const std::string& channel, std::string* address, bool* out) {
  const std::string said = RegistryWord(log, tenant, contact, channel, address);
  if (said == "unknown") return Status::Unavailable("the opt-out registry cannot be read now");
  *out = said == "out";
  return Status::OK();
}

Status ReadMergedFields(const EventLog& log, const std::string& contact,
                        std::map<std::string, std::string>* fields) {
  const std::string prefix = "f/" + contact + "/";
  return log.ScanConsumerState(
      ContactViewProjection::kName, prefix, [&](std::string_view key, std::string_view value) {
        const size_t space = value.find(' ');  // "<system that set it> <value>"
        if (space != std::string_view::npos)
          (*fields)[std::string(key.substr(prefix.size()))] = std::string(value.substr(space + 1));
        return true;
      });
}

}  // namespace dfm
