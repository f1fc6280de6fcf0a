// Reading the Prometheus text exposition format (version 0.0.4) back into
// samples: what the alerter evaluates, so that it sees exactly what a
// Prometheus scrape of GET /metrics sees. Pure; no I/O.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace dfm {

struct MetricSample {
  std::string name;                           // "dfm_push_attempts_total"
  std::map<std::string, std::string> labels;  // unescaped values
  double value = 0;
};

// Every sample line; comments (# HELP, # TYPE), blank lines and lines that
// do not parse are skipped. Label values unescape \\, \" and \n.
std::vector<MetricSample> ParseExposition(std::string_view text);

}  // namespace dfm
