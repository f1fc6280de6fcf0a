#include "console/shared_keys.h"

#include <simdjson.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "storage/durable_file.h"

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
  std::string unread;  // the first few, named
  size_t unread_count = 0;
  std::vector<std::string> names;
  Status s = store_->Keys(&names);
  if (!s.ok()) return s;
  for (const std::string& k : names) {
    if (k.rfind("k.", 0) != 0) continue;
    CasStore::Entry e;
    s = store_->Get(k, &e);
    if (!s.ok()) return s;
    std::vector<Event> events;
    if (!e.present) continue;
    if (!Decode(e.value, &events)) {  // a later version, or damaged: it may revoke a key
      if (unread_count < 3) unread += (unread.empty() ? "" : ", ") + k;
      ++unread_count;
      continue;
    }
    for (const Event& ev : events) keys->Apply(ev);
    ++*count;
  }
  if (unread_count > 0)
    return Status::Corruption(std::to_string(unread_count) + " shared keys do not read (" + unread +
                              (unread_count > 3 ? ", ..." : "") + ")");
  return Status::OK();
}

namespace {

constexpr std::string_view kUnsharedHeader = "dfm-keys-unshared 1\n";

std::string UnsharedPath(const std::string& data_dir) { return data_dir + "/keys-unshared"; }

}  // namespace

std::string SharedKeys::EncodeUnshared(const std::vector<Event>& events) {
  std::string out(kUnsharedHeader);
  for (const Event& e : events) {
    out += e.type == kApiKeyCreated ? "created " : "revoked ";
    out += std::to_string(e.recorded_at_us) + " " + e.payload + "\n";
  }
  return out;
}

namespace {

// One change line of keys-unshared; false when it does not read.
bool DecodeUnsharedLine(std::string_view line, Event* e) {
  if (line.rfind("created ", 0) == 0) {
    e->type = std::string(kApiKeyCreated);
  } else if (line.rfind("revoked ", 0) == 0) {
    e->type = std::string(kApiKeyRevoked);
  } else {
    return false;
  }
  line.remove_prefix(8);
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos || sp == 0 || sp > 18) return false;
  auto [end, ec] = std::from_chars(line.data(), line.data() + sp, e->recorded_at_us);
  if (ec != std::errc() || end != line.data() + sp || e->recorded_at_us < 0) return false;
  e->payload = std::string(line.substr(sp + 1));
  e->stream = std::string(kApiKeysStream);
  return !e->payload.empty();
}

}  // namespace

bool SharedKeys::DecodeUnshared(std::string_view text, std::vector<Event>* events) {
  events->clear();
  if (text.substr(0, kUnsharedHeader.size()) != kUnsharedHeader) return false;
  text.remove_prefix(kUnsharedHeader.size());
  bool whole = true;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) {
      nl = text.size();  // cut short
      whole = false;
    }
    Event e;
    if (DecodeUnsharedLine(text.substr(0, nl), &e)) {
      events->push_back(std::move(e));
    } else {
      whole = false;  // the others still read: a revocation is never the worse for it
    }
    text.remove_prefix(std::min(nl + 1, text.size()));
  }
  return whole;
}

Status SharedKeys::SaveUnshared(const std::string& data_dir, const std::vector<Event>& events) {
  const std::string path = UnsharedPath(data_dir);
  if (!events.empty()) return ReplaceFileDurably(path, EncodeUnshared(events));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return Status::IOError("cannot remove " + path);
  return Status::OK();  // a removal a crash undoes shares them again: no harm
}

Status SharedKeys::LoadUnshared(const std::string& data_dir, std::vector<Event>* events) {
  events->clear();
  const std::string path = UnsharedPath(data_dir);
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) return Status::OK();
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (DecodeUnshared(text.str(), events)) return Status::OK();
  // Kept aside for a look; what read is written back by the next save.
  const std::string aside = path + ".damaged";
  if (::rename(path.c_str(), aside.c_str()) != 0)
    return Status::Corruption(path + " does not read whole");
  return Status::Corruption(path + " does not read whole (moved to " + aside + ")");
}

}  // namespace dfm
