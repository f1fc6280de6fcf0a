// Configuration: a TOML file whose every key can be overridden by an
// environment variable (the way secrets are given). Reference: the
// docs/configuration.md.
//
// Keys are dotted paths. Systems of the default tenant sit at the top level
// ("verity.webhook_secret"); those of a named tenant under
// "tenants.<name>." ("tenants.acme.verity.webhook_secret"). The variable for
// a key is DFM_ followed by the key in upper case with '.' and '-' turned
// into '_': DFM_VERITY_WEBHOOK_SECRET, DFM_TENANTS_ACME_VERITY_WEBHOOK_SECRET.
// A tenant exists when the file has a [tenants.<name>] table or DFM_TENANTS
// (comma-separated) names it. A system is enabled for a tenant when any of
// its keys is set.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/common/outbound.h"
#include "connectors/common/webhook_source.h"

namespace dfm {

struct ConfigProblem {
  std::string key;
  std::string message;
  bool error = true;  // false: a warning that does not stop the service
};

struct ServerSettings {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;
  // A second listener for the admin endpoints (/v1/admin/...); port 0: they
  // are answered on the main listener.
  std::string admin_listen_host;
  uint16_t admin_listen_port = 0;
  int threads = 1;
  uint64_t max_body_bytes = 1 << 20;
  int max_connections = 4096;
  // Per client address (http/client_limits.h; 0: no limit): open
  // connections, and requests a second (bursts of twice that).
  int max_connections_per_ip = 256;
  int rate_limit_per_ip = 1000;
  int read_timeout_ms = 10000;
  int write_timeout_ms = 10000;
  int handle_timeout_ms = 30000;
  int shutdown_grace_ms = 20000;
  std::string public_base_url;
  std::vector<std::string> trusted_proxies;
};

// [sync]: contact sync between the systems (docs/configuration.md).
struct SyncSettings {
  bool enabled = true;
  std::string default_region = "US";  // for phones written without a country code
  int64_t echo_window_s = 600;
  int64_t contact_idle_s = 300;  // a contact actor idle this long is passivated
  // A text (a "send" push) re-driven by dfm replay --execute goes out only
  // if it was first asked for at most this many hours ago; 0: no limit.
  int64_t redrive_max_text_age_h = 24;
  int64_t redrive_max_text_age_us() const { return redrive_max_text_age_h * 3600 * 1000000; }
  // Merge owners, `sync.owners.<field>` = system, or "" for none (the newer
  // source time wins). Every field of MergeableFields() has an entry.
  std::map<std::string, std::string> owners;
  // Tags -> Aloware lists: `sync.tag_lists = ["hot=101", "call now=102"]`
  // (tag, lower-case as tags are compared, -> Aloware list id).
  std::map<std::string, std::string> tag_lists;
  std::string disposition_tag_prefix = "disposition: ";
  // Who plays each role (connectors/connector.h Role), `sync.roles.<role>`
  // = system, or "" for nobody: every tenant's, unless it says otherwise
  // (Config::RoleOf).
  std::map<std::string, std::string> roles;
  // Consent (docs/sync-rules.md, "Who may undo an opt-out"): whether staff
  // opt-outs also hold until the person opts in (`consent.staff_opt_outs_hold`,
  // per tenant `tenants.<t>.consent.staff_opt_outs_hold`; the person's and
  // the carrier's always hold), and how long after an outbound text a bare
  // YES counts as its reply (`consent.yes_reply_window_h`).
  bool staff_opt_outs_hold = false;
  int64_t yes_reply_window_h = 24;
  // Settled messages older than this are forgotten from a contact's live
  // state (`sync.message_memory_days`; the log keeps them).
  int64_t message_memory_days = 30;
  // Whether plus addresses are one person when matching
  // (`sync.email_plus_addressing` = "same"; "distinct" by default).
  bool fold_plus_addressing = false;
  // How long an enrichment's answer stands before the same person is asked
  // again (`sync.enrich_again_days`; docs/sync-rules.md, "Enrichment").
  int64_t enrich_again_days = 90;
};

// [api]: the authenticated API and the status page (docs/http-api.md,
// "Keys and roles"; docs/status-page.md).
// [alerts]: operator alerts by email (docs/alerts.md); off without smtp_url.
struct AlertsSettings {
  std::string smtp_url;  // smtp://host:587 (STARTTLS) or smtps://host:465
  bool starttls = true;
  std::string username, password, from;
  std::vector<std::string> to;
  std::string ca_file, site;
  int64_t tick_s = 15, min_interval_s = 300, repeat_h = 4;
};

// [cluster]: several nodes on NATS JetStream (docs/scale-out.md); off by
// default (one node, RocksDB only).
struct ClusterSettings {
  bool enabled = false;
  std::vector<std::string> nats_urls;  // nats://host:port, any of the cluster
  std::string node_id;                 // unique per node; the host name when empty
  int64_t partitions = 12;             // fixed for the cluster's life
  int64_t replicas = 3;                // of every stream and the lease bucket
  int64_t lease_ttl_s = 6;             // a silent owner loses its partitions after this
  int64_t dedup_window_s = 600;        // DFM_IN_<p> remembers webhook ids this long
  int64_t ingest_max_age_s = 604800;   // DFM_IN_<p> keeps a webhook this long (its partition's log, for ever)
  // The NATS link's security (docs/scale-out.md, "Securing the NATS
  // link"): at most one of user and password, token, NKey (public key and
  // seed file) or .creds file; TLS verified against ca_file (else the
  // system's store), with this node's certificate where the servers ask.
  std::string nats_user, nats_password, nats_token, nats_nkey, nats_nkey_seed_file, nats_creds_file;
  std::string nats_ca_file, nats_cert_file, nats_key_file;
  // 64 hex digits, the same on every node: seals the connector state the
  // nodes replicate (OAuth grants, credit budgets: docs/scale-out.md);
  // empty: that state stays on the node that wrote it.
  std::string state_key;
};

// [reconcile]: `dfm reconcile` and its daily run in the service
// (docs/sync-rules.md, "Opt-outs: reconcile").
struct ReconcileSettings {
  std::string daily_at;     // "HH:MM" UTC: the service reconciles every tenant then; "": never
  bool execute = true;      // the daily run re-applies the drift it finds
  int64_t rate_percent = 50;  // of each system's rate limit its reads may use
  int daily_at_minute() const;  // minutes after midnight UTC; -1 when off
};

// [campaigns]: the rules the campaign agents check at the moment of sending
// (docs/campaigns.md).
struct CampaignSettings {
  std::string quiet_hours = "08:00-21:00";  // in the recipient's local time
  std::string default_zone = "UTC";         // when neither contact nor phone says
  int64_t per_day = 2;                      // texts and emails in any 24 h; 0: no cap
  int64_t per_week = 5;                     // in any 7 days; 0: no cap
  int64_t texts_per_second = 10;            // per sender
  int64_t lease_s = 600;                    // how long an agent's claim holds
};

struct ApiSettings {
  // Requests a minute per API key and per tenant (0: no limit).
  uint64_t rate_limit_per_key = 600;
  uint64_t rate_limit_per_tenant = 3000;
  // Whether the status page's search answers viewers not signed in (its
  // answers are masked then) while "default" is the only tenant; where
  // several are, it never does.
  bool anonymous_search = true;
  int64_t session_hours = 12;  // how long a sign-in lasts
};

// The keys outside tenants and systems, as read: config/schema.h declares
// each and where its value goes.
struct GlobalSettings {
  ServerSettings server;
  std::string data_dir = "./data";
  int64_t min_free_mb = 256;
  std::string log_level = "info";
  SyncSettings sync;
  ApiSettings api;
  AlertsSettings alerts;
  ClusterSettings cluster;
  ReconcileSettings reconcile;
  CampaignSettings campaigns;
};

// The rules as the built-in connectors default them, when the
// configuration says nothing: each field's owner, and each role's system
// (the first connector that claims it; "" when none does).
struct MergePolicy;
MergePolicy BuiltinMergePolicy();
std::string BuiltinRole(std::string_view role);
// Those defaults applied to `ctx` (policy and roles), as the service
// decides when nothing is configured.
struct SyncContext;
void ApplyBuiltinDefaults(SyncContext* ctx);

// The merge policy the settings ask for (owners, echo window).
MergePolicy MergePolicyFrom(const SyncSettings& s);

// The sync rules and targets of `tenant` (every tenant's targets when
// empty): the merge policy, tag lists, and each enabled outbound system's
// fields and consent channels. Conversations are off (ctx.conversations
// empty) when the system that keeps them is a target whose settings keep
// it from it (Connector::role_unavailable).
class Config;
SyncContext SyncContextFor(const Config& config, const std::string& tenant);

// How `system`'s mapper reads the webhooks of `tenant`: the phone region's
// normalizer and the system's own table for that tenant (none when it is
// not enabled there: its defaults). `config` and `normalizer` must outlive
// the result.
struct MapperSettings;
class Normalizer;
MapperSettings MapperSettingsFor(const Config& config, const Normalizer* normalizer,
                                 const std::string& tenant, const std::string& system);

// Fields whose owner the config may set (sync/fact.h names, plus the call
// disposition).
const std::vector<std::string>& MergeableFields();

class Config {
 public:
  using Env = std::map<std::string, std::string>;

  // Reads `path` (may be empty: defaults and environment only) and `env`.
  // Every problem found is appended to *problems; the result is usable only
  // when none of them is an error.
  static Config Load(const std::string& path, const Env& env, std::vector<ConfigProblem>* problems);
  // The process environment's DFM_* variables, and the files named DFM_*
  // or dfm_DFM_* in $CREDENTIALS_DIRECTORY (systemd's LoadCredential=;
  // docs/deploy.md), DFM_X winning over dfm_DFM_X; a variable wins over a
  // file of the same name unless it is empty.
  static Env ProcessEnv();

  const ServerSettings& server() const { return g_.server; }
  const std::string& data_dir() const { return g_.data_dir; }
  // Below this much free space on the data directory's file system the
  // service reports itself not ready (0: never).
  uint64_t min_free_bytes() const { return static_cast<uint64_t>(g_.min_free_mb) << 20; }
  const std::string& log_level() const { return g_.log_level; }
  const SyncSettings& sync() const { return g_.sync; }
  const ApiSettings& api() const { return g_.api; }
  const AlertsSettings& alerts() const { return g_.alerts; }
  const ClusterSettings& cluster() const { return g_.cluster; }
  const ReconcileSettings& reconcile() const { return g_.reconcile; }
  const CampaignSettings& campaigns() const { return g_.campaigns; }
  // "default" first, then named tenants in order.
  const std::vector<std::string>& tenants() const { return tenants_; }
  // Settings of each enabled system of `tenant` (system → settings).
  const std::map<std::string, SystemSettings>& Systems(const std::string& tenant) const;
  // The system that plays `role` for `tenant`: its `tenants.<t>.roles.<role>`,
  // else `sync.roles.<role>`; "" for nobody.
  std::string RoleOf(const std::string& tenant, std::string_view role) const;
  // `tenants.<t>.consent.staff_opt_outs_hold`, else the global setting.
  bool StaffOptOutsHold(const std::string& tenant) const;

  // Every key with its resolved value, secrets masked, for `dfm config show`.
  std::vector<std::pair<std::string, std::string>> Describe() const;
  const std::vector<std::pair<std::string, std::string>>& Compared() const { return compared_; }

  static std::string EnvName(const std::string& key);

 private:
  GlobalSettings g_;
  std::vector<std::string> tenants_;
  std::map<std::string, std::map<std::string, SystemSettings>> systems_;
  std::map<std::string, std::map<std::string, std::string>> tenant_roles_;  // tenant -> role -> system
  std::map<std::string, bool> tenant_staff_hold_;
  std::vector<std::pair<std::string, std::string>> described_;
  // Every key with its value, a secret's as its SHA-256 (what a reload
  // compares: Describe() shows a secret as "<set>" only).
  std::vector<std::pair<std::string, std::string>> compared_;
};

// The first key that only a restart can change (config/schema.h) whose
// value differs between `was` and `now`; "" when none does.
std::string RestartOnlyChange(const Config& was, const Config& now);

}  // namespace dfm
