#include "connectors/ghl/every_record.h"

#include <simdjson.h>

#include <algorithm>

#include "sync/fact.h"
#include "util/json.h"

namespace dfm::ghl {

bool IsConsentPush(const std::string& op) {
  return op == "opt_out" || op == "opt_in" || op == "mark_dnc";
}

std::string EveryRecordQuery(const PushRequest& req, const std::string& location_id) {
  JsonArray any;
  for (const char* f : {fields::kPhone, fields::kEmail}) {
    const std::string v = req.Field(f);
    if (v.empty()) continue;
    any.Raw(JsonObject().Str("field", f).Str("operator", "eq").Str("value", v).Finish());
  }
  const std::string filters = any.Finish();
  if (filters == "[]") return "";
  const std::string group = JsonObject().Str("group", "OR").Raw("filters", filters).Finish();
  return JsonObject()
      .Str("locationId", location_id)
      .Int("pageLimit", 100)
      .Raw("filters", JsonArray().Raw(group).Finish())
      .Finish();
}

std::vector<std::string> ContactIds(const std::string& body) {
  std::vector<std::string> ids;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array contacts;
  if (parser.parse(body).get(doc) || doc["contacts"].get(contacts)) return ids;
  for (auto c : contacts) {
    std::string_view id;
    if (!c["id"].get(id) && !id.empty()) ids.emplace_back(id);
  }
  return ids;
}

std::vector<std::string> RecordsToSet(const std::string& own, const std::vector<std::string>& found) {
  std::vector<std::string> out;
  if (!own.empty()) out.push_back(own);
  for (const auto& id : found)
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  return out;
}

}  // namespace dfm::ghl
