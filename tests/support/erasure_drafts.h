// Events of tenant "t" for the erasure, sealing and backup tests: a
// GoHighLevel webhook (sealed when the log seals), the contact.created it
// caused, a STOP; and a RocksDB log that seals.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "events/event.h"
#include "events/webhook_received.h"
#include "storage/event_log.h"
#include "storage/key_store.h"
#include "storage/rocksdb_event_log.h"
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

// The contact's STOP by text (contact.opted_out on sms for `phone`) at
// `at_us`, caused by `webhook`.
inline EventDraft SmsOptOut(const std::string& contact, const std::string& phone,
                            const AppendOutcome& webhook, int64_t at_us) {
  DomainEvent d;
  d.type = std::string(ev::kOptedOut);
  d.contact_id = contact;
  d.system = "verity";
  d.channel = "sms";
  d.reason = "keyword STOP";
  d.fields = {{"phone", phone}};
  d.source_time_us = at_us;
  d.webhook_seq = webhook.seq;
  return ToDraft(d, "t", ContactStream(contact), webhook.id, webhook.id);
}

// A RocksDB log at `path` sealing with `keys` (null, with a test failure,
// when it does not open).
inline std::unique_ptr<RocksDbEventLog> OpenSealingLog(const std::string& path,
                                                       std::shared_ptr<KeyStore> keys) {
  RocksDbLogOptions o;
  o.path = path;
  o.keys = std::move(keys);
  std::unique_ptr<RocksDbEventLog> log;
  Status s = RocksDbEventLog::Open(o, &log);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return log;
}

}  // namespace dfm::testing
