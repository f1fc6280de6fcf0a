// Inbound mappers: a connector's reading of its vendor's webhooks into
// normalized facts. Pure functions of the stored webhook (no I/O), so the
// router, `dfm replay` and the tests all read a webhook the same way.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <simdjson.h>

#include "events/webhook_received.h"
#include "sync/fact.h"
#include "sync/normalize.h"
#include "util/status.h"

namespace dfm {

struct MapperSettings {
  const Normalizer* normalizer = nullptr;
  int64_t aloware_utc_offset_us = 0;  // Aloware's zone-less times are in this zone
  // Aloware does not publish its contact event names: configurable.
  std::vector<std::string> aloware_contact_events = {"Contact Created", "Contact Updated",
                                                     "Contact-Created", "Contact-Updated"};
};

// Appends the facts in the webhook (none for event types that carry no
// contact facts). InvalidArgument with a reason when the payload cannot be
// read: the router quarantines the webhook with that reason.
using InboundMapper = std::function<Status(const WebhookReceived&, const MapperSettings&,
                                           std::vector<ContactFact>*)>;

// The mapper of a system, or null when the system has none.
const InboundMapper* FindInboundMapper(const std::string& system);

// The mapper of a system's `contact.imported` events (`dfm backfill`): the
// body is one contact object as the vendor's API returned it.
const InboundMapper* FindImportMapper(const std::string& system);
// The mapper for a logged event of `event_type` (webhook.received: the
// inbound one; contact.imported: the import one) from `system`; null for
// other types and systems without one.
const InboundMapper* FindMapperFor(std::string_view event_type, const std::string& system);

Status MapGhlWebhook(const WebhookReceived& w, const MapperSettings& s,
                     std::vector<ContactFact>* out);
Status MapAlowareWebhook(const WebhookReceived& w, const MapperSettings& s,
                         std::vector<ContactFact>* out);
Status MapVerityWebhook(const WebhookReceived& w, const MapperSettings& s,
                        std::vector<ContactFact>* out);
Status MapTwilioWebhook(const WebhookReceived& w, const MapperSettings& s,
                        std::vector<ContactFact>* out);
Status MapGhlImport(const WebhookReceived& w, const MapperSettings& s,
                    std::vector<ContactFact>* out);
Status MapAlowareImport(const WebhookReceived& w, const MapperSettings& s,
                        std::vector<ContactFact>* out);

// Helpers shared by mappers.
struct JsonFieldMap {
  const char* json;   // the vendor's key
  const char* field;  // ours (sync/fact.h)
};
// Reads the plain fields of `map`, then the email and phone (normalized;
// an unreadable one is left out) into fact->fields. InvalidArgument when a
// field has a type that is neither string nor number.
Status ReadContactFields(const simdjson::dom::object& obj, const JsonFieldMap* map, size_t n,
                         const char* email_key, const char* phone_key, const MapperSettings& s,
                         ContactFact* fact);
// Sorted, de-duplicated, trimmed, lower-cased tags joined by '\n'.
std::string JoinTags(std::vector<std::string> tags);

}  // namespace dfm
