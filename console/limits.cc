#include "console/limits.h"

#include <algorithm>

namespace dfm {

RateDecision WindowLimiter::Decide(const Window& w, uint64_t limit, int64_t now_us) const {
  RateDecision d;
  d.limit = limit;
  const int64_t start = now_us - now_us % window_us_;
  const uint64_t used = w.start_us == start ? w.used : 0;
  d.allowed = limit == 0 || used < limit;
  d.remaining = limit > used ? limit - used : 0;
  d.reset_s = std::max<int64_t>(1, (start + window_us_ - now_us + 999999) / 1000000);
  return d;
}

RateDecision WindowLimiter::Take(const std::string& who, uint64_t limit, int64_t now_us) {
  std::lock_guard<std::mutex> lk(mu_);
  const int64_t start = now_us - now_us % window_us_;
  // Windows of callers idle since an earlier window go, so the table
  // holds only the callers of the current one.
  if (windows_.size() > 4096) {
    for (auto it = windows_.begin(); it != windows_.end();)
      it = it->second.start_us < start ? windows_.erase(it) : std::next(it);
  }
  Window& w = windows_[who];
  if (w.start_us != start) w = Window{start, 0};
  RateDecision d = Decide(w, limit, now_us);
  if (d.allowed) {
    w.used++;
    if (d.remaining > 0) d.remaining--;
  }
  return d;
}

RateDecision WindowLimiter::Peek(const std::string& who, uint64_t limit, int64_t now_us) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = windows_.find(who);
  return Decide(it == windows_.end() ? Window{} : it->second, limit, now_us);
}

RateDecision Tighter(const RateDecision& a, const RateDecision& b) {
  if (a.allowed != b.allowed) return a.allowed ? b : a;
  if (a.limit == 0) return b;
  if (b.limit == 0) return a;
  return a.remaining <= b.remaining ? a : b;
}

}  // namespace dfm
