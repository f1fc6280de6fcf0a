// Outbound connectors: what a connector actor asks of its vendor's API.
//
// A VendorClient turns one push (a contact's values for that system) into the
// vendor's requests: look the contact up first, then update or create, so a
// create that timed out and is retried never leaves a duplicate. It holds no
// policy: the connector actor decides when to call it (rate limits, backoff,
// circuit breaker, token refresh) from what it reports.
//
// Threading: Push and RefreshToken return at once; `done` runs exactly once,
// on any thread (usually the HTTP client's; the caller's when the push is
// settled without a request), and must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "connectors/common/http_client.h"
#include "connectors/common/webhook_source.h"

namespace dfm {

struct PushRequest {
  std::string push_id;
  std::string contact_id;
  std::string op;           // "upsert" | "mark_dnc"
  std::string external_id;  // the vendor's id when known, else empty
  std::map<std::string, std::string> fields;  // sync/fact.h names, normalized values
};

struct PushResult {
  int http_status = 0;      // status of the request that settled it; 0: transport error
  std::string external_id;  // the vendor's id of the contact (on success)
  std::string detail;       // why it failed; never personal data
  int requests = 0;         // HTTP requests it took
  bool auth_rejected = false;  // 401: the access token was refused
  // What the vendor said about its limits (from the last response).
  std::optional<int> rate_remaining;
  std::optional<int64_t> daily_remaining;
  std::optional<int64_t> retry_after_us;
};

struct TokenGrant {
  bool ok = false;
  int http_status = 0;
  std::string access_token;
  std::string refresh_token;  // single use: the next refresh needs this one
  int64_t expires_in_s = 0;
  std::string detail;
};

// Credentials a connector holds, as its actor tracks them.
struct Credentials {
  std::string access_token;
  std::string refresh_token;
  int64_t expires_at_us = 0;  // 0: does not expire (static token)
};

class VendorClient {
 public:
  virtual ~VendorClient() = default;
  virtual void Push(const PushRequest& req, const Credentials& creds,
                    std::function<void(PushResult)> done) = 0;
  // Vendors with OAuth exchange the refresh token for a new grant.
  virtual bool UsesOAuth() const { return false; }
  virtual void RefreshToken(const Credentials& creds, std::function<void(TokenGrant)> done) {
    TokenGrant g;
    g.detail = "this vendor has no OAuth";
    done(g);
  }
};

// Settings a connector reads (keys of the system's config table).
struct OutboundFactory {
  std::string system;
  std::vector<SettingSpec> settings;
  // True when the settings ask for outbound pushes (e.g. a base URL is set).
  std::function<bool(const SystemSettings&)> enabled;
  std::function<std::unique_ptr<VendorClient>(const SystemSettings&, HttpClient*)> create;
  // Fields this system accepts (sync targets).
  std::vector<std::string> accepted_fields;
  // Initial credentials from the settings.
  std::function<Credentials(const SystemSettings&)> credentials;
};

const std::vector<OutboundFactory>& BuiltinOutbound();
const OutboundFactory* FindOutbound(std::string_view system);

OutboundFactory GhlOutbound();
OutboundFactory AlowareOutbound();

// The delivery-policy keys every connector has (timeouts, retries, breaker).
void AddDeliverySettings(std::vector<SettingSpec>* settings);
// Every contact field of sync/fact.h.
std::vector<std::string> ContactFieldNames();

// A vendor's error text made safe to record: "HTTP <status>: <message>",
// the message dropped when it looks like it holds an email or a phone
// number (vendors echo the invalid value back).
std::string SafeDetail(int status, std::string_view message);

// Reads the vendor's rate-limit signals into `r` (X-RateLimit-Remaining,
// X-RateLimit-Daily-Remaining, Retry-After in seconds).
void ReadRateHeaders(const HttpResponse& resp, PushResult* r);

}  // namespace dfm
