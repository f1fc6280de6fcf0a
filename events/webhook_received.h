// `webhook.received`: a vendor's webhook exactly as it arrived, after its
// authenticity was verified. The first event of every sync.
//
// Payload layouts by schema version (docs/event-format.md):
//   v1: system provider_event_id headers body
//   v2: v1 plus id_source, verification, request_id and public_url
// Decoding upcasts every older version to the current struct.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "events/event.h"
#include "util/status.h"

namespace dfm {

struct WebhookReceived {
  static constexpr std::string_view kType = "webhook.received";
  static constexpr uint16_t kSchemaVersion = 2;

  std::string system;             // "ghl", "aloware", "verity", "twilio"
  std::string provider_event_id;  // the vendor's id, or the documented derived id
  std::string id_source;          // how provider_event_id was found, e.g. "body.webhookId"
  std::string verification;       // scheme that verified it: "ed25519", "hmac-sha256", ...
  std::string request_id;         // X-Request-ID of the HTTP request
  std::string public_url;         // URL the signature covered, when the scheme signs one
  // Headers worth keeping (lower-case names), in arrival order. Never
  // credentials (Authorization) and never a secret.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // the exact body bytes

  // Value of the first header named `name` (lower case), or empty.
  std::string_view Header(std::string_view name) const;
};

// `contact.imported`: one contact read from a vendor's list, search or
// lookup API by `dfm backfill`. Same payload layout and codec as
// webhook.received: body = the contact object's JSON; provider_event_id =
// "backfill/<external id>/<version>"; id_source "backfill"; verification
// "api" (fetched by us with our credentials); request_id = the backfill
// run; public_url = the API URL (never with credentials or personal data).
inline constexpr std::string_view kContactImportedType = "contact.imported";

// Encodes with the current schema version (WebhookReceived::kSchemaVersion).
std::string EncodeWebhookReceived(const WebhookReceived& w);
// The same, with the body given apart (w.body is ignored): saves a copy of
// the body on the ingest path.
std::string EncodeWebhookReceived(const WebhookReceived& w, std::string_view body);

// The webhook.received draft of `w` for `tenant`, on stream
// "source:<w.system>", with `body` (w.body when not given). The caller adds
// the source time and the idempotency key.
EventDraft WebhookDraft(std::string tenant, const WebhookReceived& w);
EventDraft WebhookDraft(std::string tenant, const WebhookReceived& w, std::string_view body);

// Decodes a payload stored with `schema_version`, upcasting older versions.
// Corruption on malformed input or a version newer than this build knows.
Status DecodeWebhookReceived(uint16_t schema_version, std::string_view payload,
                             WebhookReceived* w);

// The v1 encoder, kept only so tests can write what older builds stored.
std::string EncodeWebhookReceivedV1ForTest(const WebhookReceived& w);

}  // namespace dfm
