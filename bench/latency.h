// Latency samples and their percentiles, for benchmark reports.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace dfm::bench {

inline double Percentile(std::vector<int64_t>& ns, double p) {
  if (ns.empty()) return 0;
  size_t k = static_cast<size_t>(p / 100.0 * static_cast<double>(ns.size() - 1));
  std::nth_element(ns.begin(), ns.begin() + static_cast<long>(k), ns.end());
  return static_cast<double>(ns[k]) / 1000.0;  // microseconds
}

}  // namespace dfm::bench
