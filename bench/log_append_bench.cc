// Benchmark (a): durable append throughput and latency of RocksDbEventLog
// with fsync on, at 1, 8 and 64 concurrent appenders. Each appender appends
// one ~1.5 KiB event at a time and waits until it is durable (group commit
// batches what arrives during a sync).
//
//   build/release/bench/log_append_bench [--seconds 5] [--dir PATH]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "bench/latency.h"
#include "storage/rocksdb_event_log.h"

using namespace dfm;

int main(int argc, char** argv) {
  double seconds = 5;
  std::string dir = "build/bench-data/log-append";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
  }
  std::printf("| appenders | events/s | p50 µs | p99 µs | events per synced write |\n");
  std::printf("|---:|---:|---:|---:|---:|\n");
  for (int threads : {1, 8, 64}) {
    std::filesystem::remove_all(dir);
    RocksDbLogOptions o;
    o.path = dir;
    std::unique_ptr<RocksDbEventLog> log;
    Status s = RocksDbEventLog::Open(o, &log);
    if (!s.ok()) {
      std::fprintf(stderr, "open: %s\n", s.ToString().c_str());
      return 1;
    }
    std::atomic<bool> stop{false};
    std::vector<std::vector<int64_t>> lat(static_cast<size_t>(threads));
    std::vector<std::thread> ts;
    std::string payload(1500, 'p');
    auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        uint64_t n = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          EventDraft d;
          d.tenant = "default";
          d.stream = "source:bench";
          d.type = "bench.event";
          d.payload = payload;
          d.idempotency_system = "bench";
          d.idempotency_key = std::to_string(t) + "-" + std::to_string(n++);
          auto a = std::chrono::steady_clock::now();
          if (!log->Append(std::move(d), nullptr).ok()) std::abort();
          lat[static_cast<size_t>(t)].push_back(
              std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - a).count());
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& t : ts) t.join();
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<int64_t> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    auto st = log->GetStats();
    std::printf("| %d | %.0f | %.0f | %.0f | %.1f |\n", threads,
                static_cast<double>(all.size()) / elapsed, bench::Percentile(all, 50),
                bench::Percentile(all, 99),
                static_cast<double>(st.events_appended) / static_cast<double>(std::max<uint64_t>(1, st.group_commits)));
    std::fflush(stdout);
    log->Close();
  }
  std::filesystem::remove_all(dir);
  return 0;
}
