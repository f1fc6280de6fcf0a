// dfm diagnose's pure parts (app/diagnose.h, connectors/common/probe.h):
// the clock and rate-limit lines from the vendors' answers, and the output.
#include <gtest/gtest.h>

#include <sstream>

#include "app/diagnose.h"
#include "connectors/common/probe.h"

namespace dfm {
namespace {

constexpr int64_t kSecond = 1000000;

ProbeResult Answer(int64_t vendor_s, int64_t local_us, int64_t rtt_us = 20000) {
  ProbeResult r;
  r.vendor_time_us = vendor_s * kSecond;
  r.local_time_us = local_us;
  r.round_trip_us = rtt_us;
  return r;
}

TEST(DiagnoseTest, HttpDatesRead) {
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), std::optional<int64_t>(784111777LL * kSecond));
  EXPECT_FALSE(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"));
  EXPECT_FALSE(ParseHttpDate(""));
  EXPECT_FALSE(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT trailing"));
}

TEST(DiagnoseTest, TheClockIsJudgedByTheFurthestVendor) {
  const int64_t now = 1'800'000'000 * kSecond;
  auto line = ClockLine({{"A", Answer(1'800'000'000, now + 300000)},
                         {"B", Answer(1'800'000'002, now)}},
                        30 * kSecond);
  EXPECT_EQ(line.state, ProbeCheck::State::kOk);
  EXPECT_NE(line.detail.find("B"), std::string::npos) << line.detail;
  line = ClockLine({{"A", Answer(1'800'000'045, now)}}, 30 * kSecond);
  EXPECT_EQ(line.state, ProbeCheck::State::kFail);
  EXPECT_NE(line.detail.find("-45.5 s"), std::string::npos) << line.detail;
  EXPECT_NE(line.hint.find("chrony"), std::string::npos);
  EXPECT_EQ(ClockLine({{"A", ProbeResult{}}}, 30 * kSecond).state, ProbeCheck::State::kSkipped);
}

TEST(DiagnoseTest, RateHeadroomFromTheVendorsHeaders) {
  ProbeResult r;
  EXPECT_TRUE(RateLine("GHL", r).check.empty()) << "nothing said: no line";
  r.rate_remaining = 98;
  r.rate_limit = 100;
  r.daily_remaining = 199998;
  r.daily_limit = 200000;
  DiagnoseLine line = RateLine("GHL", r);
  EXPECT_EQ(line.state, ProbeCheck::State::kOk);
  EXPECT_EQ(line.detail, "98 of 100 left in this window; 199,998 of 200,000 left today");
  r.daily_remaining = 9999;  // under 5%
  EXPECT_EQ(RateLine("GHL", r).state, ProbeCheck::State::kFail);
  r.daily_remaining = 150000;
  r.rate_remaining = 0;
  EXPECT_EQ(RateLine("GHL", r).state, ProbeCheck::State::kFail);
}

TEST(DiagnoseTest, OneLinePerCheckAndExitOneOnAnyFailure) {
  std::vector<DiagnoseLine> lines = {{"configuration", ProbeCheck::State::kOk, "x.toml: OK", ""},
                                     {"service", ProbeCheck::State::kSkipped, "not running", ""}};
  std::ostringstream text;
  EXPECT_EQ(PrintDiagnosis(lines, false, text), 0);
  EXPECT_EQ(text.str(), "✓ configuration: x.toml: OK\n– service: not running\nEverything checked is fine.\n");
  lines.push_back({"Verity [default] API key", ProbeCheck::State::kFail, "refused", "renew it"});
  std::ostringstream json, failing;
  EXPECT_EQ(PrintDiagnosis(lines, true, json), 1);
  EXPECT_EQ(json.str().rfind("{\"ok\":false,\"checks\":[", 0), 0u) << json.str();
  EXPECT_NE(json.str().find("\"state\":\"skipped\""), std::string::npos);
  EXPECT_NE(json.str().find("\"hint\":\"renew it\""), std::string::npos);
  EXPECT_EQ(PrintDiagnosis(lines, false, failing), 1);
  EXPECT_NE(failing.str().find("✗ Verity [default] API key: refused\n    fix: renew it\n"),
            std::string::npos);
}

}  // namespace
}  // namespace dfm
