// WebhookSource: how one external system's webhooks are authenticated and
// identified. Each system's connector (connectors/connector.h) makes its
// own; the HTTP front knows nothing vendor-specific.
//
// Contract for implementations: pure functions of the request and the
// tenant's settings; thread-safe after construction; never log secrets or
// personal data.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace dfm {

// A webhook as the HTTP front received it.
struct InboundRequest {
  std::string_view target;        // path and query, as sent on the wire
  std::string_view content_type;  // media type only, lower case ("application/json")
  std::string_view body;
  // Lower-case header names; first value wins for repeated headers.
  const std::map<std::string, std::string, std::less<>>* headers = nullptr;
  // The URL the sender posted to (scheme, host, proxy prefix, target),
  // rebuilt by the front from config or trusted forwarding headers.
  std::string public_url;
  int64_t now_us = 0;

  // The header's value; empty both when it is absent and when it was sent
  // empty (HasHeader tells them apart: a signature header sent empty is
  // present, and wrong).
  std::string_view Header(std::string_view lower_name) const {
    auto it = headers->find(lower_name);
    return it == headers->end() ? std::string_view() : std::string_view(it->second);
  }
  bool HasHeader(std::string_view lower_name) const {
    return headers->find(lower_name) != headers->end();
  }
};

// What Identify() learns about a verified webhook.
struct WebhookIdentity {
  std::string provider_event_id;  // vendor id, or a documented derived id
  std::string id_source;          // how it was found: "body.webhookId", ...
  std::optional<int64_t> source_time_us;
  // True for a body the service reads nothing from and keeps for no tenant
  // (a vendor's test ping, a WhatsApp account notification naming no
  // number): acknowledged, not recorded.
  bool is_test_ping = false;
};

// Settings of one system for one tenant: relative key ("webhook_secret") to
// value, after TOML and environment overrides.
using SystemSettings = std::map<std::string, std::string, std::less<>>;

struct SettingProblem {
  std::string key;  // relative key
  std::string message;
};

// The answer to a vendor's subscription handshake (a GET to the webhook
// URL, e.g. Meta's hub.challenge): status and body, text/plain (sent
// byte for byte) unless `content_type` says otherwise (a page).
struct HandshakeAnswer {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;  // sent as they are (a page's CSP)

  static HandshakeAnswer Plain(int status, std::string body) {
    HandshakeAnswer a;
    a.status = status;
    a.body = std::move(body);
    return a;
  }
};

class WebhookSource {
 public:
  virtual ~WebhookSource() = default;

  // Media types this system posts; anything else is answered with 415.
  virtual bool AcceptsContentType(std::string_view media_type) const = 0;

  // Checks the request's authenticity. Unauthenticated with a reason that is
  // safe to show the sender (never the expected value); on success *scheme
  // names what verified it ("ed25519", "hmac-sha256", ...).
  virtual Status Verify(const InboundRequest& req, std::string* scheme) const = 0;

  // Parses the verified body enough to find the provider event id and the
  // source time. InvalidArgument saying what is wrong for a malformed body
  // or a missing field; Unauthenticated for a stale timestamp.
  virtual Status Identify(const InboundRequest& req, WebhookIdentity* id) const = 0;

  // Headers worth recording with the event, besides content-type,
  // user-agent and x-forwarded-for (the request id has its own field).
  // Never credentials. Read per request: a list made once.
  virtual const std::vector<std::string_view>& HeadersToRecord() const {
    static const std::vector<std::string_view> kNone;
    return kNone;
  }

  // The answer to a GET on the webhook URL, for a vendor that verifies the
  // URL that way; nullopt: GET is not allowed (405). Never records anything.
  virtual std::optional<HandshakeAnswer> Handshake(const InboundRequest& req) const {
    (void)req;
    return std::nullopt;
  }

  // For a sender that serves several tenants from one account (one Meta
  // app, one App Secret, for many WhatsApp numbers; Connector::tenant_key):
  // the value in the body that says whose webhook it is, read before
  // verification; the front hands the webhook to the tenant whose setting
  // holds that value, and that tenant's own secret verifies it. nullopt: the
  // body names none (the URL's tenant takes it, and its checks answer).
  virtual std::optional<std::string> TenantKey(std::string_view body) const {
    (void)body;
    return std::nullopt;
  }

  // True when this system's signature covers the public URL.
  virtual bool SignsUrl() const { return false; }
  // True when what authenticates a request binds it to its tenant's URL
  // (a signature over the whole URL, path included): two tenants may then
  // share a secret (config check refuses it otherwise).
  virtual bool UrlBindsTenant() const { return SignsUrl(); }

  // The status code to answer when the log cannot accept writes: a code
  // this vendor retries on.
  virtual int UnavailableStatus() const { return 503; }

  // The 200's body and content type once a webhook is recorded (accepted
  // or a duplicate), for a vendor that reads the answer (Twilio wants
  // TwiML), the outcome then in X-DFM-Status, X-DFM-Event-Id and
  // X-DFM-Seq; null: {"status":"accepted"|"duplicate","event_id","seq"}.
  virtual std::shared_ptr<const HandshakeAnswer> RecordedAnswer() const { return nullptr; }
};

// One key of a system's configuration table.
struct SettingSpec {
  std::string key;  // relative: "webhook_secret"
  bool secret = false;
  std::string default_value;
  std::string help;
  bool whole_number = false;  // the config refuses anything else (dfm config check)
  // A key outside the system's table that set this one in older versions
  // ("sync.aloware_contact_events"): still read, for every tenant that
  // does not set this one, with a deprecation warning; `from_old` turns its
  // value into this one's (a change of unit), empty: taken as it is.
  std::string old_key = "";
  std::function<std::string(const std::string&)> from_old = nullptr;
};

class HmacKey;  // util/crypto.h

// Helpers shared by the sources.
// `X-Hub-Signature-256: sha256=<digest>` (Meta's and Genesys's): the
// HMAC-SHA256 of the raw body keyed with `key`, its digest as hex (Meta)
// or base64 (Genesys), compared in constant time. OK, or Unauthenticated
// saying what is wrong (never the expected value).
enum class DigestText { kHex, kBase64 };
Status VerifyHubSignature(const InboundRequest& req, const HmacKey& key, DigestText text);
// Parses application/x-www-form-urlencoded; nullopt on a bad %-escape.
std::optional<std::vector<std::pair<std::string, std::string>>> ParseForm(std::string_view body);
std::string UrlDecode(std::string_view s, bool plus_is_space, bool* ok);
// The setting `key` as a positive whole number of seconds; 0 with a problem
// on `key` when it is not one.
int64_t PositiveSeconds(const SystemSettings& s, const std::string& key,
                        std::vector<SettingProblem>* problems);

}  // namespace dfm
