#include "app/diagnose.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <ostream>

#include "config/config.h"
#include "connectors/connector.h"
#include "replay-tools/tool_log.h"
#include "storage/data_dir.h"
#include "storage/rocksdb_event_log.h"
#include "util/clock.h"
#include "util/json.h"

namespace dfm {

namespace {

using State = ProbeCheck::State;

DiagnoseLine Line(std::string check, State state, std::string detail, std::string hint = "") {
  return DiagnoseLine{std::move(check), state, std::move(detail), std::move(hint)};
}

std::string Thousands(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > (n < 0 ? 1 : 0); i -= 3) s.insert(i, ",");
  return s;
}

void DataDirLines(const Config& config, std::vector<DiagnoseLine>* out) {
  namespace fs = std::filesystem;
  const std::string dir = config.data_dir();
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    // dfm serve makes it: its parent must take a new folder.
    fs::path parent = fs::absolute(dir, ec).parent_path();
    if (::access(parent.c_str(), W_OK) == 0) {
      out->push_back(Line("data directory", State::kSkipped,
                          dir + " does not exist yet; dfm serve makes it (0700)"));
    } else {
      out->push_back(Line("data directory", State::kFail,
                          dir + " does not exist and " + parent.string() + " is not writable",
                          "create " + dir + " for the service's user, or set storage.data_dir"));
    }
    return;
  }
  const std::string probe = dir + "/.dfm-diagnose-" + std::to_string(::getpid());
  {
    std::ofstream f(probe);
    f << "x";
    if (!f.good()) {
      out->push_back(Line("data directory", State::kFail, dir + " is not writable",
                          "give the service's user write access to " + dir));
      return;
    }
  }
  fs::remove(probe, ec);
  const std::string loose = DescribeLooseModes(dir, LooseModes(dir));
  if (!loose.empty()) {
    out->push_back(Line("data directory", State::kFail, loose,
                        "chmod -R go-rwx " + dir + " (it holds personal data and OAuth grants)"));
  } else {
    out->push_back(Line("data directory", State::kOk, dir + " is writable and only its owner's"));
  }
  struct statvfs v {};
  if (::statvfs(dir.c_str(), &v) == 0) {
    const uint64_t free_bytes = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
    const uint64_t need = config.min_free_bytes();
    const std::string what = Thousands(static_cast<int64_t>(free_bytes >> 20)) + " MiB free";
    if (need && free_bytes < need) {
      out->push_back(Line("free space", State::kFail,
                          what + ", under storage.min_free_mb (" + Thousands(need >> 20) + ")",
                          "free space on " + dir + "'s file system, or move the data directory"));
    } else {
      out->push_back(Line("free space", State::kOk,
                          what + (need ? " (storage.min_free_mb " + Thousands(need >> 20) + ")" : "")));
    }
  }
}

// The event log, opened as the tools open it; the grants it keeps are the
// newest (a refreshed OAuth token), so the probes use them.
std::unique_ptr<RocksDbEventLog> EventLogLine(const Config& config, std::vector<DiagnoseLine>* out) {
  std::unique_ptr<RocksDbEventLog> log;
  if (!std::filesystem::exists(config.data_dir() + "/CURRENT")) {
    out->push_back(Line("event log", State::kSkipped, "none yet (dfm serve makes it)"));
    return log;
  }
  Status s = OpenToolLog(config.data_dir(), &log);
  if (!s.ok()) {
    out->push_back(Line("event log", State::kFail, "does not open: " + s.ToString(),
                        "run dfm log verify; see docs/event-format.md on recovery"));
    return nullptr;
  }
  out->push_back(Line("event log", State::kOk,
                      "opens; " + Thousands(static_cast<int64_t>(log->LastSequence())) + " events"));
  return log;
}

void ServiceLine(const Config& config, HttpClient* http, std::vector<DiagnoseLine>* out) {
  std::string host = config.server().listen_host;
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "::") host = "[::1]";
  const std::string where = host + ":" + std::to_string(config.server().listen_port);
  HttpRequest req;
  req.url = "http://" + where + "/readyz";
  req.timeout_ms = 3000;
  std::promise<HttpResponse> answered;
  http->Send(std::move(req), [&answered](HttpResponse r) { answered.set_value(std::move(r)); });
  HttpResponse r = answered.get_future().get();
  if (r.status == 200) {
    out->push_back(Line("service", State::kOk, "ready at " + where));
  } else if (r.status == 0) {
    out->push_back(Line("service", State::kSkipped, "not running at " + where + " (dfm serve starts it)"));
  } else {
    out->push_back(Line("service", State::kFail,
                        "at " + where + " answers /readyz " + std::to_string(r.status) + ": " +
                            r.body.substr(0, 300),
                        "see /v1/health's parts (docs/http-api.md)"));
  }
}

}  // namespace

DiagnoseLine ClockLine(const std::vector<std::pair<std::string, ProbeResult>>& answers,
                       int64_t tolerance_us) {
  const std::pair<std::string, ProbeResult>* worst = nullptr;
  int64_t worst_skew = 0;
  for (const auto& a : answers) {
    if (a.second.vendor_time_us == 0) continue;
    // A Date header has whole seconds: the vendor's clock is within a second
    // after it, and the answer was written within the round trip.
    const int64_t skew = a.second.vendor_time_us + 500000 - a.second.local_time_us;
    if (!worst || std::llabs(skew) > std::llabs(worst_skew)) {
      worst = &a;
      worst_skew = skew;
    }
  }
  if (!worst) return Line("clock", State::kSkipped, "no vendor answered with a Date to compare with");
  const double s = static_cast<double>(worst_skew) / 1e6;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%+.1f s", -s);
  const std::string detail =
      std::string("ours is ") + buf + " from " + worst->first + "'s (the furthest of them)";
  if (std::llabs(worst_skew) > tolerance_us + worst->second.round_trip_us) {
    return Line("clock", State::kFail, detail,
                "synchronise this machine's clock (systemd-timesyncd or chrony): signed webhooks "
                "carry times checked against it");
  }
  return Line("clock", State::kOk, detail);
}

DiagnoseLine RateLine(const std::string& who, const ProbeResult& a) {
  if (!a.rate_remaining && !a.daily_remaining) return DiagnoseLine{};
  std::string detail;
  bool low = false;
  if (a.rate_remaining) {
    detail = Thousands(*a.rate_remaining) +
             (a.rate_limit ? " of " + Thousands(*a.rate_limit) : std::string()) + " left in this window";
    low = *a.rate_remaining == 0;
  }
  if (a.daily_remaining) {
    detail += std::string(detail.empty() ? "" : "; ") + Thousands(*a.daily_remaining) +
              (a.daily_limit ? " of " + Thousands(*a.daily_limit) : std::string()) + " left today";
    low = low || *a.daily_remaining == 0 ||
          (a.daily_limit && *a.daily_limit > 0 && *a.daily_remaining * 20 < *a.daily_limit);
  }
  if (low)
    return Line(who + " limits", State::kFail, detail,
                "the service waits for the vendor's limits by itself; lower what else uses this "
                "token, or ask the vendor for more");
  return Line(who + " limits", State::kOk, detail);
}

int PrintDiagnosis(const std::vector<DiagnoseLine>& lines, bool json, std::ostream& out) {
  bool failed = false;
  for (const auto& l : lines) failed = failed || l.state == State::kFail;
  if (json) {
    JsonArray checks;
    for (const auto& l : lines) {
      JsonObject o;
      o.Str("check", l.check)
          .Str("state", l.state == State::kOk ? "ok" : l.state == State::kFail ? "fail" : "skipped")
          .Str("detail", l.detail);
      if (!l.hint.empty()) o.Str("hint", l.hint);
      checks.Raw(o.Finish());
    }
    out << JsonObject().Bool("ok", !failed).Raw("checks", checks.Finish()).Finish() << "\n";
  } else {
    for (const auto& l : lines) {
      out << (l.state == State::kOk ? "✓ " : l.state == State::kFail ? "✗ " : "– ") << l.check
          << ": " << l.detail << "\n";
      if (l.state == State::kFail && !l.hint.empty()) out << "    fix: " << l.hint << "\n";
    }
    out << (failed ? "Something needs fixing (✗ above).\n" : "Everything checked is fine.\n");
  }
  return failed ? 1 : 0;
}

int RunDiagnose(const std::string& config_path, bool json, std::ostream& out) {
  std::vector<DiagnoseLine> lines;
  std::vector<ConfigProblem> problems;
  Config config = Config::Load(config_path, Config::ProcessEnv(), &problems);
  const std::string file = config_path.empty() ? "the defaults and DFM_* variables" : config_path;
  if (problems.empty()) lines.push_back(Line("configuration", State::kOk, file + ": OK"));
  for (const auto& p : problems)
    lines.push_back(Line("configuration", State::kFail, p.key + ": " + p.message,
                         "fix " + p.key + " in " + file + " or its variable " + Config::EnvName(p.key)));
  DataDirLines(config, &lines);
  std::unique_ptr<RocksDbEventLog> log = EventLogLine(config, &lines);
  CurlHttpClient http(4);
  ServiceLine(config, &http, &lines);

  // Webhooks and probes, per tenant and system; the probes run at once.
  struct Pending {
    std::string who;
    std::future<ProbeResult> answer;
  };
  std::vector<Pending> pending;
  int64_t longest_ms = 0;
  for (const auto& tenant : config.tenants()) {
    for (const auto& [system, settings] : config.Systems(tenant)) {
      const Connector* c = FindConnector(system);
      if (!c) continue;
      const std::string who = c->name + " [" + tenant + "]";
      if (c->webhook_source) {
        std::vector<SettingProblem> wp;
        auto source = c->webhook_source(settings, &wp);
        if (source) {
          lines.push_back(Line(who + " webhooks", State::kOk, "their verification is configured"));
        } else {
          for (const auto& p : wp)
            lines.push_back(Line(who + " webhooks", State::kFail, p.key + ": " + p.message,
                                 "set " + system + "." + p.key + " (docs/configuration.md)"));
        }
      }
      if (!c->probe) continue;
      Credentials creds = c->credentials ? c->credentials(settings) : Credentials{};
      std::string stored;
      if (log && log->GetConsumerState(kCredentialsConsumer, CredentialsKey(tenant, system), &stored)
                     .ok())
        creds = NewestGrant(creds, stored);  // the newest grant (refreshed by the service)
      auto promise = std::make_shared<std::promise<ProbeResult>>();
      pending.push_back({who, promise->get_future()});
      if (auto t = settings.find("request_timeout_ms"); t != settings.end())
        longest_ms = std::max<int64_t>(longest_ms, std::stoll(t->second));
      c->probe(settings, creds, &http,
               [promise](ProbeResult r) { promise->set_value(std::move(r)); });
    }
  }
  std::vector<std::pair<std::string, ProbeResult>> answers;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(3 * longest_ms + 5000);
  for (auto& p : pending) {
    if (p.answer.wait_until(deadline) != std::future_status::ready) {
      lines.push_back(Line(p.who, State::kFail, "no answer in time", "check the network"));
      continue;
    }
    ProbeResult r = p.answer.get();
    for (const auto& c : r.checks) lines.push_back(Line(p.who + " " + c.name, c.state, c.detail, c.hint));
    answers.emplace_back(p.who, std::move(r));
  }
  lines.push_back(ClockLine(answers, 30 * 1000000));
  for (const auto& [who, r] : answers) {
    DiagnoseLine rate = RateLine(who, r);
    if (!rate.check.empty()) lines.push_back(std::move(rate));
  }
  if (log) log->Close();
  return PrintDiagnosis(lines, json, out);
}

}  // namespace dfm
