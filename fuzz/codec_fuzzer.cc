// libFuzzer target: what is read back from disk or a backup (the record
// codec, webhook.received of every schema version with its upcaster, and
// every domain event type's payload). A damaged record must be refused
// with a status, never crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "events/codec.h"
#include "events/webhook_received.h"
#include "sync/domain_event.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  dfm::Event e;
  (void)dfm::DecodeRecord(in, &e);
  for (uint16_t v = 0; v <= 4; ++v) {
    dfm::WebhookReceived w;
    (void)dfm::DecodeWebhookReceived(v, in, &w);
  }
  // The first byte picks a domain event type, the rest is its payload.
  if (size > 0) {
    const auto& types = dfm::DomainEventTypes();
    dfm::DomainEvent d;
    (void)dfm::DecodeDomainEvent(types[data[0] % types.size()], in.substr(1), &d);
  }
  return 0;
}
