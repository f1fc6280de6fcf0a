#include "http/client_limits.h"

#include <algorithm>
#include <cmath>

#include "util/strings.h"

namespace dfm {

PeerConnections::PeerConnections(int max_per_peer, std::vector<std::string> exempt)
    : max_(max_per_peer), exempt_(std::move(exempt)) {}

bool PeerConnections::Exempt(const std::string& peer) const {
  return max_ <= 0 || std::find(exempt_.begin(), exempt_.end(), peer) != exempt_.end();
}

bool PeerConnections::MayOpen(const std::string& peer) const {
  if (Exempt(peer)) return true;
  std::lock_guard<std::mutex> lk(mu_);
  auto it = open_.find(peer);
  return it == open_.end() || it->second < max_;
}

void PeerConnections::Opened(const std::string& peer) {
  if (Exempt(peer)) return;
  std::lock_guard<std::mutex> lk(mu_);
  ++open_[peer];
}

void PeerConnections::Closed(const std::string& peer) {
  if (Exempt(peer)) return;
  std::lock_guard<std::mutex> lk(mu_);
  auto it = open_.find(peer);
  if (it != open_.end() && --it->second <= 0) open_.erase(it);
}

int PeerConnections::Open(const std::string& peer) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = open_.find(peer);
  return it == open_.end() ? 0 : it->second;
}

RequestRateLimiter::RequestRateLimiter(int per_second)
    : rate_per_us_(per_second / 1e6), burst_(2.0 * per_second) {}

bool RequestRateLimiter::Take(const std::string& client, int64_t now_us, int* retry_after_s) {
  if (burst_ <= 0) return true;
  std::lock_guard<std::mutex> lk(mu_);
  // Past this many clients, forget those whose buckets have refilled: they
  // are where a new client would start anyway.
  constexpr size_t kForgetAbove = 100000;
  if (buckets_.size() > kForgetAbove) {
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      const double refilled = it->second.tokens + (now_us - it->second.at_us) * rate_per_us_;
      it = refilled >= burst_ ? buckets_.erase(it) : std::next(it);
    }
  }
  auto [it, fresh] = buckets_.try_emplace(client);
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = burst_;
  } else {
    b.tokens = std::min(burst_, b.tokens + std::max<int64_t>(0, now_us - b.at_us) * rate_per_us_);
  }
  b.at_us = now_us;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return true;
  }
  *retry_after_s = std::max(1, static_cast<int>(std::ceil((1.0 - b.tokens) / rate_per_us_ / 1e6)));
  return false;
}

size_t RequestRateLimiter::tracked() const {
  std::lock_guard<std::mutex> lk(mu_);
  return buckets_.size();
}

std::string ClientAddress(const std::string& peer, std::string_view x_forwarded_for,
                          const std::vector<std::string>& trusted_proxies) {
  auto trusted = [&](std::string_view a) {
    return std::find(trusted_proxies.begin(), trusted_proxies.end(), a) != trusted_proxies.end();
  };
  if (!trusted(peer)) return peer;
  std::string_view rest = x_forwarded_for;
  while (!rest.empty()) {
    size_t comma = rest.rfind(',');
    std::string_view hop = TrimSpace(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    if (!hop.empty() && !trusted(hop)) return std::string(hop);
  }
  return "";
}

}  // namespace dfm
