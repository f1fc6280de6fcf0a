// Limits per client: how many connections one peer address may hold open,
// and how many requests one client address may make a second. Pure logic
// with an injected clock; the HTTP front (http/server.cc) and its RESTinio
// traits (http/restinio_traits.h) apply them.
//
// Peers in server.trusted_proxies are reverse proxies carrying everyone's
// connections: they are not counted, and a request through one is limited
// by the client address it names in X-Forwarded-For (ClientAddress).
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dfm {

class PeerConnections {
 public:
  // At most `max_per_peer` open connections per address (0: no limit);
  // `exempt` addresses (textual, as the peer's address formats) are not
  // counted.
  PeerConnections(int max_per_peer, std::vector<std::string> exempt);

  // Whether a new connection from `peer` may be taken now.
  bool MayOpen(const std::string& peer) const;
  // A connection from `peer` opened / closed.
  void Opened(const std::string& peer);
  void Closed(const std::string& peer);
  int Open(const std::string& peer) const;

 private:
  bool Exempt(const std::string& peer) const;
  const int max_;
  const std::vector<std::string> exempt_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, int> open_;
};

class RequestRateLimiter {
 public:
  // `per_second` requests a second per client, with bursts of up to twice
  // that (0: no limit).
  explicit RequestRateLimiter(int per_second);

  // Takes one request of `client` at `now_us`: true when within its limit;
  // false with *retry_after_s (at least 1) when not.
  bool Take(const std::string& client, int64_t now_us, int* retry_after_s);

  // Clients tracked (idle full buckets are forgotten as the map grows).
  size_t tracked() const;

 private:
  struct Bucket {
    double tokens = 0;
    int64_t at_us = 0;
  };
  const double rate_per_us_;
  const double burst_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

// The client a request came from: `peer` itself, or, when `peer` is a
// trusted proxy, the right-most address in `x_forwarded_for` that is not
// one (each proxy appends the address it was reached from). Empty when a
// trusted peer names no other client (a local tool, the proxy's own
// checks): such requests are not limited.
std::string ClientAddress(const std::string& peer, std::string_view x_forwarded_for,
                          const std::vector<std::string>& trusted_proxies);

}  // namespace dfm
