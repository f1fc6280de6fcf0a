#include "console/limits.h"

#include <algorithm>
#include <cstdlib>

#include "util/crypto.h"

namespace dfm {

namespace {
constexpr int kSharedTries = 8;
constexpr int64_t kSharedPauseUs = 10LL * 1000000;
}  // namespace

std::string WindowLimiter::SharedEntry(const std::string& who, int64_t window_start_us) {
  return "l." + HexEncode(Sha256(who)).substr(0, 32) + "." + std::to_string(window_start_us / 1000000);
}

std::optional<RateDecision> WindowLimiter::Shared(const std::string& who, uint64_t limit, int64_t now_us,
                                                  bool take) const {
  if (!shared_ || limit == 0 || now_us < shared_down_until_us_.load()) return std::nullopt;
  const int64_t start = now_us - now_us % window_us_;
  const std::string entry = SharedEntry(who, start);
  for (int i = 0; i < kSharedTries; ++i) {
    CasStore::Entry e;
    Status s = shared_->Get(entry, &e);
    if (!s.ok()) break;
    uint64_t used = 0;
    if (e.present && e.value.compare(0, 2, "1 ") == 0) used = std::strtoull(e.value.c_str() + 2, nullptr, 10);
    RateDecision d = Decide(Window{start, used}, limit, now_us);
    if (!take || !d.allowed) return d;
    const std::string next = "1 " + std::to_string(used + 1);
    s = e.present ? shared_->Update(entry, next, e.rev) : shared_->Create(entry, next);
    if (s.ok()) {
      if (d.remaining > 0) d.remaining--;
      return d;
    }
    if (s.code() != Status::Code::kAlreadyExists) break;  // else another node counted first: again
    if (i + 1 == kSharedTries) return std::nullopt;  // contended: this request counted here only
  }
  shared_down_until_us_.store(now_us + kSharedPauseUs);
  return std::nullopt;
}

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
  if (auto d = Shared(who, limit, now_us, /*take=*/true)) return *d;
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
  if (auto d = Shared(who, limit, now_us, /*take=*/false)) return *d;
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
