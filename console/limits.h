// Per key and per tenant request limits of the HTTP API (docs/http-api.md,
// "Limits"): fixed windows of `window_us` (a minute), `limit` requests in
// each. Every answer says where the caller stands, as the
// X-RateLimit-Limit / -Remaining / -Reset headers carry it, and one past
// the limit is refused with the seconds until the window turns
// (Retry-After).
//
// In cluster mode the windows are shared (Share): every node counts in the
// same entries of a CasStore (the NATS bucket DFM_LIMITS), so a key gets
// its limit across the nodes, not per node. Entry (grammar, version 1):
//   "l." hex(SHA-256(who))[0..32) "." window-start-seconds -> "1 " decimal-used
// A store that fails is left for this node's own count for 10 seconds; a
// window contended past eight tries counts that one request here only.
//
// Pure but for its own state and the store: time comes in with each call.
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "storage/cas_store.h"

namespace dfm {

struct RateDecision {
  bool allowed = true;
  uint64_t limit = 0;
  uint64_t remaining = 0;
  int64_t reset_s = 0;  // whole seconds until the window turns (at least 1)
};

class WindowLimiter {
 public:
  explicit WindowLimiter(int64_t window_us = 60LL * 1000000) : window_us_(window_us) {}
  // Counts one request of `who` against `limit` per window (0: no limit,
  // always allowed). A refused request is not counted.
  RateDecision Take(const std::string& who, uint64_t limit, int64_t now_us);
  // Where `who` stands without counting a request.
  RateDecision Peek(const std::string& who, uint64_t limit, int64_t now_us) const;

  // Counts in `store` from now on. Before the first call.
  void Share(std::shared_ptr<CasStore> store) { shared_ = std::move(store); }
  static std::string SharedEntry(const std::string& who, int64_t window_start_us);

 private:
  // The decision over the shared window; nullopt: count locally.
  std::optional<RateDecision> Shared(const std::string& who, uint64_t limit, int64_t now_us, bool take) const;
  struct Window {
    int64_t start_us = 0;
    uint64_t used = 0;
  };
  RateDecision Decide(const Window& w, uint64_t limit, int64_t now_us) const;
  const int64_t window_us_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Window> windows_;
  std::shared_ptr<CasStore> shared_;
  mutable std::atomic<int64_t> shared_down_until_us_{0};
};

// The tighter of two decisions, as one answer's headers show it: a refusal
// if either refuses, else the one with fewer requests left.
RateDecision Tighter(const RateDecision& a, const RateDecision& b);

}  // namespace dfm
