#include "config/config.h"

#include <arpa/inet.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <tuple>

#include "config/schema.h"
#include "connectors/connector.h"
#include "sync/contact_model.h"
#include "sync/fact.h"
#include "util/crypto.h"
#include "util/strings.h"

extern char** environ;

namespace dfm {

namespace {

// Why two listeners on one port would collide at bind, or "" when they
// would not: the same address, or a wildcard that takes the other's
// (0.0.0.0 every IPv4 address; :: every IPv6 one and, dual-stack as Linux
// binds it by default, every IPv4 one too). Addresses are compared as
// RESTinio binds them: "localhost" is 127.0.0.1, "ip6-localhost" ::1, and
// an IPv4-mapped IPv6 address its IPv4 one. Any other name is not an
// address RESTinio binds (it fails at start, saying so): not compared.
std::string ListenCollision(const std::string& a, const std::string& b) {
  struct Host {
    int family = 0;  // AF_INET, AF_INET6, or 0 for a name
    bool wildcard = false;
    unsigned char bytes[16] = {};
  };
  auto parse = [](std::string text) {
    Host h;
    if (text == "localhost") text = "127.0.0.1";
    if (text == "ip6-localhost") text = "::1";
    unsigned char v6[16];
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (inet_pton(AF_INET6, text.c_str(), v6) == 1 && std::equal(kMapped, kMapped + 12, v6)) {
      char v4[INET_ADDRSTRLEN];
      if (inet_ntop(AF_INET, v6 + 12, v4, sizeof(v4))) text = v4;
    }
    if (inet_pton(AF_INET, text.c_str(), h.bytes) == 1) {
      h.family = AF_INET;
      h.wildcard = h.bytes[0] == 0 && h.bytes[1] == 0 && h.bytes[2] == 0 && h.bytes[3] == 0;
    } else if (inet_pton(AF_INET6, text.c_str(), h.bytes) == 1) {
      h.family = AF_INET6;
      h.wildcard = std::all_of(std::begin(h.bytes), std::end(h.bytes),
                               [](unsigned char c) { return c == 0; });
    }
    return h;
  };
  const Host x = parse(a), y = parse(b);
  if (a == b || (x.family != 0 && x.family == y.family &&
                 std::equal(std::begin(x.bytes), std::end(x.bytes), std::begin(y.bytes))))
    return "the same address and port";
  auto covers = [](const Host& w, const Host& other) {
    if (!w.wildcard || other.family == 0) return false;
    return w.family == AF_INET6 || other.family == AF_INET;
  };
  for (const auto& [w, other, text] : {std::tuple{x, y, a}, std::tuple{y, x, b}}) {
    if (covers(w, other)) {
      return "the same port, and " + text + " takes every " +
             (w.family == AF_INET6 ? "address" : "IPv4 address");
    }
  }
  return "";
}

bool ValidTenantName(const std::string& t) {
  if (t.empty() || t.size() > 64) return false;
  return std::all_of(t.begin(), t.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

std::string NodeToString(const toml::node& n) {
  if (auto s = n.as_string()) return s->get();
  if (auto i = n.as_integer()) return std::to_string(i->get());
  if (auto b = n.as_boolean()) return b->get() ? "true" : "false";
  if (auto f = n.as_floating_point()) return std::to_string(f->get());
  if (auto a = n.as_array()) {
    std::string out;
    for (const auto& el : *a) {
      if (!out.empty()) out += ",";
      out += NodeToString(el);
    }
    return out;
  }
  return "";
}

void Flatten(const toml::table& t, const std::string& prefix,
             std::map<std::string, std::string>* out, std::set<std::string>* tables) {
  for (const auto& [k, v] : t) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (auto sub = v.as_table()) {
      tables->insert(key);
      Flatten(*sub, key, out, tables);
    } else {
      (*out)[key] = NodeToString(v);
    }
  }
}

}  // namespace

int ReconcileSettings::daily_at_minute() const {
  if (daily_at.size() != 5 || daily_at[2] != ':') return -1;
  for (size_t i : {0u, 1u, 3u, 4u})
    if (daily_at[i] < '0' || daily_at[i] > '9') return -1;
  const int h = (daily_at[0] - '0') * 10 + (daily_at[1] - '0');
  const int m = (daily_at[3] - '0') * 10 + (daily_at[4] - '0');
  return h < 24 && m < 60 ? h * 60 + m : -1;
}

const std::vector<std::string>& MergeableFields() {
  static const std::vector<std::string> kFields{
      fields::kFirstName, fields::kLastName,    fields::kEmail, fields::kPhone,
      fields::kAddress1,  fields::kCity,        fields::kState, fields::kPostalCode,
      fields::kCountry,   fields::kCompanyName, fields::kTags,  "disposition",
      fields::kTitle,     fields::kLinkedinUrl, fields::kCompanyDomain, fields::kCompanySize,
      fields::kIndustry,  fields::kTimezone};
  return kFields;
}

MergePolicy BuiltinMergePolicy() {
  MergePolicy p;
  for (const Connector* c : Connectors())
    for (const auto& f : c->default_owner_of) p.owner.emplace(f, c->system);
  return p;
}

std::string BuiltinRole(std::string_view role) {
  for (const Connector* c : Connectors())
    for (Role r : c->default_roles)
      if (RoleName(r) == role) return c->system;
  return "";
}

void ApplyBuiltinDefaults(SyncContext* ctx) {
  ctx->policy.owner = BuiltinMergePolicy().owner;
  ctx->conversations = BuiltinRole(RoleName(Role::kConversations));
  ctx->sender = BuiltinRole(RoleName(Role::kSender));
  ctx->lists_target = BuiltinRole(RoleName(Role::kLists));
}

bool Config::StaffOptOutsHold(const std::string& tenant) const {
  auto it = tenant_staff_hold_.find(tenant);
  return it != tenant_staff_hold_.end() ? it->second : g_.sync.staff_opt_outs_hold;
}

std::string Config::RoleOf(const std::string& tenant, std::string_view role) const {
  if (auto t = tenant_roles_.find(tenant); t != tenant_roles_.end())
    if (auto r = t->second.find(std::string(role)); r != t->second.end()) return r->second;
  auto it = g_.sync.roles.find(std::string(role));
  return it == g_.sync.roles.end() ? "" : it->second;
}

MergePolicy MergePolicyFrom(const SyncSettings& s) {
  MergePolicy p;
  for (const auto& [field, system] : s.owners)
    if (!system.empty()) p.owner[field] = system;
  p.echo_window_us = s.echo_window_s * 1000000;
  return p;
}

std::string Config::EnvName(const std::string& key) {
  std::string out = "DFM_";
  for (char c : key) out.push_back(c == '.' || c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return out;
}

Config::Env Config::ProcessEnv() {
  Env env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    if (kv.compare(0, 4, "DFM_") != 0) continue;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  // systemd credentials (docs/deploy.md): each file of
  // $CREDENTIALS_DIRECTORY named like a DFM_* variable, or like one after
  // "dfm_" (the packaged unit's LoadCredential=dfm:/etc/dfm/credentials
  // loads every file there so), gives its value (one trailing newline
  // dropped) where the environment does not, or gives it empty (dfm.env's
  // placeholder `DFM_X=` uncommented). A credential named DFM_X itself (a
  // drop-in's LoadCredential=DFM_X:...) wins over dfm_DFM_X.
  if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY"); dir && *dir) {
    std::map<std::string, std::string> credentials;
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(dir, ec)) {
      const std::string file = f.path().filename().string();
      const bool prefixed = file.compare(0, 8, "dfm_DFM_") == 0;
      const std::string name = prefixed ? file.substr(4) : file;
      if (name.compare(0, 4, "DFM_") != 0 || !f.is_regular_file(ec)) continue;
      if (prefixed && credentials.count(name)) continue;
      std::ifstream in(f.path(), std::ios::binary);
      std::string v((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!v.empty() && v.back() == '\n') v.pop_back();
      if (!v.empty() && v.back() == '\r') v.pop_back();
      credentials[name] = std::move(v);
    }
    for (auto& [name, v] : credentials) {
      auto given = env.find(name);
      if (given == env.end() || given->second.empty()) env[name] = std::move(v);
    }
  }
  return env;
}

const std::map<std::string, SystemSettings>& Config::Systems(const std::string& tenant) const {
  static const std::map<std::string, SystemSettings> kNone;
  auto it = systems_.find(tenant);
  return it == systems_.end() ? kNone : it->second;
}

std::vector<std::pair<std::string, std::string>> Config::Describe() const { return described_; }

std::string RestartOnlyChange(const Config& was, const Config& now) {
  std::map<std::string, std::string> before;
  for (const auto& [k, v] : was.Compared())
    if (ApplyOf(k) == KeyEffect::kRestart) before[k] = v;
  for (const auto& [k, v] : now.Compared()) {
    if (ApplyOf(k) != KeyEffect::kRestart) continue;
    auto it = before.find(k);
    if (it == before.end() || it->second != v) return k;
  }
  return "";
}

namespace {

// The file's keys, flattened ("server.listen"), and its tables; false, with
// the problem, when it does not parse.
bool ReadFile(const std::string& path, std::map<std::string, std::string>* file,
              std::set<std::string>* tables, std::vector<ConfigProblem>* problems) {
  if (path.empty()) return true;
  try {
    toml::table t = toml::parse_file(path);
    Flatten(t, "", file, tables);
    return true;
  } catch (const toml::parse_error& err) {
    std::ostringstream msg;
    msg << err.description() << " (line " << err.source().begin.line << ", column "
        << err.source().begin.column << ")";
    problems->push_back({"(file)", path + ": " + msg.str()});
    return false;
  }
}

// "default", then the file's [tenants.X] tables and DFM_TENANTS's names.
std::vector<std::string> ReadTenants(const std::set<std::string>& tables, const Config::Env& env,
                                     std::vector<ConfigProblem>* problems) {
  std::vector<std::string> tenants{"default"};
  auto add = [&](const std::string& t, const std::string& where) {
    if (!ValidTenantName(t)) {
      problems->push_back({where, "tenant name '" + t + "' must be 1-64 of a-z, 0-9, '-'"});
    } else if (std::find(tenants.begin(), tenants.end(), t) == tenants.end()) {
      tenants.push_back(t);
    }
  };
  for (const auto& t : tables)
    if (t.compare(0, 8, "tenants.") == 0 && t.find('.', 8) == std::string::npos) add(t.substr(8), t);
  if (auto it = env.find("DFM_TENANTS"); it != env.end())
    for (const auto& t : SplitList(it->second)) add(t, "DFM_TENANTS");
  return tenants;
}

// Every key's value: default < file < environment.
struct Resolved {
  std::map<std::string, KeySpec> spec;  // every key the schema knows
  std::map<std::string, std::string> value;
  std::set<std::string> set_explicitly;
};

Resolved Resolve(const std::string& path, const std::map<std::string, std::string>& file,
                 const Config::Env& env, const std::vector<std::string>& tenants,
                 std::vector<ConfigProblem>* problems) {
  Resolved r;
  for (auto& k : AllKeys(tenants)) r.spec.emplace(k.key, std::move(k));
  // Keys that moved into a system's table are still read (deprecated).
  for (const Connector* con : Connectors())
    for (const auto& s : con->settings)
      if (!s.old_key.empty()) r.spec[s.old_key].key = s.old_key;
  for (const auto& [k, v] : file) {
    if (!r.spec.count(k)) {
      problems->push_back({k, "unknown key"});
      continue;
    }
    r.value[k] = v;
    r.set_explicitly.insert(k);
  }
  // Besides the keys: DFM_TENANTS and DFM_CONFIG (main.cc), and the
  // variables the test suite reads (scripts/test.sh, tests/integration),
  // which are not dfm's configuration and not a mistake.
  std::set<std::string> env_names_used{"DFM_TENANTS", "DFM_CONFIG", "DFM_CRASH_KILLS",
                                       "DFM_KEEP_TEST_DIRS", "DFM_TEST_DOWN_S"};
  std::set<std::string> from_env;
  for (const auto& [k, spec] : r.spec) {
    const std::string name = Config::EnvName(k);
    env_names_used.insert(name);
    if (auto it = env.find(name); it != env.end()) {
      r.value[k] = it->second;
      r.set_explicitly.insert(k);
      from_env.insert(k);
    }
  }
  for (const auto& [name, v] : env)
    if (!env_names_used.count(name))
      problems->push_back({name, "environment variable matches no configuration key", false});
  for (const auto& [k, spec] : r.spec)
    if (!r.value.count(k)) r.value[k] = spec.default_value;
  // A relative *_file path written in the file is relative to the file's
  // folder; one from the environment is relative to the working directory.
  const std::string dir = path.substr(0, path.find_last_of('/') + 1);
  for (auto& [k, v] : r.value) {
    const bool from_file = file.count(k) > 0 && from_env.count(k) == 0;
    const bool is_path = k.size() > 5 && k.compare(k.size() - 5, 5, "_file") == 0;
    if (from_file && is_path && !dir.empty() && !v.empty() && v[0] != '/') v = dir + v;
  }
  return r;
}

// Every value read as its key's type says and checked; a global key's goes
// into *g.
void ReadKeys(const Resolved& r, GlobalSettings* g, std::vector<ConfigProblem>* problems) {
  for (const auto& [k, spec] : r.spec) {
    KeyValue v;
    const std::string why = ReadValue(spec, r.value.at(k), &v);
    if (!why.empty()) {
      problems->push_back({k, why});
    } else if (spec.set) {
      spec.set(*g, v);
    }
  }
}

// The NATS link's security: one way to authenticate, each with what it
// needs, and every file it names readable.
void CheckNatsSecurity(const ClusterSettings& c, std::vector<ConfigProblem>* problems) {
  std::vector<std::string> ways;
  if (!c.nats_user.empty() || !c.nats_password.empty()) ways.push_back("cluster.nats_user");
  if (!c.nats_token.empty()) ways.push_back("cluster.nats_token");
  if (!c.nats_nkey.empty() || !c.nats_nkey_seed_file.empty()) ways.push_back("cluster.nats_nkey");
  if (!c.nats_creds_file.empty()) ways.push_back("cluster.nats_creds_file");
  if (ways.size() > 1)
    problems->push_back({ways[1], "one way to authenticate to NATS, and " + ways[0] + " is set too"});
  auto together = [&](const std::string& a, const std::string& b, const char* ka, const char* kb) {
    if (a.empty() != b.empty())
      problems->push_back({a.empty() ? ka : kb, std::string("goes with ") + (a.empty() ? kb : ka) + ", which is set"});
  };
  together(c.nats_user, c.nats_password, "cluster.nats_user", "cluster.nats_password");
  together(c.nats_nkey, c.nats_nkey_seed_file, "cluster.nats_nkey", "cluster.nats_nkey_seed_file");
  together(c.nats_cert_file, c.nats_key_file, "cluster.nats_cert_file", "cluster.nats_key_file");
  if (!c.nats_nkey.empty() && c.nats_nkey[0] != 'U')
    problems->push_back({"cluster.nats_nkey", "an NKey user's public key (it starts with U)"});
  for (const auto& [key, file] : {std::pair{"cluster.nats_nkey_seed_file", c.nats_nkey_seed_file},
                                  std::pair{"cluster.nats_creds_file", c.nats_creds_file},
                                  std::pair{"cluster.nats_ca_file", c.nats_ca_file},
                                  std::pair{"cluster.nats_cert_file", c.nats_cert_file},
                                  std::pair{"cluster.nats_key_file", c.nats_key_file}})
    if (!file.empty() && ::access(file.c_str(), R_OK) != 0)
      problems->push_back({key, "cannot read " + file});
}

// The rules between keys, which no one key's check can see.
void CheckAcrossKeys(const GlobalSettings& g, const Resolved& r, std::vector<ConfigProblem>* problems) {
  const ServerSettings& s = g.server;
  if (r.value.at("server.admin_listen").empty()) {
    // The admin endpoints on the listener the proxy exposes: only where
    // that listener is this machine's alone.
    const std::string& host = s.listen_host;
    if (host != "127.0.0.1" && host != "::1" && host != "localhost")
      problems->push_back({"server.admin_listen",
                           "empty: the admin endpoints answer on server.listen (" + host +
                               "), which others can reach; give them a loopback address",
                           false});
  } else if (s.admin_listen_port == 0 && !s.admin_listen_host.empty()) {
    problems->push_back({"server.admin_listen", "needs a port other than 0"});
  } else if (s.admin_listen_port != 0 && s.admin_listen_port == s.listen_port) {
    const std::string why = ListenCollision(s.admin_listen_host, s.listen_host);
    if (!why.empty()) problems->push_back({"server.admin_listen", "must differ from server.listen: " + why});
  }
  if (g.cluster.enabled && g.cluster.nats_urls.empty())
    problems->push_back({"cluster.nats_urls", "at least one nats://host:port to join"});
  if (g.cluster.ingest_max_age_s < g.cluster.dedup_window_s)  // NATS refuses a window past the age
    problems->push_back({"cluster.ingest_max_age_s", "at least cluster.dedup_window_s"});
  CheckNatsSecurity(g.cluster, problems);
  const AlertsSettings& a = g.alerts;
  if (!a.smtp_url.empty()) {
    const bool smtps = a.smtp_url.rfind("smtps://", 0) == 0;
    if (a.from.find('@') == std::string::npos)
      problems->push_back({"alerts.from", "an address is needed to send alerts from"});
    if (a.to.empty()) problems->push_back({"alerts.to", "at least one address to send alerts to"});
    if (!smtps && !a.starttls && !a.password.empty())
      problems->push_back({"alerts.starttls", "a password is never sent without TLS: keep starttls on"});
  }
  // Keys that moved into a system's table: said to be deprecated.
  for (const Connector* con : Connectors())
    for (const auto& spec : con->settings)
      if (!spec.old_key.empty() && r.set_explicitly.count(spec.old_key))
        problems->push_back({spec.old_key,
                             "deprecated: set " + con->system + "." + spec.key +
                                 " (or tenants.<name>." + con->system + "." + spec.key +
                                 ") instead; read for every tenant that does not",
                             false});
}

// Tenants sharing one vendor account's webhook key (Connector::account_key):
// each must bind its webhooks (account_binding), no value in two tenants'.
class SharedAccounts {
 public:
  void Add(const Connector& con, const std::string& tenant, const std::string& prefix,
           const SystemSettings& ss, std::vector<ConfigProblem>* problems) {
    if (con.account_key.empty() || ss.at(con.account_key).empty()) return;
    auto& seen = accounts_[con.system + "\n" + ss.at(con.account_key)];
    const std::vector<std::string> binding = SplitList(ss.at(con.account_binding));
    const std::string where = prefix + con.system + "." + con.account_binding;
    for (const auto& [other, values] : seen) {
      if (binding.empty() || values.empty()) {
        problems->push_back({where, "required in both: tenant " + other + " has the same " +
                                        con.system + "." + con.account_key + ", and only " +
                                        con.account_binding + " tells their webhooks apart"});
        break;
      }
      for (const auto& v : binding)
        if (std::find(values.begin(), values.end(), v) != values.end())
          problems->push_back(
              {where, v + " is tenant " + other + "'s too: its webhooks could not be told apart"});
    }
    seen.emplace_back(tenant, binding);
  }

 private:
  // "<system>\n<account key>" -> each tenant holding it, with its binding.
  std::map<std::string, std::vector<std::pair<std::string, std::vector<std::string>>>> accounts_;
};

// Each tenant's systems: enabled when any of its keys was set; then the
// connector's own validation runs, and the rules between tenants.
void ReadSystems(const std::vector<std::string>& tenants, const Resolved& r, const ServerSettings& server,
                 std::map<std::string, std::map<std::string, SystemSettings>>* systems,
                 std::vector<ConfigProblem>* problems) {
  bool url_problem = false;
  std::map<std::string, std::string> webhook_secrets;  // "<system>\n<secret>" -> first tenant
  std::map<std::string, std::string> tenant_keys;      // "<system>\n<tenant key>" -> first tenant
  SharedAccounts accounts;
  for (const auto& tenant : tenants) {
    const std::string prefix = tenant == "default" ? "" : "tenants." + tenant + ".";
    for (const Connector* con : Connectors()) {
      SystemSettings ss;
      bool enabled = false;
      std::vector<SettingProblem> sp;
      for (const auto& s : con->settings) {
        const std::string key = prefix + con->system + "." + s.key;
        ss[s.key] = r.value.at(key);
        enabled = enabled || r.set_explicitly.count(key);
        if (r.set_explicitly.count(key) || s.old_key.empty() || !r.set_explicitly.count(s.old_key)) continue;
        // An old key's value, as this key reads it, checked as this key is.
        ss[s.key] = s.from_old ? s.from_old(r.value.at(s.old_key)) : r.value.at(s.old_key);
        KeyValue v;
        const std::string why = ReadValue(r.spec.at(key), ss[s.key], &v);
        if (!why.empty()) sp.push_back({s.key, why});
      }
      if (!enabled) continue;
      std::unique_ptr<WebhookSource> made;
      if (con->webhook_source) made = con->webhook_source(ss, &sp);
      if (con->client) {
        if (con->outbound_enabled(ss) && ss.count("concurrency") && ss.at("concurrency") == "0")
          sp.push_back({"concurrency", "must be at least 1"});
        HttpRequest probe;
        probe.url = ApiBaseUrl(ss) + "/";
        if (probe.url != "/" && !RefusalOf(probe).empty())
          sp.push_back({"api_base_url",
                        "must be https:// (plain http:// only to this machine: 127.0.0.1, ::1, "
                        "localhost), or the credentials would cross the network in the clear"});
      }
      for (const auto& p : sp) problems->push_back({prefix + con->system + "." + p.key, p.message});
      // A system whose signature covers the URL it posted to (Twilio) is
      // verified against the configured public URL only.
      if (made && made->SignsUrl() && server.public_base_url.empty() && !url_problem) {
        url_problem = true;
        problems->push_back(
            {"server.public_base_url",
             "required while " + con->system + " is enabled (tenant " + tenant + "): " + con->system +
                 " signs the URL it posts to, which is checked against this one, never against the "
                 "request's Host or forwarded headers"});
      }
      // A sender serving many tenants (Connector::tenant_key) tells them
      // apart by that setting alone: no two tenants may share it.
      if (made && !con->tenant_key.empty()) {
        auto [it, fresh] = tenant_keys.try_emplace(con->system + "\n" + ss[con->tenant_key], tenant);
        if (!fresh && it->second != tenant)
          problems->push_back({prefix + con->system + "." + con->tenant_key,
                               "the same as tenant " + it->second +
                                   "'s: its webhooks could not be told apart; each tenant has its own"});
      }
      if (made) accounts.Add(*con, tenant, prefix, ss, problems);
      // A secret that authenticates webhooks binds them to a tenant only if
      // no other tenant has it, as its current or its previous one (a URL
      // signed whole binds them by its path).
      if (made && !made->UrlBindsTenant()) {
        std::vector<std::string> keys;
        for (const auto& key : con->webhook_secret_keys) {
          keys.push_back(key);
          keys.push_back(PreviousSecretKey(key));
        }
        for (const auto& key : keys) {
          const std::string& secret = ss[key];
          if (secret.empty()) continue;
          auto [it, fresh] = webhook_secrets.try_emplace(con->system + "\n" + secret, tenant);
          if (!fresh && it->second != tenant)
            problems->push_back({prefix + con->system + "." + key,
                                 "the same as tenant " + it->second +
                                     "'s: a webhook authenticated for one would be taken for "
                                     "the other; give each tenant its own"});
        }
      }
      if (made || (!con->webhook_source && sp.empty())) (*systems)[tenant][con->system] = std::move(ss);
    }
  }
}

}  // namespace

Config Config::Load(const std::string& path, const Env& env, std::vector<ConfigProblem>* problems) {
  Config c;
  std::map<std::string, std::string> file;
  std::set<std::string> tables;
  if (!ReadFile(path, &file, &tables, problems)) return c;
  c.tenants_ = ReadTenants(tables, env, problems);
  const Resolved r = Resolve(path, file, env, c.tenants_, problems);
  ReadKeys(r, &c.g_, problems);
  CheckAcrossKeys(c.g_, r, problems);
  // A named tenant's own roles and consent rule, where it sets them.
  for (const auto& tenant : c.tenants_) {
    if (tenant == "default") continue;
    KeyValue v;
    const std::string hold = "tenants." + tenant + ".consent.staff_opt_outs_hold";
    if (r.set_explicitly.count(hold) && ReadValue(r.spec.at(hold), r.value.at(hold), &v).empty() &&
        !v.text.empty())
      c.tenant_staff_hold_[tenant] = v.flag;
    for (Role role : AllRoles()) {
      const std::string key = "tenants." + tenant + ".roles." + std::string(RoleName(role));
      if (r.set_explicitly.count(key) && ReadValue(r.spec.at(key), r.value.at(key), &v).empty())
        c.tenant_roles_[tenant][std::string(RoleName(role))] = v.text;
    }
  }
  ReadSystems(c.tenants_, r, c.g_.server, &c.systems_, problems);
  for (const auto& [k, v] : r.value) {
    const bool secret = r.spec.at(k).secret;
    c.described_.emplace_back(k, secret ? (v.empty() ? "" : "<set>") : v);
    c.compared_.emplace_back(k, secret && !v.empty() ? "sha256:" + HexEncode(Sha256(v)) : v);
  }
  return c;
}
}  // namespace dfm
