// HaloPSA users -> facts (docs/vendors/halopsa.md sections 2 and 7).
//
// A webhook is {"event": NAME, "object_id": N, "user": {...}, ...}, or a
// batched delivery: a JSON array of them, each read in order as its own
// fact(s); the
// events named by `user_events` carry the full Users object under "user"
// (set the webhook's payload to "full object"). Other events carry no
// contact facts. The user: id, firstname, surname, emailaddress,
// phonenumber (else mobilenumber), title, client_name (the company), and
// customfields [{name, value, display}] read back through
// `custom_fields`. A user `inactive` in HaloPSA is still the same person:
// it is read like any other.
#include <algorithm>

#include "connectors/common/json_body.h"
#include "connectors/halopsa/halopsa.h"
#include "sync/fact.h"

namespace dfm {

namespace {

constexpr JsonFieldMap kPlain[] = {
    {"firstname", fields::kFirstName},
    {"surname", fields::kLastName},
    {"title", fields::kTitle},
    {"client_name", fields::kCompanyName},
};

Status ReadHaloUser(const simdjson::dom::object& user, const std::string& what, const MapperSettings& s,
                    std::vector<ContactFact>* out) {
  bool wrong = false;
  ContactFact f;
  f.system = "halopsa";
  auto id = StringOrNumberField(user, "id", &wrong);
  if (!id || id->empty() || *id == "0") return Status::InvalidArgument(what + " without the user \"id\"");
  f.external_id = *id;
  Status st = ReadContactFields(user, kPlain, std::size(kPlain), "emailaddress", "phonenumber", s, &f);
  if (!st.ok()) return Status::InvalidArgument(what + ": " + st.message());
  if (!f.fields.count(fields::kPhone) || f.fields[fields::kPhone].empty()) {
    if (auto m = StringOrNumberField(user, "mobilenumber", &wrong); m && !m->empty())
      if (auto p = s.normalizer->Phone(*m)) f.fields[fields::kPhone] = *p;
  }
  std::string problem;
  const auto custom = ParseHaloCustomFields(s.Get("custom_fields", ""), &problem).value_or(HaloCustomFields{});
  simdjson::dom::array cfs;
  if (!custom.empty() && user["customfields"].get(cfs) == simdjson::SUCCESS) {
    for (simdjson::dom::element cf : cfs) {
      simdjson::dom::object o;
      if (cf.get(o) != simdjson::SUCCESS) continue;
      auto name = StringOrNumberField(o, "name", &wrong);
      if (!name) continue;
      auto value = StringOrNumberField(o, "display", &wrong);
      if (!value || value->empty()) value = StringOrNumberField(o, "value", &wrong);
      for (const auto& [ours, theirs] : custom)
        if (theirs == *name) f.fields[ours] = value.value_or("");
    }
  }
  out->push_back(std::move(f));
  return Status::OK();
}

}  // namespace

Status MapHaloWebhook(const WebhookReceived& w, const MapperSettings& s, std::vector<ContactFact>* out) {
  std::vector<simdjson::dom::object> envelopes;
  bool batched = false;
  Status st = ParseJsonObjects(w.body, &envelopes, &batched);
  if (!st.ok()) return Status::InvalidArgument(st.message());
  const auto names = SplitCommaList(s.Get("user_events", "new user created, user updated"));
  for (size_t i = 0; i < envelopes.size(); ++i) {
    bool wrong = false;
    auto event = StringOrNumberField(envelopes[i], "event", &wrong);
    if (!event) continue;
    if (std::find(names.begin(), names.end(), *event) == names.end()) continue;
    const std::string what =
        "HaloPSA \"" + *event + "\"" + (batched ? " (element " + std::to_string(i) + " of the batch)" : "");
    simdjson::dom::object user;
    if (envelopes[i]["user"].get(user) != simdjson::SUCCESS)
      return Status::InvalidArgument(what + " without a \"user\" object: set the webhook's payload to the full object");
    st = ReadHaloUser(user, what, s, out);
    if (!st.ok()) return st;
  }
  return Status::OK();
}

Status MapHaloImport(const WebhookReceived& w, const MapperSettings& s, std::vector<ContactFact>* out) {
  simdjson::dom::object obj;
  Status st = ParseJsonObject(w.body, &obj);
  if (!st.ok()) return Status::InvalidArgument(st.message());
  return ReadHaloUser(obj, "imported user", s, out);
}

}  // namespace dfm
