// Twilio webhooks (Messaging: inbound SMS, status callbacks).
//
// Authenticity: `X-Twilio-Signature` is the base64 HMAC-SHA1, keyed with the
// account's auth token, of the full public URL the request was sent to
// followed, for form posts, by every POST parameter as name then value,
// sorted by name. For JSON bodies the URL carries `bodySHA256` (hex SHA-256
// of the body), the signature covers the URL alone, and the body must match
// that hash. As Twilio's own helper libraries do, the URL is tried as built
// and with its default port added or removed, since Twilio may sign either.
//
// Provider event id: only what the signature covers. A form's is
// "<MessageSid>:<status>", status being MessageStatus, else SmsStatus: one
// message sends several status callbacks, each a distinct fact, and Twilio's
// retries repeat both. Calls: "<CallSid>:<CallStatus>". A JSON body's is
// "body-sha256:<hex>", its signed hash: the same bytes are the same fact.
// The `I-Twilio-Idempotency-Token` header is not signed, so it is recorded
// but never trusted: under forged tokens one signed form was taken three
// times, and an old START replayed that way beat a newer STOP.
#include "connectors/twilio/twilio.h"

#include <algorithm>

#include "connectors/common/json_body.h"
#include "util/crypto.h"
#include "util/strings.h"

namespace dfm {
namespace {

// The URL with its default port added (if absent) or removed (if present).
std::string TogglePort(const std::string& url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return url;
  bool https = url.compare(0, 5, "https") == 0;
  size_t host_start = scheme_end + 3;
  size_t path_start = url.find_first_of("/?", host_start);
  if (path_start == std::string::npos) path_start = url.size();
  std::string host = url.substr(host_start, path_start - host_start);
  size_t colon = host.rfind(':');
  if (colon != std::string::npos && host.find(']', colon) == std::string::npos) {
    return url.substr(0, host_start) + host.substr(0, colon) + url.substr(path_start);
  }
  return url.substr(0, host_start) + host + (https ? ":443" : ":80") + url.substr(path_start);
}

std::string QueryParam(const std::string& url, std::string_view name) {
  size_t q = url.find('?');
  if (q == std::string::npos) return "";
  auto params = ParseForm(std::string_view(url).substr(q + 1));
  if (!params) return "";
  for (auto& [k, v] : *params)
    if (k == name) return v;
  return "";
}

class TwilioSource : public WebhookSource {
 public:
  explicit TwilioSource(const std::string& token) : key_(HmacKey::Digest::kSha1, token) {}

  bool AcceptsContentType(std::string_view mt) const override {
    return mt == "application/x-www-form-urlencoded" || mt == "application/json";
  }

  bool SignsUrl() const override { return true; }

  // Twilio reads the answer to an incoming message as TwiML, and logs
  // anything but text/xml or application/xml as error 12300 ("Invalid
  // Content-Type") in the account's Debugger: an empty <Response/> sends
  // no reply. Status callbacks take any answer; the same one does.
  std::shared_ptr<const HandshakeAnswer> RecordedAnswer() const override {
    static const auto kEmptyTwiml = std::make_shared<const HandshakeAnswer>(
        HandshakeAnswer{200,
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>",
                        "text/xml; charset=utf-8",
                        {}});
    return kEmptyTwiml;
  }

  Status Verify(const InboundRequest& req, std::string* scheme) const override {
    if (!req.HasHeader("x-twilio-signature"))
      return Status::Unauthenticated("missing X-Twilio-Signature header");
    std::string_view b64 = req.Header("x-twilio-signature");
    auto sig = Base64Decode(b64);
    if (b64.empty()) return Status::Unauthenticated("X-Twilio-Signature does not match the URL and parameters");
    if (!sig) return Status::Unauthenticated("X-Twilio-Signature is not base64");
    std::vector<std::string> parts;
    if (req.content_type == "application/json") {
      std::string want = QueryParam(req.public_url, "bodySHA256");
      if (want.empty()) return Status::Unauthenticated("JSON body without bodySHA256 in the URL");
      auto d = Sha256(req.body);
      std::string have = HexEncode(d);
      AsciiLowerInPlace(&want);
      if (!ConstantTimeEquals(have, want)) {
        return Status::Unauthenticated("body does not match bodySHA256");
      }
      *scheme = "hmac-sha1-body-sha256";
    } else {
      auto params = ParseForm(req.body);
      if (!params) return Status::Unauthenticated("form body has a malformed %-escape");
      std::stable_sort(params->begin(), params->end());
      for (auto& [k, v] : *params) {
        parts.push_back(k);
        parts.push_back(v);
      }
      *scheme = "hmac-sha1";
    }
    for (const std::string& url : {req.public_url, TogglePort(req.public_url)}) {
      std::vector<std::string_view> all{url};
      all.insert(all.end(), parts.begin(), parts.end());
      if (ConstantTimeEquals(key_.MacOfParts(all), *sig)) return Status::OK();
    }
    return Status::Unauthenticated("X-Twilio-Signature does not match the URL and parameters");
  }

  Status Identify(const InboundRequest& req, WebhookIdentity* id) const override {
    if (req.content_type == "application/json") {
      simdjson::dom::object obj;
      Status s = ParseJsonObject(req.body, &obj);
      if (!s.ok()) return s;
      id->provider_event_id = "body-sha256:" + HexEncode(Sha256(req.body));
      id->id_source = "sha256(body)";
      return Status::OK();
    }
    auto params = ParseForm(req.body);
    if (!params) return Status::InvalidArgument("form body has a malformed %-escape");
    auto get = [&](std::string_view name) -> std::string {
      for (auto& [k, v] : *params)
        if (k == name) return v;
      return "";
    };
    std::string sid = get("MessageSid"), field = "MessageSid";
    if (sid.empty()) sid = get("SmsSid"), field = "SmsSid";
    std::string status = get("MessageStatus"), status_field = "MessageStatus";
    if (status.empty()) status = get("SmsStatus"), status_field = "SmsStatus";
    if (sid.empty()) {
      sid = get("CallSid"), field = "CallSid";
      status = get("CallStatus"), status_field = "CallStatus";
    }
    if (sid.empty()) return Status::InvalidArgument("missing parameter MessageSid (or SmsSid, CallSid)");
    if (status.empty()) return Status::InvalidArgument("missing parameter " + status_field);
    id->provider_event_id = sid + ":" + status;
    id->id_source = "form." + field + ":form." + status_field;
    return Status::OK();
  }

  const std::vector<std::string_view>& HeadersToRecord() const override {
    static const std::vector<std::string_view> kNames = {
        "x-twilio-signature", "i-twilio-idempotency-token", "x-home-region"};
    return kNames;
  }

 private:
  HmacKey key_;
};

}  // namespace

std::vector<SettingSpec> TwilioWebhookSettings() {
  return {{"auth_token", true, "", "Twilio auth token (the HMAC key)"}};
}

std::unique_ptr<WebhookSource> NewTwilioWebhookSource(const SystemSettings& s,
                                                      std::vector<SettingProblem>* problems) {
  if (s.at("auth_token").empty()) {
    problems->push_back({"auth_token", "required"});
    return nullptr;
  }
  return std::make_unique<TwilioSource>(s.at("auth_token"));
}

}  // namespace dfm
