#include "config/config.h"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <tuple>

#include "connectors/connector.h"
#include "sync/contact_model.h"
#include "sync/fact.h"
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

struct GlobalKey {
  const char* key;
  const char* default_value;
};
// Keys outside any tenant; docs/configuration.md explains each.
const GlobalKey kGlobalKeys[] = {
    {"server.listen", "127.0.0.1:8080"},
    {"server.admin_listen", "127.0.0.1:8081"},
    {"server.threads", "1"},
    {"server.max_body_bytes", "1048576"},
    {"server.max_connections", "4096"},
    {"server.max_connections_per_ip", "256"},
    {"server.rate_limit_per_ip", "1000"},
    {"server.read_timeout_ms", "10000"},
    {"server.write_timeout_ms", "10000"},
    {"server.handle_timeout_ms", "30000"},
    {"server.shutdown_grace_ms", "20000"},
    {"server.public_base_url", ""},
    {"server.trusted_proxies", "127.0.0.1,::1"},
    {"storage.data_dir", "./data"},
    {"storage.min_free_mb", "256"},
    {"log.level", "info"},
    {"sync.enabled", "true"},
    {"sync.default_region", "US"},
    {"sync.echo_window_s", "600"},
    {"sync.contact_idle_s", "300"},
    {"sync.redrive_max_text_age_h", "24"},
    {"sync.tag_lists", ""},
    {"sync.disposition_tag_prefix", "disposition: "},
    {"sync.message_memory_days", "30"},
    {"sync.email_plus_addressing", "distinct"},
    {"sync.enrich_again_days", "90"},
    {"consent.staff_opt_outs_hold", "false"},
    {"consent.yes_reply_window_h", "24"},
    {"api.rate_limit_per_key", "600"},
    {"api.rate_limit_per_tenant", "3000"},
    {"api.anonymous_search", "true"},
    {"api.session_hours", "12"},
    {"alerts.smtp_url", ""},
    {"alerts.starttls", "true"},
    {"alerts.username", ""},
    {"alerts.password", ""},
    {"alerts.from", ""},
    {"alerts.to", ""},
    {"alerts.ca_file", ""},
    {"alerts.site", ""},
    {"alerts.tick_s", "15"},
    {"alerts.min_interval_s", "300"},
    {"alerts.repeat_h", "4"},
    {"reconcile.daily_at", ""},
    {"reconcile.execute", "true"},
    {"reconcile.rate_percent", "50"},
    {"cluster.enabled", "false"},
    {"cluster.nats_urls", ""},
    {"cluster.node_id", ""},
    {"cluster.partitions", "12"},
    {"cluster.replicas", "3"},
    {"cluster.lease_ttl_s", "6"},
};

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

bool ParseInt(const std::string& s, int64_t lo, int64_t hi, int64_t* v) {
  try {
    size_t pos = 0;
    long long x = std::stoll(s, &pos);
    if (pos != s.size() || x < lo || x > hi) return false;
    *v = x;
    return true;
  } catch (...) {
    return false;
  }
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
  }
  return out;
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
      fields::kIndustry};
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
  return it != tenant_staff_hold_.end() ? it->second : sync_.staff_opt_outs_hold;
}

std::string Config::RoleOf(const std::string& tenant, std::string_view role) const {
  if (auto t = tenant_roles_.find(tenant); t != tenant_roles_.end())
    if (auto r = t->second.find(std::string(role)); r != t->second.end()) return r->second;
  auto it = sync_.roles.find(std::string(role));
  return it == sync_.roles.end() ? "" : it->second;
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
  // systemd credentials (LoadCredential=DFM_GHL_ACCESS_TOKEN, docs/deploy.md):
  // each file of $CREDENTIALS_DIRECTORY named like a DFM_* variable gives
  // its value (one trailing newline dropped) where the environment does not.
  if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY"); dir && *dir) {
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = f.path().filename().string();
      if (name.compare(0, 4, "DFM_") != 0 || env.count(name) || !f.is_regular_file(ec)) continue;
      std::ifstream in(f.path(), std::ios::binary);
      std::string v((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!v.empty() && v.back() == '\n') v.pop_back();
      if (!v.empty() && v.back() == '\r') v.pop_back();
      env[name] = v;
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

Config Config::Load(const std::string& path, const Env& env, std::vector<ConfigProblem>* problems) {
  Config c;
  std::map<std::string, std::string> file;
  std::set<std::string> tables;
  if (!path.empty()) {
    try {
      toml::table t = toml::parse_file(path);
      Flatten(t, "", &file, &tables);
    } catch (const toml::parse_error& err) {
      std::ostringstream msg;
      msg << err.description() << " (line " << err.source().begin.line << ", column "
          << err.source().begin.column << ")";
      problems->push_back({"(file)", path + ": " + msg.str()});
      return c;
    }
  }

  // Tenants: "default", then [tenants.X] tables and DFM_TENANTS.
  c.tenants_.push_back("default");
  auto add_tenant = [&](const std::string& t, const std::string& where) {
    if (!ValidTenantName(t)) {
      problems->push_back({where, "tenant name '" + t + "' must be 1-64 of a-z, 0-9, '-'"});
      return;
    }
    if (std::find(c.tenants_.begin(), c.tenants_.end(), t) == c.tenants_.end()) {
      c.tenants_.push_back(t);
    }
  };
  for (const auto& t : tables) {
    if (t.compare(0, 8, "tenants.") == 0 && t.find('.', 8) == std::string::npos) {
      add_tenant(t.substr(8), t);
    }
  }
  if (auto it = env.find("DFM_TENANTS"); it != env.end()) {
    for (const auto& t : SplitList(it->second)) add_tenant(t, "DFM_TENANTS");
  }

  // Every known key, with its default.
  std::map<std::string, std::string> known;  // key -> default
  std::set<std::string> secret_keys;
  for (const auto& g : kGlobalKeys) known[g.key] = g.default_value;
  secret_keys.insert("alerts.password");
  const MergePolicy default_policy = BuiltinMergePolicy();
  for (const auto& f : MergeableFields()) {
    auto it = default_policy.owner.find(f);
    known["sync.owners." + f] = it == default_policy.owner.end() ? "" : it->second;
  }
  for (Role r : AllRoles()) {
    const std::string role(RoleName(r));
    known["sync.roles." + role] = BuiltinRole(role);
    for (const auto& tenant : c.tenants_)
      if (tenant != "default") known["tenants." + tenant + ".roles." + role] = "";
  }
  for (const auto& tenant : c.tenants_)
    if (tenant != "default") known["tenants." + tenant + ".consent.staff_opt_outs_hold"] = "";
  for (const auto& tenant : c.tenants_) {
    std::string prefix = tenant == "default" ? "" : "tenants." + tenant + ".";
    for (const Connector* con : Connectors()) {
      for (const auto& s : con->settings) {
        std::string key = prefix + con->system + "." + s.key;
        known[key] = s.default_value;
        if (s.secret) secret_keys.insert(key);
        if (!s.old_key.empty()) known.emplace(s.old_key, "");  // still read (deprecated)
      }
    }
  }

  // Resolve: default < file < environment.
  std::map<std::string, std::string> value;
  std::set<std::string> set_explicitly;
  for (const auto& [k, v] : file) {
    if (!known.count(k)) {
      problems->push_back({k, "unknown key"});
      continue;
    }
    value[k] = v;
    set_explicitly.insert(k);
  }
  // Besides the keys: DFM_TENANTS and DFM_CONFIG (main.cc), and the
  // variables the test suite reads (scripts/test.sh, tests/integration),
  // which are not dfm's configuration and not a mistake.
  std::set<std::string> env_names_used{"DFM_TENANTS", "DFM_CONFIG", "DFM_CRASH_KILLS",
                                       "DFM_KEEP_TEST_DIRS", "DFM_TEST_DOWN_S"};
  std::set<std::string> from_env;
  for (const auto& [k, def] : known) {
    std::string name = EnvName(k);
    env_names_used.insert(name);
    if (auto it = env.find(name); it != env.end()) {
      value[k] = it->second;
      set_explicitly.insert(k);
      from_env.insert(k);
    }
  }
  for (const auto& [name, v] : env) {
    if (!env_names_used.count(name)) {
      problems->push_back({name, "environment variable matches no configuration key", false});
    }
  }
  for (const auto& [k, def] : known)
    if (!value.count(k)) value[k] = def;
  // A relative *_file path written in the file is relative to the file's
  // folder; one from the environment is relative to the working directory.
  std::string dir = path.substr(0, path.find_last_of('/') + 1);
  for (auto& [k, v] : value) {
    bool from_file = file.count(k) > 0 && from_env.count(k) == 0;
    bool is_path = k.size() > 5 && k.compare(k.size() - 5, 5, "_file") == 0;
    if (from_file && is_path && !dir.empty() && !v.empty() && v[0] != '/') v = dir + v;
  }

  // Global keys.
  int64_t n = 0;
  auto int_key = [&](const char* key, int64_t lo, int64_t hi, auto* field) {
    if (ParseInt(value[key], lo, hi, &n)) {
      *field = static_cast<std::remove_pointer_t<decltype(field)>>(n);
    } else {
      problems->push_back(
          {key, "must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi)});
    }
  };
  auto listen_key = [&](const char* key, const char* example, std::string* host_out,
                        uint16_t* port_out) {
    const std::string& listen = value[key];
    size_t colon = listen.rfind(':');
    int64_t port = 0;
    if (colon == std::string::npos || colon == 0 ||
        !ParseInt(listen.substr(colon + 1), 0, 65535, &port)) {
      problems->push_back({key, std::string("must be host:port, e.g. ") + example});
      return;
    }
    std::string host = listen.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    *host_out = host;
    *port_out = static_cast<uint16_t>(port);
  };
  listen_key("server.listen", "127.0.0.1:8080", &c.server_.listen_host, &c.server_.listen_port);
  if (value["server.admin_listen"].empty()) {
    // The admin endpoints on the listener the proxy exposes: only where
    // that listener is this machine's alone.
    const std::string& host = c.server_.listen_host;
    if (host != "127.0.0.1" && host != "::1" && host != "localhost") {
      problems->push_back({"server.admin_listen",
                           "empty: the admin endpoints answer on server.listen (" + host +
                               "), which others can reach; give them a loopback address",
                           false});
    }
  } else {
    listen_key("server.admin_listen", "127.0.0.1:8081", &c.server_.admin_listen_host,
               &c.server_.admin_listen_port);
    if (c.server_.admin_listen_port == 0 && !c.server_.admin_listen_host.empty()) {
      problems->push_back({"server.admin_listen", "needs a port other than 0"});
    } else if (c.server_.admin_listen_port != 0 &&
               c.server_.admin_listen_port == c.server_.listen_port) {
      std::string why = ListenCollision(c.server_.admin_listen_host, c.server_.listen_host);
      if (!why.empty()) {
        problems->push_back({"server.admin_listen", "must differ from server.listen: " + why});
      }
    }
  }
  int_key("server.threads", 1, 64, &c.server_.threads);
  int_key("server.max_body_bytes", 1, int64_t{1} << 30, &c.server_.max_body_bytes);
  int_key("server.max_connections", 1, 1000000, &c.server_.max_connections);
  int_key("server.max_connections_per_ip", 0, 1000000, &c.server_.max_connections_per_ip);
  int_key("server.rate_limit_per_ip", 0, 10000000, &c.server_.rate_limit_per_ip);
  int_key("server.read_timeout_ms", 1, 3600000, &c.server_.read_timeout_ms);
  int_key("server.write_timeout_ms", 1, 3600000, &c.server_.write_timeout_ms);
  int_key("server.handle_timeout_ms", 1, 3600000, &c.server_.handle_timeout_ms);
  int_key("server.shutdown_grace_ms", 0, 3600000, &c.server_.shutdown_grace_ms);
  c.server_.public_base_url = value["server.public_base_url"];
  while (!c.server_.public_base_url.empty() && c.server_.public_base_url.back() == '/') {
    c.server_.public_base_url.pop_back();
  }
  if (!c.server_.public_base_url.empty() && c.server_.public_base_url.rfind("http://", 0) != 0 &&
      c.server_.public_base_url.rfind("https://", 0) != 0) {
    problems->push_back({"server.public_base_url", "must start with http:// or https://"});
  }
  c.server_.trusted_proxies = SplitList(value["server.trusted_proxies"]);
  c.data_dir_ = value["storage.data_dir"];
  if (c.data_dir_.empty()) problems->push_back({"storage.data_dir", "must not be empty"});
  int_key("storage.min_free_mb", 0, int64_t{1} << 30, &c.min_free_mb_);
  c.sync_.enabled = value["sync.enabled"] == "true";
  if (value["sync.enabled"] != "true" && value["sync.enabled"] != "false")
    problems->push_back({"sync.enabled", "must be true or false"});
  c.sync_.default_region = value["sync.default_region"];
  if (c.sync_.default_region.size() != 2)
    problems->push_back({"sync.default_region", "must be a two-letter region code such as US"});
  int_key("sync.echo_window_s", 1, 86400, &c.sync_.echo_window_s);
  int_key("sync.contact_idle_s", 1, 86400 * 7, &c.sync_.contact_idle_s);
  int_key("sync.redrive_max_text_age_h", 0, 24 * 365, &c.sync_.redrive_max_text_age_h);
  int_key("sync.message_memory_days", 1, 3650, &c.sync_.message_memory_days);
  {
    const std::string& v = value["sync.email_plus_addressing"];
    if (v != "distinct" && v != "same")
      problems->push_back({"sync.email_plus_addressing",
                           "must be \"distinct\" (ann+news@x.com is another address) or \"same\" "
                           "(it is ann@x.com's person)"});
    c.sync_.fold_plus_addressing = v == "same";
  }
  int_key("sync.enrich_again_days", 1, 3650, &c.sync_.enrich_again_days);
  int_key("consent.yes_reply_window_h", 1, 24 * 7, &c.sync_.yes_reply_window_h);
  auto bool_key = [&](const std::string& key, bool* field) {
    const std::string& v = value[key];
    if (v != "true" && v != "false") {
      problems->push_back({key, "must be true or false"});
      return false;
    }
    *field = v == "true";
    return true;
  };
  bool_key("consent.staff_opt_outs_hold", &c.sync_.staff_opt_outs_hold);
  int_key("api.rate_limit_per_key", 0, 10000000, &c.api_.rate_limit_per_key);
  int_key("api.rate_limit_per_tenant", 0, 10000000, &c.api_.rate_limit_per_tenant);
  bool_key("api.anonymous_search", &c.api_.anonymous_search);
  int_key("api.session_hours", 1, 24 * 30, &c.api_.session_hours);
  {
    ClusterSettings& cl = c.cluster_;
    bool_key("cluster.enabled", &cl.enabled);
    cl.nats_urls = SplitList(value["cluster.nats_urls"]);
    cl.node_id = value["cluster.node_id"];
    int_key("cluster.partitions", 1, 1024, &cl.partitions);
    int_key("cluster.replicas", 1, 5, &cl.replicas);
    int_key("cluster.lease_ttl_s", 2, 300, &cl.lease_ttl_s);
    if (cl.enabled && cl.nats_urls.empty())
      problems->push_back({"cluster.nats_urls", "at least one nats://host:port to join"});
    for (const auto& u : cl.nats_urls)
      if (u.rfind("nats://", 0) != 0 && u.rfind("tls://", 0) != 0)
        problems->push_back({"cluster.nats_urls", "each must start with nats:// or tls://"});
    for (char ch : cl.node_id)
      if (!isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_') {
        problems->push_back({"cluster.node_id", "letters, digits, - and _ only"});
        break;
      }
  }
  {
    ReconcileSettings& r = c.reconcile_;
    r.daily_at = value["reconcile.daily_at"];
    bool_key("reconcile.execute", &r.execute);
    int_key("reconcile.rate_percent", 1, 100, &r.rate_percent);
    if (!r.daily_at.empty() && r.daily_at_minute() < 0)
      problems->push_back({"reconcile.daily_at", "must be HH:MM (UTC), e.g. \"04:30\", or \"\" for never"});
  }
  {
    AlertsSettings& a = c.alerts_;
    a.smtp_url = value["alerts.smtp_url"];
    bool_key("alerts.starttls", &a.starttls);
    a.username = value["alerts.username"];
    a.password = value["alerts.password"];
    a.from = value["alerts.from"];
    a.to = SplitList(value["alerts.to"]);
    a.ca_file = value["alerts.ca_file"];
    a.site = value["alerts.site"];
    int_key("alerts.tick_s", 1, 3600, &a.tick_s);
    int_key("alerts.min_interval_s", 1, 86400, &a.min_interval_s);
    int_key("alerts.repeat_h", 1, 24 * 30, &a.repeat_h);
    if (!a.smtp_url.empty()) {
      const bool smtps = a.smtp_url.rfind("smtps://", 0) == 0;
      if (!smtps && a.smtp_url.rfind("smtp://", 0) != 0)
        problems->push_back({"alerts.smtp_url", "must start with smtp:// (STARTTLS) or smtps://"});
      if (a.from.find('@') == std::string::npos)
        problems->push_back({"alerts.from", "an address is needed to send alerts from"});
      if (a.to.empty()) problems->push_back({"alerts.to", "at least one address to send alerts to"});
      if (!smtps && !a.starttls && !a.password.empty())
        problems->push_back({"alerts.starttls", "a password is never sent without TLS: keep starttls on"});
    }
  }
  for (const auto& tenant : c.tenants_) {
    const std::string key = "tenants." + tenant + ".consent.staff_opt_outs_hold";
    bool hold = false;
    if (tenant != "default" && set_explicitly.count(key) && bool_key(key, &hold))
      c.tenant_staff_hold_[tenant] = hold;
  }
  {
    std::set<std::string> systems;
    // Owners are systems whose edits of a contact arrive (webhooks) or
    // that hold contacts; an enrichment system only fills empty fields, and
    // a messages-only one (WhatsApp, Genesys) knows a person by number.
    for (const Connector* con : Connectors())
      if (con->holds_contacts && (con->map_webhook || !con->accepted_fields.empty()))
        systems.insert(con->system);
    for (const auto& f : MergeableFields()) {
      const std::string key = "sync.owners." + f;
      const std::string& owner = value[key];
      if (!owner.empty() && !systems.count(owner)) {
        std::string names;
        for (const auto& s : systems) names += (names.empty() ? "" : ", ") + s;
        problems->push_back({key, "must be one of " + names + ", or \"\" for no owner"});
        continue;
      }
      c.sync_.owners[f] = owner;
    }
  }
  for (const auto& pair : SplitList(value["sync.tag_lists"])) {
    size_t eq = pair.rfind('=');
    // The tag as JoinTags reads the systems' tags: trimmed, lower-case.
    std::string tag = eq == std::string::npos ? "" : AsciiLower(TrimSpace(pair.substr(0, eq)));
    std::string list = eq == std::string::npos ? "" : std::string(TrimSpace(pair.substr(eq + 1)));
    if (tag.empty() || list.empty()) {
      problems->push_back({"sync.tag_lists", "each entry must be \"tag=list id\", got \"" + pair + "\""});
      continue;
    }
    c.sync_.tag_lists[tag] = list;
  }
  c.sync_.disposition_tag_prefix = value["sync.disposition_tag_prefix"];
  // Roles: a system that can play it (its connector says), or "" for
  // nobody; per tenant, set or inherited.
  for (Role r : AllRoles()) {
    const std::string role(RoleName(r));
    auto check = [&](const std::string& key) {
      const std::string& system = value[key];
      const Connector* con = system.empty() ? nullptr : FindConnector(system);
      if (!system.empty() && (con == nullptr || !con->CanPlay(r))) {
        std::string can;
        for (const Connector* other : Connectors())
          if (other->CanPlay(r)) can += (can.empty() ? "" : ", ") + other->system;
        problems->push_back({key, (con ? system + " cannot play the " + role + " role"
                                       : "unknown system '" + system + "'") +
                                      "; it may be one of " + (can.empty() ? "none" : can) +
                                      ", or \"\" for nobody"});
        return false;
      }
      return true;
    };
    if (check("sync.roles." + role)) c.sync_.roles[role] = value["sync.roles." + role];
    for (const auto& tenant : c.tenants_) {
      const std::string key = "tenants." + tenant + ".roles." + role;
      if (tenant != "default" && set_explicitly.count(key) && check(key))
        c.tenant_roles_[tenant][role] = value[key];
    }
  }
  c.log_level_ = value["log.level"];
  static const std::set<std::string> kLevels{"trace", "debug",    "info", "warn",
                                             "error", "critical", "off"};
  if (!kLevels.count(c.log_level_)) {
    problems->push_back(
        {"log.level", "must be one of trace, debug, info, warn, error, critical, off"});
  }

  // Keys that moved into a system's table are still read, for every tenant
  // that does not set the new one, and said to be deprecated.
  for (const Connector* con : Connectors()) {
    for (const auto& spec : con->settings) {
      if (!spec.old_key.empty() && set_explicitly.count(spec.old_key)) {
        problems->push_back({spec.old_key,
                             "deprecated: set " + con->system + "." + spec.key +
                                 " (or tenants.<name>." + con->system + "." + spec.key +
                                 ") instead; read for every tenant that does not",
                             false});
      }
    }
  }

  // Systems per tenant: enabled when any of its keys was set; then the
  // connector's own validation runs.
  bool url_problem = false;
  std::map<std::string, std::string> webhook_secrets;  // "<system>\n<secret>" -> first tenant
  std::map<std::string, std::string> tenant_keys;      // "<system>\n<tenant key>" -> first tenant
  for (const auto& tenant : c.tenants_) {
    std::string prefix = tenant == "default" ? "" : "tenants." + tenant + ".";
    for (const Connector* con : Connectors()) {
      SystemSettings ss;
      bool enabled = false;
      for (const auto& s : con->settings) {
        std::string key = prefix + con->system + "." + s.key;
        ss[s.key] = value[key];
        enabled = enabled || set_explicitly.count(key);
        if (!set_explicitly.count(key) && !s.old_key.empty() && set_explicitly.count(s.old_key))
          ss[s.key] = s.from_old ? s.from_old(value[s.old_key]) : value[s.old_key];
      }
      if (!enabled) continue;
      std::vector<SettingProblem> sp;
      std::unique_ptr<WebhookSource> made;
      if (con->webhook_source) made = con->webhook_source(ss, &sp);
      for (const auto& s : con->settings) {
        int64_t v = 0;
        if (s.whole_number && !ParseInt(ss[s.key], 0, INT64_MAX / 1000000, &v))
          sp.push_back({s.key, "must be a whole number"});
      }
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
      if (made && made->SignsUrl() && c.server_.public_base_url.empty() && !url_problem) {
        url_problem = true;
        problems->push_back(
            {"server.public_base_url",
             "required while " + con->system + " is enabled (tenant " + tenant + "): " +
                 con->system + " signs the URL it posts to, which is checked against this one, "
                 "never against the request's Host or forwarded headers"});
      }
      // A sender serving many tenants (Connector::tenant_key) tells them
      // apart by that setting alone: no two tenants may share it.
      if (made && !con->tenant_key.empty()) {
        const std::string& key = ss[con->tenant_key];
        auto [it, fresh] = tenant_keys.try_emplace(con->system + "\n" + key, tenant);
        if (!fresh && it->second != tenant)
          problems->push_back({prefix + con->system + "." + con->tenant_key,
                               "the same as tenant " + it->second +
                                   "'s: its webhooks could not be told apart; each tenant has its own"});
      }
      // A secret that authenticates webhooks binds them to a tenant only if
      // no other tenant has it (a signed URL binds them by its path).
      if (made && !made->SignsUrl()) {
        for (const auto& key : con->webhook_secret_keys) {
          const std::string& secret = ss[key];
          if (secret.empty()) continue;
          auto [it, fresh] = webhook_secrets.try_emplace(con->system + "\n" + secret, tenant);
          if (!fresh && it->second != tenant) {
            problems->push_back({prefix + con->system + "." + key,
                                 "the same as tenant " + it->second +
                                     "'s: a webhook authenticated for one would be taken for "
                                     "the other; give each tenant its own"});
          }
        }
      }
      if (made || (!con->webhook_source && sp.empty()))
        c.systems_[tenant][con->system] = std::move(ss);
    }
  }

  for (const auto& [k, v] : value) {
    bool secret = secret_keys.count(k) > 0;
    c.described_.emplace_back(k, secret ? (v.empty() ? "" : "<set>") : v);
  }
  return c;
}

}  // namespace dfm
