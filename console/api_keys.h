// API keys: who may read and act through the HTTP API and the status page
// (docs/http-api.md, "Keys and roles").
//
// A key is "dfm_" id "_" secret: a 16-hex-digit id that names it in the
// log and in listings, and a 64-hex-digit (256-bit) random secret. Only
// the SHA-256 of the secret is kept: a key cannot be read back, only
// matched, and the match is constant-time. (A plain hash suffices for a
// random 256-bit secret; a slow password hash protects guessable ones.)
//
// Keys live in the log: `api_key.created` and `api_key.revoked` events on
// the stream "api_keys" of the key's tenant ("default" for a key of every
// tenant), so creating and revoking one are audited like every other
// admin action, and the set of live keys is a fold of those events.
//
// Thread-safety: ApiKeyRegistry's methods may be called from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "events/event.h"
#include "storage/event_log.h"
#include "util/status.h"

namespace dfm {

// What a key may do; each role may do what the ones before it may.
//   viewer:   the status page with personal data, trace, as-of, audits, events
//   operator: also re-drive pushes and settle identity conflicts
//   admin:    also create, list and revoke keys
enum class ApiRole { kViewer = 1, kOperator = 2, kAdmin = 3 };
std::string_view ApiRoleName(ApiRole role);  // "viewer", "operator", "admin"
std::optional<ApiRole> ParseApiRole(std::string_view name);
inline bool RoleAllows(ApiRole have, ApiRole need) { return static_cast<int>(have) >= static_cast<int>(need); }

inline constexpr std::string_view kAllTenants = "*";

// POST /v1/admin/keys's body {"name", "role", "tenant"?}: name 1-100
// characters, role a known one; InvalidArgument otherwise. `tenant` is
// empty when the body names none (the caller's own is meant).
struct NewKeyRequest {
  std::string name;
  ApiRole role = ApiRole::kViewer;
  std::string tenant;
};
Status DecodeNewKeyRequest(std::string_view body, NewKeyRequest* out);
inline constexpr std::string_view kApiKeysStream = "api_keys";
inline constexpr std::string_view kApiKeyCreated = "api_key.created";
inline constexpr std::string_view kApiKeyRevoked = "api_key.revoked";

struct ApiKeyRecord {
  std::string id;
  std::string tenant;  // a tenant, or kAllTenants
  ApiRole role = ApiRole::kViewer;
  std::string name;           // what it is for ("grafana", "auditor 2026")
  std::string secret_sha256;  // hex
  int64_t created_us = 0;
  std::string created_by;  // "admin-token", "key:<id>", "cli"
  bool revoked = false;
  int64_t revoked_us = 0;
  std::string revoked_by;
  // Whether the key may see `tenant`'s data.
  bool Covers(std::string_view t) const { return tenant == kAllTenants || tenant == t; }
};

// A new key's parts; `token` is what its holder presents.
struct NewApiKey {
  std::string id, secret, token;
};
NewApiKey MakeApiKey();
// Splits "dfm_<id>_<secret>"; false when `token` is not shaped so.
bool SplitApiKey(std::string_view token, std::string* id, std::string* secret);
std::string HashApiSecret(std::string_view secret);  // hex SHA-256

// The events that create and revoke a key (appended by the service or
// `dfm keys`; docs/event-format.md, "API keys"). `request_id`: the HTTP
// request that asked, or the CLI run.
EventDraft ApiKeyCreatedDraft(const ApiKeyRecord& key, const std::string& request_id);
EventDraft ApiKeyRevokedDraft(const ApiKeyRecord& key, const std::string& by,
                              const std::string& request_id);
// A key as listings show it: id, name, tenant, role, created_at and _by,
// revoked (and revoked_at and _by); never its hash.
std::string ApiKeyJson(const ApiKeyRecord& key);
// The tenant a key's events are kept under.
std::string ApiKeyEventTenant(std::string_view key_tenant);

// The keys the log holds: a fold of the api_key events.
class ApiKeyRegistry {
 public:
  // Folds one event; other types are ignored. False when an api_key event
  // does not read (it is skipped). In any order: a key's revocation
  // folded before its creation (a cluster node's own, kept until shared,
  // then the bucket's creation) leaves it revoked.
  bool Apply(const Event& e);
  // Folds the "api_keys" stream of each of `tenants`, each whole or not at
  // all: a read that fails part way must not fold a key's creation
  // without its revocation.
  Status Load(const EventLog& log, const std::vector<std::string>& tenants);
  // The live key `token` names; nullopt for anything else (unknown id,
  // wrong secret, revoked). Compares the secret's hash in constant time.
  std::optional<ApiKeyRecord> Authenticate(std::string_view token) const;
  std::optional<ApiKeyRecord> Find(const std::string& id) const;
  std::vector<ApiKeyRecord> List() const;  // by id, revoked ones too

 private:
  mutable std::mutex mu_;
  std::map<std::string, ApiKeyRecord> keys_;
  // Revocations of keys not created here yet: id -> (revoked_us, by).
  std::map<std::string, std::pair<int64_t, std::string>> revoked_early_;
};

}  // namespace dfm
