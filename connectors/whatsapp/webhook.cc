// WhatsApp Cloud API webhooks (docs/vendors/whatsapp.md).
//
// Authenticity: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the
// raw body keyed with the Meta app's App Secret (compared over the bytes as
// sent: Meta signs its escaped-unicode form).
//
// Tenancy: one Meta app may serve many tenants (one App Secret signs every
// number's notifications), so the notification's number chooses the
// tenant, not the URL: TenantKey is the first change's
// `value.metadata.phone_number_id`, the front gives the notification to
// the tenant whose `phone_number_id` it is (401 when none), and that
// tenant's own App Secret verifies it. Every change must then be about
// that number: one for another number is refused (401).
//
// Handshake: Meta verifies the callback URL with
// `GET ?hub.mode=subscribe&hub.verify_token=<ours>&hub.challenge=<n>`:
// answered 200 with the challenge when the token matches, else 403.
//
// Provider event id: Meta gives none. It is made of what the notification
// carries, each item once: "m:<wamid>" per message, "s:<wamid>:<status>"
// per status, "p:<wa_id>:<category>:<value>:<timestamp>" per user
// preference, joined by ','; past 200 bytes, "items-sha256:<hex>" of that
// list. Meta's retries of the same notification carry the same items.
// Source time: the newest item timestamp (epoch seconds, as strings).
#include <algorithm>
#include <optional>

#include "connectors/common/json_body.h"
#include "connectors/whatsapp/whatsapp.h"
#include "util/crypto.h"

namespace dfm {
namespace {

std::string QueryValue(std::string_view target, std::string_view name) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return "";
  auto params = ParseForm(target.substr(q + 1));
  if (!params) return "";
  for (auto& [k, v] : *params)
    if (k == name) return v;
  return "";
}

class WhatsAppSource : public WebhookSource {
 public:
  WhatsAppSource(const std::string& secret, std::string verify_token, std::string number_id)
      : key_(HmacKey::Digest::kSha256, secret),
        verify_token_(std::move(verify_token)),
        number_id_(std::move(number_id)) {}

  bool AcceptsContentType(std::string_view mt) const override { return mt == "application/json"; }

  // The first change naming a number (an account notification names none).
  std::optional<std::string> TenantKey(std::string_view body) const override {
    simdjson::dom::object obj;
    if (!ParseJsonObject(body, &obj).ok()) return std::nullopt;
    simdjson::dom::array entries, changes;
    if (obj["entry"].get(entries)) return std::nullopt;
    for (simdjson::dom::element e : entries) {
      if (e["changes"].get(changes)) continue;
      for (simdjson::dom::element c : changes) {
        std::string_view number;
        if (!c["value"]["metadata"]["phone_number_id"].get(number)) return std::string(number);
      }
    }
    return std::nullopt;
  }

  Status Verify(const InboundRequest& req, std::string* scheme) const override {
    Status s = VerifyHubSignature(req, key_, DigestText::kHex);
    if (s.ok()) *scheme = "hmac-sha256";
    return s;
  }

  Status Identify(const InboundRequest& req, WebhookIdentity* id) const override {
    simdjson::dom::object obj;
    Status s = ParseJsonObject(req.body, &obj);
    if (!s.ok()) return s;
    std::string_view object;
    if (obj["object"].get(object) || object != "whatsapp_business_account")
      return Status::InvalidArgument("field object is not \"whatsapp_business_account\"");
    simdjson::dom::array entries;
    if (obj["entry"].get(entries)) return Status::InvalidArgument("missing array field entry");
    std::vector<std::string> items;
    bool numbered = false;  // a change named this tenant's number
    int64_t newest = 0;
    auto stamp = [&](simdjson::dom::object o) {
      bool wrong = false;
      auto ts = StringOrNumberField(o, "timestamp", &wrong);
      if (ts) newest = std::max<int64_t>(newest, WhatsAppSeconds(std::strtoll(ts->c_str(), nullptr, 10)));
    };
    for (simdjson::dom::element e : entries) {
      simdjson::dom::array changes;
      if (e["changes"].get(changes)) return Status::InvalidArgument("entry without changes");
      for (simdjson::dom::element c : changes) {
        simdjson::dom::object value;
        if (c["value"].get(value)) return Status::InvalidArgument("change without value");
        std::string_view number;
        if (value["metadata"]["phone_number_id"].get(number)) {
          // A change about no number (a template's status, an account or
          // quality update): nothing the sync reads, and nothing binds it
          // to a tenant. One carrying items must name its number.
          if (value["messages"].error() == simdjson::SUCCESS ||
              value["statuses"].error() == simdjson::SUCCESS ||
              value["user_preferences"].error() == simdjson::SUCCESS)
            return Status::InvalidArgument("change without value.metadata.phone_number_id");
          continue;
        }
        numbered = true;
        if (!ConstantTimeEquals(number, number_id_))
          return Status::Unauthenticated("notification for a phone_number_id that is not this tenant's");
        simdjson::dom::array list;
        if (!value["messages"].get(list)) {
          for (simdjson::dom::element m : list) {
            std::string_view wamid;
            if (m["id"].get(wamid)) return Status::InvalidArgument("message without id");
            items.push_back("m:" + std::string(wamid));
            if (m.is_object()) stamp(m.get_object().value_unsafe());
          }
        }
        if (!value["statuses"].get(list)) {
          for (simdjson::dom::element m : list) {
            std::string_view wamid, status;
            if (m["id"].get(wamid) || m["status"].get(status))
              return Status::InvalidArgument("status without id or status");
            items.push_back("s:" + std::string(wamid) + ":" + std::string(status));
            if (m.is_object()) stamp(m.get_object().value_unsafe());
          }
        }
        if (!value["user_preferences"].get(list)) {
          for (simdjson::dom::element m : list) {
            std::string_view wa, cat, val;
            int64_t ts = 0;
            if (m["wa_id"].get(wa) || m["category"].get(cat) || m["value"].get(val))
              return Status::InvalidArgument("user preference without wa_id, category or value");
            if (m["timestamp"].get(ts)) {}
            items.push_back("p:" + std::string(wa) + ":" + std::string(cat) + ":" +
                            std::string(val) + ":" + std::to_string(ts));
            newest = std::max(newest, WhatsAppSeconds(ts));
          }
        }
      }
    }
    if (!numbered) {
      // About the app's account alone: acknowledged (Meta retries anything
      // else for days), kept by no tenant (with one app for many tenants
      // the account may be another tenant's).
      id->is_test_ping = true;
      return Status::OK();
    }
    if (items.empty()) {
      // A number's change with no items: nothing the sync reads. Still
      // recorded once per body (the same bytes are the same notification).
      id->provider_event_id = "body-sha256:" + HexEncode(Sha256(req.body));
      id->id_source = "sha256(body)";
      return Status::OK();
    }
    std::string joined;
    for (const auto& i : items) joined += (joined.empty() ? "" : ",") + i;
    if (joined.size() > 200) {
      id->provider_event_id = "items-sha256:" + HexEncode(Sha256(joined));
      id->id_source = "sha256(items)";
    } else {
      id->provider_event_id = joined;
      id->id_source = "items";
    }
    if (newest > 0) id->source_time_us = newest * 1000000;
    return Status::OK();
  }

  std::optional<HandshakeAnswer> Handshake(const InboundRequest& req) const override {
    const std::string mode = QueryValue(req.target, "hub.mode");
    const std::string token = QueryValue(req.target, "hub.verify_token");
    const std::string challenge = QueryValue(req.target, "hub.challenge");
    if (mode != "subscribe" || verify_token_.empty() || !ConstantTimeEquals(token, verify_token_))
      return HandshakeAnswer::Plain(403, "verification failed: hub.mode or hub.verify_token is wrong");
    if (challenge.empty() || challenge.size() > 256)
      return HandshakeAnswer::Plain(400, "hub.challenge is missing or too long");
    return HandshakeAnswer::Plain(200, challenge);
  }

  const std::vector<std::string_view>& HeadersToRecord() const override {
    static const std::vector<std::string_view> kNames = {"x-hub-signature-256"};
    return kNames;
  }

 private:
  HmacKey key_;
  std::string verify_token_;
  std::string number_id_;
};

}  // namespace

std::vector<SettingSpec> WhatsAppWebhookSettings() {
  return {
      {"app_secret", true, "", "the Meta app's App Secret (X-Hub-Signature-256)"},
      {"verify_token", true, "", "the Verify Token set with the callback URL (GET handshake)"},
      {"phone_number_id", false, "", "the tenant's WhatsApp business phone number id"},
  };
}

std::unique_ptr<WebhookSource> NewWhatsAppWebhookSource(const SystemSettings& s,
                                                        std::vector<SettingProblem>* problems) {
  size_t before = problems->size();
  if (s.at("app_secret").empty()) problems->push_back({"app_secret", "required"});
  if (s.at("verify_token").empty()) problems->push_back({"verify_token", "required"});
  if (s.at("phone_number_id").empty()) problems->push_back({"phone_number_id", "required"});
  if (problems->size() != before) return nullptr;
  return std::make_unique<WhatsAppSource>(s.at("app_secret"), s.at("verify_token"),
                                          s.at("phone_number_id"));
}

}  // namespace dfm
