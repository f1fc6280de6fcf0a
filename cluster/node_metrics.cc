#include "cluster/node_metrics.h"

#include <utility>
#include <vector>

#include "util/metrics.h"

namespace dfm {

std::string EncodeNodeMetrics(std::string_view node, std::string_view text) {
  std::string out = "1 ";
  out.append(node).push_back('\n');
  out.append(text);
  return out;
}

bool DecodeNodeMetrics(std::string_view frame, std::string* node, std::string* text) {
  if (frame.substr(0, 2) != "1 ") return false;
  const size_t nl = frame.find('\n', 2);
  if (nl == std::string_view::npos || nl == 2) return false;
  node->assign(frame.substr(2, nl - 2));
  text->assign(frame.substr(nl + 1));
  return true;
}

ClusterMetricsView::ClusterMetricsView(int64_t stale_us, int64_t forget_us)
    : stale_us_(stale_us), forget_us_(forget_us) {}

void ClusterMetricsView::Put(std::string node, std::string text, int64_t at_us) {
  std::lock_guard<std::mutex> lk(mu_);
  Last& l = last_[std::move(node)];
  if (at_us < l.at_us) return;  // an older send overtaken
  l.text = std::move(text);
  l.at_us = at_us;
}

std::string ClusterMetricsView::Text(int64_t now_us) const {
  std::vector<std::pair<std::string, std::string>> fresh;
  MetricsText ages;
  auto& age = ages.Family("dfm_cluster_node_metrics_age_seconds", "gauge",
                          "Seconds since each node last sent its metrics; a node silent for longer "
                          "than a few seconds is left out of this scrape.");
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto it = last_.begin(); it != last_.end();) {
      const int64_t since = now_us - it->second.at_us;
      if (since > forget_us_) {
        it = last_.erase(it);
        continue;
      }
      if (since <= stale_us_) fresh.emplace_back(it->first, it->second.text);
      age.Sample({{"node", it->first}}, static_cast<double>(since > 0 ? since : 0) / 1e6);
      ++it;
    }
  }
  return MergeLabeled("node", fresh) + ages.Finish();
}

}  // namespace dfm
