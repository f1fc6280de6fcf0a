// A campaign's customer and the payments on record (campaigns/README.md):
// a campaign starts only for an active customer with a payment on record,
// and a payment a contact made stops that person's steps that say so.
//
// Requests (JSON, what the API takes):
//   customer = {"id", "name", "active"?: bool (true)}
//   payment  = {"amount": "12.50" | 12.5, "currency": "USD", "reference",
//               "contact"?: the contact who paid}
// Events (stream "customer:<id>", JSON version 1):
//   customer.created  {"v":1, "id", "name", "active"}
//   customer.updated  {"v":1, "id", "name", "active"}
//   payment.recorded  {"v":1, "customer", "amount" (decimal text),
//                      "currency", "reference", "contact"?}
// A payment is recorded once per (customer, reference): its event's
// idempotency key.
//
// Pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "campaigns/campaign.h"
#include "events/event.h"

namespace dfm {

struct Payment {
  std::string amount;  // decimal text, e.g. "12.50"
  std::string currency;
  std::string reference;
  std::string contact;  // "" when not one of the audience's
  int64_t at_us = 0;    // when it was recorded
};

struct Customer {
  std::string id, name;
  bool active = true;
  int64_t payments_total = 0;     // every payment on record
  std::vector<Payment> payments;  // the latest of them, oldest first (the fold keeps all;
                                  // the projection's row the last kRecentPayments)
};
inline constexpr size_t kRecentPayments = 10;

inline constexpr std::string_view kCustomerCreated = "customer.created";
inline constexpr std::string_view kCustomerUpdated = "customer.updated";
inline constexpr std::string_view kPaymentRecorded = "payment.recorded";

// The API's bodies; every problem goes to *details. `id` of a payment's
// customer comes from the path.
void DecodeCustomerRequest(std::string_view json, Customer* out,
                           std::vector<ValidationDetail>* details);
void DecodePaymentRequest(std::string_view json, Payment* out,
                          std::vector<ValidationDetail>* details);

EventDraft CustomerDraft(const std::string& tenant, const Customer& c, bool created);
EventDraft PaymentDraft(const std::string& tenant, const std::string& customer, const Payment& p);

// Folds one of the three events into `c` (others are ignored); false for
// a payload that does not read. `recorded_at_us` dates a payment.
bool ApplyCustomerEvent(std::string_view type, std::string_view payload, int64_t recorded_at_us,
                        Customer* c);

}  // namespace dfm
