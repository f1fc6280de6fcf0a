#include "sync/erasure.h"

#include <simdjson.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "events/sealing.h"
#include "sync/consent.h"
#include "sync/domain_event.h"
#include "sync/fact.h"
#include "util/crypto.h"
#include "util/json.h"

namespace dfm {

std::string EncodeErasure(const Erasure& e) {
  JsonArray keys;
  for (uint64_t k : e.keys) keys.Raw(std::to_string(k));
  JsonArray subjects;
  for (const ErasedSubject& s : e.subjects) {
    subjects.Raw(JsonObject()
                     .Str("hash", s.hash)
                     .Str("kind", s.kind)
                     .Str("channel", s.channel)
                     .Str("status", s.out ? "out" : "in")
                     .Int("at_us", s.at_us)
                     .UInt("seq", s.seq)
                     .Str("system", s.system)
                     .Finish());
  }
  return JsonObject()
      .Str("contact_id", e.contact_id)
      .Str("reason", e.reason)
      .Str("requested_by", e.requested_by)
      .Raw("keys", keys.Finish())
      .UInt("events", e.events)
      .UInt("sources", e.sources)
      .Raw("subjects", subjects.Finish())
      .Finish();
}

Status DecodeErasure(std::string_view json, Erasure* out) {
  simdjson::dom::parser parser;
  simdjson::dom::object root;
  if (parser.parse(json.data(), json.size()).get(root) != simdjson::SUCCESS)
    return Status::Corruption("contact.erased: not a JSON object");
  Erasure e;
  std::string_view s;
  if (root["contact_id"].get(s) != simdjson::SUCCESS || s.empty())
    return Status::Corruption("contact.erased: no contact_id");
  e.contact_id = std::string(s);
  if (root["reason"].get(s) == simdjson::SUCCESS) e.reason = std::string(s);
  if (root["requested_by"].get(s) == simdjson::SUCCESS) e.requested_by = std::string(s);
  uint64_t u = 0;
  if (root["events"].get(u) == simdjson::SUCCESS) e.events = u;
  if (root["sources"].get(u) == simdjson::SUCCESS) e.sources = u;
  simdjson::dom::array arr;
  if (root["keys"].get(arr) == simdjson::SUCCESS) {
    for (simdjson::dom::element k : arr)
      if (k.get(u) == simdjson::SUCCESS) e.keys.push_back(u);
  }
  if (root["subjects"].get(arr) == simdjson::SUCCESS) {
    for (simdjson::dom::element el : arr) {
      simdjson::dom::object o;
      if (el.get(o) != simdjson::SUCCESS) return Status::Corruption("contact.erased: bad subject");
      ErasedSubject sub;
      int64_t at = 0;
      if (o["hash"].get(s) != simdjson::SUCCESS || s.empty())
        return Status::Corruption("contact.erased: subject without hash");
      sub.hash = std::string(s);
      if (o["kind"].get(s) == simdjson::SUCCESS) sub.kind = std::string(s);
      if (o["channel"].get(s) != simdjson::SUCCESS || s.empty())
        return Status::Corruption("contact.erased: subject without channel");
      sub.channel = std::string(s);
      if (o["status"].get(s) == simdjson::SUCCESS) sub.out = s == "out";
      if (o["at_us"].get(at) == simdjson::SUCCESS) sub.at_us = at;
      if (o["seq"].get(u) == simdjson::SUCCESS) sub.seq = u;
      if (o["system"].get(s) == simdjson::SUCCESS) sub.system = std::string(s);
      e.subjects.push_back(std::move(sub));
    }
  }
  *out = std::move(e);
  return Status::OK();
}

std::string SubjectHash(std::string_view hash_key, std::string_view tenant,
                        std::string_view identifier) {
  return SubjectHasher(hash_key, std::string(tenant))(identifier);
}

SubjectHasher::SubjectHasher(std::string_view hash_key, std::string tenant)
    : key_(std::make_unique<HmacKey>(HmacKey::Digest::kSha256, hash_key)),
      tenant_(std::move(tenant)) {}

SubjectHasher::~SubjectHasher() = default;

std::string SubjectHasher::operator()(std::string_view identifier) const {
  std::string mac = key_->MacOfParts({tenant_, "\n", identifier});
  return HexEncode(std::string_view(mac).substr(0, 16));
}

namespace {

// (kind, identifier, channel) -> the standing statement.
using Standing = std::map<std::tuple<std::string, std::string, std::string>, ErasedSubject>;

// Folds one statement about `who` (a phone or an email) on `channel`.
void Fold(Standing* standing, const char* kind, const std::string& who, const std::string& channel,
          bool is_out, int64_t at, uint64_t seq, const std::string& system) {
  auto [it, fresh] = standing->try_emplace({kind, who, channel});
  ErasedSubject& s = it->second;
  if (!fresh && !ConsentSupersedes(is_out, at, s.out, s.at_us)) return;
  s.kind = kind;
  s.channel = channel;
  s.out = is_out;
  s.at_us = at;
  s.seq = seq;
  s.system = system;
}

}  // namespace

Erasure PlanErasure(std::string_view tenant, std::string_view contact_id,
                    const std::vector<Event>& stream, const std::vector<uint64_t>& source_keys,
                    std::string_view hash_key, const std::vector<UndecidedOptOut>& undecided) {
  Erasure out;
  out.contact_id = std::string(contact_id);
  std::set<uint64_t> keys;
  Standing standing;
  for (const Event& e : stream) {
    if (e.type == kContactErasedType) continue;
    if (e.key_no != 0) keys.insert(e.key_no);
    if (e.sealing != Event::Sealing::kErased) out.events++;
    if (e.type != ev::kOptedOut && e.type != ev::kOptedIn) continue;
    DomainEvent d;
    if (!AsDomainEvent(e, &d)) continue;
    const bool is_out = d.type == ev::kOptedOut;
    const int64_t at = HappenedAt(e, d);
    for (const char* kind : {fields::kPhone, fields::kEmail}) {
      auto who = d.fields.find(kind);
      if (who == d.fields.end() || who->second.empty()) continue;
      for (const std::string& ch : SplitChannels(d.channel))
        Fold(&standing, kind, who->second, ch, is_out, at, e.seq, d.system);
    }
  }
  for (const UndecidedOptOut& u : undecided) {
    for (const std::string& ch : u.channels) {
      if (!u.phone.empty())
        Fold(&standing, fields::kPhone, u.phone, ch, true, u.at_us, u.seq, u.system);
      if (!u.email.empty())
        Fold(&standing, fields::kEmail, u.email, ch, true, u.at_us, u.seq, u.system);
    }
  }
  for (auto& [k, s] : standing) {
    s.hash = SubjectHash(hash_key, tenant, std::get<1>(k));
    out.subjects.push_back(std::move(s));
  }
  for (uint64_t k : source_keys) keys.insert(k);
  out.sources = source_keys.size();
  out.keys.assign(keys.begin(), keys.end());
  return out;
}

}  // namespace dfm
