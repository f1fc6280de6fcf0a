#include "app/erase_command.h"

#include <simdjson.h>

#include <ostream>

#include "app/erase.h"
#include "connectors/common/http_client.h"
#include "replay-tools/replay.h"
#include "storage/erasure_ledger.h"
#include "storage/rocksdb_event_log.h"
#include "sync/contact_model.h"
#include "util/json.h"

namespace dfm {
namespace {

struct Summary {
  uint64_t seq = 0;
  bool already = false;
  uint64_t keys = 0, events = 0, sources = 0, subjects = 0;
  std::string how;
};

void Print(const EraseArgs& a, const Summary& s, std::ostream& out) {
  if (a.json) {
    out << JsonObject()
               .Str("tenant", a.tenant)
               .Str("contact_id", a.contact_id)
               .UInt("erased_seq", s.seq)
               .Bool("already_erased", s.already)
               .UInt("keys_destroyed", s.keys)
               .UInt("events", s.events)
               .UInt("sources", s.sources)
               .UInt("subjects", s.subjects)
               .Str("how", s.how)
               .Finish()
        << "\n";
    return;
  }
  if (s.already) {
    out << "contact " << a.contact_id << " was erased before (event " << s.seq << ")\n";
    return;
  }
  out << "erased contact " << a.contact_id << " (event " << s.seq << ", " << s.how << "): "
      << s.keys << " keys destroyed; " << s.events << " of its events and " << s.sources
      << " webhooks or requests unreadable; its consent kept for " << s.subjects
      << " phone/email and channel pairs under a keyed hash\n";
}

}  // namespace

int RunErase(const Config& config, const EraseArgs& a, std::ostream& out, std::ostream& err) {
  if (a.contact_id.empty() || a.reason.empty()) {
    err << "dfm erase: a contact id and --reason are required\n";
    return 2;
  }
  const std::string base_url = AdminBaseUrl(config.server());
  JsonObject ask;
  ask.Str("contact", a.contact_id).Str("reason", a.reason);
  if (a.force) ask.Bool("force", true);
  const std::string body = ask.Finish();
  // The service may wait up to 20 s for the sync and read the tenant's log
  // several times (app/erase.h): a long wait.
  ServiceAnswer ans = AskService(config.data_dir(), base_url, "POST",
                                 "/v1/admin/erase?tenant=" + UrlEscape(a.tenant), body, 300000);
  Summary s;
  if (ans.http.status == 200) {
    simdjson::dom::parser parser;
    simdjson::dom::object o;
    if (parser.parse(ans.http.body.data(), ans.http.body.size()).get(o) == simdjson::SUCCESS) {
      if (o["erased_seq"].get(s.seq) != simdjson::SUCCESS) s.seq = {};
      if (o["already_erased"].get(s.already) != simdjson::SUCCESS) s.already = {};
      if (o["keys_destroyed"].get(s.keys) != simdjson::SUCCESS) s.keys = {};
      if (o["events"].get(s.events) != simdjson::SUCCESS) s.events = {};
      if (o["sources"].get(s.sources) != simdjson::SUCCESS) s.sources = {};
      if (o["subjects"].get(s.subjects) != simdjson::SUCCESS) s.subjects = {};
    }
    s.how = "by the running service at " + base_url;
    Print(a, s, out);
    return 0;
  }
  if (ans.http.status == 404 && ans.http.body.find("unknown_contact") != std::string::npos) {
    err << "dfm erase: " << ans.http.body << "\n";
    return 1;
  }
  if (ans.http.status == 409 && ans.http.body.find("consent_pushes_open") != std::string::npos) {
    err << "dfm erase: " << ans.http.body << "\n(--force erases all the same)\n";
    return 2;
  }
  if (ans.http.status != 0) {
    err << "dfm erase: the service answered HTTP " << ans.http.status << ": " << ans.http.body
        << "\n";
    return 2;
  }
  if (!ans.http.not_sent && !ans.http.error.empty()) {  // asked, and no answer came
    err << "dfm erase: no answer from the service at " << base_url << " (" << ans.http.error
        << "): the erasure may have been made; ask again, which answers with it if so\n";
    return 2;
  }
  if (config.cluster().enabled) {
    err << "dfm erase: no node answers at " << base_url << "; in cluster mode the erasure runs on the "
        << "node of the tenant's partition: give the configuration of a running node (-c)\n";
    return 2;
  }
  // No service answering: on the data directory itself.
  RocksDbLogOptions o;
  o.path = config.data_dir();
  Status st = OpenToolKeys(config.data_dir(), /*read_only=*/false, &o.keys);
  std::unique_ptr<RocksDbEventLog> log;
  if (st.ok()) st = RocksDbEventLog::Open(o, &log);
  if (!st.ok()) {
    err << "dfm erase: no service answers at " << base_url << " and the data directory cannot be "
        << "opened for writing (is the service running elsewhere?): " << st.ToString() << "\n";
    return 2;
  }
  Normalizer normalizer(config.sync().default_region);
  EraseRequest req{a.tenant, a.contact_id, a.reason, "cli", {}};
  req.ledger_path = ErasureLedgerPath(config.data_dir());
  req.force = a.force;  // nothing lands while the service is stopped: no wait
  req.delivers = [targets = SyncContextFor(config, a.tenant).targets](const std::string& system) {
    return targets.count(system) > 0;
  };
  req.mapper = MapperSource([&config, &normalizer](const std::string& t, const std::string& sys) {
    return MapperSettingsFor(config, &normalizer, t, sys);
  });
  if (config.sync().enabled) {  // the service would decide them: let it, first
    req.wait_decided = [](const std::vector<uint64_t>& seqs) {
      return Status::Unavailable("webhooks about the person (up to record " +
                                 std::to_string(seqs.back()) +
                                 ") are not decided by the sync yet: start the service, which "
                                 "decides them, and erase through it; nothing was erased");
    };
  }
  EraseOutcome outcome;
  st = EraseContact(log.get(), o.keys.get(), req, &outcome);
  log->Close();
  if (st.IsNotFound()) {
    err << "dfm erase: " << st.message() << "\n";
    return 1;
  }
  if (!st.ok()) {
    err << "dfm erase: " << st.ToString() << "\n";
    if (st.IsFailedPrecondition())
      err << "(start the service, which sends them; or --force erases all the same)\n";
    return 2;
  }
  s.seq = outcome.seq;
  s.already = outcome.already;
  s.keys = outcome.erasure.keys.size();
  s.events = outcome.erasure.events;
  s.sources = outcome.erasure.sources;
  s.subjects = outcome.erasure.subjects.size();
  s.how = "on the data directory; the service carries it out when it starts";
  Print(a, s, out);
  return 0;
}

}  // namespace dfm
