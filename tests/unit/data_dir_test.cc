// What `dfm config check` and `dfm serve` say about a data directory others
// may read (storage/data_dir.h).
#include "storage/data_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "storage/key_store.h"
#include "storage/rocksdb_event_log.h"
#include "tests/support/erasure_drafts.h"
#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

TEST(DataDir, FindsWhatOthersMayReadAndSaysWhatToDo) {
  testing::TempDir d;
  const std::string dir = d.Sub("data");
  EXPECT_TRUE(LooseModes(dir).empty());  // not there yet: nothing to say
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  std::ofstream(dir + "/000004.log") << "x";
  ASSERT_EQ(::chmod((dir + "/000004.log").c_str(), 0600), 0);
  EXPECT_TRUE(LooseModes(dir).empty());
  EXPECT_EQ(DescribeLooseModes(dir, {}), "");

  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod((dir + "/000004.log").c_str(), 0644), 0);
  auto loose = LooseModes(dir);
  ASSERT_EQ(loose.size(), 2u);
  EXPECT_EQ(loose[0].path, dir);
  EXPECT_EQ(loose[0].mode, 0755u);
  EXPECT_EQ(DescribeLooseModes(dir, loose),
            dir + " is open to others (mode 0755), and so is 1 entry in it (e.g. 000004.log, "
                  "mode 0644): it holds webhook bodies with personal data and OAuth grants; "
                  "`chmod -R go-rwx " + dir + "`");
  ASSERT_EQ(::chmod(dir.c_str(), 0700), 0);
  EXPECT_EQ(LooseModes(dir).size(), 1u);
}

// Opens the log and key store in `dir` for writing, appends one webhook and
// closes both.
void AppendOnce(const std::string& dir, const std::string& id) {
  std::unique_ptr<RocksDbKeyStore> ks;
  ASSERT_TRUE(RocksDbKeyStore::Open(KeyStorePath(dir), false, &ks).ok());
  RocksDbLogOptions o;
  o.path = dir;
  o.keys = std::move(ks);
  std::unique_ptr<RocksDbEventLog> log;
  ASSERT_TRUE(RocksDbEventLog::Open(o, &log).ok());
  AppendOutcome out;
  ASSERT_TRUE(log->Append(testing::GhlWebhook("{}", id), &out).ok());
}

// A tool given another directory (a wrong -c, or none: ./data) opened it
// for writing and so made an empty log there: a backfill's contacts or an
// erasure went into it, never into the service's log.
TEST(DataDir, AToolWritesOnlyWhereTheServicesLogIs) {
  testing::TempDir d;
  const std::string dir = d.Sub("nowhere");
  EXPECT_TRUE(FindLogAt(dir).IsNotFound());
  std::shared_ptr<KeyStore> keys;
  Status s = OpenToolKeys(dir, /*read_only=*/false, &keys);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find("no event log at " + dir), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir)) << "nothing made";
  AppendOnce(d.Sub("data"), "w-1");  // the service's
  EXPECT_TRUE(FindLogAt(d.Sub("data")).ok());
  EXPECT_TRUE(OpenToolKeys(d.Sub("data"), /*read_only=*/false, &keys).ok());
}

// `dfm log recover` or an offline backup run as root rewrote CURRENT,
// MANIFEST, OPTIONS and a WAL as root, mode 0600: the service, its own
// user, could not open its data directory again (a restart loop).
TEST(DataDir, AToolRunAsRootLeavesTheFilesToTheDirectorysOwner) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, as the suite runs in CI";
  testing::TempDir d;
  const std::string dir = d.Sub("data");
  constexpr uid_t kService = 65534;  // nobody: the service's user here
  AppendOnce(dir, "w-1");
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    ASSERT_EQ(::lchown(e.path().c_str(), kService, kService), 0);
  ASSERT_EQ(::lchown(dir.c_str(), kService, kService), 0);
  const std::string outside = d.Sub("root-only");  // root's, reached by a link planted in the tree
  std::ofstream(outside) << "secret";
  std::filesystem::create_symlink(outside, dir + "/keys/planted");
  AppendOnce(dir, "w-2");  // as root, the service stopped: a writable open, an append, a close
  size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    struct stat st;
    ASSERT_EQ(::lstat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, kService) << e.path();
    ++files;
  }
  EXPECT_GT(files, 5u);
  struct stat st;
  ASSERT_EQ(::stat(outside.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u) << "a link is never followed";
}

}  // namespace
}  // namespace dfm
