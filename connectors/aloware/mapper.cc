// Aloware contact webhooks -> facts.
//
// Aloware wraps every event as {"event": NAME, "body": {...}}. Its contact
// event names are not published: the setting `contact_events` lists the
// names read as contact facts (configurable). The body is the
// contact: id, first_name, last_name, email, phone_number, address fields,
// updated_at (zone-less, in the account's zone), is_dnc (its do-not-contact
// flag: an opt-out of calls and texts, or back in). A contact imported by
// `dfm backfill` is the phone lookup's answer: the same object.
//
// Call events (a name with "Call" and a body with `lead_number`, e.g.
// Call-Disposed, OutboundPhoneCall-DispositionCompleted,
// InboundPhoneCall-DispositionMissed; several may come for one call) are the
// call: its `contact` object is read as above, and the call becomes an
// activity: id, direction (1 inbound, 2 outbound), status (current_status;
// "no-answer" for a *Missed event, "voicemail" for a *Voicemail one),
// duration, call_disposition, direct_recording_url when has_recording, and
// a transcript / summary when the body has one (`transcription`,
// `transcript`, `ai_summary`, `summary`: string fields).
#include "connectors/aloware/aloware.h"

#include <algorithm>
#include <cstdlib>
#include <iterator>

#include "connectors/common/json_body.h"
#include "sync/consent.h"
#include "util/clock.h"
#include "util/strings.h"

namespace dfm {

namespace {

constexpr JsonFieldMap kPlain[] = {
    {"first_name", fields::kFirstName}, {"last_name", fields::kLastName},
    {"address", fields::kAddress1},     {"city", fields::kCity},
    {"state", fields::kState},          {"zipcode", fields::kPostalCode},
    {"country", fields::kCountry},      {"company_name", fields::kCompanyName},
};

// `updated_at` (zone-less, in the account's zone) in UTC microseconds; 0: none.
int64_t UpdatedAt(const simdjson::dom::object& obj, const MapperSettings& s) {
  bool wrong = false;
  auto ts = StringOrNumberField(obj, "updated_at", &wrong);
  if (!ts) return 0;
  std::string iso = *ts;
  if (iso.size() == 19 && iso[10] == ' ') iso[10] = 'T';
  if (iso.size() == 19) iso += "Z";
  auto us = ParseIso8601Micros(iso);
  const int64_t offset = AlowareUtcOffsetUs(s.Get("utc_offset", "+00:00")).value_or(0);
  return us ? *us - offset : 0;
}

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
  if (int64_t t = UpdatedAt(body, s)) f.source_time_us = t;
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
    c.actor = Consent::Actor::kStaff;  // an agent's or an import's setting
    f.consents.push_back(std::move(c));
  }
  out->push_back(std::move(f));
  return Status::OK();
}

Status ReadAlowareCall(const std::string& event, const simdjson::dom::object& body,
                       const MapperSettings& s, std::vector<ContactFact>* out) {
  bool wrong = false;
  const std::string what = "Aloware \"" + event + "\"";
  auto id = StringOrNumberField(body, "id", &wrong);
  if (!id || id->empty()) return Status::InvalidArgument(what + " without the call \"id\"");
  auto lead = StringOrNumberField(body, "lead_number", &wrong);
  auto phone = lead && s.normalizer ? s.normalizer->Phone(*lead) : lead;
  if (!phone) return Status::InvalidArgument(what + " with an unreadable \"lead_number\"");
  simdjson::dom::object contact;
  if (body["contact"].get(contact) == simdjson::SUCCESS) {
    Status cs = ReadAlowareContact(contact, what + " contact", s, out);
    if (!cs.ok()) return cs;
  } else {
    ContactFact f;
    f.system = "aloware";
    if (auto cid = StringOrNumberField(body, "contact_id", &wrong)) f.external_id = *cid;
    out->push_back(std::move(f));
  }
  ContactFact& f = out->back();
  f.fields[fields::kPhone] = *phone;  // the number the call was with
  Activity a;
  a.kind = Activity::Kind::kCall;
  a.message_id = *id;
  auto dir = StringOrNumberField(body, "direction", &wrong);
  // 1 inbound, 2 outbound; sometimes the words (docs/vendors/aloware-api.md 7.4).
  a.direction = dir && (*dir == "1" || AsciiLower(*dir) == "inbound") ? "inbound" : "outbound";
  if (auto st = StringOrNumberField(body, "current_status", &wrong)) a.status = *st;
  if (event.find("Missed") != std::string::npos) a.status = "no-answer";
  if (event.find("Voicemail") != std::string::npos) a.status = "voicemail";
  if (auto d = StringOrNumberField(body, "duration", &wrong)) {
    char* end = nullptr;
    long long v = std::strtoll(d->c_str(), &end, 10);
    if (end && *end == '\0' && !d->empty()) a.duration_s = v;
  }
  if (auto disp = StringOrNumberField(body, "call_disposition", &wrong)) a.disposition = *disp;
  if (auto ours = StringOrNumberField(body, "incoming_number", &wrong)) {
    auto n = s.normalizer ? s.normalizer->Phone(*ours) : ours;
    if (n) a.our_number = *n;
  }
  bool has_recording = false;
  int64_t has_recording_n = 0;
  if (body["has_recording"].get(has_recording) != simdjson::SUCCESS)
    has_recording = body["has_recording"].get(has_recording_n) == simdjson::SUCCESS && has_recording_n != 0;
  if (has_recording) {
    if (auto url = StringOrNumberField(body, "direct_recording_url", &wrong)) a.recording_url = *url;
  }
  for (const char* k : {"transcription", "transcript"})
    if (auto t = StringOrNumberField(body, k, &wrong); t && a.transcript.empty()) a.transcript = *t;
  for (const char* k : {"ai_summary", "summary"})
    if (auto t = StringOrNumberField(body, k, &wrong); t && a.summary.empty()) a.summary = *t;
  if (int64_t t = UpdatedAt(body, s)) f.source_time_us = t;
  f.activities.push_back(std::move(a));
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
  const auto names = SplitCommaList(s.Get("contact_events", kAlowareContactEvents));
  bool contact_event = std::find(names.begin(), names.end(), *event) != names.end();
  simdjson::dom::object body;
  if (!contact_event) {
    if (event->find("Call") == std::string::npos) return Status::OK();
    if (obj["body"].get(body) != simdjson::SUCCESS) return Status::OK();
    simdjson::dom::element lead;
    if (body["lead_number"].get(lead) != simdjson::SUCCESS) return Status::OK();
    return ReadAlowareCall(*event, body, s, out);
  }
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
