#include "events/describe.h"

#include "events/webhook_received.h"
#include "util/clock.h"
#include "util/json.h"

namespace dfm {

std::string DescribeEventJson(const Event& e, bool with_body) {
  JsonObject o;
  o.UInt("seq", e.seq)
      .Str("id", e.id.ToString())
      .Str("recorded_at", FormatIso8601Micros(e.recorded_at_us));
  if (e.source_time_us) {
    o.Str("source_time", FormatIso8601Micros(*e.source_time_us));
  } else {
    o.Null("source_time");
  }
  o.Str("tenant", e.tenant)
      .Str("stream", e.stream)
      .Str("type", e.type)
      .Int("schema_version", e.schema_version);
  if (e.causation_id.IsZero()) {
    o.Null("causation_id");
  } else {
    o.Str("causation_id", e.causation_id.ToString());
  }
  o.Str("correlation_id", e.correlation_id.ToString());
  o.Str("prev_hash",
        HexEncode(e.prev_hash));
  // Sealed payloads (docs/privacy.md): erased ones are gone; one read
  // without its key store is only bytes.
  if (e.sealing == Event::Sealing::kErased) {
    o.Bool("erased", true);
    return o.Finish();
  }
  if (e.sealing == Event::Sealing::kSealed) {
    o.Bool("sealed", true).UInt("payload_bytes", e.payload.size());
    return o.Finish();
  }
  if (e.type == WebhookReceived::kType || e.type == kContactImportedType) {
    WebhookReceived w;
    Status s = DecodeWebhookReceived(e.schema_version, e.payload, &w);
    if (!s.ok()) {
      o.Str("payload_error", s.ToString());
      return o.Finish();
    }
    JsonObject p;
    p.Str("system", w.system)
        .Str("provider_event_id", w.provider_event_id)
        .Str("id_source", w.id_source)
        .Str("verification", w.verification)
        .Str("request_id", w.request_id)
        .UInt("body_bytes", w.body.size());
    auto digest = Sha256(w.body);
    p.Str("body_sha256",
          HexEncode(digest));
    if (with_body) {
      if (!w.public_url.empty()) p.Str("public_url", w.public_url);
      JsonObject h;
      for (const auto& [k, v] : w.headers) h.Str(k, v);
      p.Raw("headers", h.Finish());
      p.Str("body", w.body);
    }
    o.Raw("payload", p.Finish());
  } else if (with_body && !e.payload.empty() && e.payload.front() == '{' &&
             e.payload.back() == '}') {
    // Domain events are JSON written by their codec (sync/domain_event.h);
    // they hold phones and emails, so only on request.
    o.Raw("payload", e.payload);
  } else {
    o.UInt("payload_bytes", e.payload.size());
  }
  return o.Finish();
}

}  // namespace dfm
