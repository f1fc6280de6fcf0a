// The keys outside any tenant and system (config/schema.h), section by
// section as the reference lists them.
#include <algorithm>
#include <cctype>
#include <filesystem>

#include "campaigns/quiet_hours.h"
#include "campaigns/recipient_zones.h"
#include "config/schema_rows.h"
#include "util/strings.h"

namespace dfm {
namespace {
using namespace schema_rows;

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

std::string UrlCheck(const KeyValue& v) {
  if (v.text.empty() || StartsWith(v.text, "http://") || StartsWith(v.text, "https://")) return "";
  return "must start with http:// or https://";
}
std::string NotEmpty(const KeyValue& v) { return v.text.empty() ? "must not be empty" : ""; }
std::string RegionCheck(const KeyValue& v) {
  return v.text.size() == 2 ? "" : "must be a two-letter region code such as US";
}
std::string DailyAtCheck(const KeyValue& v) {
  ReconcileSettings r;
  r.daily_at = v.text;
  return v.text.empty() || r.daily_at_minute() >= 0
             ? ""
             : "must be HH:MM (UTC), e.g. \"04:30\", or \"\" for never";
}
std::string SmtpCheck(const KeyValue& v) {
  if (v.text.empty() || StartsWith(v.text, "smtp://") || StartsWith(v.text, "smtps://")) return "";
  return "must start with smtp:// (STARTTLS) or smtps://";
}
std::string NatsUrlsCheck(const KeyValue& v) {
  for (const auto& u : v.items)
    if (!StartsWith(u, "nats://") && !StartsWith(u, "tls://")) return "each must start with nats:// or tls://";
  return "";
}
std::string NodeIdCheck(const KeyValue& v) {
  for (char ch : v.text)
    if (!isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_')
      return "letters, digits, - and _ only";
  return "";
}
std::string StateKeyCheck(const KeyValue& v) {
  if (v.text.empty()) return "";
  if (v.text.size() != 64 || v.text.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
    return "64 hex digits (32 bytes), e.g. from `openssl rand -hex 32`";
  return "";
}
// `tag=list id` entries: the tag as JoinTags reads the systems' tags
// (trimmed, lower-case), the list id trimmed.
bool TagList(const std::string& pair, std::string* tag, std::string* list) {
  const size_t eq = pair.rfind('=');
  if (eq == std::string::npos) return false;
  *tag = AsciiLower(TrimSpace(pair.substr(0, eq)));
  *list = std::string(TrimSpace(pair.substr(eq + 1)));
  return !tag->empty() && !list->empty();
}
std::string TagListsCheck(const KeyValue& v) {
  std::string tag, list;
  for (const auto& pair : v.items)
    if (!TagList(pair, &tag, &list)) return "each entry must be \"tag=list id\", got \"" + pair + "\"";
  return "";
}
void SetTagLists(GlobalSettings& s, const KeyValue& v) {
  std::string tag, list;
  for (const auto& pair : v.items)
    if (TagList(pair, &tag, &list)) s.sync.tag_lists[tag] = list;
}
void SetPublicUrl(GlobalSettings& s, const KeyValue& v) {
  std::string url = v.text;
  while (!url.empty() && url.back() == '/') url.pop_back();
  s.server.public_base_url = url;
}

// [server]: the listeners and their limits.
void ServerKeys(std::vector<KeySpec>* out) {
  std::vector<KeySpec>& k = *out;
  const int64_t kHour = 3600000;
  k.push_back(Listen("server.listen", "127.0.0.1:8080", kRestart,
                     [](GlobalSettings& s, const KeyValue& v) {
                       s.server.listen_host = v.host;
                       s.server.listen_port = v.port;
                     },
                     "where webhooks, the API and the status page are answered (the proxy's upstream)")
                  .Production("127.0.0.1:8080"));
  k.push_back(Listen("server.admin_listen", "127.0.0.1:8081", kRestart,
                     [](GlobalSettings& s, const KeyValue& v) {
                       s.server.admin_listen_host = v.host;
                       s.server.admin_listen_port = v.port;
                     },
                     "the admin endpoints (`/v1/admin/...`, at most 64 connections), never proxied; "
                     "`dfm replay --execute`, `backup`, `erase` post there. Empty: on `server.listen` "
                     "(a warning unless loopback); refused where it would collide with `server.listen`")
                  .EmptyOk()
                  .Production("127.0.0.1:8081"));
  k.push_back(Num("server.threads", "1", 1, 64, kRestart, INTO(server.threads), "HTTP I/O threads")
                  .Production("2"));
  k.push_back(Num("server.max_body_bytes", "1048576", 1, int64_t{1} << 30, kRestart,
                  INTO(server.max_body_bytes),
                  "larger bodies get 413 and are never held whole (nginx's `client_max_body_size` matches)"));
  k.push_back(Num("server.max_connections", "4096", 1, 1000000, kRestart, INTO(server.max_connections),
                  "concurrent connections; more wait in the accept queue"));
  k.push_back(Num("server.max_connections_per_ip", "256", 0, 1000000, kRestart,
                  INTO(server.max_connections_per_ip),
                  "open connections per client address (trusted proxies not counted); 0: no limit"));
  k.push_back(Num("server.rate_limit_per_ip", "1000", 0, 10000000, kRestart,
                  INTO(server.rate_limit_per_ip),
                  "requests a second per client address, bursts of twice that; more get a status the "
                  "sender retries on (GoHighLevel 429, others 503) with `Retry-After`; 0: no limit"));
  k.push_back(Num("server.read_timeout_ms", "10000", 1, kHour, kRestart, INTO(server.read_timeout_ms),
                  "time to receive a whole request; a stalled client is disconnected"));
  k.push_back(Num("server.write_timeout_ms", "10000", 1, kHour, kRestart,
                  INTO(server.write_timeout_ms), "time to send a response"));
  k.push_back(Num("server.handle_timeout_ms", "30000", 1, kHour, kRestart,
                  INTO(server.handle_timeout_ms), "longest a request may wait for its append"));
  k.push_back(Num("server.shutdown_grace_ms", "20000", 0, kHour, kRestart,
                  INTO(server.shutdown_grace_ms), "on SIGTERM, how long in-flight requests may take"));
  k.push_back(Text("server.public_base_url", "", kRestart, SetPublicUrl,
                   "the URL vendors post to, e.g. `https://hooks.example.com/dfm`; Twilio's signatures "
                   "are checked against it (never the request's `Host`), so Twilio requires it")
                  .Check(UrlCheck)
                  .Production("https://dfm.example.com"));
  k.push_back(List("server.trusted_proxies", "127.0.0.1,::1", kRestart, INTO(server.trusted_proxies),
                   "reverse proxies in front: not limited per address, believed when "
                   "`X-Forwarded-For` names the client (never for signatures)")
                  .Production("127.0.0.1,::1"));
}

// [storage] and [log].
void StorageAndLogKeys(std::vector<KeySpec>* out) {
  std::vector<KeySpec>& k = *out;
  k.push_back(Text("storage.data_dir", "./data", kRestart, INTO(data_dir),
                   "the event log, key store and grants: made 0700, its files 0600; `dfm config check` "
                   "warns when others may read it")
                  .Check(NotEmpty)
                  .Production("/var/lib/dfm"));
  k.push_back(Num("storage.min_free_mb", "256", 0, int64_t{1} << 30, kRestart, INTO(min_free_mb),
                  "below this much free space `/readyz` answers 503 and `/v1/health` says `low_disk`; "
                  "0: not checked")
                  .Production("1024"));
  k.push_back(Choice("log.level", "info", {"trace", "debug", "info", "warn", "error", "critical", "off"},
                     kRestart, INTO(log_level), "`SPDLOG_LEVEL` overrides"));
}

// [sync] and [consent]: the sync's rules.
void SyncAndConsentKeys(std::vector<KeySpec>* out) {
  std::vector<KeySpec>& k = *out;
  k.push_back(Flag("sync.enabled", "true", kRestart, INTO(sync.enabled),
                   "run the sync actors (false: ingest only)"));
  k.push_back(Text("sync.default_region", "US", kRestart, INTO(sync.default_region),
                   "region of phones written without a country code")
                  .Check(RegionCheck)
                  .Production("US"));
  k.push_back(Num("sync.echo_window_s", "600", 1, 86400, kReload, INTO(sync.echo_window_s),
                  "how long a pushed value coming back is taken as an echo"));
  k.push_back(Num("sync.contact_idle_s", "300", 1, 86400 * 7, kRestart, INTO(sync.contact_idle_s),
                  "a contact actor idle this long is passivated"));
  k.push_back(Num("sync.redrive_max_text_age_h", "24", 0, 24 * 365, kReload,
                  INTO(sync.redrive_max_text_age_h),
                  "a text re-driven by `dfm replay --execute` is sent only if first asked for at most "
                  "this long ago (docs/replay-tools.md); 0: no limit"));
  k.push_back(List("sync.tag_lists", "", kReload, SetTagLists,
                   "tags -> Aloware lists, `[\"hot=101\", \"call now=102\"]` (docs/sync-rules.md)")
                  .Check(TagListsCheck));
  k.push_back(Text("sync.disposition_tag_prefix", "disposition: ", kReload,
                   INTO(sync.disposition_tag_prefix),
                   "an Aloware call's disposition becomes this GoHighLevel tag prefix + the disposition"));
  k.push_back(Num("sync.message_memory_days", "30", 1, 3650, kReload,
                  INTO(sync.message_memory_days),
                  "settled messages older than this leave a contact's live state (the log keeps "
                  "them); a reload reaches a contact when its actor starts again"));
  k.push_back(Choice(
      "sync.email_plus_addressing", "distinct", {"distinct", "same"}, kReload,
      [](GlobalSettings& s, const KeyValue& v) { s.sync.fold_plus_addressing = v.text == "same"; },
      "`same`: `ann+news@x.com` is `ann@x.com`'s person when matching (an address a contact holds "
      "exactly stays theirs); `distinct`: another"));
  k.push_back(Num("sync.enrich_again_days", "90", 1, 3650, kReload, INTO(sync.enrich_again_days),
                  "how long an enrichment's answer stands before the person or company is asked again"));
  k.push_back(Flag("consent.staff_opt_outs_hold", "false", kReload, INTO(sync.staff_opt_outs_hold),
                   "`true`: a staff opt-out (DND, DNC) holds until the person opts in, like their own; "
                   "per tenant `tenants.<t>.consent.staff_opt_outs_hold`"));
  k.push_back(Num("consent.yes_reply_window_h", "24", 1, 24 * 7, kReload, INTO(sync.yes_reply_window_h),
                  "a bare YES opts back in only this long after an outbound text sent after the opt-out"));
}

// [api]: the keyed API and the status page.
void ApiKeys(std::vector<KeySpec>* out) {
  std::vector<KeySpec>& k = *out;
  k.push_back(Num("api.rate_limit_per_key", "600", 0, 10000000, kRestart, INTO(api.rate_limit_per_key),
                  "API requests a minute per key (429 past it); 0: no limit"));
  k.push_back(Num("api.rate_limit_per_tenant", "3000", 0, 10000000, kRestart,
                  INTO(api.rate_limit_per_tenant), "API requests a minute per tenant; 0: no limit"));
  k.push_back(
      Flag("api.anonymous_search", "true", kRestart, INTO(api.anonymous_search),
           "the status page's search answers viewers not signed in (masked) while the tenant "
           "`default` is the only one; `false`, or any `[tenants.X]` (also one a reload adds): "
           "sign in"));
  k.push_back(Num("api.session_hours", "12", 1, 24 * 30, kRestart, INTO(api.session_hours),
                  "how long a status-page sign-in lasts"));
}

// [alerts]: operator alerts by email.
void AlertsKeys(std::vector<KeySpec>* out) {
  std::vector<KeySpec>& k = *out;
  k.push_back(Text("alerts.smtp_url", "", kRestart, INTO(alerts.smtp_url),
                   "operator alerts by email (docs/alerts.md): `smtp://host:587` (STARTTLS) or "
                   "`smtps://host:465`; empty: off")
                  .Check(SmtpCheck));
  k.push_back(Flag("alerts.starttls", "true", kRestart, INTO(alerts.starttls),
                   "STARTTLS on `smtp://`; a password is never sent without TLS"));
  k.push_back(Text("alerts.username", "", kRestart, INTO(alerts.username), "SMTP user"));
  k.push_back(Text("alerts.password", "", kRestart, INTO(alerts.password), "SMTP password").Secret());
  k.push_back(Text("alerts.from", "", kRestart, INTO(alerts.from), "the address alerts come from"));
  k.push_back(List("alerts.to", "", kRestart, INTO(alerts.to), "the addresses alerts go to"));
  k.push_back(Text("alerts.ca_file", "", kRestart, INTO(alerts.ca_file),
                   "CA bundle for the SMTP server; empty: the system's"));
  k.push_back(Text("alerts.site", "", kRestart, INTO(alerts.site), "this site's name in the subject"));
  k.push_back(Num("alerts.tick_s", "15", 1, 3600, kRestart, INTO(alerts.tick_s),
                  "how often the rules are evaluated"));
  k.push_back(Num("alerts.min_interval_s", "300", 1, 86400, kRestart, INTO(alerts.min_interval_s),
                  "fewest seconds between two mails"));
  k.push_back(Num("alerts.repeat_h", "4", 1, 24 * 30, kRestart, INTO(alerts.repeat_h),
                  "a firing alert is mailed again after this many hours"));
}

// [reconcile]: the daily read-back of opt-outs.
void ReconcileKeys(std::vector<KeySpec>* out) {
  std::vector<KeySpec>& k = *out;
  k.push_back(Text("reconcile.daily_at", "", kReload, INTO(reconcile.daily_at),
                   "`\"HH:MM\"` (UTC): every tenant's opt-outs read back from every system daily "
                   "(docs/sync-rules.md, \"Opt-outs\"); empty: never")
                  .Check(DailyAtCheck)
                  .Production("03:30"));
  k.push_back(Flag("reconcile.execute", "true", kReload, INTO(reconcile.execute),
                   "the daily run re-applies the drift it finds"));
  k.push_back(Num("reconcile.rate_percent", "50", 1, 100, kReload, INTO(reconcile.rate_percent),
                  "the share of each system's rate limit reconcile's reads use"));
}

std::string QuietHoursCheck(const KeyValue& v) {
  QuietHours q;
  return ParseQuietHours(v.text, &q) ? "" : "must be HH:MM-HH:MM, e.g. \"08:00-21:00\"";
}
std::string ZoneCheck(const KeyValue& v) {
  int32_t offset = 0;
  std::error_code ec;
  if (ParseFixedOffset(v.text, &offset) ||
      (!v.text.empty() && v.text.find("..") == std::string::npos && v.text[0] != '/' &&
       std::filesystem::is_regular_file(std::string(kZoneInfoDir) + "/" + v.text, ec)))
    return "";
  return "must be a time zone such as \"America/Chicago\" or a fixed offset such as \"+05:30\"";
}

// [campaigns]: what the campaign agents check at the moment of sending.
void CampaignKeys(std::vector<KeySpec>* out) {
  std::vector<KeySpec>& k = *out;
  k.push_back(Text("campaigns.quiet_hours", "08:00-21:00", kRestart, INTO(campaigns.quiet_hours),
                   "the hours a campaign may reach a person, in their local time (docs/campaigns.md)")
                  .Check(QuietHoursCheck));
  k.push_back(Text("campaigns.default_zone", "UTC", kRestart, INTO(campaigns.default_zone),
                   "the time zone of a person whose contact and phone say none")
                  .Check(ZoneCheck));
  k.push_back(Num("campaigns.per_day", "2", 0, 1000, kRestart, INTO(campaigns.per_day),
                  "campaign texts and emails a person gets in any 24 hours, at most; 0: no cap"));
  k.push_back(Num("campaigns.per_week", "5", 0, 1000, kRestart, INTO(campaigns.per_week),
                  "the same in any 7 days; 0: no cap"));
  k.push_back(Num("campaigns.texts_per_second", "10", 1, 10000, kRestart,
                  INTO(campaigns.texts_per_second), "campaign texts a second per sender, at most"));
  k.push_back(Num("campaigns.lease_s", "600", 10, 86400, kRestart, INTO(campaigns.lease_s),
                  "how long an agent holds a task it claimed; then it waits again"));
}

// [cluster]: several nodes on NATS JetStream, and the NATS link's security.
void ClusterKeys(std::vector<KeySpec>* out) {
  std::vector<KeySpec>& k = *out;
  k.push_back(Flag("cluster.enabled", "false", kRestart, INTO(cluster.enabled),
                   "run as a node of a cluster on NATS JetStream (docs/scale-out.md)"));
  k.push_back(List("cluster.nats_urls", "", kRestart, INTO(cluster.nats_urls),
                   "`nats://host:port` or `tls://host:port` of the cluster's servers")
                  .Check(NatsUrlsCheck));
  k.push_back(Text("cluster.node_id", "", kRestart, INTO(cluster.node_id), "unique per node")
                  .Check(NodeIdCheck)
                  .Shown("the host name"));
  k.push_back(Num("cluster.partitions", "12", 1, 1024, kRestart, INTO(cluster.partitions),
                  "fixed for the cluster's life"));
  k.push_back(Num("cluster.replicas", "3", 1, 5, kRestart, INTO(cluster.replicas),
                  "copies of every stream and of the lease bucket"));
  k.push_back(Num("cluster.lease_ttl_s", "6", 2, 300, kRestart, INTO(cluster.lease_ttl_s),
                  "a node that stops renewing loses its partitions after this"));
  k.push_back(Num("cluster.dedup_window_s", "600", 1, 86400, kRestart, INTO(cluster.dedup_window_s),
                  "how long an ingest stream remembers webhook ids (NATS memory); "
                  "the partition's node answers later resends"));
  k.push_back(Num("cluster.ingest_max_age_s", "604800", 1, 315360000, kRestart, INTO(cluster.ingest_max_age_s),
                  "how long an ingest stream keeps a webhook; one its partition did not take by then is lost, "
                  "so keep it well past any outage; at least `cluster.dedup_window_s`"));
  k.push_back(Text("cluster.nats_user", "", kRestart, INTO(cluster.nats_user),
                   "the NATS user this node connects as, with `cluster.nats_password`"));
  k.push_back(Text("cluster.nats_password", "", kRestart, INTO(cluster.nats_password),
                   "that user's password").Secret());
  k.push_back(Text("cluster.nats_token", "", kRestart, INTO(cluster.nats_token),
                   "a NATS authorization token instead").Secret());
  k.push_back(Text("cluster.nats_nkey", "", kRestart, INTO(cluster.nats_nkey),
                   "an NKey user's public key (`U...`) instead, with `cluster.nats_nkey_seed_file`"));
  k.push_back(Text("cluster.nats_nkey_seed_file", "", kRestart, INTO(cluster.nats_nkey_seed_file),
                   "the file holding that NKey's seed (`SU...`; keep it 0600)"));
  k.push_back(Text("cluster.nats_creds_file", "", kRestart, INTO(cluster.nats_creds_file),
                   "a `.creds` file (user JWT and NKey seed) instead"));
  k.push_back(Text("cluster.nats_ca_file", "", kRestart, INTO(cluster.nats_ca_file),
                   "the CA that signed the NATS servers' certificates (TLS, as with `tls://` URLs); "
                   "empty: the system's store"));
  k.push_back(Text("cluster.nats_cert_file", "", kRestart, INTO(cluster.nats_cert_file),
                   "this node's certificate, for servers that verify clients, with `cluster.nats_key_file`"));
  k.push_back(Text("cluster.nats_key_file", "", kRestart, INTO(cluster.nats_key_file),
                   "that certificate's private key"));
  k.push_back(Text("cluster.state_key", "", kRestart, INTO(cluster.state_key),
                   "64 hex digits, the same on every node: seals the personal data in the partitions' logs "
                   "and webhooks (so `dfm erase` works) and the connector state the nodes replicate (OAuth "
                   "grants, credit budgets), and signs page sign-ins; empty: nothing is sealed and that "
                   "state stays on the node that wrote it")
                  .Secret()
                  .Check(StateKeyCheck));
}

std::vector<KeySpec> MakeGlobalKeys() {
  std::vector<KeySpec> k;
  for (auto add : {ServerKeys, StorageAndLogKeys, SyncAndConsentKeys, ApiKeys, AlertsKeys, ReconcileKeys,
                    CampaignKeys, ClusterKeys})
    add(&k);
  return k;
}

}  // namespace

const std::vector<KeySpec>& GlobalKeys() {
  static const std::vector<KeySpec> kKeys = MakeGlobalKeys();
  return kKeys;
}


}  // namespace dfm
