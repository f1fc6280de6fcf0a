// The replay tools in cluster mode (replay-tools/cli.h): with no -d they
// read a copy of one tenant's partition, which other tenants share.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <fstream>

#include "replay-tools/cli.h"
#include "storage/rocksdb_event_log.h"
#include "sync/domain_event.h"
#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

// A partition's copy holding an opt-out of tenant default and one of acme
// (tenants hashed to the same partition).
void WriteSharedPartition(const std::string& dir) {
  RocksDbLogOptions o;
  o.path = dir;
  std::unique_ptr<RocksDbEventLog> log;
  ASSERT_TRUE(RocksDbEventLog::Open(o, &log).ok());
  for (const auto& [tenant, phone] :
       {std::pair{"default", "+12055550142"}, std::pair{"acme", "+12055550199"}}) {
    DomainEvent out;
    out.type = std::string(ev::kOptedOut);
    out.contact_id = std::string("c-") + tenant;
    out.system = "verity";
    out.channel = "sms";
    out.fields = {{"phone", phone}};
    AppendOutcome done;
    ASSERT_TRUE(
        log->Append(ToDraft(out, tenant, ContactStream(out.contact_id), {}, {}), &done).ok());
  }
  log->Close();
}

TEST(ClusterTools, AnAuditWithoutTenantReadsOnlyTheDefaultTenantOfThePartition) {
  testing::TempDir dir;
  const std::string copy = dir.path() + "/p001";
  WriteSharedPartition(copy);
  const std::string config = dir.path() + "/dfm.toml";
  std::ofstream(config) << "[storage]\ndata_dir = \"" << dir.path() << "/data\"\n"
                        << "[cluster]\nenabled = true\nnats_urls = [\"nats://127.0.0.1:1\"]\n"
                        << "[tenants.acme.verity]\nwebhook_secret = \"s\"\n";
  CLI::App app;
  std::string config_path;
  ReplayTools tools(&app, &config_path);
  std::string asked;
  tools.SetClusterLogs([&](const Config&, const std::string& tenant, std::string* out) {
    asked = tenant;
    *out = copy;
    return Status::OK();
  });
  app.parse("audit opt-outs -c " + config + " --format json", false);
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  const int rc = tools.Run();
  const std::string printed = ::testing::internal::GetCapturedStdout();
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(asked, "default");
  EXPECT_NE(printed.find("+12055550142"), std::string::npos) << printed;
  EXPECT_EQ(printed.find("+12055550199"), std::string::npos) << "acme's, in default's partition:\n"
                                                             << printed;
}

}  // namespace
}  // namespace dfm
