// GoHighLevel contact webhooks -> facts.
//
// ContactCreate / ContactUpdate / ContactTagUpdate / ContactDndUpdate carry
// the contact (flat, `id` is the contact id); ContactDelete says it is gone.
// ContactDndUpdate's `dnd` and `dndSettings` are consent statements; a
// ContactCreate's or an imported contact's only where they opt out.
// Source time: `dateUpdated` when present, else the webhook's `timestamp`.
// A contact imported by `dfm backfill` is a search result: the same object.
//
// Messages: a conversation-provider delivery (ProviderOutboundMessage: no
// webhookId, `type` is the channel "SMS", `messageId`, `contactId`, `phone`,
// `message`) is a request to send a text (Activity::kSend). InboundMessage /
// OutboundMessage are texts and calls on the contact's conversation
// (messageType SMS / CALL): logged, so echoes of the engine's own records
// and texts sent from GoHighLevel itself are known. The engine's records
// are recognised as docs/sync-rules.md says (its id once the push answers,
// before that the pending record); an `altId` is read as the engine's key
// should a body ever carry one, which GoHighLevel's documents do not say
// (docs/vendors/ghl-api.md §6). An inbound text's STOP or START is the
// person's consent, unless the engine wrote it (ReadInboundConsent). Other
// channels (Email, ...) carry no facts.
#include <cstdlib>
#include <initializer_list>
#include <iterator>

#include "connectors/common/json_body.h"
#include "connectors/ghl/dnd.h"
#include "connectors/ghl/ghl.h"
#include "sync/consent.h"
#include "util/clock.h"

namespace dfm {

namespace {

constexpr JsonFieldMap kPlain[] = {
    {"firstName", fields::kFirstName},
    {"lastName", fields::kLastName},
    {"address", fields::kAddress1},   // search results (docs/vendors/ghl-api.md)
    {"address1", fields::kAddress1},  // webhooks, GET /contacts/{id}; read last, so it wins
    {"city", fields::kCity},
    {"state", fields::kState},
    {"postalCode", fields::kPostalCode},
    {"country", fields::kCountry},
    {"companyName", fields::kCompanyName},
    {"timezone", fields::kTimezone},
};

// The first of `keys` that holds an ISO 8601 time, in microseconds; 0: none.
int64_t FirstTime(const simdjson::dom::object& obj, std::initializer_list<const char*> keys) {
  bool wrong = false;
  for (const char* key : keys) {
    auto ts = StringOrNumberField(obj, key, &wrong);
    if (!ts) continue;
    if (auto us = ParseIso8601Micros(*ts)) return *us;
  }
  return 0;
}

// ContactDndUpdate: `dnd: true` is every channel; otherwise each
// dndSettings channel's status: "active" or "permanent" is an opt-out,
// "inactive" an opt-in (which changes nothing where nobody opted out).
// Every one is a staff member's or the account's setting (Consent::Actor
// kStaff); "permanent" channels are marked so (the engine never lifts them).
// `opt_outs_only` (a ContactCreate, an imported contact): a record made
// with DND on is an opt-out statement; one made without it says nothing
// (it may be our own upsert of an opted-out person, its DND on its way).
Status ReadDnd(const simdjson::dom::object& obj, bool opt_outs_only, ContactFact* f) {
  Consent out, perm, in;
  out.change = perm.change = Consent::Change::kOptOut;
  in.change = Consent::Change::kOptIn;
  out.actor = perm.actor = in.actor = Consent::Actor::kStaff;
  bool all = false;
  simdjson::dom::element dnd;
  if (obj["dnd"].get(dnd) == simdjson::SUCCESS && !dnd.is_null() && dnd.get(all) != simdjson::SUCCESS)
    return Status::InvalidArgument("ContactDndUpdate with a \"dnd\" that is not a bool");
  simdjson::dom::object settings;
  bool has_settings = obj["dndSettings"].get(settings) == simdjson::SUCCESS;
  for (const auto& [theirs, ours] : ghl::kDndChannels) {
    std::string_view status;
    simdjson::dom::object ch;
    bool listed = has_settings && settings[theirs].get(ch) == simdjson::SUCCESS &&
                  ch["status"].get(status) == simdjson::SUCCESS;
    if (all) {
      (listed && status == "permanent" ? perm : out).channels.push_back(ours);
      continue;
    }
    if (!listed) continue;
    if (status == "active") {
      out.channels.push_back(ours);
    } else if (status == "permanent") {
      perm.channels.push_back(ours);
    } else if (status == "inactive") {
      in.channels.push_back(ours);
    } else {
      return Status::InvalidArgument("ContactDndUpdate with an unknown dndSettings status");
    }
  }
  out.reason = all ? "dnd" : "dndSettings";
  perm.reason = "dndSettings permanent";
  perm.permanent = true;
  out.snapshot = perm.snapshot = in.snapshot = true;
  in.reason = "dndSettings";
  if (!out.channels.empty()) f->consents.push_back(std::move(out));
  if (!perm.channels.empty()) f->consents.push_back(std::move(perm));
  if (!in.channels.empty() && !opt_outs_only) f->consents.push_back(std::move(in));
  return Status::OK();
}

// What a contact object says of DND (ReadDnd).
enum class Dnd { kNothing, kOptOutsOnly, kEverything };

// Reads one contact object (a webhook's body, or a search result).
Status ReadGhlContact(const simdjson::dom::object& obj, bool del, Dnd dnd,
                      const std::string& what, const MapperSettings& s,
                      std::vector<ContactFact>* out) {
  bool wrong = false;
  ContactFact f;
  f.system = "ghl";
  f.kind = del ? ContactFact::Kind::kDelete : ContactFact::Kind::kUpsert;
  auto id = StringOrNumberField(obj, "id", &wrong);
  if (!id || id->empty()) return Status::InvalidArgument(what + " without the contact \"id\"");
  f.external_id = *id;
  f.source_time_us = FirstTime(obj, {"dateUpdated", "timestamp"});
  if (!del) {
    Status fst = ReadContactFields(obj, kPlain, std::size(kPlain), "email", "phone", s, &f);
    if (!fst.ok()) return fst;
    simdjson::dom::array tags;
    if (obj["tags"].get(tags) == simdjson::SUCCESS) {
      std::vector<std::string> list;
      for (auto tag : tags) {
        std::string_view sv;
        if (tag.get(sv) == simdjson::SUCCESS) list.emplace_back(sv);
      }
      f.fields[fields::kTags] = JoinTags(std::move(list));
    }
    if (dnd != Dnd::kNothing) {
      Status d = ReadDnd(obj, dnd == Dnd::kOptOutsOnly, &f);
      if (!d.ok()) return d;
    }
  }
  out->push_back(std::move(f));
  return Status::OK();
}

// A text the person sent to the location's own number (GoHighLevel's phone,
// LC Phone): its STOP or START is the person's, as a provider's inbound
// text's is (ConsentFromText), not the DND GoHighLevel may set after it
// (a staff setting). Not a text the engine wrote on the conversation
// (its conversationProviderId is ghl.conversation_provider_id): its
// consent was read where it came from.
void ReadInboundConsent(const simdjson::dom::object& obj, const Activity& a,
                        const MapperSettings& s, ContactFact* f) {
  if (a.kind != Activity::Kind::kText || a.direction != "inbound") return;
  bool wrong = false;
  const std::string ours = s.Get("conversation_provider_id", "");
  auto via = StringOrNumberField(obj, "conversationProviderId", &wrong);
  if (!ours.empty() && via && *via == ours) return;
  Consent c;
  c.channels = {channels::kSms};
  c.message_id = a.message_id;
  if (ConsentFromText(a.body, &c)) f->consents.push_back(std::move(c));
}

Status ReadGhlMessage(const simdjson::dom::object& obj, const std::string& t, bool provider,
                      const MapperSettings& s, std::vector<ContactFact>* out) {
  bool wrong = false;
  ContactFact f;
  f.system = "ghl";
  auto contact = StringOrNumberField(obj, "contactId", &wrong);
  if (contact) f.external_id = *contact;
  auto id = StringOrNumberField(obj, "messageId", &wrong);
  if (!id || id->empty()) return Status::InvalidArgument(t + " without \"messageId\"");
  if (auto ph = StringOrNumberField(obj, "phone", &wrong)) {
    auto n = s.normalizer ? s.normalizer->Phone(*ph) : ph;
    if (n) f.fields[fields::kPhone] = *n;
  }
  if (f.external_id.empty() && !f.fields.count(fields::kPhone))
    return Status::InvalidArgument(t + " without \"contactId\" or \"phone\"");
  f.source_time_us = FirstTime(obj, {"dateAdded", "timestamp"});
  Activity a;
  a.message_id = *id;
  if (provider) {
    a.kind = Activity::Kind::kSend;
    a.direction = "outbound";
    auto text = StringOrNumberField(obj, "message", &wrong);
    if (!text) return Status::InvalidArgument(t + " without \"message\"");
    a.body = *text;
    if (!f.fields.count(fields::kPhone))
      return Status::InvalidArgument(t + " without a readable \"phone\"");
  } else {
    auto mt = StringOrNumberField(obj, "messageType", &wrong);
    std::string kind = mt ? *mt : "";
    for (auto& ch : kind) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (kind == "CALL" || kind == "TYPE_CALL") {
      a.kind = Activity::Kind::kCall;
    } else if (kind == "SMS" || kind == "TYPE_SMS") {
      a.kind = Activity::Kind::kText;
    } else {
      return Status::OK();  // email, chat, ...: not synced
    }
    if (auto d = StringOrNumberField(obj, "direction", &wrong)) a.direction = *d;
    if (auto b = StringOrNumberField(obj, "body", &wrong)) a.body = *b;
    if (auto st = StringOrNumberField(obj, "status", &wrong)) a.status = *st;
    if (auto cs = StringOrNumberField(obj, "callStatus", &wrong)) a.status = *cs;
    if (auto alt = StringOrNumberField(obj, "altId", &wrong)) a.message_key = *alt;
    if (auto dur = StringOrNumberField(obj, "callDuration", &wrong)) {
      char* end = nullptr;
      long long v = std::strtoll(dur->c_str(), &end, 10);
      if (end && *end == '\0' && !dur->empty()) a.duration_s = v;
    }
    ReadInboundConsent(obj, a, s, &f);
  }
  f.activities.push_back(std::move(a));
  out->push_back(std::move(f));
  return Status::OK();
}

}  // namespace

Status MapGhlWebhook(const WebhookReceived& w, const MapperSettings& s,
                     std::vector<ContactFact>* out) {
  simdjson::dom::object obj;
  Status st = ParseJsonObject(w.body, &obj);
  if (!st.ok()) return Status::InvalidArgument(st.message());
  bool wrong = false;
  auto type = StringOrNumberField(obj, "type", &wrong);
  if (!type) return Status::InvalidArgument("GoHighLevel webhook without a \"type\"");
  const std::string& t = *type;
  bool upsert = t == "ContactCreate" || t == "ContactUpdate" || t == "ContactTagUpdate" ||
                t == "ContactDndUpdate";
  bool del = t == "ContactDelete";
  if (t == "InboundMessage" || t == "OutboundMessage") return ReadGhlMessage(obj, t, false, s, out);
  bool has_webhook_id = obj["webhookId"].error() == simdjson::SUCCESS;
  if (!has_webhook_id && t == "SMS") return ReadGhlMessage(obj, "ProviderOutboundMessage", true, s, out);
  if (!upsert && !del) return Status::OK();  // not a contact fact
  const Dnd dnd = t == "ContactDndUpdate" ? Dnd::kEverything
                  : t == "ContactCreate"   ? Dnd::kOptOutsOnly
                                           : Dnd::kNothing;
  return ReadGhlContact(obj, del, dnd, t, s, out);
}

Status MapGhlImport(const WebhookReceived& w, const MapperSettings& s,
                    std::vector<ContactFact>* out) {
  simdjson::dom::object obj;
  Status st = ParseJsonObject(w.body, &obj);
  if (!st.ok()) return Status::InvalidArgument(st.message());
  return ReadGhlContact(obj, /*del=*/false, Dnd::kOptOutsOnly, "imported contact", s, out);
}

}  // namespace dfm
