#include "console/shared_keys.h"

#include <simdjson.h>

#include <cstdlib>

namespace dfm {

namespace {

// The key id an api_key event names; "" when it names none.
std::string KeyIdOf(const Event& e) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  std::string_view id;
  if (parser.parse(e.payload.data(), e.payload.size()).get(o) != simdjson::SUCCESS || o["key_id"].get(id))
    return "";
  return std::string(id);
}

bool IsKeyEvent(const Event& e) { return e.type == kApiKeyCreated || e.type == kApiKeyRevoked; }

}  // namespace

std::string SharedKeys::Encode(const std::vector<Event>& events) {
  std::string out = "1\n";
  for (const Event& e : events) {
    if (e.type == kApiKeyRevoked && events.size() == 1) out += "\n";  // no creation known
    out += std::to_string(e.recorded_at_us) + " " + e.payload + "\n";
  }
  return out;
}

bool SharedKeys::Decode(const std::string& value, std::vector<Event>* events) {
  events->clear();
  if (value.rfind("1\n", 0) != 0) return false;
  size_t at = 2;
  for (std::string_view type : {kApiKeyCreated, kApiKeyRevoked}) {
    if (at >= value.size()) break;
    const size_t nl = value.find('\n', at);
    if (nl == std::string::npos) return false;
    const std::string line = value.substr(at, nl - at);
    at = nl + 1;
    if (line.empty() && type == kApiKeyCreated) continue;  // a revocation alone
    const size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || line.find_first_not_of("0123456789", 0) != sp) return false;
    Event e;
    e.type = std::string(type);
    if (sp > 18) return false;  // more digits than a time in µs has
    e.recorded_at_us = std::strtoll(line.c_str(), nullptr, 10);
    e.payload = line.substr(sp + 1);
    e.stream = std::string(kApiKeysStream);
    events->push_back(std::move(e));
  }
  return at == value.size() && !events->empty();
}

Status SharedKeys::Publish(const Event& e) {
  if (!IsKeyEvent(e) || e.payload.find('\n') != std::string::npos) return Status::InvalidArgument("no key event");
  const std::string id = KeyIdOf(e);
  if (id.empty()) return Status::InvalidArgument("a key event without key_id");
  const std::string k = "k." + id;
  for (int round = 0; round < 3; ++round) {
    CasStore::Entry now;
    Status s = store_->Get(k, &now);
    if (!s.ok()) return s;
    std::vector<Event> held;
    if (now.present && !Decode(now.value, &held)) return Status::Corruption("shared key " + k + " does not read");
    if (e.type == kApiKeyCreated) {
      if (now.present) return Status::OK();  // shared already
      held = {e};
    } else {
      if (held.size() == 2 || (held.size() == 1 && held[0].type == kApiKeyRevoked)) return Status::OK();
      held.push_back(e);
    }
    s = now.present ? store_->Update(k, Encode(held), now.rev) : store_->Create(k, Encode(held));
    if (s.code() != Status::Code::kAlreadyExists) return s;  // moved on: read again
  }
  return Status::Unavailable("shared key " + k + " kept moving");
}

Status SharedKeys::FoldInto(ApiKeyRegistry* keys, size_t* count) const {
  *count = 0;
  std::vector<std::string> names;
  Status s = store_->Keys(&names);
  if (!s.ok()) return s;
  for (const std::string& k : names) {
    if (k.rfind("k.", 0) != 0) continue;
    CasStore::Entry e;
    s = store_->Get(k, &e);
    if (!s.ok()) return s;
    std::vector<Event> events;
    if (!e.present || !Decode(e.value, &events)) continue;
    for (const Event& ev : events) keys->Apply(ev);
    ++*count;
  }
  return Status::OK();
}

}  // namespace dfm
