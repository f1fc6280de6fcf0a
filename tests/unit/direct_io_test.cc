// Table files written around the page cache (storage/durable_file.h,
// TakesDirectWrites; RocksDbEventLog::WritesTablesDirect): where the
// data directory takes O_DIRECT, and the log working as before where it
// does not (ramfs).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "storage/durable_file.h"
#include "storage/rocksdb_event_log.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_logs.h"

namespace dfm {
namespace {

using testing::OpenRocks;
using testing::TempDir;

constexpr long kTmpfsMagic = 0x01021994;

bool OnTmpfs(const std::string& dir) {
  struct statfs st {};
  return ::statfs(dir.c_str(), &st) == 0 && st.f_type == kTmpfsMagic;
}

// A ramfs (which refuses O_DIRECT) mounted on a temporary directory for
// the object's life; empty `path` where it cannot be (not root).
struct Ramfs {
  Ramfs() {
    if (::geteuid() != 0) return;
    if (::mount("dfm-test", dir.path().c_str(), "ramfs", 0, nullptr) == 0) path = dir.path();
  }
  ~Ramfs() {
    if (path.empty()) return;
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(path, ec))
      std::filesystem::remove_all(f.path(), ec);
    ::umount(path.c_str());
  }
  TempDir dir;
  std::string path;
};

// Event i's 2 KiB payload, which LZ4 does not shrink.
std::string Payload(int i) {
  std::string p(2048, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(i + 1);
  for (char& c : p) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>('a' + x % 26);
  }
  return p;
}

// Appends `n` events of ~2 KiB, then flushes every column family to
// table files.
void FillAndFlush(RocksDbEventLog* log, int n) {
  std::vector<EventDraft> drafts;
  for (int i = 0; i < n; ++i) {
    EventDraft d;
    d.tenant = "default";
    d.stream = "contact:c" + std::to_string(i % 50);
    d.type = "test.event";
    d.payload = Payload(i);
    drafts.push_back(std::move(d));
  }
  std::vector<AppendOutcome> out;
  ASSERT_TRUE(log->Append(std::move(drafts), &out).ok());
  ASSERT_TRUE(log->CompactDerived().ok());  // flushes every column family
}

// The table files in `dir`, biggest first (the events').
std::vector<std::string> TableFiles(const std::string& dir) {
  std::vector<std::pair<uintmax_t, std::string>> found;
  for (const auto& f : std::filesystem::directory_iterator(dir))
    if (f.path().extension() == ".sst") found.emplace_back(f.file_size(), f.path().string());
  std::sort(found.rbegin(), found.rend());
  std::vector<std::string> names;
  for (auto& f : found) names.push_back(f.second);
  return names;
}

// Whether the first page of `path` is in the page cache.
bool FirstPageCached(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  void* map = ::mmap(nullptr, page, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  EXPECT_NE(map, MAP_FAILED);
  unsigned char resident = 0;
  EXPECT_EQ(::mincore(map, page, &resident), 0);
  ::munmap(map, page);
  return resident & 1;
}

void ExpectReadsBack(RocksDbEventLog* log, int n) {
  std::vector<Event> events;
  ASSERT_TRUE(log->Read(1, static_cast<size_t>(n) + 1, &events).ok());
  ASSERT_EQ(events.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; i += 97) EXPECT_EQ(events[static_cast<size_t>(i)].payload, Payload(i));
}

TEST(DirectWrites, AFileSystemThatRefusesThemGetsBufferedTablesAndWorks) {
  Ramfs ramfs;
  if (ramfs.path.empty()) GTEST_SKIP() << "mounting a ramfs needs root";
  EXPECT_FALSE(TakesDirectWrites(ramfs.path));
  EXPECT_FALSE(TakesDirectWrites(ramfs.path + "/missing"));
  {
    auto log = OpenRocks(ramfs.path + "/log");
    ASSERT_TRUE(log);
    EXPECT_FALSE(log->WritesTablesDirect());
    FillAndFlush(log.get(), 1000);
    EXPECT_FALSE(TableFiles(ramfs.path + "/log").empty());
    log->Close();
  }
  auto log = OpenRocks(ramfs.path + "/log");  // read back from the table files
  ASSERT_TRUE(log);
  ExpectReadsBack(log.get(), 1000);
  // Nothing of the probe's is left.
  for (const auto& f : std::filesystem::directory_iterator(ramfs.path + "/log"))
    EXPECT_EQ(f.path().filename().string().rfind(kDirectProbePrefix, 0), std::string::npos);
}

TEST(DirectWrites, AFlushedTableIsWrittenAroundThePageCache) {
  TempDir dir;
  if (!TakesDirectWrites(dir.path())) GTEST_SKIP() << dir.path() << " refuses O_DIRECT";
  if (OnTmpfs(dir.path())) GTEST_SKIP() << "tmpfs keeps its files in the page cache";
  {
    auto log = OpenRocks(dir.Sub("log"));
    ASSERT_TRUE(log);
    EXPECT_TRUE(log->WritesTablesDirect());
    // ~2 MiB of events: the events' table file is bigger than the tail
    // RocksDB reads back when it opens the file after the flush, so its
    // first page was only ever written.
    FillAndFlush(log.get(), 1000);
    const std::vector<std::string> tables = TableFiles(dir.Sub("log"));
    ASSERT_FALSE(tables.empty());
    EXPECT_GT(std::filesystem::file_size(tables[0]), 1u << 20);
    EXPECT_FALSE(FirstPageCached(tables[0])) << tables[0];
    ExpectReadsBack(log.get(), 1000);
    log->Close();
  }
  auto log = OpenRocks(dir.Sub("log"));
  ASSERT_TRUE(log);
  ExpectReadsBack(log.get(), 1000);
}

TEST(DirectWrites, AProbeACrashLeftIsRemovedAtTheNextOpen) {
  TempDir dir;
  { auto log = OpenRocks(dir.Sub("log")); }
  const std::string left = dir.Sub("log") + "/" + kDirectProbePrefix + "a1b2c3";
  std::ofstream(left) << std::string(4096, '\0');
  ASSERT_TRUE(std::filesystem::exists(left));
  auto log = OpenRocks(dir.Sub("log"));
  ASSERT_TRUE(log);
  EXPECT_FALSE(std::filesystem::exists(left));
}

}  // namespace
}  // namespace dfm
