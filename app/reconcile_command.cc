#include "app/reconcile_command.h"

#include <unistd.h>

#include <chrono>
#include <ostream>
#include <thread>

#include "app/reconcile.h"
#include "connectors/common/http_client.h"
#include "projections/sync_projections.h"
#include "replay-tools/replay.h"
#include "replay-tools/tool_log.h"
#include "storage/rocksdb_event_log.h"
#include "sync/consent.h"
#include "util/clock.h"
#include "util/json.h"

namespace dfm {

namespace {

void PrintDrift(const ReconcileReport& report, bool json, std::ostream& out) {
  if (json) {
    for (const auto& d : report.drift) {
      const auto [at, cause] = NewestOf(d.check, d.shown_in);  // what the channels shown in answer
      out << JsonObject()
                 .Str("kind", "drift")
                 .Str("contact_id", d.check.contact_id)
                 .Str("system", d.check.system)
                 .Str("record", d.record.empty() ? d.check.external_id : d.record)
                 .Str("channels", JoinChannels(d.shown_in))
                 .Str("opted_out_at", FormatToolTime(at))
                 .Str("cause", cause)
                 .Str("detail", d.detail)
                 .Finish()
          << "\n";
    }
    return;
  }
  if (report.drift.empty()) return;
  Table t({"CONTACT", "SYSTEM", "RECORD", "SHOWS OPTED IN", "OPTED OUT AT", "READ"});
  for (const auto& d : report.drift)
    t.Add({d.check.contact_id, d.check.system, d.record.empty() ? d.check.external_id : d.record,
           JoinChannels(d.shown_in), FormatToolTime(NewestOf(d.check, d.shown_in).first),
           d.detail});
  t.Print(out);
}

void PrintSummary(const ReconcilePlan& plan, const ReconcileReport& r, const ReconcileArgs& a,
                  double seconds, std::ostream& out) {
  const ReconcileProgress& p = r.progress;
  std::string unread;
  for (const auto& [system, what] : r.unread) unread += (unread.empty() ? "" : "; ") + system + ": " + what;
  if (a.json) {
    out << JsonObject()
               .Str("kind", "summary")
               .Str("tenant", a.tenant)
               .Int("opted_out_people", plan.opted_out_people)
               .Int("without_contact", plan.without_contact)
               .Int("checks", p.total)
               .Int("read", p.checked - p.failed)
               .Int("unread", p.failed)
               .Int("drift", p.drift)
               .Int("requests", p.requests)
               .Int("ms", static_cast<int64_t>(seconds * 1000))
               .Str("unread_why", unread)
               .Finish()
        << "\n";
    return;
  }
  out << a.tenant << ": " << plan.opted_out_people << " opted-out phones and emails, "
      << p.total << " records checked, " << p.drift << " drifting, " << p.failed << " unread ("
      << p.requests << " requests, " << static_cast<int64_t>(seconds) << " s)\n";
  if (!unread.empty()) out << "unread: " << unread << "\n";
  if (plan.without_contact > 0)
    out << plan.without_contact << " opted-out phones or emails have no contact (erased, or never "
        << "synced): nothing to read\n";
}

// --execute: the drift handed to the service as one replay.requested.
int Execute(const Config& config, const ReconcileArgs& a, const ReconcileReport& r,
            std::ostream& out, std::ostream& err) {
  ReplayRequest req = ReapplyRequest(r.drift, "dfm reconcile --execute", r.started_at_us);
  std::string how;
  uint64_t seq = 0;
  Status s = SubmitReplay(config.data_dir(), AdminBaseUrl(config.server()), a.tenant, req, &how, &seq);
  if (!s.ok()) {
    err << "dfm reconcile: the re-applications were not handed over: " << s.ToString() << "\n";
    return 2;
  }
  if (!a.json)
    out << "re-applying " << req.items.size() << " opt-out" << (req.items.size() == 1 ? "" : "s")
        << ": replay.requested event " << seq << ", " << how << "\n";
  return 0;
}

}  // namespace

int RunReconcileCommand(const Config& config, const ReconcileArgs& a, std::ostream& out,
                        std::ostream& err) {
  const int64_t now = SystemClock::Instance()->NowMicros();
  int64_t since = 0;
  if (!a.since.empty()) {
    auto t = ParseToolTime(a.since, now);
    if (!t) {
      err << "dfm reconcile: --since: cannot read '" << a.since << "' (2026-11-20T15:04:05Z, "
          << "2026-11-20, -7d)\n";
      return 2;
    }
    since = *t;
  }
  const auto systems = ReconcileSystems(config, a.tenant);
  if (systems.empty()) {
    err << "dfm reconcile: tenant '" << a.tenant << "' pushes to no system that reads consent back\n";
    return 2;
  }
  std::unique_ptr<RocksDbEventLog> log;
  std::string where = config.data_dir();
  // A cluster copy keeps its sealed records only: the projections folded
  // for this run go again on every way out (an erasure would not reach
  // them there).
  bool dropped = false;
  auto drop_folded = [&] {
    if (!a.open_log || !log || dropped) return;
    dropped = true;
    Status d = log->DropDerived({std::string(kReplicaCheckpoint)});
    if (!d.ok()) err << "dfm reconcile: the projections folded into " << where << " stay: " << d.ToString() << "\n";
  };
  struct AtExit {
    std::function<void()> fn;
    ~AtExit() { fn(); }
  } at_exit{drop_folded};
  Status s = a.open_log ? a.open_log(&log, &where) : OpenToolLog(where, &log);
  ReconcilePlan plan;
  if (s.ok()) s = PlanReconcile(*log, a.tenant, since, systems, &plan);
  if (!s.ok()) {
    err << "dfm reconcile: cannot read " << where << ": " << s.ToString() << "\n";
    return 2;
  }
  if (plan.registry_seq + 1000 < log->LastSequence())
    err << "note: the opt-out registry has folded the log up to event " << plan.registry_seq << " of "
        << log->LastSequence() << " (the service folds it as it runs)\n";

  CurlHttpClient http(2);
  ReconcileClients clients;
  const double share = a.share >= 0 ? a.share : static_cast<double>(config.reconcile().rate_percent) / 100;
  MakeReconcileReaders(config, a.tenant, *log, &http, share, &clients);
  ReconcileDeps deps;
  deps.readers = clients.readers;
  deps.now_us = [] { return SystemClock::Instance()->NowMicros(); };
  deps.sleep_us = [](int64_t us) { std::this_thread::sleep_for(std::chrono::microseconds(us)); };
  const bool tty = isatty(STDERR_FILENO) != 0;
  const int64_t started = deps.now_us();
  int64_t last_print = 0;
  deps.progress = [&](const ReconcileProgress& p) {
    const int64_t t = deps.now_us();
    if (p.checked != p.total && t - last_print < 1000000) return;
    last_print = t;
    const double secs = std::max(1e-3, static_cast<double>(t - started) / 1e6);
    err << (tty ? "\r\033[K" : "") << FormatReconcileProgress(p, p.checked / secs)
        << (tty ? "" : "\n") << std::flush;
  };
  ReconcileReport report;
  RunReconcile(plan, deps, &report);
  drop_folded();
  if (tty && plan.checks.size()) err << "\n";
  const double seconds = static_cast<double>(deps.now_us() - started) / 1e6;
  PrintDrift(report, a.json, out);
  PrintSummary(plan, report, a, seconds, out);
  if (a.execute && !report.drift.empty()) {
    log.reset();  // SubmitReplay may open the log for writing (dropped above)
    int rc = Execute(config, a, report, out, err);
    if (rc != 0) return rc;
    return report.progress.failed > 0 ? 1 : 0;
  }
  if (!report.drift.empty() && !a.json)
    out << "run again with --execute to set " << (report.drift.size() == 1 ? "it" : "them")
        << " again\n";
  return report.drift.empty() && report.progress.failed == 0 ? 0 : 1;
}

}  // namespace dfm
