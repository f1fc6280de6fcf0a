#include "console/api_keys.h"

#include <simdjson.h>

#include "util/clock.h"
#include "util/crypto.h"
#include "util/json.h"

namespace dfm {

namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string Text(simdjson::dom::object& o, const char* key) {
  std::string_view v;
  return o[key].get(v) == simdjson::SUCCESS ? std::string(v) : std::string();
}

}  // namespace

std::string_view ApiRoleName(ApiRole role) {
  switch (role) {
    case ApiRole::kViewer: return "viewer";
    case ApiRole::kOperator: return "operator";
    case ApiRole::kAdmin: return "admin";
  }
  return "viewer";
}

std::optional<ApiRole> ParseApiRole(std::string_view name) {
  if (name == "viewer") return ApiRole::kViewer;
  if (name == "operator") return ApiRole::kOperator;
  if (name == "admin") return ApiRole::kAdmin;
  return std::nullopt;
}

NewApiKey MakeApiKey() {
  NewApiKey k;
  k.id = RandomHex(8);
  k.secret = RandomHex(32);
  k.token = "dfm_" + k.id + "_" + k.secret;
  return k;
}

bool SplitApiKey(std::string_view token, std::string* id, std::string* secret) {
  if (token.size() != 4 + 16 + 1 + 64 || token.substr(0, 4) != "dfm_" || token[20] != '_')
    return false;
  std::string_view i = token.substr(4, 16), s = token.substr(21);
  if (!IsLowerHex(i) || !IsLowerHex(s)) return false;
  *id = std::string(i);
  *secret = std::string(s);
  return true;
}

std::string HashApiSecret(std::string_view secret) { return HexEncode(Sha256(secret)); }

std::string ApiKeyEventTenant(std::string_view key_tenant) {
  return key_tenant == kAllTenants ? std::string("default") : std::string(key_tenant);
}

EventDraft ApiKeyCreatedDraft(const ApiKeyRecord& key, const std::string& request_id) {
  EventDraft d;
  d.tenant = ApiKeyEventTenant(key.tenant);
  d.stream = std::string(kApiKeysStream);
  d.type = std::string(kApiKeyCreated);
  d.payload = JsonObject()
                  .Str("key_id", key.id)
                  .Str("tenant", key.tenant)
                  .Str("role", ApiRoleName(key.role))
                  .Str("name", key.name)
                  .Str("secret_sha256", key.secret_sha256)
                  .Str("by", key.created_by)
                  .Str("request_id", request_id)
                  .Finish();
  d.idempotency_system = "dfm";
  d.idempotency_key = "api_key/" + key.id + "/created";
  return d;
}

EventDraft ApiKeyRevokedDraft(const ApiKeyRecord& key, const std::string& by,
                              const std::string& request_id) {
  EventDraft d;
  d.tenant = ApiKeyEventTenant(key.tenant);
  d.stream = std::string(kApiKeysStream);
  d.type = std::string(kApiKeyRevoked);
  d.payload = JsonObject()
                  .Str("key_id", key.id)
                  .Str("by", by)
                  .Str("request_id", request_id)
                  .Finish();
  d.idempotency_system = "dfm";
  d.idempotency_key = "api_key/" + key.id + "/revoked";
  return d;
}

std::string ApiKeyJson(const ApiKeyRecord& k) {
  JsonObject o;
  o.Str("id", k.id)
      .Str("name", k.name)
      .Str("tenant", k.tenant)
      .Str("role", ApiRoleName(k.role))
      .Str("created_at", FormatIso8601Millis(k.created_us))
      .Str("created_by", k.created_by)
      .Bool("revoked", k.revoked);
  if (k.revoked) o.Str("revoked_at", FormatIso8601Millis(k.revoked_us)).Str("revoked_by", k.revoked_by);
  return o.Finish();
}

Status DecodeNewKeyRequest(std::string_view body, NewKeyRequest* out) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  std::string_view name, role;
  if (parser.parse(body.data(), body.size()).get(o) != simdjson::SUCCESS ||
      o["name"].get(name) != simdjson::SUCCESS || name.empty() || name.size() > 100 ||
      o["role"].get(role) != simdjson::SUCCESS) {
    return Status::InvalidArgument(
        "give {\"name\": \"what it is for\" (1-100 characters), \"role\": "
        "\"viewer\"|\"operator\"|\"admin\", \"tenant\": \"<tenant>\"|\"*\"}");
  }
  auto r = ParseApiRole(role);
  if (!r) return Status::InvalidArgument("\"role\" is viewer, operator or admin");
  out->name = std::string(name);
  out->role = *r;
  // Left out: the caller's tenant (CreateKey). Given, it is a string: one
  // of another type is refused, not read as left out.
  std::string_view tenant;
  simdjson::dom::element given;
  if (o["tenant"].get(given) == simdjson::SUCCESS && given.get(tenant) != simdjson::SUCCESS)
    return Status::InvalidArgument("\"tenant\" is a tenant's name or \"*\"");
  out->tenant = std::string(tenant);
  return Status::OK();
}

bool ApiKeyRegistry::Apply(const Event& e) {
  if (e.type != kApiKeyCreated && e.type != kApiKeyRevoked) return true;
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  if (parser.parse(e.payload.data(), e.payload.size()).get(o) != simdjson::SUCCESS) return false;
  const std::string id = Text(o, "key_id");
  if (id.empty()) return false;
  std::lock_guard<std::mutex> lk(mu_);
  if (e.type == kApiKeyCreated) {
    auto role = ParseApiRole(Text(o, "role"));
    std::string hash = Text(o, "secret_sha256");
    if (!role || hash.size() != 64 || keys_.count(id)) return false;
    ApiKeyRecord k;
    k.id = id;
    k.tenant = Text(o, "tenant");
    k.role = *role;
    k.name = Text(o, "name");
    k.secret_sha256 = std::move(hash);
    k.created_us = e.recorded_at_us;
    k.created_by = Text(o, "by");
    if (auto early = revoked_early_.find(id); early != revoked_early_.end()) {
      k.revoked = true;
      k.revoked_us = early->second.first;
      k.revoked_by = std::move(early->second.second);
      revoked_early_.erase(early);
    }
    keys_[id] = std::move(k);
    return true;
  }
  auto it = keys_.find(id);
  if (it == keys_.end()) {
    revoked_early_.emplace(id, std::make_pair(e.recorded_at_us, Text(o, "by")));
    return true;
  }
  it->second.revoked = true;
  it->second.revoked_us = e.recorded_at_us;
  it->second.revoked_by = Text(o, "by");
  return true;
}

Status ApiKeyRegistry::Load(const EventLog& log, const std::vector<std::string>& tenants) {
  for (const auto& t : tenants) {
    std::vector<Event> events;
    Status s = log.ReadWholeStream(t, kApiKeysStream, &events);
    if (!s.ok()) return s;  // nothing of the tenant's folded
    for (const Event& e : events) Apply(e);
  }
  return Status::OK();
}

std::optional<ApiKeyRecord> ApiKeyRegistry::Authenticate(std::string_view token) const {
  std::string id, secret;
  if (!SplitApiKey(token, &id, &secret)) return std::nullopt;
  const std::string hash = HashApiSecret(secret);
  std::lock_guard<std::mutex> lk(mu_);
  auto it = keys_.find(id);
  // The id is not secret; the hash comparison is what must not leak time.
  if (it == keys_.end() || !ConstantTimeEquals(hash, it->second.secret_sha256) ||
      it->second.revoked)
    return std::nullopt;
  return it->second;
}

std::optional<ApiKeyRecord> ApiKeyRegistry::Find(const std::string& id) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = keys_.find(id);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

std::vector<ApiKeyRecord> ApiKeyRegistry::List() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<ApiKeyRecord> out;
  for (const auto& [id, k] : keys_) out.push_back(k);
  return out;
}

}  // namespace dfm
