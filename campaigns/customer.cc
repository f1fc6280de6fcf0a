#include "campaigns/customer.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "campaigns/request_fields.h"
#include "util/json.h"

namespace dfm {

namespace {

// "12.5", "12.50", "1200": digits, at most one '.', at most 3 decimals,
// more than zero. Written back with its decimals as given.
bool GoodAmount(std::string_view s) {
  if (s.empty() || s.size() > 20) return false;
  const size_t dot = s.find('.');
  if (dot == 0 ||
      (dot != std::string_view::npos && (s.size() - dot - 1 == 0 || s.size() - dot - 1 > 3)))
    return false;
  bool nonzero = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == dot) continue;
    if (s[i] < '0' || s[i] > '9') return false;
    nonzero |= s[i] != '0';
  }
  return nonzero;
}

std::string Amount(simdjson::dom::object o, Details* d) {
  auto v = o["amount"];
  std::string_view text;
  double number = 0;
  std::string amount;
  if (v.get(text) == simdjson::SUCCESS) {
    amount = std::string(text);
  } else if (v.get(number) == simdjson::SUCCESS) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f", number);  // a JSON number: cents
    amount = buf;
  } else {
    d->push_back({"amount", "is required: a positive decimal, e.g. \"12.50\""});
    return {};
  }
  if (!GoodAmount(amount))
    d->push_back({"amount", "must be a positive decimal with at most 3 decimals"});
  return amount;
}

}  // namespace

void DecodeCustomerRequest(std::string_view json, Customer* out, std::vector<ValidationDetail>* d) {
  *out = Customer{};
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  if (!BodyObject(parser, json, &o, d)) return;
  out->id = TextField(o, "id", "id", true, 64, d);
  if (!out->id.empty() && !GoodId(out->id)) d->push_back({"id", kGoodIdProblem});
  out->name = TextField(o, "name", "name", true, 200, d);
  out->active = FlagField(o, "active", true, "active", d);
}

void DecodePaymentRequest(std::string_view json, Payment* out, std::vector<ValidationDetail>* d) {
  *out = Payment{};
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  if (!BodyObject(parser, json, &o, d)) return;
  out->amount = Amount(o, d);
  out->currency = TextField(o, "currency", "currency", true, 3, d);
  if (!out->currency.empty() &&
      (out->currency.size() != 3 || !std::all_of(out->currency.begin(), out->currency.end(),
                                                 [](char c) { return c >= 'A' && c <= 'Z'; })))
    d->push_back({"currency", "must be an ISO 4217 code, e.g. USD"});
  out->reference = TextField(o, "reference", "reference", true, 128, d);
  out->contact = TextField(o, "contact", "contact", false, 128, d);
}

EventDraft CustomerDraft(const std::string& tenant, const Customer& c, bool created) {
  EventDraft d;
  d.tenant = tenant;
  d.stream = "customer:" + c.id;
  d.type = std::string(created ? kCustomerCreated : kCustomerUpdated);
  d.payload = JsonObject()
                  .Int("v", 1)
                  .Str("id", c.id)
                  .Str("name", c.name)
                  .Bool("active", c.active)
                  .Finish();
  if (created) {  // made once; an update is a new fact each time
    d.idempotency_system = "customer";
    d.idempotency_key = c.id + "/created";
  }
  return d;
}

EventDraft PaymentDraft(const std::string& tenant, const std::string& customer, const Payment& p) {
  EventDraft d;
  d.tenant = tenant;
  d.stream = "customer:" + customer;
  d.type = std::string(kPaymentRecorded);
  JsonObject o;
  o.Int("v", 1)
      .Str("customer", customer)
      .Str("amount", p.amount)
      .Str("currency", p.currency)
      .Str("reference", p.reference);
  if (!p.contact.empty()) o.Str("contact", p.contact);
  d.payload = o.Finish();
  d.idempotency_system = "payment";
  d.idempotency_key = customer + "/" + p.reference;
  return d;
}

bool ApplyCustomerEvent(std::string_view type, std::string_view payload, int64_t recorded_at_us,
                        Customer* c) {
  if (type != kCustomerCreated && type != kCustomerUpdated && type != kPaymentRecorded) return true;
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  int64_t v = 0;
  if (parser.parse(payload.data(), payload.size()).get(o) != simdjson::SUCCESS || o["v"].get(v) ||
      v != 1)
    return false;
  std::string_view a, b, e, f;
  if (type == kPaymentRecorded) {
    if (o["amount"].get(a) || o["currency"].get(b) || o["reference"].get(e)) return false;
    Payment p{std::string(a), std::string(b), std::string(e), "", recorded_at_us};
    if (o["contact"].get(f) == simdjson::SUCCESS) p.contact = std::string(f);
    c->payments.push_back(std::move(p));
    c->payments_total++;
    return true;
  }
  bool active = true;
  if (o["id"].get(a) || o["name"].get(b) || o["active"].get(active)) return false;
  c->id = std::string(a);
  c->name = std::string(b);
  c->active = active;
  return true;
}

}  // namespace dfm
