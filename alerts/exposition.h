// Reading the Prometheus text exposition format (version 0.0.4) back into
// samples: what the alerter evaluates, so that it sees exactly what a
// Prometheus scrape of GET /metrics sees. Pure; no I/O.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dfm {

struct MetricSample {
  MetricSample() = default;
  MetricSample(std::string n, std::map<std::string, std::string> l, double v, std::string s = "")
      : name(std::move(n)), labels(std::move(l)), value(v), source(std::move(s)) {}

  std::string name;                           // "dfm_push_attempts_total"
  std::map<std::string, std::string> labels;  // unescaped values
  double value = 0;
  // Which of several exporters of the same series this sample came from
  // (in a cluster: the node, when its label was taken off so that a
  // partition's series keeps its identity on every node); "" for one.
  std::string source;
};

// Every sample line; comments (# HELP, # TYPE), blank lines and lines that
// do not parse are skipped. Label values unescape \\, \" and \n.
std::vector<MetricSample> ParseExposition(std::string_view text);

}  // namespace dfm
