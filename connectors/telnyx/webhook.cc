// Telnyx Messaging webhooks (API v2; docs/vendors/telnyx.md).
//
// Authenticity: `telnyx-signature-ed25519` is the base64 Ed25519 signature,
// by the account's key pair, of "{telnyx-timestamp}|{raw body}";
// `public_key` is the account's public key as the portal shows it (base64
// of the 32 raw bytes). Freshness: `telnyx-timestamp` (Unix seconds, under
// the signature) within `tolerance_s` of now, 300 s as Telnyx's own
// libraries check, either way, so a captured request cannot be replayed
// later; within the window the event id stops it.
//
// Tenant: the key is the account's, so a signature proves only that the
// account sent the body, not for which tenant. Tenants on one account each
// name their messaging profiles (`messaging_profile_ids`); a body whose
// `data.payload.messaging_profile_id` is not one of them is refused, as is
// one with none (config check requires the ids wherever two tenants share
// a key: Connector::account_key).
//
// Provider event id: `data.id`, the event's UUID (Telnyx resends the same
// one on a retry). Source time: `data.occurred_at`.
#include <cstdlib>

#include "connectors/common/json_body.h"
#include "connectors/common/mapper.h"
#include "connectors/telnyx/telnyx.h"
#include "util/clock.h"
#include "util/crypto.h"

namespace dfm {
namespace {

class TelnyxSource : public WebhookSource {
 public:
  TelnyxSource(std::unique_ptr<PublicKey> key, int64_t tolerance_s,
               std::vector<std::string> profiles)
      : key_(std::move(key)),
        tolerance_us_(tolerance_s * 1000000),
        profiles_(std::move(profiles)) {}

  bool AcceptsContentType(std::string_view mt) const override { return mt == "application/json"; }

  Status Verify(const InboundRequest& req, std::string* scheme) const override {
    if (!req.HasHeader("telnyx-signature-ed25519"))
      return Status::Unauthenticated("missing telnyx-signature-ed25519 header");
    if (!req.HasHeader("telnyx-timestamp")) return Status::Unauthenticated("missing telnyx-timestamp header");
    const std::string ts(req.Header("telnyx-timestamp"));
    char* end = nullptr;
    const long long secs = std::strtoll(ts.c_str(), &end, 10);
    if (ts.empty() || *end != '\0' || secs <= 0 || secs > 100000000000LL)
      return Status::Unauthenticated("telnyx-timestamp is not Unix seconds");
    auto sig = Base64Decode(req.Header("telnyx-signature-ed25519"));
    std::string message = ts + "|";
    message.append(req.body);
    if (!sig || !key_->VerifyEd25519(message, *sig))
      return Status::Unauthenticated("telnyx-signature-ed25519 does not match the timestamp and body");
    const int64_t skew = req.now_us - secs * 1000000;
    if (skew > tolerance_us_ || -skew > tolerance_us_)
      return Status::Unauthenticated("telnyx-timestamp is outside the allowed window");
    *scheme = "ed25519";
    return Status::OK();
  }

  Status Identify(const InboundRequest& req, WebhookIdentity* id) const override {
    simdjson::dom::object obj;
    Status s = ParseJsonObject(req.body, &obj);
    if (!s.ok()) return s;
    simdjson::dom::object data;
    if (obj["data"].get(data)) return Status::InvalidArgument("missing object field data");
    bool wrong = false;
    auto event_id = StringOrNumberField(data, "id", &wrong);
    if (!event_id || event_id->empty()) return Status::InvalidArgument("missing string field data.id");
    auto type = StringOrNumberField(data, "event_type", &wrong);
    if (!type || type->empty()) return Status::InvalidArgument("missing string field data.event_type");
    Status bound = Bind(data);
    if (!bound.ok()) return bound;
    id->provider_event_id = *event_id;
    id->id_source = "body.data.id";
    if (auto at = StringOrNumberField(data, "occurred_at", &wrong))
      if (auto us = ParseIso8601Micros(*at)) id->source_time_us = *us;
    return Status::OK();
  }

  const std::vector<std::string_view>& HeadersToRecord() const override {
    static const std::vector<std::string_view> kNames = {"telnyx-signature-ed25519", "telnyx-timestamp"};
    return kNames;
  }

 private:
  // OK when no profiles are configured (the key is this tenant's alone) or
  // the body's messaging profile is one of them.
  Status Bind(simdjson::dom::object data) const {
    if (profiles_.empty()) return Status::OK();
    std::string_view profile;
    if (data["payload"]["messaging_profile_id"].get(profile) || profile.empty())
      return Status::Unauthenticated(
          "body has no data.payload.messaging_profile_id: it cannot be bound to this tenant");
    bool mine = false;
    for (const auto& p : profiles_) mine = ConstantTimeEquals(profile, p) || mine;
    if (!mine) return Status::Unauthenticated("messaging_profile_id is not one of this tenant's");
    return Status::OK();
  }

  std::unique_ptr<PublicKey> key_;
  int64_t tolerance_us_;
  std::vector<std::string> profiles_;
};

}  // namespace

std::vector<SettingSpec> TelnyxWebhookSettings() {
  return {
      {"public_key", false, "",
       "the account's public key for webhooks (Mission Control: Keys & Credentials, Public Key; "
       "base64 of 32 bytes)"},
      {"tolerance_s", false, "300", "how far telnyx-timestamp may be from now, either way", true},
      {"messaging_profile_ids", false, "",
       "this tenant's messaging profiles (comma-separated); webhooks of other profiles are "
       "refused. "
       "Required when tenants share one Telnyx account"},
  };
}

std::unique_ptr<WebhookSource> NewTelnyxWebhookSource(const SystemSettings& s,
                                                      std::vector<SettingProblem>* problems) {
  const std::string& b64 = s.at("public_key");
  if (b64.empty()) {
    problems->push_back({"public_key", "required"});
    return nullptr;
  }
  auto raw = Base64Decode(b64);
  std::unique_ptr<PublicKey> key;
  if (raw && raw->size() == 32) key = PublicKey::FromRawEd25519(*raw);
  if (!key) {
    problems->push_back({"public_key", "must be base64 of a 32-byte Ed25519 public key"});
    return nullptr;
  }
  const int64_t tolerance = PositiveSeconds(s, "tolerance_s", problems);
  if (tolerance <= 0) return nullptr;
  auto profiles = s.find("messaging_profile_ids");
  return std::make_unique<TelnyxSource>(
      std::move(key), tolerance,
      profiles == s.end() ? std::vector<std::string>{} : SplitCommaList(profiles->second));
}

}  // namespace dfm
