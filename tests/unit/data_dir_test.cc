// What `dfm config check` and `dfm serve` say about a data directory others
// may read (storage/data_dir.h).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "storage/data_dir.h"
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

}  // namespace
}  // namespace dfm
