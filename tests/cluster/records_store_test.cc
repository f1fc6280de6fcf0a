// What the cluster's nodes share beside the logs, against a real
// nats-server with JetStream: the records (cluster/records_store.h: the
// CasStore contract, one creator among nodes on separate connections, a
// settled record that outlives a kill -9 of the server) and the
// connectors' replicated state (cluster/state_mirror.h: sealed, restored
// by the next node, never in clear in NATS).
#include "cluster/records_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cluster/state_mirror.h"
#include "connectors/common/vendor_records.h"
#include "storage/memory_event_log.h"
#include "tests/support/nats_server.h"
#include "tests/support/ports.h"
#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

using testing::Eventually;
using testing::NatsServer;

std::shared_ptr<CasStore> Open(const NatsServer& nats, const std::string& node) {
  std::shared_ptr<CasStore> store;
  Status s = Eventually([&] { return OpenRecordsStore({nats.url()}, node, NatsSecurity(), 1, &store); });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return store;
}

// A client of bucket DFM_TEST on `nats` (null, and a failure, when none opens).
std::unique_ptr<NatsClient> OpenTestBucket(const NatsServer& nats) {
  std::unique_ptr<NatsClient> c;
  Status s = Eventually(
      [&] { return OpenBucketClient("DFM_TEST", {nats.url()}, "n1", NatsSecurity(), 1, &c); });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return c;
}

TEST(RecordsStore, CompareAndSetOverNatsKeyValue) {
  testing::TempDir dir;
  NatsServer nats(dir.path(), testing::FreePort());
  std::shared_ptr<CasStore> store = Open(nats, "n1");
  ASSERT_TRUE(store);
  CasStore::Entry e;
  ASSERT_TRUE(Eventually([&] { return store->Get("r.k1", &e); }).ok());
  EXPECT_FALSE(e.present);
  ASSERT_TRUE(store->Create("r.k1", "a").ok());
  EXPECT_EQ(store->Create("r.k1", "b").code(), Status::Code::kAlreadyExists);
  ASSERT_TRUE(store->Get("r.k1", &e).ok());
  ASSERT_TRUE(e.present);
  EXPECT_EQ(e.value, "a");
  ASSERT_TRUE(store->Update("r.k1", "c", e.rev).ok());
  EXPECT_EQ(store->Update("r.k1", "d", e.rev).code(), Status::Code::kAlreadyExists);
  // The leader's read answers as Get does on one server.
  CasStore::Entry latest, replica;
  ASSERT_TRUE(store->GetLatest("r.k1", &latest).ok());
  ASSERT_TRUE(store->Get("r.k1", &replica).ok());
  EXPECT_TRUE(latest.present);
  EXPECT_EQ(latest.value, "c");
  EXPECT_EQ(latest.rev, replica.rev);
  ASSERT_TRUE(store->GetLatest("r.never", &latest).ok());
  EXPECT_FALSE(latest.present);
}

// The leader's read of a key deleted (as a lease is given up) is absent,
// as the replicas' read is.
TEST(RecordsStore, TheLeadersReadOfADeletedKeyIsAbsent) {
  testing::TempDir dir;
  NatsServer nats(dir.path(), testing::FreePort());
  std::unique_ptr<NatsClient> c = OpenTestBucket(nats);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->KvPut("k", "v").ok());
  NatsClient::KvEntry e;
  ASSERT_TRUE(c->KvGetLatest("k", &e).ok());
  EXPECT_TRUE(e.present);
  EXPECT_EQ(e.value, "v");
  ASSERT_TRUE(c->KvDelete("k").ok());
  ASSERT_TRUE(c->KvGetLatest("k", &e).ok());
  EXPECT_FALSE(e.present);
  EXPECT_GT(e.rev, 0u);
  // The leader lists every key written, the deleted one too.
  ASSERT_TRUE(c->KvPut("t.a.b", "w").ok());
  std::vector<std::string> keys;
  ASSERT_TRUE(c->KvKeysLatest(&keys).ok());
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"k", "t.a.b"}));
}

// A bucket's keys are listed whole however many there are, in one
// request (the lease coordinator's, the API keys' and the sync control's
// listings), a deleted one too, which reads absent; an empty bucket lists
// none.
TEST(RecordsStore, EveryKeyIsListedHoweverManyAndADeletedOneReadsAbsent) {
  testing::TempDir dir;
  NatsServer nats(dir.path(), testing::FreePort());
  std::unique_ptr<NatsClient> c = OpenTestBucket(nats);
  ASSERT_TRUE(c);
  std::vector<std::string> keys;
  Status s = c->KvKeysLatest(&keys);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(keys.empty());
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(c->KvPut("k." + std::to_string(i), "v").ok());
  ASSERT_TRUE(c->KvDelete("k.7").ok());
  s = c->KvKeysLatest(&keys);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(keys.size(), 2000u);
  EXPECT_EQ(std::count(keys.begin(), keys.end(), "k.1999"), 1);
  ASSERT_EQ(std::count(keys.begin(), keys.end(), "k.7"), 1);
  NatsClient::KvEntry e;
  ASSERT_TRUE(c->KvGet("k.7", &e).ok());
  EXPECT_FALSE(e.present);
}

TEST(RecordsStore, OneCreatorAmongNodesAndTheRecordOutlivesAServerKill) {
  testing::TempDir dir;
  const int port = testing::FreePort();
  auto nats = std::make_unique<NatsServer>(dir.path(), port);
  VendorRecords n1(Open(*nats, "n1"), "t1/halopsa"), n2(Open(*nats, "n2"), "t1/halopsa");
  std::string id;
  int64_t busy = 0;
  ASSERT_EQ(n1.Take("client n:umbrella labs", &id, &busy), VendorRecords::Claim::kMine);
  EXPECT_EQ(n2.Take("client n:umbrella labs", &id, &busy), VendorRecords::Claim::kBusy);
  ASSERT_TRUE(n1.Settle("client n:umbrella labs", "12").ok());
  EXPECT_EQ(n2.Take("client n:umbrella labs", &id, &busy), VendorRecords::Claim::kKnown);
  EXPECT_EQ(id, "12");

  nats->Kill();  // kill -9, then the same store again
  nats = std::make_unique<NatsServer>(dir.path(), port);
  VendorRecords n3(Open(*nats, "n3"), "t1/halopsa");
  VendorRecords::Claim c = VendorRecords::Claim::kUnavailable;
  for (int i = 0; i < 100 && c == VendorRecords::Claim::kUnavailable; ++i) {
    c = n3.Take("client n:umbrella labs", &id, &busy);
    if (c == VendorRecords::Claim::kUnavailable) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(c, VendorRecords::Claim::kKnown);
  EXPECT_EQ(id, "12");
}

const std::string kStateKey(64, 'a');

TEST(StateMirror, EntriesAreSealedForTheirKeyAndNameTheirTenant) {
  const std::string key(32, 'k');
  const std::string k = StateMirror::EntryKey("acme", "credentials", "acme\x1fghl");
  std::string tenant;
  ASSERT_TRUE(StateMirror::TenantOf(k, &tenant));
  EXPECT_EQ(tenant, "acme");
  EXPECT_EQ(k.find("ghl"), std::string::npos);
  const std::string sealed = StateMirror::Seal(key, k, StateEntry{"n1", "credentials", "acme\x1fghl", "grant"});
  EXPECT_EQ(sealed.find("grant"), std::string::npos);
  StateEntry e;
  ASSERT_TRUE(StateMirror::Unseal(key, k, sealed, &e));
  EXPECT_EQ(e.writer, "n1");
  EXPECT_EQ(e.value, "grant");
  EXPECT_FALSE(StateMirror::Unseal(std::string(32, 'x'), k, sealed, &e));  // another key
  EXPECT_FALSE(StateMirror::Unseal(key, StateMirror::EntryKey("other", "credentials", "k"), sealed, &e));
  std::string cut = sealed;
  cut.back() ^= 1;
  EXPECT_FALSE(StateMirror::Unseal(key, k, cut, &e));
  EXPECT_FALSE(StateMirror::TenantOf("r.0123", &tenant));
}

// Every file under `dir`, read whole.
std::string AllBytes(const std::string& dir) {
  std::string all;
  for (const auto& f : std::filesystem::recursive_directory_iterator(dir)) {
    if (!f.is_regular_file()) continue;
    std::ifstream in(f.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    all += ss.str();
  }
  return all;
}

TEST(StateMirror, TheNextNodeRestoresItsTenantsStateAndNATSHoldsNoneInClear) {
  testing::TempDir dir;
  NatsServer nats(dir.path(), testing::FreePort());
  auto open = [&](const std::string& node) {
    std::unique_ptr<StateMirror> m;
    Status s = Eventually([&] { return StateMirror::Open({nats.url()}, node, NatsSecurity(), 1, kStateKey, &m); });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return m;
  };
  auto n1 = open("n1");
  ASSERT_TRUE(n1);
  ASSERT_TRUE(n1->Put("acme", "credentials", {StateOp{"acme/ghl", "refresh-SECRET-2", false}}).ok());
  ASSERT_TRUE(n1->Put("acme", "credits", {StateOp{"acme/apollo", "20000\n3", false}}).ok());
  ASSERT_TRUE(n1->Put("globex", "credentials", {StateOp{"globex/ghl", "refresh-OTHER", false}}).ok());
  ASSERT_TRUE(n1->Put("acme", "credentials", {StateOp{"acme/old", "x", false}}).ok());
  ASSERT_TRUE(n1->Put("acme", "credentials", {StateOp{"acme/old", "", true}}).ok());  // erased

  // n2 takes over acme's partition: acme's state, not globex's.
  auto n2 = open("n2");
  MemoryEventLog log;
  ASSERT_TRUE(log.CommitConsumerDurable("credentials", 0, {StateOp{"acme/ghl", "refresh-SPENT-1", false}}).ok());
  int restored = 0, unreadable = 0;
  ASSERT_TRUE(n2->Restore(&log, [](const std::string& t) { return t == "acme"; }, &restored, &unreadable).ok());
  EXPECT_EQ(unreadable, 0);
  EXPECT_EQ(restored, 2);
  std::string v;
  ASSERT_TRUE(log.GetConsumerState("credentials", "acme/ghl", &v).ok());
  EXPECT_EQ(v, "refresh-SECRET-2");  // the newest grant, over the spent one
  ASSERT_TRUE(log.GetConsumerState("credits", "acme/apollo", &v).ok());
  EXPECT_EQ(v, "20000\n3");
  EXPECT_TRUE(log.GetConsumerState("credentials", "globex/ghl", &v).IsNotFound());
  EXPECT_TRUE(log.GetConsumerState("credentials", "acme/old", &v).IsNotFound());

  // n1's own entries are not taken over a local copy n1 holds (written first).
  MemoryEventLog n1_log;
  ASSERT_TRUE(n1_log.CommitConsumerDurable("credentials", 0, {StateOp{"acme/ghl", "refresh-NEWER-3", false}}).ok());
  ASSERT_TRUE(n1->Restore(&n1_log, [](const std::string& t) { return t == "acme"; }, &restored, &unreadable).ok());
  ASSERT_TRUE(n1_log.GetConsumerState("credentials", "acme/ghl", &v).ok());
  EXPECT_EQ(v, "refresh-NEWER-3");

  // A wrong key takes nothing (each entry logged and counted), and the
  // partition still starts.
  std::unique_ptr<StateMirror> wrong;
  ASSERT_TRUE(StateMirror::Open({nats.url()}, "n3", NatsSecurity(), 1, std::string(64, 'b'), &wrong).ok());
  MemoryEventLog other;
  ASSERT_TRUE(wrong->Restore(&other, [](const std::string&) { return true; }, &restored, &unreadable).ok());
  EXPECT_EQ(restored, 0);
  EXPECT_EQ(unreadable, 3);
  EXPECT_TRUE(other.GetConsumerState("credentials", "acme/ghl", &v).IsNotFound());

  // NATS's store holds the secrets sealed only.
  const std::string stored = AllBytes(dir.path());
  EXPECT_EQ(stored.find("refresh-SECRET-2"), std::string::npos);
  EXPECT_EQ(stored.find("refresh-OTHER"), std::string::npos);
}

}  // namespace
}  // namespace dfm
