#include "connectors/common/json_body.h"

namespace dfm {

Status ParseJsonObject(std::string_view body, simdjson::dom::object* out) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  auto err = parser.parse(body.data(), body.size()).get(root);
  if (err) {
    return Status::InvalidArgument(std::string("body is not valid JSON: ") +
                                   simdjson::error_message(err));
  }
  if (root.get(*out)) return Status::InvalidArgument("body is JSON but not an object");
  return Status::OK();
}

Status ParseJsonObjects(std::string_view body, std::vector<simdjson::dom::object>* out,
                        bool* batched) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  auto err = parser.parse(body.data(), body.size()).get(root);
  if (err)
    return Status::InvalidArgument(std::string("body is not valid JSON: ") + simdjson::error_message(err));
  out->clear();
  simdjson::dom::object obj;
  if (!root.get(obj)) {
    *batched = false;
    out->push_back(obj);
    return Status::OK();
  }
  simdjson::dom::array arr;
  if (root.get(arr)) return Status::InvalidArgument("body is JSON but neither an object nor an array");
  *batched = true;
  size_t i = 0;
  for (simdjson::dom::element e : arr) {
    if (e.get(obj))
      return Status::InvalidArgument("element " + std::to_string(i) + " of the batch is not an object");
    out->push_back(obj);
    ++i;
  }
  if (out->empty()) return Status::InvalidArgument("an empty batch (JSON array)");
  return Status::OK();
}

std::optional<std::string> StringOrNumberField(const simdjson::dom::object& obj,
                                               std::string_view key, bool* wrong_type) {
  simdjson::dom::element v;
  if (obj.at_key(key).get(v)) return std::nullopt;
  switch (v.type()) {
    case simdjson::dom::element_type::STRING: {
      std::string_view s;
      if (v.get(s)) return std::nullopt;
      return std::string(s);
    }
    case simdjson::dom::element_type::INT64:
      return std::to_string(int64_t(v));
    case simdjson::dom::element_type::UINT64:
      return std::to_string(uint64_t(v));
    case simdjson::dom::element_type::NULL_VALUE:
      return std::nullopt;
    default:
      if (wrong_type) *wrong_type = true;
      return std::nullopt;
  }
}

std::string JsonStringAt(std::string_view body, const char* obj, const char* key) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body.data(), body.size()).get(doc)) return {};
  if (obj && doc[obj].get(doc)) return {};
  std::string_view v;
  if (doc[key].get(v)) return {};
  return std::string(v);
}

std::string JsonWebhookKind(std::string_view body) {
  if (body.empty() || body.front() != '{') return "";
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body.data(), body.size()).get(root) != simdjson::SUCCESS) return "";
  for (const char* k : {"type", "event", "event_type"}) {
    std::string_view v;
    if (root[k].get(v) == simdjson::SUCCESS) return std::string(v);
  }
  return "";
}

}  // namespace dfm
