// The cluster's shared records (cluster/records_store.h) against a real
// nats-server with JetStream: the CasStore contract, one creator among
// nodes on separate connections, and a settled record that outlives a
// kill -9 of the server (file storage).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "cluster/records_store.h"
#include "connectors/common/vendor_records.h"
#include "tests/support/ports.h"
#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

// One nats-server with JetStream on a loopback port, its store in `dir`.
class NatsServer {
 public:
  NatsServer(const std::string& dir, int port) : dir_(dir), port_(port) { Start(); }
  ~NatsServer() { Kill(); }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  void Start() {
    pid_ = fork();
    if (pid_ == 0) {
      const std::string port = std::to_string(port_);
      execl("/usr/sbin/nats-server", "nats-server", "-js", "-a", "127.0.0.1", "-p", port.c_str(), "-sd",
            dir_.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  std::string dir_;
  int port_;
  pid_t pid_ = -1;
};

// Tries `fn` until it is OK or 20 s pass (a server starting).
Status Eventually(const std::function<Status()>& fn) {
  Status s;
  for (int i = 0; i < 200; ++i) {
    s = fn();
    if (s.ok()) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return s;
}

std::shared_ptr<CasStore> Open(const NatsServer& nats, const std::string& node) {
  std::shared_ptr<CasStore> store;
  Status s = Eventually([&] { return OpenRecordsStore({nats.url()}, node, NatsSecurity(), 1, &store); });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return store;
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

}  // namespace
}  // namespace dfm
