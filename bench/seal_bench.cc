// Benchmark (n): what sealing personal data (docs/privacy.md) costs the
// durable log. 64 appenders each append one ~1.5 KiB webhook.received at
// a time and wait until it is durable, into a log with a key store (each
// webhook sealed under a key of its own: the most keys any load makes)
// and into one without; the rounds alternate, and the medians are
// reported with their ratio. CPU is the process's user + system time per
// event; the read side is one pass of Read() over what was written.
//
//   build/release/bench/seal_bench [--seconds 5] [--rounds 3] [--dir PATH]
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench/latency.h"
#include "events/webhook_received.h"
#include "storage/key_store.h"
#include "storage/rocksdb_event_log.h"

using namespace dfm;
using dfm::bench::CpuSeconds;
using dfm::bench::Median;

namespace {

struct Round {
  double events_per_s = 0, cpu_us_per_event = 0, read_us_per_event = 0;
};

Round Run(const std::string& dir, bool sealed, double seconds) {
  std::filesystem::remove_all(dir);
  RocksDbLogOptions o;
  o.path = dir + "/log";
  if (sealed) {
    std::unique_ptr<RocksDbKeyStore> ks;
    if (!RocksDbKeyStore::Open(dir + "/keys", false, &ks).ok()) std::abort();
    o.keys = std::move(ks);
  }
  std::unique_ptr<RocksDbEventLog> log;
  if (!RocksDbEventLog::Open(o, &log).ok()) std::abort();
  WebhookReceived w;
  w.system = "ghl";
  w.verification = "ed25519";
  w.body = std::string(1400, 'b');
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> total{0};
  std::vector<std::thread> ts;
  const double cpu0 = CpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < 64; ++t) {
    ts.emplace_back([&, t] {
      uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        WebhookReceived mine = w;
        mine.provider_event_id = std::to_string(t) + "-" + std::to_string(n++);
        EventDraft d;
        d.tenant = "default";
        d.stream = "source:ghl";
        d.type = std::string(WebhookReceived::kType);
        d.schema_version = WebhookReceived::kSchemaVersion;
        d.payload = EncodeWebhookReceived(mine);
        d.idempotency_system = "ghl";
        d.idempotency_key = mine.provider_event_id;
        if (!log->Append(std::move(d), nullptr).ok()) std::abort();
        total.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = CpuSeconds() - cpu0;
  Round r;
  const auto n = static_cast<double>(total.load());
  r.events_per_s = n / elapsed;
  r.cpu_us_per_event = cpu * 1e6 / n;
  const auto r0 = std::chrono::steady_clock::now();
  uint64_t read = 0;
  for (uint64_t from = 1; from <= log->LastSequence(); from += 4096) {
    std::vector<Event> out;
    if (!log->Read(from, 4096, &out).ok()) std::abort();
    for (const Event& e : out)
      if (sealed && e.sealing != Event::Sealing::kOpened) std::abort();
    read += out.size();
  }
  r.read_us_per_event =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - r0).count() /
      static_cast<double>(read);
  log->Close();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5;
  int rounds = 3;
  std::string dir = "build/bench-data/seal";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
  }
  std::vector<double> rate[2], cpu[2], rd[2];
  for (int i = 0; i < rounds; ++i) {
    for (int sealed = 0; sealed < 2; ++sealed) {
      Round r = Run(dir, sealed == 1, seconds);
      std::fprintf(stderr, "round %d %s: %.0f events/s, %.1f µs CPU/event, read %.2f µs/event\n",
                   i + 1, sealed ? "sealed" : "clear", r.events_per_s, r.cpu_us_per_event,
                   r.read_us_per_event);
      rate[sealed].push_back(r.events_per_s);
      cpu[sealed].push_back(r.cpu_us_per_event);
      rd[sealed].push_back(r.read_us_per_event);
    }
  }
  std::printf("| log | durable events/s | CPU µs/event | read µs/event |\n|---|---:|---:|---:|\n");
  std::printf("| clear | %.0f | %.1f | %.2f |\n", Median(rate[0]), Median(cpu[0]), Median(rd[0]));
  std::printf("| sealed | %.0f | %.1f | %.2f |\n", Median(rate[1]), Median(cpu[1]), Median(rd[1]));
  std::printf("| sealed / clear | %.2f | %.2f | %.2f |\n", Median(rate[1]) / Median(rate[0]),
              Median(cpu[1]) / Median(cpu[0]), Median(rd[1]) / Median(rd[0]));
  std::filesystem::remove_all(dir);
  return 0;
}
