#include "campaigns/request_fields.h"

#include <cctype>

namespace dfm {

bool GoodId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
      return false;
  return true;
}

bool BodyObject(simdjson::dom::parser& parser, std::string_view json, simdjson::dom::object* o,
                Details* d) {
  if (parser.parse(json.data(), json.size()).get(*o) == simdjson::SUCCESS) return true;
  d->push_back({"", "the body is not a JSON object"});
  return false;
}

std::string TextField(simdjson::dom::object o, const char* key, const std::string& field,
                      bool required, size_t max, Details* d) {
  auto v = o[key];
  if (v.error() == simdjson::NO_SUCH_FIELD) {
    if (required) d->push_back({field, "is required"});
    return {};
  }
  std::string_view s;
  if (v.get(s) != simdjson::SUCCESS || (required && s.empty())) {
    d->push_back({field, required ? "must be a string, not empty" : "must be a string"});
    return {};
  }
  if (s.size() > max) d->push_back({field, "at most " + std::to_string(max) + " characters"});
  return std::string(s);
}

std::vector<std::string> StringsField(simdjson::dom::object o, const char* key,
                                      const std::string& field, Details* d) {
  std::vector<std::string> out;
  auto v = o[key];
  if (v.error() == simdjson::NO_SUCH_FIELD) return out;
  simdjson::dom::array a;
  if (v.get(a) != simdjson::SUCCESS) {
    d->push_back({field, "must be a list of strings"});
    return out;
  }
  for (auto e : a) {
    std::string_view s;
    if (e.get(s) != simdjson::SUCCESS || s.empty()) {
      d->push_back({field, "must be a list of strings"});
      return {};
    }
    out.emplace_back(s);
  }
  return out;
}

int64_t NumberField(simdjson::dom::object o, const char* key, int64_t dflt, int64_t lo, int64_t hi,
                    const std::string& field, Details* d) {
  auto v = o[key];
  if (v.error() == simdjson::NO_SUCH_FIELD) return dflt;
  int64_t n = 0;
  if (v.get(n) != simdjson::SUCCESS || n < lo || n > hi) {
    d->push_back(
        {field, "must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi)});
    return dflt;
  }
  return n;
}

bool FlagField(simdjson::dom::object o, const char* key, bool dflt, const std::string& field,
               Details* d) {
  auto v = o[key];
  if (v.error() == simdjson::NO_SUCH_FIELD) return dflt;
  bool b = dflt;
  if (v.get(b) != simdjson::SUCCESS) d->push_back({field, "must be true or false"});
  return b;
}

}  // namespace dfm
