// Events of tenant "t" for the erasure and backup tests: a GoHighLevel
// webhook (sealed when the log seals) and the contact.created it caused.
#pragma once

#include <string>

#include "events/event.h"
#include "events/webhook_received.h"
#include "storage/event_log.h"
#include "sync/domain_event.h"

namespace dfm::testing {

inline EventDraft GhlWebhook(const std::string& body, const std::string& id) {
  WebhookReceived w;
  w.system = "ghl";
  w.provider_event_id = id;
  w.body = body;
  EventDraft d;
  d.tenant = "t";
  d.stream = SourceStream("ghl");
  d.type = std::string(WebhookReceived::kType);
  d.schema_version = WebhookReceived::kSchemaVersion;
  d.payload = EncodeWebhookReceived(w);
  d.idempotency_system = "ghl";
  d.idempotency_key = id;
  return d;
}

// A contact.created for `contact` with `phone`, caused by `webhook`.
inline EventDraft ContactCreated(const std::string& contact, const std::string& phone,
                                 const AppendOutcome& webhook) {
  DomainEvent d;
  d.type = std::string(ev::kContactCreated);
  d.contact_id = contact;
  d.system = "ghl";
  d.external_id = "ext-" + contact;
  d.fields = {{"phone", phone}, {"first_name", "Ann"}};
  d.webhook_seq = webhook.seq;
  return ToDraft(d, "t", ContactStream(contact), webhook.id, webhook.id);
}

}  // namespace dfm::testing
