#include "connectors/common/delivery.h"

#include <algorithm>

namespace dfm {

AttemptOutcome ClassifyAttempt(int s) {
  if (s >= 200 && s < 300) return AttemptOutcome::kOk;
  if (s == 0 || s == 408 || s == 429 || s >= 500) return AttemptOutcome::kRetry;
  return AttemptOutcome::kFail;
}

int64_t Backoff::Delay(int attempt, double unit) const {
  int64_t cap = base_us;
  for (int i = 1; i < attempt && cap < max_us; ++i) cap *= 2;
  cap = std::min(cap, max_us);
  unit = std::clamp(unit, 0.0, 1.0);
  return static_cast<int64_t>(static_cast<double>(cap) * unit);
}

constexpr int64_t kDayUs = 24LL * 3600 * 1'000'000;

RateLimiter::RateLimiter(int limit, int64_t window_us, int64_t daily_limit)
    : limit_(limit), window_us_(window_us), daily_limit_(daily_limit) {}

bool RateLimiter::DailyCapReached(int64_t now_us) const {
  return daily_limit_ > 0 && day_start_ >= 0 && now_us - day_start_ < kDayUs &&
         day_count_ >= daily_limit_;
}

bool RateLimiter::DayFull(int64_t now_us, int pending) const {
  if (daily_limit_ <= 0) return false;
  const bool today = day_start_ >= 0 && now_us - day_start_ < kDayUs;
  return (today ? day_count_ : 0) + pending >= daily_limit_;
}

int64_t RateLimiter::NextAllowed(int64_t now_us, bool consent, int pending) const {
  int64_t t = std::max(now_us, blocked_until_);
  if (DayFull(now_us, pending)) {
    const bool today = day_start_ >= 0 && now_us - day_start_ < kDayUs;
    int64_t day_end = (today ? day_start_ : now_us) + kDayUs;
    if (consent && day_full_at_ >= 0)
      day_end = std::min(day_end, day_full_at_ + kDailyConsentProbeUs);
    t = std::max(t, day_end);
  }
  // Sliding window: the sends within it, with the pending ones (going
  // now), leave room for one more once the oldest that fills it ages out.
  const int room = limit_ - pending;
  if (room <= 0) return std::max(t, now_us + window_us_);
  size_t in_window = 0;
  for (auto it = sent_.rbegin(); it != sent_.rend() && *it > t - window_us_; ++it) ++in_window;
  if (static_cast<int>(in_window) >= room) {
    int64_t oldest_relevant = sent_[sent_.size() - static_cast<size_t>(room)];
    t = std::max(t, oldest_relevant + window_us_);
  }
  return t;
}

void RateLimiter::NewDay(int64_t now_us) {
  day_start_ = now_us;
  day_count_ = 0;
  day_full_at_ = full_since_ = vendor_low_ = -1;
}

void RateLimiter::NoteFull(int64_t now_us) {
  day_full_at_ = now_us;
  if (full_since_ < 0) full_since_ = now_us;
}

void RateLimiter::OnSent(int64_t now_us) {
  sent_.push_back(now_us);
  while (!sent_.empty() && sent_.front() <= now_us - window_us_) sent_.pop_front();
  if (day_start_ < 0 || now_us - day_start_ >= kDayUs) NewDay(now_us);
  if (++day_count_ >= daily_limit_ && daily_limit_ > 0) NoteFull(now_us);
}

void RateLimiter::OnHeaders(int64_t now_us, std::optional<int> remaining,
                            std::optional<int64_t> daily_remaining,
                            std::optional<int64_t> sent_us) {
  if (remaining && *remaining <= 0) blocked_until_ = std::max(blocked_until_, now_us + window_us_);
  if (!daily_remaining || daily_limit_ <= 0) return;
  const int64_t left = *daily_remaining;
  // More remaining than the vendor said before is its new day when the
  // answer to a request sent once the cap was reached says so (an answer
  // to one sent before, or from a second counter of the vendor's, as
  // Apollo counts each endpoint apart, is not), by more than answers
  // arriving out of order explain.
  const bool reset = full_since_ >= 0 && sent_us.value_or(now_us) >= full_since_ &&
                     vendor_low_ >= 0 && left > vendor_low_ + kVendorResetMargin;
  if (reset || day_start_ < 0 || now_us - day_start_ >= kDayUs) NewDay(now_us);
  vendor_low_ = vendor_low_ < 0 ? left : std::min(vendor_low_, left);
  day_count_ = std::max<int64_t>(day_count_, daily_limit_ - left);
  if (day_count_ >= daily_limit_) NoteFull(now_us);
}

void RateLimiter::SetLimits(int limit, int64_t window_us, int64_t daily_limit, int64_t now_us) {
  limit_ = limit;
  window_us_ = window_us;
  daily_limit_ = daily_limit;
  if (DailyCapReached(now_us) && day_full_at_ < 0) NoteFull(now_us);
}

void RateLimiter::OnThrottled(int64_t now_us, std::optional<int64_t> retry_after_us) {
  blocked_until_ = std::max(blocked_until_, now_us + retry_after_us.value_or(window_us_));
}

bool CircuitBreaker::Allow(int64_t now_us) {
  if (!open_) return true;
  if (now_us < open_until_) return false;
  if (trial_out_) return false;
  trial_out_ = true;  // half-open: one trial
  return true;
}

void CircuitBreaker::OnSuccess() {
  failures_ = 0;
  open_ = false;
  trial_out_ = false;
}

void CircuitBreaker::OnFailure(int64_t now_us) {
  ++failures_;
  if (open_ || failures_ >= threshold_) {
    open_ = true;
    open_until_ = now_us + open_us_;
    trial_out_ = false;
  }
}

CircuitBreaker::State CircuitBreaker::state(int64_t now_us) const {
  if (!open_) return State::kClosed;
  return now_us < open_until_ ? State::kOpen : State::kHalfOpen;
}

}  // namespace dfm
