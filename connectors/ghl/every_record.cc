#include "connectors/ghl/every_record.h"

#include <simdjson.h>

#include <algorithm>

#include "connectors/ghl/dnd.h"
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

namespace {

std::optional<RecordDnd> Read(simdjson::dom::element c) {
  RecordDnd r;
  std::string_view id;
  if (c["id"].get(id) || id.empty()) return std::nullopt;
  r.id = std::string(id);
  bool dnd = false;
  if (!c["dnd"].get(dnd)) r.dnd = dnd;
  simdjson::dom::object settings;
  if (!c["dndSettings"].get(settings)) {
    for (const auto& ch : kDndChannels) {
      std::string_view status;
      if (!settings[ch.theirs]["status"].get(status) && status == "active") r.active.insert(ch.ours);
    }
  }
  return r;
}

}  // namespace

std::vector<RecordDnd> RecordsDnd(const std::string& search_body) {
  std::vector<RecordDnd> out;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array contacts;
  if (parser.parse(search_body).get(doc) || doc["contacts"].get(contacts)) return out;
  for (auto c : contacts)
    if (auto r = Read(c)) out.push_back(std::move(*r));
  return out;
}

std::optional<RecordDnd> ContactDnd(const std::string& get_body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc, c;
  if (parser.parse(get_body).get(doc) || doc["contact"].get(c)) return std::nullopt;
  return Read(c);
}

std::map<std::string, std::string> HeldConsent(const std::vector<RecordDnd>& records,
                                               const std::vector<std::string>& channels,
                                               bool settings_only) {
  std::map<std::string, std::string> held;
  if (records.empty()) return held;
  for (const auto& ch : channels) {
    bool all = true;
    for (const auto& r : records) all = all && ((r.dnd && !settings_only) || r.active.count(ch));
    held["held." + ch] = all ? "out" : "in";
  }
  return held;
}

}  // namespace dfm::ghl
