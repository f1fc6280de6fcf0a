// The whole cluster's GET /metrics (`?scope=cluster`, docs/metrics.md):
// every node sends its own /metrics text each second on the core NATS
// subject `dfm.metrics` (nothing stored: a lost one is sent again), and
// every node keeps the last text of each. Pure; no NATS.
//
// Frame, one per send (the node name cannot hold a line feed):
//
//   frame = "1" SP node LF text      ; text: Prometheus text format 0.0.4
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace dfm {

std::string EncodeNodeMetrics(std::string_view node, std::string_view text);
// False for another version or a frame without a node.
bool DecodeNodeMetrics(std::string_view frame, std::string* node, std::string* text);

// The last text each node sent, and when (any clock, in microseconds).
// Thread-safe.
class ClusterMetricsView {
 public:
  // A node silent for `stale_us` is left out of Text; one silent for
  // `forget_us` is forgotten.
  ClusterMetricsView(int64_t stale_us, int64_t forget_us);

  void Put(std::string node, std::string text, int64_t at_us);
  // Every fresh node's families merged, each of its samples labelled
  // node="<name>" (nodes in name order), then the gauge
  // dfm_cluster_node_metrics_age_seconds{node} for every node heard within
  // `forget_us`: a dead node shows there, growing, and nowhere else.
  std::string Text(int64_t now_us) const;

 private:
  const int64_t stale_us_, forget_us_;
  mutable std::mutex mu_;
  struct Last {
    std::string text;
    int64_t at_us = 0;
  };
  mutable std::map<std::string, Last> last_;  // Text forgets old ones
};

}  // namespace dfm
