// Figures for benchmark reports: latency percentiles, medians of rounds,
// and the process's CPU time.
#pragma once

#include <sys/resource.h>

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

// The middle value (the upper one of an even count); 0 for none.
inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The CPU time (user and system, all threads) the process has used, in s.
inline double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace dfm::bench
