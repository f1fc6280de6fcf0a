// WebhookIngestor: everything between "an HTTP request arrived" and "this
// event draft may be appended", with no HTTP library inside: routing,
// tenant and system lookup, size and content-type checks, the vendor's
// verification, and provider event ids. The server (server.h) only moves
// bytes. docs/http-api.md lists every answer.
//
// Thread-safety: Prepare() is const and may run on many threads at once.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "connectors/common/webhook_source.h"
#include "events/event.h"

namespace dfm {

using HeaderMap = std::map<std::string, std::string, std::less<>>;

struct HttpRequestView {
  std::string_view method;
  std::string_view target;  // path and query
  std::string_view body;
  // The peer's address, formatted only when asked: only a URL-signing
  // source (Twilio) behind a trusted proxy needs it.
  std::function<std::string()> remote_ip;
  const HeaderMap* headers = nullptr;  // lower-case names
};

struct IngestError {
  int status = 400;
  std::string error;   // stable machine-readable code, e.g. "unauthorized"
  std::string detail;  // for people; never secrets or personal data
  // For the service's own log when it says more than `detail` (which
  // tenant or system was not found: the sender is told only "not_found",
  // so it cannot enumerate them). Caller text: escaped when logged.
  std::string log_detail;
};

struct PreparedWebhook {
  std::string tenant;
  std::string system;
  EventDraft draft;
  bool test_ping = false;
  int unavailable_status = 503;  // what to answer if the log cannot write
  // The answer once recorded, when the system wants its own
  // (WebhookSource::RecordedAnswer); null: the JSON one.
  std::shared_ptr<const HandshakeAnswer> recorded_answer;
  // A GET the vendor verifies its URL with: answered as it says, text/plain,
  // nothing recorded.
  std::optional<HandshakeAnswer> handshake;
};

// Splits "/webhooks/{system}" and "/t/{tenant}/webhooks/{system}"; false for
// any other path.
bool ParseWebhookRoute(std::string_view path, std::string* tenant, std::string* system);

// The X-Request-ID to use: the caller's when it is 1-128 characters of
// [A-Za-z0-9._:-], else a new one.
std::string ResolveRequestId(std::string_view given);

// "application/json; charset=utf-8" -> "application/json".
std::string MediaType(std::string_view content_type);

class WebhookIngestor {
 public:
  // Builds every enabled (tenant, system) source. REQUIRES: `config` loaded
  // without errors.
  explicit WebhookIngestor(const Config& config);

  // nullopt and *out filled when the webhook may be appended.
  std::optional<IngestError> Prepare(const HttpRequestView& req, const std::string& request_id,
                                     int64_t now_us, PreparedWebhook* out) const;

  // The URL a URL-signing sender (Twilio) posted to: server.public_base_url
  // + target. Never rebuilt from the request's Host or forwarded headers,
  // which are the caller's to choose; the config requires the base URL
  // while such a system is enabled.
  std::string PublicUrl(const HttpRequestView& req) const;

  bool IsTrustedProxy(std::string_view ip) const;
  // What to answer a webhook to `path` that cannot be taken now (the log,
  // or a limit): a status its sender retries on (429 for GoHighLevel, else
  // 503; 503 for a path that names no configured source).
  int RetryStatusFor(std::string_view path) const;
  size_t source_count() const { return sources_.size(); }
  // The configured (tenant, system) pairs that take webhooks.
  std::vector<std::pair<std::string, std::string>> Routes() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [key, src] : sources_) out.push_back(key);
    return out;
  }

 private:
  // Prepare's steps. The configured (tenant, system) the request's path
  // names, its source, and for a sender serving many tenants the one its
  // body names.
  std::optional<IngestError> Route(const HttpRequestView& req, std::string* tenant,
                                   std::string* system, const WebhookSource** src) const;
  // The body's size and media type (lower-cased into *media).
  std::optional<IngestError> CheckBody(const HttpRequestView& req, const WebhookSource& src,
                                       const std::string& system, std::string* media) const;
  // out->draft: the verified, identified webhook as the event to append
  // (out->tenant and out->system set).
  void Draft(const HttpRequestView& req, const WebhookSource& src, const InboundRequest& in,
             const WebhookIdentity& identity, const std::string& scheme,
             const std::string& request_id, PreparedWebhook* out) const;

  ServerSettings server_;
  std::vector<std::string> tenants_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<WebhookSource>> sources_;
  // (system, tenant key) -> tenant, for systems whose one sender serves
  // many tenants (Connector::tenant_key: WhatsApp's phone_number_id).
  std::map<std::pair<std::string, std::string>, std::string> owners_;
};

}  // namespace dfm
