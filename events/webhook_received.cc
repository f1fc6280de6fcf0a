#include "events/webhook_received.h"

#include "util/coding.h"

namespace dfm {

std::string_view WebhookReceived::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

namespace {

void PutHeaders(std::string* out, const WebhookReceived& w) {
  PutVarint64(out, w.headers.size());
  for (const auto& [k, v] : w.headers) {
    PutLengthPrefixed(out, k);
    PutLengthPrefixed(out, v);
  }
}

bool GetHeaders(std::string_view* in, WebhookReceived* w) {
  uint64_t n = 0;
  if (!GetVarint64(in, &n) || n > in->size()) return false;
  w->headers.clear();
  w->headers.reserve(static_cast<size_t>(n));
  for (uint64_t i = 0; i < n; ++i) {
    std::string k, v;
    if (!GetLengthPrefixed(in, &k) || !GetLengthPrefixed(in, &v)) return false;
    w->headers.emplace_back(std::move(k), std::move(v));
  }
  return true;
}

}  // namespace

std::string EncodeWebhookReceived(const WebhookReceived& w) { return EncodeWebhookReceived(w, w.body); }

EventDraft WebhookDraft(std::string tenant, const WebhookReceived& w) {
  return WebhookDraft(std::move(tenant), w, w.body);
}

EventDraft WebhookDraft(std::string tenant, const WebhookReceived& w, std::string_view body) {
  EventDraft d;
  d.tenant = std::move(tenant);
  d.stream = SourceStream(w.system);
  d.type = std::string(WebhookReceived::kType);
  d.schema_version = WebhookReceived::kSchemaVersion;
  d.payload = EncodeWebhookReceived(w, body);
  return d;
}

std::string EncodeWebhookReceived(const WebhookReceived& w, std::string_view body) {
  std::string out;
  out.reserve(160 + body.size() + w.provider_event_id.size() + w.public_url.size());
  PutLengthPrefixed(&out, w.system);
  PutLengthPrefixed(&out, w.provider_event_id);
  PutLengthPrefixed(&out, w.id_source);
  PutLengthPrefixed(&out, w.verification);
  PutLengthPrefixed(&out, w.request_id);
  PutLengthPrefixed(&out, w.public_url);
  PutHeaders(&out, w);
  PutLengthPrefixed(&out, body);
  return out;
}

std::string EncodeWebhookReceivedV1ForTest(const WebhookReceived& w) {
  std::string out;
  PutLengthPrefixed(&out, w.system);
  PutLengthPrefixed(&out, w.provider_event_id);
  PutHeaders(&out, w);
  PutLengthPrefixed(&out, w.body);
  return out;
}

Status DecodeWebhookReceived(uint16_t schema_version, std::string_view in, WebhookReceived* w) {
  bool ok = false;
  switch (schema_version) {
    case 1:
      ok = GetLengthPrefixed(&in, &w->system) && GetLengthPrefixed(&in, &w->provider_event_id) &&
           GetHeaders(&in, w) && GetLengthPrefixed(&in, &w->body);
      // Upcast: v1 did not record these; say so rather than guess.
      w->id_source = "unrecorded";
      w->verification = "unrecorded";
      w->request_id.clear();
      w->public_url.clear();
      break;
    case 2:
      ok = GetLengthPrefixed(&in, &w->system) && GetLengthPrefixed(&in, &w->provider_event_id) &&
           GetLengthPrefixed(&in, &w->id_source) && GetLengthPrefixed(&in, &w->verification) &&
           GetLengthPrefixed(&in, &w->request_id) && GetLengthPrefixed(&in, &w->public_url) &&
           GetHeaders(&in, w) && GetLengthPrefixed(&in, &w->body);
      break;
    default:
      return Status::Corruption("webhook.received schema version " +
                                std::to_string(schema_version) + " is newer than this build");
  }
  if (!ok || !in.empty()) return Status::Corruption("malformed webhook.received payload");
  return Status::OK();
}

}  // namespace dfm
