// API keys shared by a cluster's fronts (console/shared_keys.h) over a
// log's CasStore: what one front makes or revokes, another folds.
#include "console/shared_keys.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "console/api_keys.h"
#include "storage/cas_store.h"
#include "storage/memory_event_log.h"
#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

Event KeyEvent(const EventDraft& d, int64_t at) {
  Event e;
  e.type = d.type;
  e.payload = d.payload;
  e.recorded_at_us = at;
  return e;
}

TEST(SharedKeys, AKeyMadeOnOneFrontIsTakenByAnotherAndItsRevocationToo) {
  MemoryEventLog log;
  std::shared_ptr<CasStore> store = NewLogCasStore(&log, "keys");
  SharedKeys here(store), there(store);
  const NewApiKey fresh = MakeApiKey();
  ApiKeyRecord k;
  k.id = fresh.id;
  k.tenant = "acme";
  k.role = ApiRole::kAdmin;
  k.name = "ops";
  k.secret_sha256 = HashApiSecret(fresh.secret);
  ASSERT_TRUE(here.Publish(KeyEvent(ApiKeyCreatedDraft(k, "r1"), 100)).ok());
  ASSERT_TRUE(here.Publish(KeyEvent(ApiKeyCreatedDraft(k, "r1"), 100)).ok());  // again: nothing changes

  ApiKeyRegistry other;
  size_t n = 0;
  ASSERT_TRUE(there.FoldInto(&other, &n).ok());
  EXPECT_EQ(n, 1u);
  auto who = other.Authenticate(fresh.token);
  ASSERT_TRUE(who);
  EXPECT_EQ(who->tenant, "acme");
  EXPECT_EQ(who->role, ApiRole::kAdmin);
  EXPECT_EQ(who->created_us, 100);

  ASSERT_TRUE(here.Publish(KeyEvent(ApiKeyRevokedDraft(k, "admin-token", "r2"), 200)).ok());
  ASSERT_TRUE(there.FoldInto(&other, &n).ok());
  EXPECT_FALSE(other.Authenticate(fresh.token)) << "revoked on every front";
  ApiKeyRegistry late;  // a front started after both
  ASSERT_TRUE(there.FoldInto(&late, &n).ok());
  EXPECT_FALSE(late.Authenticate(fresh.token));
  ASSERT_EQ(late.List().size(), 1u);
  EXPECT_TRUE(late.List()[0].revoked);
}

TEST(SharedKeys, ARevocationOfAKeyNeverSharedIsKeptAloneAndEntriesReadBack) {
  MemoryEventLog log;
  SharedKeys shared(NewLogCasStore(&log, "keys"));
  ApiKeyRecord k;
  k.id = "00112233aabbccdd";
  k.tenant = "*";
  k.secret_sha256 = std::string(64, 'a');
  ASSERT_TRUE(shared.Publish(KeyEvent(ApiKeyRevokedDraft(k, "cli", "r"), 5)).ok());
  ApiKeyRegistry keys;
  size_t n = 0;
  ASSERT_TRUE(shared.FoldInto(&keys, &n).ok());
  EXPECT_EQ(n, 1u);
  EXPECT_TRUE(keys.List().empty());  // unknown here: refused, as revoked

  // An entry that does not read (a later version's) may revoke a key: the
  // others are folded, and the fold says it is not whole.
  std::shared_ptr<CasStore> store = NewLogCasStore(&log, "keys");
  ASSERT_TRUE(store->Create("k.ffeeddccbbaa9988", "2\nsomething new\n").ok());
  ApiKeyRegistry some;
  Status s = SharedKeys(store).FoldInto(&some, &n);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("k.ffeeddccbbaa9988"), std::string::npos) << s.ToString();
  EXPECT_EQ(n, 1u) << "the other entry folded";

  std::vector<Event> back;
  const std::vector<Event> both = {KeyEvent(ApiKeyCreatedDraft(k, "r"), 1), KeyEvent(ApiKeyRevokedDraft(k, "x", "r"), 2)};
  ASSERT_TRUE(SharedKeys::Decode(SharedKeys::Encode(both), &back));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].type, kApiKeyCreated);
  EXPECT_EQ(back[1].recorded_at_us, 2);
  for (const char* bad : {"", "2\n1 {}\n", "1\n", "1\nx {}\n", "1\n1 {}", "1\n1 {}\n2 {}\n3 {}\n"})
    EXPECT_FALSE(SharedKeys::Decode(bad, &back)) << bad;
}

// The changes a node could not share yet, kept in its data directory.
TEST(SharedKeys, ChangesNotSharedReadBackFromTheirFile) {
  testing::TempDir dir;
  ApiKeyRecord k;
  k.id = "00112233aabbccdd";
  k.tenant = "*";
  k.secret_sha256 = std::string(64, 'a');
  const std::vector<Event> both = {KeyEvent(ApiKeyCreatedDraft(k, "r"), 1),
                                   KeyEvent(ApiKeyRevokedDraft(k, "x", "r"), 2)};
  std::vector<Event> back;
  ASSERT_TRUE(SharedKeys::LoadUnshared(dir.path(), &back).ok()) << "no file: none";
  EXPECT_TRUE(back.empty());
  ASSERT_TRUE(SharedKeys::SaveUnshared(dir.path(), both).ok());
  ASSERT_TRUE(SharedKeys::LoadUnshared(dir.path(), &back).ok());
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].type, kApiKeyCreated);
  EXPECT_EQ(back[0].payload, both[0].payload);
  EXPECT_EQ(back[1].type, kApiKeyRevoked);
  EXPECT_EQ(back[1].recorded_at_us, 2);
  EXPECT_EQ(back[1].stream, kApiKeysStream);
  ASSERT_TRUE(SharedKeys::SaveUnshared(dir.path(), {}).ok());
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("keys-unshared"))) << "all shared: removed";
  for (const char* bad :
       {"", "dfm-keys-unshared 2\n", "dfm-keys-unshared 1\nmade 1 {}\n",
        "dfm-keys-unshared 1\ncreated x {}\n", "dfm-keys-unshared 1\ncreated 1 {}",
        "dfm-keys-unshared 1\ncreated 1 \n", "dfm-keys-unshared 1\nrevoked -1 {}\n"})
    EXPECT_FALSE(SharedKeys::DecodeUnshared(bad, &back)) << bad;
  EXPECT_FALSE(SharedKeys::DecodeUnshared("dfm-keys-unshared 1\nmade 1 {}\nrevoked 2 {}\n", &back));
  ASSERT_EQ(back.size(), 1u) << "the lines that read: a revocation is never the worse for it";
  EXPECT_EQ(back[0].type, kApiKeyRevoked);
  EXPECT_TRUE(SharedKeys::DecodeUnshared("dfm-keys-unshared 1\n", &back));
  std::ofstream(dir.Sub("keys-unshared")) << "dfm-keys-unshared 1\nrevoked 2 {}\ncreated 1";
  EXPECT_EQ(SharedKeys::LoadUnshared(dir.path(), &back).code(), Status::Code::kCorruption);
  EXPECT_EQ(back.size(), 1u);
  EXPECT_TRUE(std::filesystem::exists(dir.Sub("keys-unshared.damaged"))) << "kept aside";
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("keys-unshared")));
}

}  // namespace
}  // namespace dfm
