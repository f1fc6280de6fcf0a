#include "replay-tools/projection_commands.h"

#include <chrono>
#include <cstdio>
#include <ostream>

#include "projections/runner.h"
#include "projections/sync_projections.h"
#include "storage/rocksdb_event_log.h"
#include "sync/contact_model.h"
#include "util/json.h"

namespace dfm {

namespace {

// The router's consumer name (actors/router.h, kRouterConsumer): its
// checkpoint is the last webhook every fact of which was decided.
constexpr char kRouter[] = "router";

}  // namespace

int RunProjectionsStatus(const EventLog& log, bool json, std::ostream& out, std::ostream& err) {
  SyncProjections p;
  uint64_t head = log.LastSequence();
  Table t({"CONSUMER", "CHECKPOINT", "HEAD", "LAG"});
  std::vector<std::string> names;
  for (Projection* x : p.All()) names.push_back(x->name());
  names.push_back(kRouter);
  for (const auto& name : names) {
    uint64_t cp = 0;
    Status s = log.ReadCheckpoint(name, &cp);
    if (!s.ok() && !s.IsNotFound()) {
      err << "dfm projections status: " << s.ToString() << "\n";
      return 2;
    }
    uint64_t lag = head > cp ? head - cp : 0;
    if (json) {
      out << JsonObject()
                 .Str("consumer", name)
                 .Str("kind", name == kRouter ? "router" : "projection")
                 .UInt("checkpoint", cp)
                 .UInt("head", head)
                 .UInt("lag", lag)
                 .Finish()
          << "\n";
    } else {
      t.Add({name, std::to_string(cp), std::to_string(head), std::to_string(lag)});
    }
  }
  if (!json) t.Print(out);
  return 0;
}

Status RebuildProjections(EventLog* log, const std::string& name, std::ostream* progress,
                          RebuildReport* report) {
  SyncProjections p;
  std::vector<Projection*> chosen;
  for (Projection* x : p.All())
    if (name.empty() || x->name() == name) chosen.push_back(x);
  if (chosen.empty())
    return Status::InvalidArgument("no projection named '" + name +
                                   "' (mappings, contacts, sync_status, opt_outs, enrichments)");
  ProjectionRunner::Options opts;
  opts.batch = ProjectionRunner::kRebuildBatch;
  ProjectionRunner runner(log, chosen, opts);
  uint64_t head = log->LastSequence();
  auto start = std::chrono::steady_clock::now();
  auto last_print = start;
  auto seconds = [&](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(t - start).count();
  };
  Status s = runner.Rebuild([&](uint64_t seq) {
    if (!progress) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_print < std::chrono::milliseconds(200) && seq < head) return;
    last_print = now;
    double frac = head ? static_cast<double>(seq) / static_cast<double>(head) : 1.0;
    int filled = static_cast<int>(frac * 30);
    double rate = seconds(now) > 0 ? static_cast<double>(seq) / seconds(now) : 0;
    char line[160];
    std::snprintf(line, sizeof(line), "\r[%-30s] %5.1f%%  %llu/%llu events  %.0f events/s",
                  std::string(static_cast<size_t>(filled), '#').c_str(), frac * 100,
                  static_cast<unsigned long long>(seq), static_cast<unsigned long long>(head),
                  rate);
    *progress << line << std::flush;
  });
  if (progress) *progress << "\n";
  if (!s.ok()) return s;
  report->events = head;
  report->seconds = seconds(std::chrono::steady_clock::now());
  return Status::OK();
}

int RunProjectionsRebuild(const std::string& data_dir, const std::string& name, bool json,
                          std::ostream& out, std::ostream& progress, std::ostream& err) {
  std::unique_ptr<RocksDbEventLog> log;
  RocksDbLogOptions o;
  o.path = data_dir;
  Status s = OpenToolKeys(data_dir, /*read_only=*/false, &o.keys);
  if (s.ok()) s = RocksDbEventLog::Open(o, &log);
  if (!s.ok()) {
    err << "dfm projections rebuild: cannot open " << data_dir
        << " for writing (stop the service first: a rebuild drops the state it reads): "
        << s.ToString() << "\n";
    return 2;
  }
  RebuildReport r;
  s = RebuildProjections(log.get(), name, json ? nullptr : &progress, &r);
  log->Close();
  if (!s.ok()) {
    err << "dfm projections rebuild: " << s.ToString() << "\n";
    return s.IsInvalidArgument() ? 1 : 2;
  }
  double rate = r.seconds > 0 ? static_cast<double>(r.events) / r.seconds : 0;
  if (json) {
    out << JsonObject()
               .Str("projection", name.empty() ? "all" : name)
               .UInt("events", r.events)
               .Int("millis", static_cast<int64_t>(r.seconds * 1000))
               .Int("events_per_s", static_cast<int64_t>(rate))
               .Finish()
        << "\n";
  } else {
    out << "rebuilt " << (name.empty() ? "every projection" : name) << " from " << r.events
        << " events in " << r.seconds << " s (" << static_cast<uint64_t>(rate) << " events/s)\n";
  }
  return 0;
}

int RunAsOf(const EventLog& log, int64_t at_us, const std::vector<ContactMatch>& contacts,
            bool json, bool reveal, std::ostream& out, std::ostream& err) {
  for (const auto& c : contacts) {
    ContactState st;
    st.contact_id = c.contact_id;
    std::map<std::string, std::string> open;  // push id -> "op -> system"
    uint64_t applied = 0;
    Status read = log.ScanStream(c.tenant, ContactStream(c.contact_id), [&](const Event& e) {
      if (e.recorded_at_us > at_us) return false;
      DomainEvent d;
      if (!AsDomainEvent(e, &d)) return true;
      Apply(&st, d, e.seq, e.recorded_at_us);
      applied++;
      if (d.type == ev::kPushRequested) open[d.push_id] = d.op + " -> " + d.system;
      if (SettlesPush(d)) open.erase(d.push_id);
      return true;
    });
    if (!read.ok()) {
      err << "dfm as-of: " << read.ToString() << "\n";
      return 2;
    }
    auto value = [&](const std::string& f, const std::string& v) {
      return reveal ? v : MaskValue(f, v);
    };
    if (json) {
      JsonObject fields, links, consent, pending;
      for (const auto& [f, a] : st.fields) fields.Str(f, value(f, a.value));
      for (const auto& [s, id] : st.links) links.Str(s, id);
      for (const auto& [ch, cs] : st.consent)
        consent.Raw(
            ch,
            JsonObject().Bool("opted_out", cs.out).Str("since", FormatToolTime(cs.at_us)).Finish());
      for (const auto& [id, what] : open) pending.Str(id, what);
      out << JsonObject()
                 .Str("tenant", c.tenant)
                 .Str("contact_id", c.contact_id)
                 .Str("as_of", FormatToolTime(at_us))
                 .Bool("exists", st.exists)
                 .Bool("deleted", st.deleted)
                 .UInt("events_applied", applied)
                 .Raw("fields", fields.Finish())
                 .Raw("ids", links.Finish())
                 .Raw("consent", consent.Finish())
                 .Raw("unsettled_pushes", pending.Finish())
                 .UInt("messages", st.messages.size())
                 .Finish()
          << "\n";
      continue;
    }
    out << "contact " << c.contact_id << " (tenant " << c.tenant << ") as of "
        << FormatToolTime(at_us) << ": "
        << (st.exists ? (st.deleted ? "deleted" : "exists") : "did not exist yet") << " ("
        << applied << " events)\n";
    Table f({"FIELD", "VALUE", "SET BY", "SOURCE TIME"});
    for (const auto& [name, a] : st.fields)
      f.Add({name, value(name, a.value), a.system,
             a.source_time_us ? FormatToolTime(a.source_time_us) : "-"});
    f.Print(out);
    out << "ids:";
    for (const auto& [s, id] : st.links) out << "  " << s << "=" << id;
    out << (st.links.empty() ? "  (none)\n" : "\n");
    out << "consent:";
    for (const auto& [ch, cs] : st.consent)
      out << "  " << ch << " " << (cs.out ? "OPTED OUT" : "opted in") << " since "
          << FormatToolTime(cs.at_us);
    out << (st.consent.empty() ? "  no statement (opted in)\n" : "\n");
    out << "unsettled pushes:";
    for (const auto& [id, what] : open) out << "  " << id << " (" << what << ")";
    out << (open.empty() ? "  none\n" : "\n");
    out << "messages and calls: " << st.messages.size() << "\n";
  }
  return 0;
}

}  // namespace dfm
