// A contact's start cost and live state against its age (issue 36,
// "Bounded state"): one contact with N historical texts (one an hour, each
// logged, pushed to the conversations system and delivered), its stream in
// a real RocksDB log. Measures, median of --runs:
//   apply:  folding the stream's decoded events into a ContactState (the
//           contact actor's start once the events are read)
//   start:  reading the stream from RocksDB and folding it (the whole start)
// and the state's size (messages and message keys held), with the message
// memory window (sync.message_memory_days, default 30) and without one;
// then the start a contact actor makes from its snapshot
// (sync/contact_snapshot.h): the snapshot read from RocksDB and decoded,
// and the stream's events after it folded -- the most a start meets is
// SyncEnv::snapshot_every (512) such events, the fewest none.
//
//   build/release/bench/contact_state_bench --texts 100000 --runs 5
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/latency.h"
#include "storage/rocksdb_event_log.h"
#include "util/clock.h"
#include "sync/contact_model.h"
#include "sync/contact_snapshot.h"
#include "sync/domain_event.h"

namespace {

using dfm::bench::Median;

constexpr int64_t kHourUs = 3600LL * 1000000;
constexpr int64_t kDayUs = 24 * kHourUs;

std::vector<dfm::DomainEvent> History(int texts) {
  std::vector<dfm::DomainEvent> out;
  out.reserve(static_cast<size_t>(texts) * 4);
  for (int i = 0; i < texts; ++i) {
    const std::string key = "verity:m" + std::to_string(i);
    dfm::DomainEvent logged;
    logged.type = std::string(dfm::ev::kMessageLogged);
    logged.contact_id = "c1";
    logged.system = "verity";
    logged.external_id = "m" + std::to_string(i);
    logged.message_key = key;
    logged.channel = "sms";
    logged.fields["direction"] = i % 2 ? "outbound" : "inbound";
    logged.source_time_us = i * kHourUs;
    out.push_back(logged);
    dfm::DomainEvent push;
    push.type = std::string(dfm::ev::kPushRequested);
    push.contact_id = "c1";
    push.system = "ghl";
    push.op = "message";
    push.message_key = key;
    push.push_id = "c1:ghl:" + std::to_string(i) + ":message";
    out.push_back(push);
    dfm::DomainEvent ok = push;
    ok.type = std::string(dfm::ev::kPushSucceeded);
    ok.external_id = "g" + std::to_string(i);
    out.push_back(ok);
    dfm::DomainEvent status = logged;
    status.type = std::string(dfm::ev::kMessageStatus);
    status.outcome = "delivered";
    out.push_back(status);
  }
  return out;
}

// When the i-th event was recorded: the texts' hours, in order.
int64_t RecordedAt(size_t i) { return static_cast<int64_t>(i / 4) * kHourUs + 1; }

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

bool Failed(const char* what, const dfm::Status& s) {
  if (s.ok()) return false;
  std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
  return true;
}

// The history into the log, a day's texts per append, recorded at the
// day's first hour.
bool WriteHistory(const std::vector<dfm::DomainEvent>& events, dfm::ManualClock* clock,
                  dfm::RocksDbEventLog* log) {
  std::vector<dfm::EventDraft> batch;
  for (size_t i = 0; i < events.size(); ++i) {
    if (batch.empty()) clock->Set(RecordedAt(i));
    batch.push_back(dfm::ToDraft(events[i], "default", "contact:c1", {}, {}));
    if (batch.size() == 24 * 4 || i + 1 == events.size()) {
      std::vector<dfm::AppendOutcome> outcomes;
      if (Failed("append", log->Append(std::move(batch), &outcomes))) return false;
      batch.clear();
    }
  }
  return true;
}

// The state folded in memory and from the log, with no message window and
// with 30 days: medians of `runs`.
bool ReportWindows(const std::vector<dfm::DomainEvent>& events, int runs,
                   const dfm::RocksDbEventLog& log) {
  std::printf("%-22s %12s %12s %10s %10s\n", "window", "apply ms", "start ms", "messages",
              "keys");
  for (int64_t window : {int64_t{0}, 30 * kDayUs}) {
    std::vector<double> apply_ms, start_ms;
    size_t messages = 0, keys = 0;
    for (int r = 0; r < runs; ++r) {
      dfm::ContactState st;
      st.contact_id = "c1";
      st.message_memory_us = window;
      auto t0 = std::chrono::steady_clock::now();
      for (size_t i = 0; i < events.size(); ++i) dfm::Apply(&st, events[i], i + 1, RecordedAt(i));
      apply_ms.push_back(MsSince(t0));

      dfm::ContactState from_log;
      from_log.contact_id = "c1";
      from_log.message_memory_us = window;
      t0 = std::chrono::steady_clock::now();
      dfm::Status s = log.ScanStream("default", "contact:c1", [&](const dfm::Event& e) {
        dfm::DomainEvent d;
        if (dfm::AsDomainEvent(e, &d)) dfm::Apply(&from_log, d, e.seq, e.recorded_at_us);
        return true;
      });
      start_ms.push_back(MsSince(t0));
      if (Failed("scan", s)) return false;
      messages = from_log.messages.size();
      keys = from_log.message_keys.size();
    }
    std::printf("%-22s %12.1f %12.1f %10zu %10zu\n",
                window ? "30 days" : "none (keeps all)", Median(apply_ms), Median(start_ms),
                messages, keys);
  }
  return true;
}

// Snapshots taken `after` events before the stream's end, as a contact
// actor keeps them (its state with the window), and the start from each.
bool ReportSnapshots(const std::vector<dfm::DomainEvent>& events, int runs,
                     dfm::RocksDbEventLog* log) {
  std::printf("\n%-22s %12s %12s %10s\n", "start from snapshot", "start ms", "bytes", "messages");
  for (size_t after : {size_t{0}, size_t{512}}) {
    const size_t upto = events.size() - after;
    dfm::ContactState st;
    st.contact_id = "c1";
    st.message_memory_us = 30 * kDayUs;
    for (size_t i = 0; i < upto; ++i) dfm::Apply(&st, events[i], i + 1, RecordedAt(i));
    const std::string bytes = dfm::EncodeContactSnapshot(st, {});
    const std::string key = dfm::ContactSnapshotKey("default", "c1");
    if (Failed("snapshot",
               log->CommitConsumer(dfm::kContactSnapshotConsumer, upto, {{key, bytes, false}})))
      return false;
    std::vector<double> start_ms;
    size_t messages = 0;
    for (int r = 0; r < runs; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      std::string read;
      dfm::ContactState from;
      from.message_memory_us = 30 * kDayUs;
      std::vector<dfm::OutstandingPush> outstanding;
      dfm::Status s = log->GetConsumerState(dfm::kContactSnapshotConsumer, key, &read);
      if (s.ok()) s = dfm::DecodeContactSnapshot(read, &from, &outstanding);
      if (s.ok())
        s = log->ScanStream(
            "default", "contact:c1",
            [&](const dfm::Event& e) {
              dfm::DomainEvent d;
              if (dfm::AsDomainEvent(e, &d)) dfm::Apply(&from, d, e.seq, e.recorded_at_us);
              return true;
            },
            from.last_event_seq + 1);
      start_ms.push_back(MsSince(t0));
      if (Failed("start", s)) return false;
      messages = from.messages.size();
    }
    std::printf("%-22s %12.3f %12zu %10zu\n",
                after ? "512 events after it" : "no event after it", Median(start_ms),
                bytes.size(), messages);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int texts = 100000, runs = 5;
  std::string dir = "/tmp/dfm-contact-state-bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--texts") texts = std::atoi(argv[i + 1]);
    if (a == "--runs") runs = std::atoi(argv[i + 1]);
    if (a == "--dir") dir = argv[i + 1];
  }
  std::vector<dfm::DomainEvent> events = History(texts);
  std::filesystem::remove_all(dir);
  dfm::ManualClock clock(1);
  dfm::RocksDbLogOptions o;
  o.path = dir;
  o.clock = &clock;
  std::unique_ptr<dfm::RocksDbEventLog> log;
  if (Failed("open", dfm::RocksDbEventLog::Open(o, &log))) return 1;
  if (!WriteHistory(events, &clock, log.get())) return 1;
  std::printf("texts %d, events %zu\n", texts, events.size());
  if (!ReportWindows(events, runs, *log) || !ReportSnapshots(events, runs, log.get())) return 1;
  log->Close();
  std::filesystem::remove_all(dir);
  return 0;
}
