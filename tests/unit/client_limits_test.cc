// The per-client limits (http/client_limits.h), without HTTP; and how
// answers reach the I/O thread (http/answer_queue.h, util/burst.h).
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "http/answer_queue.h"
#include "http/client_limits.h"
#include "util/burst.h"

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

// ---- answers handed to the I/O thread (http/answer_queue.h, util/burst.h) ----

namespace dfm {
namespace {

TEST(Burst, DefersFlushesToTheOutermostEndInOrder) {
  std::vector<int> ran;
  EXPECT_FALSE(Burst::Defer([&] { ran.push_back(0); })) << "no burst open: nothing deferred";
  {
    Burst outer;
    EXPECT_TRUE(Burst::Defer([&] { ran.push_back(1); }));
    {
      Burst inner;
      EXPECT_TRUE(Burst::Defer([&] {
        ran.push_back(2);
        Burst again;  // a flush that defers more: it runs too
        Burst::Defer([&] { ran.push_back(3); });
      }));
    }
    EXPECT_TRUE(ran.empty()) << "the inner burst's end is not the outermost";
  }
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
}

TEST(AnswerQueue, ABurstsAnswersReachTheIoThreadTogetherAtItsEnd) {
  asio::io_context io;
  AnswerQueue answers(io);
  std::vector<int> ran;
  {
    Burst burst;
    for (int i = 0; i < 3; ++i) answers.Post([&ran, i] { ran.push_back(i); });
    EXPECT_EQ(io.poll(), 0u) << "nothing handed over before the burst ends";
  }
  io.restart();
  EXPECT_EQ(io.poll(), 1u) << "one handler for the whole burst";
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2}));
  io.restart();
  answers.Post([&ran] { ran.push_back(3); });  // no burst: handed over at once
  answers.Post([&ran] { ran.push_back(4); });  // joins the one already due
  EXPECT_EQ(io.poll(), 1u);
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(AnswerQueue, AnswersFromAnotherThreadRunOnTheIoThreadInOrder) {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread front([&] { io.run(); });
  AnswerQueue answers(io);
  std::vector<int> ran;  // touched only on `front`
  std::atomic<bool> wrong_thread{false};
  std::promise<void> done;
  for (int b = 0; b < 50; ++b) {
    Burst burst;
    for (int i = 0; i < 20; ++i) {
      answers.Post([&, n = b * 20 + i] {
        wrong_thread = wrong_thread || std::this_thread::get_id() != front.get_id();
        ran.push_back(n);
        if (n == 999) done.set_value();
      });
    }
  }
  ASSERT_EQ(done.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready)
      << "an answer never ran";
  work.reset();
  front.join();
  ASSERT_EQ(ran.size(), 1000u);
  for (int n = 0; n < 1000; ++n) EXPECT_EQ(ran[static_cast<size_t>(n)], n);
  EXPECT_FALSE(wrong_thread);
}

TEST(AnswerQueue, CloseDropsWaitingAndLaterAnswersUnrun) {
  asio::io_context io;
  AnswerQueue answers(io);
  auto held = std::make_shared<int>(0);  // what an answer holds (its connection)
  bool ran = false;
  answers.Post([held, &ran] { ran = true; });
  EXPECT_EQ(held.use_count(), 2);
  answers.Close();
  EXPECT_EQ(held.use_count(), 1) << "the waiting answer is gone";
  answers.Post([held, &ran] { ran = true; });
  EXPECT_EQ(held.use_count(), 1) << "a later one is dropped at once";
  io.poll();
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace dfm
