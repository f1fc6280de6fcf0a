#include "app/keys_command.h"

#include <simdjson.h>

#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <ostream>

#include "console/api_keys.h"
#include "replay-tools/replay.h"
#include "replay-tools/tool_log.h"
#include "storage/rocksdb_event_log.h"
#include "util/json.h"

namespace dfm {

namespace {

std::string RunId() {
  return "cli-" + std::to_string(std::time(nullptr)) + "-" + std::to_string(::getpid());
}

// The admin.action a key command records when it writes the log itself.
EventDraft CliAction(const std::string& tenant, const std::string& action, const std::string& key_id,
                     const std::string& run) {
  EventDraft d;
  d.tenant = tenant;
  d.stream = "admin";
  d.type = "admin.action";
  d.payload = JsonObject()
                  .Str("action", action)
                  .Str("target", key_id)
                  .Str("credential", "cli")
                  .Str("request_id", run)
                  .Str("user", ::getlogin() ? ::getlogin() : "")
                  .Finish();
  return d;
}

// Appends `drafts` to a log no service holds.
int AppendWithoutService(const Config& config, std::vector<EventDraft> drafts, std::ostream& err) {
  std::unique_ptr<RocksDbEventLog> log;
  Status s = OpenLogWithoutService(config.data_dir(), AdminBaseUrl(config.server()), &log);
  if (s.ok()) {
    std::vector<AppendOutcome> out;
    s = log->Append(std::move(drafts), &out);
    log->Close();
  }
  if (!s.ok()) {
    err << "dfm keys: " << s.ToString() << "\n";
    return 2;
  }
  return 0;
}

}  // namespace

int RunKeysCreate(const Config& config, const KeysCommandArgs& a, std::ostream& out,
                  std::ostream& err) {
  auto role = ParseApiRole(a.role);
  if (!role) {
    err << "dfm keys create: --role is viewer, operator or admin\n";
    return 2;
  }
  const auto& tenants = config.tenants();
  if (a.tenant != kAllTenants && std::find(tenants.begin(), tenants.end(), a.tenant) == tenants.end()) {
    err << "dfm keys create: no tenant named " << a.tenant << " (or * for all)\n";
    return 2;
  }
  if (a.name.empty() || a.name.size() > 100) {
    err << "dfm keys create: --name (what the key is for) is 1-100 characters\n";
    return 2;
  }
  const std::string body =
      JsonObject().Str("name", a.name).Str("role", a.role).Str("tenant", a.tenant).Finish();
  ServiceAnswer ans = PostToService(config.data_dir(), AdminBaseUrl(config.server()), "/v1/admin/keys", body);
  if (ans.http.status == 201) {
    out << ans.http.body << (ans.http.body.empty() || ans.http.body.back() != '\n' ? "\n" : "");
    err << "Keep the token now: it is shown once and stored nowhere (only its SHA-256).\n";
    return 0;
  }
  if (ans.http.status != 0) {
    err << "dfm keys create: the service answered HTTP " << ans.http.status << ": " << ans.http.body << "\n";
    return 2;
  }
  NewApiKey fresh = MakeApiKey();
  ApiKeyRecord k;
  k.id = fresh.id;
  k.tenant = a.tenant;
  k.role = *role;
  k.name = a.name;
  k.secret_sha256 = HashApiSecret(fresh.secret);
  k.created_by = "cli";
  const std::string run = RunId();
  std::vector<EventDraft> drafts;
  drafts.push_back(ApiKeyCreatedDraft(k, run));
  drafts.push_back(CliAction(drafts[0].tenant, "key.create", k.id, run));
  if (int rc = AppendWithoutService(config, std::move(drafts), err); rc != 0) return rc;
  out << JsonObject()
             .Str("id", k.id)
             .Str("name", k.name)
             .Str("tenant", k.tenant)
             .Str("role", a.role)
             .Str("token", fresh.token)
             .Finish()
      << "\n";
  err << "Appended to the log (no service answered); the service takes the key when it starts.\n"
         "Keep the token now: it is shown once and stored nowhere (only its SHA-256).\n";
  return 0;
}

namespace {

// The keys as the running service lists them (GET /v1/admin/keys: in
// cluster mode the node's, which are every node's); false when none
// answered 200 with a readable list.
bool ListFromService(const Config& config, const KeysCommandArgs& a, std::ostream& out) {
  ServiceAnswer ans = AskService(config.data_dir(), AdminBaseUrl(config.server()), "GET", "/v1/admin/keys", "");
  simdjson::dom::parser parser;
  simdjson::dom::array items;
  if (ans.http.status != 200 || parser.parse(ans.http.body).get_object()["items"].get(items)) return false;
  Table t({"ID", "NAME", "TENANT", "ROLE", "CREATED", "BY", "STATE"});
  for (simdjson::dom::element k : items) {
    if (a.json) {
      out << simdjson::minify(k) << "\n";
      continue;
    }
    auto text = [&](const char* f) {
      std::string_view v;
      return k[f].get(v) ? std::string() : std::string(v);
    };
    bool revoked = false;
    if (k["revoked"].get(revoked)) revoked = false;
    t.Add({text("id"), text("name"), text("tenant"), text("role"), text("created_at"), text("created_by"),
           revoked ? "revoked " + text("revoked_at") : "live"});
  }
  if (!a.json) t.Print(out);
  return true;
}

}  // namespace

int RunKeysList(const Config& config, const KeysCommandArgs& a, std::ostream& out, std::ostream& err) {
  if (ListFromService(config, a, out)) return 0;
  std::unique_ptr<RocksDbEventLog> log;
  Status s = OpenToolLog(config.data_dir(), &log);
  ApiKeyRegistry keys;
  if (s.ok()) s = keys.Load(*log, config.tenants());
  if (!s.ok()) {
    err << "dfm keys list: " << s.ToString() << "\n";
    return 2;
  }
  Table t({"ID", "NAME", "TENANT", "ROLE", "CREATED", "BY", "STATE"});
  for (const auto& k : keys.List()) {
    if (a.json) {
      out << ApiKeyJson(k) << "\n";
    } else {
      t.Add({k.id, k.name, k.tenant, std::string(ApiRoleName(k.role)), FormatToolTime(k.created_us),
             k.created_by, k.revoked ? "revoked " + FormatToolTime(k.revoked_us) : "live"});
    }
  }
  if (!a.json) t.Print(out);
  return 0;
}

int RunKeysRevoke(const Config& config, const KeysCommandArgs& a, std::ostream& out,
                  std::ostream& err) {
  ServiceAnswer ans = AskService(config.data_dir(), AdminBaseUrl(config.server()), "DELETE",
                                 "/v1/admin/keys/" + a.id, "");
  if (ans.http.status == 200) {
    out << "key " << a.id << " revoked (by the running service)\n";
    return 0;
  }
  if (ans.http.status != 0) {
    err << "dfm keys revoke: the service answered HTTP " << ans.http.status << ": " << ans.http.body << "\n";
    return ans.http.status == 404 ? 1 : 2;
  }
  ApiKeyRegistry keys;
  {
    std::unique_ptr<RocksDbEventLog> log;
    Status s = OpenToolLog(config.data_dir(), &log);
    if (s.ok()) s = keys.Load(*log, config.tenants());
    if (!s.ok()) {
      err << "dfm keys revoke: " << s.ToString() << "\n";
      return 2;
    }
  }
  auto k = keys.Find(a.id);
  if (!k) {
    err << "dfm keys revoke: no key " << a.id << "\n";
    return 1;
  }
  const std::string run = RunId();
  std::vector<EventDraft> drafts;
  drafts.push_back(ApiKeyRevokedDraft(*k, "cli", run));
  drafts.push_back(CliAction(drafts[0].tenant, "key.revoke", k->id, run));
  if (int rc = AppendWithoutService(config, std::move(drafts), err); rc != 0) return rc;
  out << "key " << a.id << " revoked (appended to the log; no service answered)\n";
  return 0;
}

}  // namespace dfm
