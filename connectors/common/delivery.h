// Delivery policy of a connector, pure and clock-driven (no threads, no
// I/O), so the connector actor stays thin and tests drive time by hand.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>

namespace dfm {

// What to do after an HTTP attempt.
enum class AttemptOutcome { kOk, kRetry, kFail };
// 2xx: ok. 408, 429, 5xx and transport errors (status 0): retry. Any other
// 4xx: fail for good (the request itself is wrong; retrying cannot help).
AttemptOutcome ClassifyAttempt(int http_status);

// Exponential backoff with full jitter: attempt n (1-based) waits a uniform
// draw from [0, min(max, base * 2^(n-1))]. `unit` in [0, 1) is the draw.
struct Backoff {
  int64_t base_us = 500'000;
  int64_t max_us = 5LL * 60 * 1'000'000;
  int max_attempts = 12;  // then the push is dead-lettered
  int64_t Delay(int attempt, double unit) const;
};

// A vendor's limit of `limit` requests per sliding `window_us`, plus a daily
// cap; what the vendor's X-RateLimit-* headers or a 429's Retry-After say
// overrides the local count.
class RateLimiter {
 public:
  RateLimiter(int limit, int64_t window_us, int64_t daily_limit);
  // The earliest time (>= now) a request may be sent. Once the daily cap
  // is reached (counted here, or the vendor says none remain), other
  // requests wait for the end of the day counted from the first send; a
  // `consent` request (an opt-out or opt-in) may go an hour
  // (kDailyConsentProbeUs) after the cap was last seen reached: the
  // vendor's day may have reset before ours (no vendor says when), and an
  // opt-out must not wait a day. Its answer's daily count then tells.
  // `pending`: requests about to go (their push.sending being recorded),
  // counted as sent now in the window and the day's count.
  int64_t NextAllowed(int64_t now_us, bool consent = false, int pending = 0) const;
  void OnSent(int64_t now_us);
  // The vendor says `remaining` requests are left in the current window
  // (X-RateLimit-Remaining) or `daily_remaining` today. The day's count is
  // the higher of ours and the vendor's; more remaining than the vendor
  // last said (by over kVendorResetMargin) is its new day, ours too.
  // `sent_us`: when the request answered went (now when not given).
  void OnHeaders(int64_t now_us, std::optional<int> remaining,
                 std::optional<int64_t> daily_remaining,
                 std::optional<int64_t> sent_us = std::nullopt);
  // Whether the daily cap is spent now (counted here, or the vendor said
  // none remain): a 429 then answers the day, not a passing burst.
  bool DailyCapReached(int64_t now_us) const;
  // A 429: nothing before now + retry_after (a window when not given).
  void OnThrottled(int64_t now_us, std::optional<int64_t> retry_after_us);
  // A reload's limits, for what goes next: the sends counted so far, a
  // Retry-After and the day's count stay.
  void SetLimits(int limit, int64_t window_us, int64_t daily_limit, int64_t now_us);

 private:
  int limit_;
  int64_t window_us_;
  int64_t daily_limit_;
  std::deque<int64_t> sent_;  // send times within the window
  int64_t blocked_until_ = 0;
  int64_t day_start_ = -1;  // the daily count runs from the first send; -1: none yet
  int64_t day_count_ = 0;
  void NewDay(int64_t now_us);
  void NoteFull(int64_t now_us);
  // Whether the day's count with `pending` more reaches the daily cap.
  bool DayFull(int64_t now_us, int pending) const;

  int64_t day_full_at_ = -1;  // when the daily cap was last seen reached; -1: not today
  int64_t full_since_ = -1;   // when it was first seen reached today; -1: not today
  int64_t vendor_low_ = -1;   // the fewest remaining the vendor said today; -1: none
};

inline constexpr int64_t kDailyConsentProbeUs = 3600LL * 1'000'000;
// More than the requests in flight whose answers may arrive out of order.
inline constexpr int64_t kVendorResetMargin = 64;

// Closed -> (threshold consecutive failures) -> open for open_us -> half-open
// (one trial request) -> closed on success, open again on failure.
class CircuitBreaker {
 public:
  CircuitBreaker(int threshold, int64_t open_us) : threshold_(threshold), open_us_(open_us) {}
  enum class State { kClosed, kOpen, kHalfOpen };
  // May a request be sent now? In half-open, true once until it reports.
  bool Allow(int64_t now_us);
  void OnSuccess();
  void OnFailure(int64_t now_us);
  // The request ended saying nothing of an outage (a 429, a refusal known to
  // pass, a push cancelled): a half-open trial is over, the next may go.
  // Without it the breaker waited for that trial for ever (found by the
  // simulation, tests/sim seed 455).
  void OnNeutral() { trial_out_ = false; }
  State state(int64_t now_us) const;
  int64_t reopens_at() const { return open_until_; }
  // A reload's settings, for the failures to come: an open breaker stays
  // open until its time, and the failures counted stay.
  void SetLimits(int threshold, int64_t open_us) {
    threshold_ = threshold;
    open_us_ = open_us;
  }

 private:
  int threshold_;
  int64_t open_us_;
  int failures_ = 0;
  int64_t open_until_ = 0;
  bool open_ = false;
  bool trial_out_ = false;
};

}  // namespace dfm
