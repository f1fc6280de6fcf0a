// Email matching (sync/identity.h): trimmed, lower-case, and plus
// addresses folded into one person when the tenant asks
// (`sync.email_plus_addressing = "same"`).
#include <gtest/gtest.h>

#include <map>

#include "projections/sync_projections.h"
#include "sync/domain_event.h"
#include "sync/identity.h"
#include "sync/normalize.h"

namespace dfm {
namespace {

// The mappings projection's state over `kv`, and lookups in it.
ProjectionState StateOver(std::map<std::string, std::string>* kv) {
  return ProjectionState([kv](std::string_view k, std::string* v) {
    auto it = kv->find(std::string(k));
    if (it == kv->end()) return Status::NotFound("");
    *v = it->second;
    return Status::OK();
  });
}
IdentityLookup LookupIn(const std::map<std::string, std::string>& kv) {
  return [&kv](const std::string& k) -> std::optional<std::string> {
    auto it = kv.find(k);
    return it == kv.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
}

TEST(IdentityEmailTest, TheFoldedFormDropsTheLocalPartsTag) {
  EXPECT_EQ(FoldedEmail("ann+news@example.com"), "ann@example.com");
  EXPECT_EQ(FoldedEmail("ann+a+b@example.com"), "ann@example.com");
  EXPECT_EQ(FoldedEmail("ann@example.com"), "ann@example.com");
  EXPECT_EQ(FoldedEmail("+ann@example.com"), "+ann@example.com") << "no local part left: kept";
  EXPECT_EQ(FoldedEmail("a@b+c.com"), "a@b+c.com") << "only the local part";
  EXPECT_EQ(Normalizer::Email("  Ann+News@Example.COM ").value_or(""), "ann+news@example.com");
}

TEST(IdentityEmailTest, PlusAddressesAreOnePersonOnlyWhenTheTenantSaysSo) {
  // The mappings projection keeps both forms of every email.
  std::map<std::string, std::string> kv;
  ProjectionState st = StateOver(&kv);
  DomainEvent created;
  created.type = std::string(ev::kContactCreated);
  created.contact_id = "c-ann";
  created.system = "ghl";
  created.fields = {{"email", "ann@example.com"}};
  Event e;
  e.tenant = "t";
  e.seq = 1;
  MappingsProjection().FoldDecoded(e, &created, &st);
  for (const auto& op : st.TakeOps()) kv[op.key] = op.value;
  EXPECT_EQ(kv["e/t/ann@example.com"], "c-ann");
  EXPECT_EQ(kv["f/t/ann@example.com"], "c-ann");

  ContactFact f;
  f.tenant = "t";
  f.system = "halopsa";
  f.fields = {{"email", "ann+billing@example.com"}};
  const IdentityLookup lookup = LookupIn(kv);
  EXPECT_EQ(Resolve(f, lookup).kind, Resolution::Kind::kNew) << "distinct by default";
  Resolution same = Resolve(f, lookup, /*fold_plus_addressing=*/true);
  EXPECT_EQ(same.kind, Resolution::Kind::kMatched);
  EXPECT_EQ(same.contact_id, "c-ann");
  EXPECT_EQ(same.matched_by, "email");
}

// Two contacts whose addresses fold alike (ann@ and ann+work@, the second
// made while folding was off, or set later on a record): an address each
// holds exactly is theirs, folding or not; folding matches only an address
// nobody holds. (Before, the folded key's last writer took ann@'s
// unsubscribe and HaloPSA facts.)
TEST(IdentityEmailTest, AnAddressAContactHoldsExactlyIsTheirsWhenFolding) {
  std::map<std::string, std::string> kv;
  ProjectionState st = StateOver(&kv);
  uint64_t seq = 0;
  for (const auto& [id, email] :
       {std::pair{"c-ann", "ann@example.com"}, std::pair{"c-work", "ann+work@example.com"}}) {
    DomainEvent created;
    created.type = std::string(ev::kContactCreated);
    created.contact_id = id;
    created.system = "ghl";
    created.fields = {{"email", email}};
    Event e;
    e.tenant = "t";
    e.seq = ++seq;
    MappingsProjection().FoldDecoded(e, &created, &st);
    for (const auto& op : st.TakeOps()) kv[op.key] = op.value;
  }
  const IdentityLookup lookup = LookupIn(kv);
  auto resolve = [&](const std::string& email) {
    ContactFact f;
    f.tenant = "t";
    f.system = "unsubscribe";
    f.fields = {{"email", email}};
    return Resolve(f, lookup, /*fold_plus_addressing=*/true);
  };
  EXPECT_EQ(resolve("ann@example.com").contact_id, "c-ann");
  EXPECT_EQ(resolve("ann+work@example.com").contact_id, "c-work");
  EXPECT_EQ(resolve("ann+news@example.com").kind, Resolution::Kind::kMatched)
      << "folded: one of them";
}

}  // namespace
}  // namespace dfm
