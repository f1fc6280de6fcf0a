#include "http/ingest.h"

#include <algorithm>
#include <cctype>

#include "connectors/connector.h"
#include "events/webhook_received.h"
#include "util/crypto.h"
#include "util/strings.h"

namespace dfm {

bool ParseWebhookRoute(std::string_view path, std::string* tenant, std::string* system) {
  auto segment_ok = [](std::string_view s) {
    return !s.empty() && s.size() <= 64 && s.find('/') == std::string_view::npos;
  };
  constexpr std::string_view kShort = "/webhooks/";
  constexpr std::string_view kTenant = "/t/";
  if (path.substr(0, kShort.size()) == kShort) {
    std::string_view sys = path.substr(kShort.size());
    if (!segment_ok(sys)) return false;
    *tenant = "default";
    *system = std::string(sys);
    return true;
  }
  if (path.substr(0, kTenant.size()) == kTenant) {
    std::string_view rest = path.substr(kTenant.size());
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return false;
    std::string_view t = rest.substr(0, slash);
    rest = rest.substr(slash);
    if (!segment_ok(t) || rest.substr(0, kShort.size()) != kShort) return false;
    std::string_view sys = rest.substr(kShort.size());
    if (!segment_ok(sys)) return false;
    *tenant = std::string(t);
    *system = std::string(sys);
    return true;
  }
  return false;
}

std::string ResolveRequestId(std::string_view given) {
  bool ok = !given.empty() && given.size() <= 128 &&
            std::all_of(given.begin(), given.end(), [](char c) {
              return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
                     c == ':' || c == '-';
            });
  if (ok) return std::string(given);
  // 128 bits: a per-thread random prefix and a counter. Unique, not secret.
  thread_local uint64_t prefix = [] {
    uint64_t p = 0;
    RandomBytes(reinterpret_cast<uint8_t*>(&p), sizeof(p));
    return p;
  }();
  thread_local uint64_t counter = 0;
  uint64_t words[2] = {prefix, ++counter};
  return HexEncode(std::string_view(reinterpret_cast<char*>(words), sizeof(words)));
}

std::string MediaType(std::string_view ct) {
  size_t semi = ct.find(';');
  std::string_view mt = ct.substr(0, semi);
  return AsciiLower(TrimSpace(mt));
}

WebhookIngestor::WebhookIngestor(const Config& config)
    : server_(config.server()), tenants_(config.tenants()) {
  for (const auto& tenant : tenants_) {
    for (const auto& [system, settings] : config.Systems(tenant)) {
      const Connector* c = FindConnector(system);
      if (!c || !c->webhook_source) continue;  // it sends no webhooks
      std::vector<SettingProblem> problems;
      auto src = MakeWebhookSource(*c, settings, &problems);
      if (!src) continue;
      sources_[{tenant, system}] = std::move(src);
      if (!c->tenant_key.empty())
        if (auto key = settings.find(c->tenant_key); key != settings.end() && !key->second.empty())
          owners_[{system, key->second}] = tenant;
    }
  }
}

bool WebhookIngestor::IsTrustedProxy(std::string_view ip) const {
  for (const auto& p : server_.trusted_proxies)
    if (p == ip) return true;
  return false;
}

int WebhookIngestor::RetryStatusFor(std::string_view path) const {
  std::string tenant, system;
  if (!ParseWebhookRoute(path, &tenant, &system)) return 503;
  auto it = sources_.find({tenant, system});
  return it == sources_.end() ? 503 : it->second->UnavailableStatus();
}

std::string WebhookIngestor::PublicUrl(const HttpRequestView& req) const {
  return server_.public_base_url + std::string(req.target);
}

std::optional<IngestError> WebhookIngestor::Route(const HttpRequestView& req, std::string* tenant,
                                                  std::string* system,
                                                  const WebhookSource** src) const {
  std::string_view path = req.target.substr(0, req.target.find('?'));
  // One answer for every path that is not a configured (tenant, system):
  // a stranger learns nothing of which tenants and systems exist.
  auto not_found = [](std::string why) {
    return IngestError{404, "not_found", "no such endpoint", std::move(why)};
  };
  if (!ParseWebhookRoute(path, tenant, system)) return not_found("not a webhook route");
  const bool get = req.method == "GET";
  if (req.method != "POST" && !get) {
    return IngestError{405, "method_not_allowed", "webhooks are sent with POST", ""};
  }
  if (FindConnector(*system) == nullptr) return not_found("unknown system " + *system);
  if (std::find(tenants_.begin(), tenants_.end(), *tenant) == tenants_.end())
    return not_found("unknown tenant " + *tenant);
  auto it = sources_.find({*tenant, *system});
  if (it == sources_.end()) {
    return not_found("system " + *system + " is not configured for tenant " + *tenant);
  }
  if (!get) {  // one sender for many tenants: the body says whose it is
    if (auto key = it->second->TenantKey(req.body)) {
      auto owner = owners_.find({*system, *key});
      if (owner == owners_.end())
        return IngestError{
            401, "unknown_account",
            "the webhook is for an account (" + *system + " tenant key) that no tenant here has",
            ""};
      *tenant = owner->second;
      it = sources_.find({*tenant, *system});
    }
  }
  *src = it->second.get();
  return std::nullopt;
}

std::optional<IngestError> WebhookIngestor::CheckBody(const HttpRequestView& req,
                                                      const WebhookSource& src,
                                                      const std::string& system,
                                                      std::string* media) const {
  if (req.body.size() > server_.max_body_bytes) {
    return IngestError{413, "body_too_large",
                       "body is " + std::to_string(req.body.size()) + " bytes; the limit is " +
                           std::to_string(server_.max_body_bytes),
                       ""};
  }
  auto ct_it = req.headers->find("content-type");
  *media = ct_it == req.headers->end() ? "" : MediaType(ct_it->second);
  if (!src.AcceptsContentType(*media)) {
    return IngestError{415, "unsupported_media_type",
                       media->empty()
                           ? "missing Content-Type"
                           : "Content-Type " + *media + " is not what " + system + " sends",
                       ""};
  }
  return std::nullopt;
}

std::optional<IngestError> WebhookIngestor::Prepare(const HttpRequestView& req,
                                                    const std::string& request_id, int64_t now_us,
                                                    PreparedWebhook* out) const {
  std::string tenant, system;
  const WebhookSource* found = nullptr;
  if (auto e = Route(req, &tenant, &system, &found)) return e;
  const WebhookSource& src = *found;
  if (req.method == "GET") {
    InboundRequest in;
    in.target = req.target;
    in.headers = req.headers;
    in.now_us = now_us;
    out->tenant = tenant;
    out->system = system;
    out->handshake = src.Handshake(in);
    if (!out->handshake)
      return IngestError{405, "method_not_allowed", "webhooks are sent with POST", ""};
    return std::nullopt;
  }
  std::string media;
  if (auto e = CheckBody(req, src, system, &media)) return e;

  InboundRequest in;
  in.target = req.target;
  in.content_type = media;
  in.body = req.body;
  in.headers = req.headers;
  in.now_us = now_us;
  if (src.SignsUrl()) in.public_url = PublicUrl(req);

  std::string scheme;
  Status v = src.Verify(in, &scheme);
  if (!v.ok()) return IngestError{401, "unauthorized", v.message(), ""};

  WebhookIdentity identity;
  Status s = src.Identify(in, &identity);
  if (!s.ok()) {
    if (s.code() == Status::Code::kUnauthenticated) {
      return IngestError{401, "unauthorized", s.message(), ""};
    }
    return IngestError{400, "malformed_body", s.message(), ""};
  }
  out->tenant = tenant;
  out->system = system;
  out->test_ping = identity.is_test_ping;
  out->unavailable_status = src.UnavailableStatus();
  out->recorded_answer = src.RecordedAnswer();
  Draft(req, src, in, identity, scheme, request_id, out);
  return std::nullopt;
}

void WebhookIngestor::Draft(const HttpRequestView& req, const WebhookSource& src,
                            const InboundRequest& in, const WebhookIdentity& identity,
                            const std::string& scheme, const std::string& request_id,
                            PreparedWebhook* out) const {
  WebhookReceived w;
  w.system = out->system;
  w.provider_event_id = identity.provider_event_id;
  w.id_source = identity.id_source;
  w.verification = scheme;
  w.request_id = request_id;
  w.public_url = in.public_url;
  auto record = [&](std::string_view name) {
    auto h = req.headers->find(name);
    if (h != req.headers->end()) w.headers.emplace_back(std::string(name), h->second);
  };
  for (std::string_view name : {"content-type", "user-agent", "x-forwarded-for"}) record(name);
  for (std::string_view name : src.HeadersToRecord()) record(name);

  EventDraft& d = out->draft;
  d = WebhookDraft(out->tenant, w, req.body);
  d.source_time_us = identity.source_time_us;
  d.idempotency_system = out->system;
  d.idempotency_key = identity.provider_event_id;
}

}  // namespace dfm
