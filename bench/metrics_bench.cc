// What one GET /metrics costs (docs/metrics.md), against a real RocksDB log:
//
//   metrics_bench DIR [SCRAPES]
//
// Renders the scrape's families as the service does -- the front's webhook
// counts for 8 routes, the log's (RocksDB properties, WAL list, free
// space), the sync board's for 8 connectors -- SCRAPES (1,000) times, first
// over an empty log, then over the log in DIR (bench/run_metrics.sh fills
// it with 1,000,000 contacts and their projections); prints the median and
// 99th percentile per scrape, the ratio of the medians, and the body size.
// Nothing in a scrape walks contacts or events, so the ratio stays near 1.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "actors/status_board.h"
#include "http/front_metrics.h"
#include "storage/rocksdb_event_log.h"

namespace dfm {
namespace {

struct Result {
  double median_us = 0, p99_us = 0;
  size_t bytes = 0;
};

Result Time(const RocksDbEventLog& log, int scrapes) {
  std::vector<std::pair<std::string, std::string>> routes;
  SyncStatusBoard board;
  board.sync_enabled = true;
  for (const char* tenant : {"default", "acme"}) {
    for (const char* system : {"ghl", "aloware", "verity", "twilio"}) {
      routes.emplace_back(tenant, system);
      auto c = std::make_shared<ConnectorStatus>();
      c->tenant = tenant;
      c->system = system;
      c->last_success_us.store(1);
      board.connectors.push_back(c);
    }
  }
  FrontMetrics front(routes);
  std::vector<double> took;
  Result r;
  for (int i = 0; i < scrapes; ++i) {
    const auto start = std::chrono::steady_clock::now();
    MetricsText out;
    front.Write(&out);
    log.WriteMetrics(&out);
    SyncMetrics(board, log.LastSequence(), 0, &out);
    std::string body = out.Finish();
    took.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
                       .count());
    r.bytes = body.size();
  }
  std::sort(took.begin(), took.end());
  r.median_us = took[took.size() / 2];
  r.p99_us = took[took.size() * 99 / 100];
  return r;
}

std::unique_ptr<RocksDbEventLog> Open(const std::string& dir) {
  std::unique_ptr<RocksDbEventLog> log;
  RocksDbLogOptions o;
  o.path = dir;
  o.min_free_bytes = 1 << 20;  // so free space is measured and shown, as in a service
  if (Status s = RocksDbEventLog::Open(o, &log); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return nullptr;
  }
  return log;
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: metrics_bench DIR [SCRAPES]\n");
    return 2;
  }
  const int scrapes = argc > 2 ? std::atoi(argv[2]) : 1000;
  const std::string empty_dir = std::string(argv[1]) + ".empty";
  std::filesystem::remove_all(empty_dir);
  Result empty, full;
  uint64_t full_events = 0;
  {
    auto log = Open(empty_dir);
    if (!log) return 1;
    empty = Time(*log, scrapes);
  }
  std::filesystem::remove_all(empty_dir);
  {
    auto log = Open(argv[1]);
    if (!log) return 1;
    full_events = log->LastSequence();
    full = Time(*log, scrapes);
  }
  std::printf("empty log:            median %.0f us, p99 %.0f us, %zu bytes\n", empty.median_us,
              empty.p99_us, empty.bytes);
  std::printf("log of %llu events: median %.0f us, p99 %.0f us, %zu bytes\n",
              static_cast<unsigned long long>(full_events), full.median_us, full.p99_us, full.bytes);
  std::printf("ratio of medians (full / empty): %.2f\n", full.median_us / empty.median_us);
  return 0;
}

}  // namespace
}  // namespace dfm

int main(int argc, char** argv) { return dfm::Main(argc, argv); }
