// The per-client limits (http/client_limits.h), without HTTP.
#include <gtest/gtest.h>

#include "http/client_limits.h"

namespace dfm {
namespace {

TEST(PeerConnections, CapsEachPeerButNotTrustedProxies) {
  PeerConnections peers(2, {"127.0.0.1"});
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(peers.MayOpen("203.0.113.5"));
    peers.Opened("203.0.113.5");
  }
  EXPECT_FALSE(peers.MayOpen("203.0.113.5"));
  EXPECT_TRUE(peers.MayOpen("203.0.113.6"));  // another peer has its own
  peers.Closed("203.0.113.5");
  EXPECT_TRUE(peers.MayOpen("203.0.113.5"));
  for (int i = 0; i < 100; ++i) peers.Opened("127.0.0.1");  // the proxy: everyone's
  EXPECT_TRUE(peers.MayOpen("127.0.0.1"));
  EXPECT_EQ(peers.Open("127.0.0.1"), 0);
  PeerConnections off(0, {});
  for (int i = 0; i < 100; ++i) off.Opened("203.0.113.5");
  EXPECT_TRUE(off.MayOpen("203.0.113.5"));
}

TEST(RequestRateLimiter, BurstsOfTwiceTheRateThenTheRate) {
  RequestRateLimiter limiter(10);  // 10 a second, bursts of 20
  int retry = 0;
  int64_t t = 1'000'000;
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(limiter.Take("a", t, &retry)) << i;
  EXPECT_FALSE(limiter.Take("a", t, &retry));
  EXPECT_EQ(retry, 1);
  EXPECT_TRUE(limiter.Take("b", t, &retry));  // per client
  t += 100'000;                               // 0.1 s: one more
  EXPECT_TRUE(limiter.Take("a", t, &retry));
  EXPECT_FALSE(limiter.Take("a", t, &retry));
  t += 10'000'000;  // refilled to the burst, not beyond
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(limiter.Take("a", t, &retry));
  EXPECT_FALSE(limiter.Take("a", t, &retry));
  RequestRateLimiter off(0);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(off.Take("a", t, &retry));
  EXPECT_EQ(off.tracked(), 0u);
}

TEST(RequestRateLimiter, ASlowRateSaysHowLongToWait) {
  RequestRateLimiter limiter(1);  // bursts of 2
  int retry = 0;
  ASSERT_TRUE(limiter.Take("a", 0, &retry));
  ASSERT_TRUE(limiter.Take("a", 0, &retry));
  EXPECT_FALSE(limiter.Take("a", 0, &retry));
  EXPECT_EQ(retry, 1);
}

TEST(ClientAddress, ThePeerOrTheClientATrustedProxyNames) {
  const std::vector<std::string> trusted = {"127.0.0.1", "10.0.0.2"};
  EXPECT_EQ(ClientAddress("203.0.113.5", "198.51.100.1", trusted), "203.0.113.5")
      << "an untrusted peer's forwarded header is the peer's to write";
  EXPECT_EQ(ClientAddress("127.0.0.1", "198.51.100.1, 203.0.113.9", trusted), "203.0.113.9");
  EXPECT_EQ(ClientAddress("127.0.0.1", "198.51.100.1, 203.0.113.9, 10.0.0.2", trusted),
            "203.0.113.9");  // proxies chained: the first address none of them is
  EXPECT_EQ(ClientAddress("127.0.0.1", "", trusted), "");  // the proxy itself, or a local tool
}

}  // namespace
}  // namespace dfm
