// GoHighLevel contact webhooks -> facts.
//
// ContactCreate / ContactUpdate / ContactTagUpdate / ContactDndUpdate carry
// the contact (flat, `id` is the contact id); ContactDelete says it is gone.
// ContactDndUpdate's `dnd` and `dndSettings` are consent statements.
// Source time: `dateUpdated` when present, else the webhook's `timestamp`.
// A contact imported by `dfm backfill` is a search result: the same object.
#include "connectors/common/mapper.h"

#include <iterator>

#include "connectors/common/json_body.h"
#include "connectors/ghl/dnd.h"
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
};

// ContactDndUpdate: `dnd: true` is every channel; otherwise each
// dndSettings channel's status: "active" or "permanent" is an opt-out,
// "inactive" an opt-in (which changes nothing where nobody opted out).
Status ReadDnd(const simdjson::dom::object& obj, ContactFact* f) {
  Consent out, in;
  out.change = Consent::Change::kOptOut;
  in.change = Consent::Change::kOptIn;
  bool all = false;
  simdjson::dom::element dnd;
  if (obj["dnd"].get(dnd) == simdjson::SUCCESS && !dnd.is_null() && dnd.get(all) != simdjson::SUCCESS)
    return Status::InvalidArgument("ContactDndUpdate with a \"dnd\" that is not a bool");
  simdjson::dom::object settings;
  bool has_settings = obj["dndSettings"].get(settings) == simdjson::SUCCESS;
  for (const auto& [theirs, ours] : ghl::kDndChannels) {
    std::string_view status;
    if (all) {
      out.channels.push_back(ours);
      continue;
    }
    if (!has_settings) continue;
    simdjson::dom::object ch;
    if (settings[theirs].get(ch) != simdjson::SUCCESS) continue;
    if (ch["status"].get(status) != simdjson::SUCCESS) continue;
    if (status == "active" || status == "permanent") {
      out.channels.push_back(ours);
    } else if (status == "inactive") {
      in.channels.push_back(ours);
    } else {
      return Status::InvalidArgument("ContactDndUpdate with an unknown dndSettings status");
    }
  }
  out.reason = all ? "dnd" : "dndSettings";
  out.snapshot = in.snapshot = true;
  in.reason = "dndSettings";
  if (!out.channels.empty()) f->consents.push_back(std::move(out));
  if (!in.channels.empty()) f->consents.push_back(std::move(in));
  return Status::OK();
}

// Reads one contact object (a webhook's body, or a search result).
Status ReadGhlContact(const simdjson::dom::object& obj, bool del, bool dnd,
                      const std::string& what, const MapperSettings& s,
                      std::vector<ContactFact>* out) {
  bool wrong = false;
  ContactFact f;
  f.system = "ghl";
  f.kind = del ? ContactFact::Kind::kDelete : ContactFact::Kind::kUpsert;
  auto id = StringOrNumberField(obj, "id", &wrong);
  if (!id || id->empty()) return Status::InvalidArgument(what + " without the contact \"id\"");
  f.external_id = *id;
  for (const char* key : {"dateUpdated", "timestamp"}) {
    auto ts = StringOrNumberField(obj, key, &wrong);
    if (ts) {
      if (auto us = ParseIso8601Micros(*ts)) {
        f.source_time_us = *us;
        break;
      }
    }
  }
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
    if (dnd) {
      Status d = ReadDnd(obj, &f);
      if (!d.ok()) return d;
    }
  }
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
  if (!upsert && !del) return Status::OK();  // not a contact fact
  return ReadGhlContact(obj, del, t == "ContactDndUpdate", t, s, out);
}

Status MapGhlImport(const WebhookReceived& w, const MapperSettings& s,
                    std::vector<ContactFact>* out) {
  simdjson::dom::object obj;
  Status st = ParseJsonObject(w.body, &obj);
  if (!st.ok()) return Status::InvalidArgument(st.message());
  return ReadGhlContact(obj, /*del=*/false, /*dnd=*/false, "imported contact", s, out);
}

}  // namespace dfm
