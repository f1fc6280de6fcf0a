#include "connectors/common/mapper.h"

#include <algorithm>

#include "connectors/common/json_body.h"
#include "util/strings.h"

namespace dfm {

std::string MapperSettings::Get(std::string_view key, std::string_view fallback) const {
  if (system == nullptr) return std::string(fallback);
  auto it = system->find(key);
  return it == system->end() ? std::string(fallback) : it->second;
}

std::vector<std::string> SplitCommaList(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = TrimSpace(list.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

Status ReadContactFields(const simdjson::dom::object& obj, const JsonFieldMap* map, size_t n,
                         const char* email_key, const char* phone_key, const MapperSettings& s,
                         ContactFact* fact) {
  bool wrong = false;
  for (size_t i = 0; i < n; ++i) {
    auto v = StringOrNumberField(obj, map[i].json, &wrong);
    if (wrong) return Status::InvalidArgument(std::string("\"") + map[i].json + "\" has the wrong type");
    if (v) fact->fields[map[i].field] = *v;
  }
  if (auto v = StringOrNumberField(obj, email_key, &wrong)) {
    if (v->empty()) {
      fact->fields[fields::kEmail] = "";
    } else if (auto e = Normalizer::Email(*v)) {
      fact->fields[fields::kEmail] = *e;
    }
  }
  if (auto v = StringOrNumberField(obj, phone_key, &wrong)) {
    if (v->empty()) {
      fact->fields[fields::kPhone] = "";
    } else if (auto p = s.normalizer->Phone(*v)) {
      fact->fields[fields::kPhone] = *p;
    }
  }
  return Status::OK();
}

std::string JoinTags(std::vector<std::string> tags) {
  for (auto& t : tags) t = AsciiLower(TrimSpace(t));
  tags.erase(std::remove(tags.begin(), tags.end(), std::string()), tags.end());
  std::sort(tags.begin(), tags.end());
  tags.erase(std::unique(tags.begin(), tags.end()), tags.end());
  std::string out;
  for (size_t i = 0; i < tags.size(); ++i) {
    if (i) out += '\n';
    out += tags[i];
  }
  return out;
}

}  // namespace dfm
