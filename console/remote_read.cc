#include "console/remote_read.h"

#include <simdjson.h>

#include "util/json.h"

namespace dfm {

namespace {

bool Version1(simdjson::dom::object& o) {
  int64_t v = 0;
  return o["v"].get(v) == simdjson::SUCCESS && v == 1;
}

bool Text(simdjson::dom::object& o, const char* key, std::string* out) {
  std::string_view v;
  if (o[key].get(v) != simdjson::SUCCESS) return false;
  out->assign(v);
  return true;
}

}  // namespace

std::string EncodeRemoteRead(const RemoteRead& r) {
  JsonArray params;
  for (const auto& [k, v] : r.params) params.Raw(JsonArray().Str(k).Str(v).Finish());
  return JsonObject().Int("v", 1).Str("route", r.route).Str("tenant", r.tenant).Raw("params", params.Finish()).Finish();
}

bool DecodeRemoteRead(std::string_view data, RemoteRead* r) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  if (parser.parse(data.data(), data.size()).get(o) != simdjson::SUCCESS || !Version1(o)) return false;
  simdjson::dom::array params;
  if (!Text(o, "route", &r->route) || !Text(o, "tenant", &r->tenant) ||
      o["params"].get(params) != simdjson::SUCCESS)
    return false;
  r->params.clear();
  for (simdjson::dom::element pair : params) {
    simdjson::dom::array kv;
    std::string_view k, v;
    if (pair.get(kv) != simdjson::SUCCESS || kv.size() != 2 || kv.at(0).get(k) != simdjson::SUCCESS ||
        kv.at(1).get(v) != simdjson::SUCCESS)
      return false;
    r->params.emplace_back(std::string(k), std::string(v));
  }
  return true;
}

std::string EncodeReadAnswer(const ApiResponse& a) {
  return JsonObject()
      .Int("v", 1)
      .Int("status", a.status)
      .Str("content_type", a.content_type)
      .Str("body", a.body)
      .Finish();
}

bool DecodeReadAnswer(std::string_view data, ApiResponse* a) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  if (parser.parse(data.data(), data.size()).get(o) != simdjson::SUCCESS || !Version1(o)) return false;
  int64_t status = 0;
  if (o["status"].get(status) != simdjson::SUCCESS || status < 100 || status > 599 ||
      !Text(o, "content_type", &a->content_type) || !Text(o, "body", &a->body))
    return false;
  a->status = static_cast<int>(status);
  return true;
}

}  // namespace dfm
