// Aloware contact webhooks -> facts.
//
// Aloware wraps every event as {"event": NAME, "body": {...}}. Its contact
// event names are not published: MapperSettings::aloware_contact_events
// lists the names read as contact facts (configurable). The body is the
// contact: id, first_name, last_name, email, phone_number, address fields,
// updated_at (zone-less, in the account's zone), is_dnc (its do-not-contact
// flag: an opt-out of calls and texts, or back in). A contact imported by
// `dfm backfill` is the phone lookup's answer: the same object.
#include "connectors/common/mapper.h"

#include <algorithm>
#include <iterator>

#include "connectors/common/json_body.h"
#include "sync/consent.h"
#include "util/clock.h"

namespace dfm {

namespace {

constexpr JsonFieldMap kPlain[] = {
    {"first_name", fields::kFirstName}, {"last_name", fields::kLastName},
    {"address", fields::kAddress1},     {"city", fields::kCity},
    {"state", fields::kState},          {"zipcode", fields::kPostalCode},
    {"country", fields::kCountry},      {"company_name", fields::kCompanyName},
};

// Reads one contact object (a webhook's body, or a lookup answer).
Status ReadAlowareContact(const simdjson::dom::object& body, const std::string& what,
                          const MapperSettings& s, std::vector<ContactFact>* out) {
  bool wrong = false;
  ContactFact f;
  f.system = "aloware";
  auto id = StringOrNumberField(body, "id", &wrong);
  if (!id || id->empty()) {
    return Status::InvalidArgument(what + " without the contact \"id\"");
  }
  f.external_id = *id;
  if (auto ts = StringOrNumberField(body, "updated_at", &wrong)) {
    std::string iso = *ts;
    if (iso.size() == 19 && iso[10] == ' ') iso[10] = 'T';
    if (iso.size() == 19) iso += "Z";
    if (auto us = ParseIso8601Micros(iso)) f.source_time_us = *us - s.aloware_utc_offset_us;
  }
  Status fst = ReadContactFields(body, kPlain, std::size(kPlain), "email", "phone_number", s, &f);
  if (!fst.ok()) return fst;
  // The DNC flag (true/false or 1/0): Aloware neither calls nor texts a
  // DNC contact.
  simdjson::dom::element dnc;
  if (body["is_dnc"].get(dnc) == simdjson::SUCCESS && !dnc.is_null()) {
    bool on = false;
    int64_t n = 0;
    if (dnc.get(on) != simdjson::SUCCESS) {
      if (dnc.get(n) != simdjson::SUCCESS)
        return Status::InvalidArgument(what + " with an \"is_dnc\" that is neither bool nor 0/1");
      on = n != 0;
    }
    Consent c;
    c.change = on ? Consent::Change::kOptOut : Consent::Change::kOptIn;
    c.channels = {channels::kSms, channels::kCall};
    c.reason = "is_dnc";
    c.snapshot = true;
    f.consents.push_back(std::move(c));
  }
  out->push_back(std::move(f));
  return Status::OK();
}

}  // namespace

Status MapAlowareWebhook(const WebhookReceived& w, const MapperSettings& s,
                         std::vector<ContactFact>* out) {
  simdjson::dom::object obj;
  Status st = ParseJsonObject(w.body, &obj);
  if (!st.ok()) return Status::InvalidArgument(st.message());
  bool wrong = false;
  auto event = StringOrNumberField(obj, "event", &wrong);
  if (!event) return Status::OK();  // e.g. the test ping: no facts
  const auto& names = s.aloware_contact_events;
  if (std::find(names.begin(), names.end(), *event) == names.end()) return Status::OK();
  simdjson::dom::object body;
  if (obj["body"].get(body) != simdjson::SUCCESS) {
    return Status::InvalidArgument("Aloware \"" + *event + "\" without a \"body\" object");
  }
  return ReadAlowareContact(body, "Aloware \"" + *event + "\"", s, out);
}

Status MapAlowareImport(const WebhookReceived& w, const MapperSettings& s,
                        std::vector<ContactFact>* out) {
  simdjson::dom::object obj;
  Status st = ParseJsonObject(w.body, &obj);
  if (!st.ok()) return Status::InvalidArgument(st.message());
  return ReadAlowareContact(obj, "imported contact", s, out);
}

}  // namespace dfm
