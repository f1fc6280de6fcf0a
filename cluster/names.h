// The names cluster mode gives its NATS objects (docs/scale-out.md, "What
// is replicated where") and the waits it uses, shared by the node's parts.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>

namespace dfm::cluster_names {

inline constexpr char kBucket[] = "dfm_leases";
// A frame stays under NATS's default 1 MiB max_payload.
inline constexpr size_t kMaxFrame = 900 * 1024;
// A webhook's draft is at most this (answered 413 above it): alone in a
// DFM_IN_<p> message, and as its log record (a little larger) alone in a
// DFM_LOG_<p> frame, it stays under max_payload with its headers. One
// over it would be taken into DFM_IN_<p> and refused by DFM_LOG_<p> at
// every start of its partition.
inline constexpr size_t kMaxDraft = 1024 * 1024 - 16 * 1024;
inline constexpr int64_t kPublishTimeoutMs = 5000;
// A read asked of a partition's runner (an audit's scan of its log).
inline constexpr int64_t kReadTimeoutMs = 8000;
// A partition's status asked of its node by the observer, every second.
inline constexpr int64_t kStatusTimeoutMs = 500;
inline constexpr int64_t kAckWaitS = 10;
// Whether a partition's log holds webhooks, asked of its node before they
// are published (cluster/wire.h, SeenAsk); unanswered, the front publishes,
// and asks that partition again only after kSeenBackoffMs.
inline constexpr int64_t kSeenTimeoutMs = 250;
inline constexpr int64_t kSeenBackoffMs = 5000;
// The consumers DFM_IN_<p> is read with: "in-<lease revision>-<n>", a new
// name each time the partition's node subscribes (NatsClient::Subscribe);
// "in" alone is an older build's (read as revision 0, n 0). A partition
// that starts reads after the highest ack floor among them (acks follow
// appends); one that subscribes again, from the next message it lacks.
inline std::string InConsumerName(uint64_t lease_rev, uint64_t n) {
  return "in-" + std::to_string(lease_rev) + "-" + std::to_string(n);
}
// False for a name that is none of them.
inline bool ParseInConsumer(const std::string& name, uint64_t* lease_rev, uint64_t* n) {
  *lease_rev = *n = 0;
  if (name == "in") return true;
  if (name.rfind("in-", 0) != 0) return false;
  const size_t dash = name.find('-', 3);
  if (dash == std::string::npos || dash == 3 || dash + 1 == name.size()) return false;
  const char* b = name.data();
  const auto rev = std::from_chars(b + 3, b + dash, *lease_rev);
  const auto num = std::from_chars(b + dash + 1, b + name.size(), *n);
  return rev.ec == std::errc() && rev.ptr == b + dash && num.ec == std::errc() &&
         num.ptr == b + name.size();
}
inline bool IsInConsumer(const std::string& name) {
  uint64_t rev = 0, n = 0;
  return ParseInConsumer(name, &rev, &n);
}
// Every node's GET /metrics, sent each second (cluster/node_metrics.h);
// one silent for 10 s is left out of the cluster's, forgotten after an hour.
inline constexpr char kMetricsSubject[] = "dfm.metrics";
inline constexpr int64_t kMetricsStaleUs = 10LL * 1000000;
inline constexpr int64_t kMetricsForgetUs = 3600LL * 1000000;

inline std::string LogStream(uint32_t p) { return "DFM_LOG_" + std::to_string(p); }
inline std::string InStream(uint32_t p) { return "DFM_IN_" + std::to_string(p); }
inline std::string LogSubject(uint32_t p) { return "dfm.log." + std::to_string(p); }
inline std::string InSubject(uint32_t p) { return "dfm.in." + std::to_string(p); }
inline std::string ReadSubject(uint32_t p) { return "dfm.read." + std::to_string(p); }
inline std::string StatusSubject(uint32_t p) { return "dfm.status." + std::to_string(p); }
inline std::string SeenSubject(uint32_t p) { return "dfm.seen." + std::to_string(p); }
inline std::string LeaseKey(uint32_t p) { return "part." + std::to_string(p); }
inline std::string NodeKey(const std::string& node) { return "node." + node; }

}  // namespace dfm::cluster_names
