#include "connectors/common/mapper.h"

#include <algorithm>
#include <map>

#include "connectors/common/json_body.h"
#include "util/strings.h"

namespace dfm {

const InboundMapper* FindInboundMapper(const std::string& system) {
  static const std::map<std::string, InboundMapper> kMappers = {
      {"ghl", MapGhlWebhook},
      {"aloware", MapAlowareWebhook},
      {"verity", MapVerityWebhook},
      {"twilio", MapTwilioWebhook},
  };
  auto it = kMappers.find(system);
  return it == kMappers.end() ? nullptr : &it->second;
}

const InboundMapper* FindMapperFor(std::string_view event_type, const std::string& system) {
  if (event_type == WebhookReceived::kType) return FindInboundMapper(system);
  if (event_type == kContactImportedType) return FindImportMapper(system);
  return nullptr;
}

const InboundMapper* FindImportMapper(const std::string& system) {
  static const std::map<std::string, InboundMapper> kMappers = {
      {"ghl", MapGhlImport},
      {"aloware", MapAlowareImport},
  };
  auto it = kMappers.find(system);
  return it == kMappers.end() ? nullptr : &it->second;
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
