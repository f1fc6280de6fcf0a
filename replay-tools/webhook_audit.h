// `dfm audit webhooks`: what each system's webhooks carried, from the log:
// per tenant and system, the webhooks recorded, how many were batches (one
// webhook carrying several facts: a WhatsApp notification of several
// messages, a HaloPSA batched delivery), the facts they carried, those the
// mapper cannot read now (erased, or quarantined). Read-only; no personal
// data in the output.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "connectors/common/mapper.h"
#include "storage/event_log.h"

namespace dfm {

struct WebhookAuditOptions {
  std::string tenant;                  // empty: every one
  int64_t since_us = 0, until_us = 0;  // recorded in [since, until); 0: unbounded
};

struct WebhookCount {
  std::string tenant, system;
  uint64_t webhooks = 0;     // webhook.received events
  uint64_t batched = 0;      // of them, those that carried more than one fact
  uint64_t facts = 0;        // facts the mapper reads from them now
  uint64_t largest = 0;      // the most facts one of them carried
  uint64_t unreadable = 0;   // erased, or no longer mapped (quarantined)
};

// Counts, in (tenant, system) order. `mapper` as the service reads them.
Status CountWebhooks(const EventLog& log, const MapperSource& mapper, const WebhookAuditOptions& options,
                     std::vector<WebhookCount>* out);

// A table, or one JSON object per line. Returns the exit code (0).
int PrintWebhookCounts(const std::vector<WebhookCount>& counts, bool json, std::ostream& out);

}  // namespace dfm
