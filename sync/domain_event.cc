#include "sync/domain_event.h"

#include <simdjson.h>

#include "util/json.h"

namespace dfm {

namespace {

const std::string_view kTypes[] = {
    ev::kContactCreated,   ev::kContactChanged,     ev::kContactLinked,   ev::kContactDeleted,
    ev::kConflictRecorded, ev::kEchoSuppressed,     ev::kPushRequested,   ev::kPushAttempted,
    ev::kPushSucceeded,    ev::kPushDeadLettered,   ev::kFactRejected,    ev::kIdentityConflict,
    ev::kIdentitySettled,  ev::kWebhookQuarantined, ev::kMessageLogged,   ev::kMessageStatus,
    ev::kMessageRefused,   ev::kOptedOut,           ev::kOptedIn,         ev::kOptOutFlagged,
    ev::kRedriveSkipped,   ev::kConsentConflict,    ev::kContactEnriched, ev::kConsentClassified,
    ev::kPushSending,      ev::kConsentKnown,       ev::kPushHeld};

std::string MapJson(const std::map<std::string, std::string>& m) {
  JsonObject o;
  for (const auto& [k, v] : m) o.Str(k, v);
  return o.Finish();
}

std::string AttributedJson(const Attributed& a) {
  return JsonObject()
      .Str("value", a.value)
      .Str("system", a.system)
      .Int("source_time_us", a.source_time_us)
      .Finish();
}

Status Bad(const std::string& what) {
  return Status::Corruption("domain event payload: " + what);
}

std::string Str(simdjson::dom::element e) {
  std::string_view v;
  if (e.get(v) == simdjson::SUCCESS) return std::string(v);
  return std::string();
}

void StrInto(simdjson::dom::element e, std::string* out) {
  std::string_view v;
  if (e.get(v) == simdjson::SUCCESS) {
    out->assign(v.data(), v.size());
  } else {
    out->clear();
  }
}

// Empties every member but `fields`, keeping the strings' buffers
// (DecodeInto reuses the nodes of `fields`).
void Reset(DomainEvent* e) {
  for (std::string* s : {&e->type, &e->contact_id, &e->system, &e->external_id, &e->field,
                         &e->kept.value, &e->kept.system, &e->lost.value, &e->lost.system,
                         &e->rule, &e->reason, &e->via, &e->message_key, &e->channel, &e->actor, &e->push_id,
                         &e->op, &e->outcome, &e->detail})
    s->clear();
  e->source_time_us = e->kept.source_time_us = e->lost.source_time_us = 0;
  e->changes.clear();
  e->candidates.clear();
  e->priority = e->attempt = e->http_status = 0;
  e->next_attempt_us = 0;
  e->webhook_seq = 0;
  e->fact_index = 0;
}

int64_t Int(simdjson::dom::element e) {
  int64_t v = 0;
  if (e.get(v) == simdjson::SUCCESS) return v;
  return 0;
}

// The same of a member looked up (val["value"]): one missing, or a lookup
// in something that is not an object (a damaged payload), reads as empty
// instead of throwing.
using Result = simdjson::simdjson_result<simdjson::dom::element>;
std::string Str(Result r) {
  simdjson::dom::element e;
  return r.get(e) == simdjson::SUCCESS ? Str(e) : std::string();
}
void StrInto(Result r, std::string* out) {
  simdjson::dom::element e;
  if (r.get(e) == simdjson::SUCCESS) return StrInto(e, out);
  out->clear();
}
int64_t Int(Result r) {
  simdjson::dom::element e;
  return r.get(e) == simdjson::SUCCESS ? Int(e) : 0;
}

}  // namespace

bool LinksNoRecord(const DomainEvent& e) { return HasOptOutTag(e, kLinksNoRecordTag); }

bool HasOptOutTag(const DomainEvent& e, std::string_view tag) {
  return HasTagAfterOp(e, ":opt_out", tag);
}

bool MarksRecordAfterDeletion(const DomainEvent& e) {
  return e.op == "mark_dnc" && HasTagAfterOp(e, ":mark_dnc", kNewRecordTag);
}

bool HasTagAfterOp(const DomainEvent& e, std::string_view op, std::string_view tag) {
  if (e.contact_id.empty() || e.system.empty()) return false;
  std::string_view id = e.push_id;
  const std::string head = e.contact_id + ":" + e.system + ":";
  if (id.substr(0, head.size()) != head) return false;
  id.remove_prefix(head.size());
  auto skip = [&id](std::string_view chars) {
    while (!id.empty() && chars.find(id.front()) != std::string_view::npos) id.remove_prefix(1);
  };
  constexpr std::string_view kDigits = "0123456789", kReplay = "replay";
  if (id.substr(0, kReplay.size()) == kReplay) {  // sync/redrive.cc
    id.remove_prefix(kReplay.size());
    skip(kDigits);
    if (id.empty() || id.front() != ':') return false;
    id.remove_prefix(1);
    skip(kDigits);
  } else {
    skip("0123456789.");  // FactTag
  }
  if (id.substr(0, op.size()) != op) return false;
  id.remove_prefix(op.size());
  if (id.substr(0, tag.size()) != tag) return false;
  id.remove_prefix(tag.size());
  return id.empty() || id.front() == ':';
}

bool DomainEvent::operator==(const DomainEvent& o) const {
  return type == o.type && contact_id == o.contact_id && system == o.system &&
         external_id == o.external_id && source_time_us == o.source_time_us &&
         fields == o.fields && changes == o.changes && field == o.field && kept == o.kept &&
         lost == o.lost && rule == o.rule && reason == o.reason && via == o.via &&
         message_key == o.message_key && channel == o.channel && actor == o.actor &&
         candidates == o.candidates && push_id == o.push_id && op == o.op &&
         priority == o.priority && attempt == o.attempt && outcome == o.outcome &&
         http_status == o.http_status && detail == o.detail &&
         next_attempt_us == o.next_attempt_us && webhook_seq == o.webhook_seq &&
         fact_index == o.fact_index;
}

const std::vector<std::string_view>& DomainEventTypes() {
  static const std::vector<std::string_view> kAll(std::begin(kTypes), std::end(kTypes));
  return kAll;
}

bool IsDomainEventType(std::string_view type) {
  for (auto t : kTypes)
    if (t == type) return true;
  return false;
}

std::string EncodeDomainEvent(const DomainEvent& e) {
  JsonObject o;
  if (!e.contact_id.empty()) o.Str("contact_id", e.contact_id);
  if (!e.system.empty()) o.Str("system", e.system);
  if (!e.external_id.empty()) o.Str("external_id", e.external_id);
  if (e.source_time_us) o.Int("source_time_us", e.source_time_us);
  if (!e.fields.empty()) o.Raw("fields", MapJson(e.fields));
  if (!e.changes.empty()) {
    JsonArray arr;
    for (const auto& c : e.changes)
      arr.Raw(JsonObject().Str("field", c.field).Str("old", c.old_value).Str("new", c.new_value).Finish());
    o.Raw("changes", arr.Finish());
  }
  if (!e.field.empty()) o.Str("field", e.field);
  if (!e.kept.system.empty() || !e.kept.value.empty()) o.Raw("kept", AttributedJson(e.kept));
  if (!e.lost.system.empty() || !e.lost.value.empty()) o.Raw("lost", AttributedJson(e.lost));
  if (!e.rule.empty()) o.Str("rule", e.rule);
  if (!e.reason.empty()) o.Str("reason", e.reason);
  if (!e.via.empty()) o.Str("via", e.via);
  if (!e.message_key.empty()) o.Str("message_key", e.message_key);
  if (!e.channel.empty()) o.Str("channel", e.channel);
  if (!e.actor.empty()) o.Str("actor", e.actor);
  if (!e.candidates.empty()) {
    JsonArray arr;
    for (const auto& [contact, by] : e.candidates)
      arr.Raw(JsonObject().Str("contact_id", contact).Str("matched_by", by).Finish());
    o.Raw("candidates", arr.Finish());
  }
  if (!e.push_id.empty()) o.Str("push_id", e.push_id);
  if (!e.op.empty()) o.Str("op", e.op);
  if (e.priority) o.Int("priority", e.priority);
  if (e.attempt) o.Int("attempt", e.attempt);
  if (!e.outcome.empty()) o.Str("outcome", e.outcome);
  if (e.http_status) o.Int("http_status", e.http_status);
  if (!e.detail.empty()) o.Str("detail", e.detail);
  if (e.next_attempt_us) o.Int("next_attempt_us", e.next_attempt_us);
  if (e.webhook_seq) o.UInt("webhook_seq", e.webhook_seq);
  if (e.fact_index) o.UInt("fact_index", e.fact_index);
  return o.Finish();
}

namespace {

// Makes *fields hold exactly the members of `f`, reusing the nodes of the
// keys it already holds: false (and *fields half-made) unless the keys
// come in strictly ascending order, as EncodeDomainEvent writes them.
bool MergeSortedFields(simdjson::dom::object f, std::map<std::string, std::string>* fields) {
  auto it = fields->begin();
  std::string_view prev;
  bool first = true;
  for (auto [fk, fv] : f) {
    if (!first && fk <= prev) return false;
    first = false;
    prev = fk;
    while (it != fields->end() && std::string_view(it->first) < fk) it = fields->erase(it);
    if (it == fields->end() || std::string_view(it->first) != fk)
      it = fields->emplace_hint(it, std::string(fk), std::string());
    StrInto(fv, &it->second);
    ++it;
  }
  fields->erase(it, fields->end());
  return true;
}

// Decodes in place: a reader decoding millions of events into one object
// reuses its strings' buffers. REQUIRES: *out was Reset.
// `padded`: SIMDJSON_PADDING bytes past the payload's end may be read, so
// the parser need not copy it first.
Status DecodeInto(std::string_view type, std::string_view payload, bool padded,
                  DomainEvent* out) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(payload.data(), payload.size(), !padded).get(root) != simdjson::SUCCESS) {
    return Bad("not JSON");
  }
  simdjson::dom::object obj;
  if (root.get(obj) != simdjson::SUCCESS) return Bad("not an object");
  DomainEvent& e = *out;
  e.type.assign(type.data(), type.size());
  bool has_fields = false;
  for (auto [key, val] : obj) {
    if (key == "contact_id") StrInto(val, &e.contact_id);
    else if (key == "system") StrInto(val, &e.system);
    else if (key == "external_id") StrInto(val, &e.external_id);
    else if (key == "source_time_us") e.source_time_us = Int(val);
    else if (key == "fields") {
      simdjson::dom::object f;
      if (val.get(f) != simdjson::SUCCESS) return Bad("fields is not an object");
      has_fields = true;
      if (!MergeSortedFields(f, &e.fields)) {
        e.fields.clear();
        for (auto [fk, fv] : f) StrInto(fv, &e.fields[std::string(fk)]);
      }
    } else if (key == "changes") {
      simdjson::dom::array a;
      if (val.get(a) != simdjson::SUCCESS) return Bad("changes is not an array");
      for (auto c : a) e.changes.push_back({Str(c["field"]), Str(c["old"]), Str(c["new"])});
    } else if (key == "field") StrInto(val, &e.field);
    else if (key == "kept" || key == "lost") {
      Attributed& a = key == "kept" ? e.kept : e.lost;
      StrInto(val["value"], &a.value);
      StrInto(val["system"], &a.system);
      a.source_time_us = Int(val["source_time_us"]);
    } else if (key == "rule") StrInto(val, &e.rule);
    else if (key == "reason") StrInto(val, &e.reason);
    else if (key == "via") StrInto(val, &e.via);
    else if (key == "message_key") StrInto(val, &e.message_key);
    else if (key == "channel") StrInto(val, &e.channel);
    else if (key == "actor") StrInto(val, &e.actor);
    else if (key == "candidates") {
      simdjson::dom::array a;
      if (val.get(a) != simdjson::SUCCESS) return Bad("candidates is not an array");
      for (auto c : a) e.candidates.emplace_back(Str(c["contact_id"]), Str(c["matched_by"]));
    } else if (key == "push_id") StrInto(val, &e.push_id);
    else if (key == "op") StrInto(val, &e.op);
    else if (key == "priority") e.priority = static_cast<int>(Int(val));
    else if (key == "attempt") e.attempt = static_cast<int>(Int(val));
    else if (key == "outcome") StrInto(val, &e.outcome);
    else if (key == "http_status") e.http_status = static_cast<int>(Int(val));
    else if (key == "detail") StrInto(val, &e.detail);
    else if (key == "next_attempt_us") e.next_attempt_us = Int(val);
    else if (key == "webhook_seq") e.webhook_seq = static_cast<uint64_t>(Int(val));
    else if (key == "fact_index") e.fact_index = static_cast<uint32_t>(Int(val));
    // Unknown keys are kept readable by newer builds: ignored here.
  }
  if (!has_fields) e.fields.clear();
  return Status::OK();
}

// Decodes into *out, or leaves it empty (callers test type.empty()).
Status DecodeFresh(std::string_view type, std::string_view payload, bool padded,
                   DomainEvent* out) {
  Reset(out);
  Status s = DecodeInto(type, payload, padded, out);
  if (!s.ok()) {
    Reset(out);
    out->fields.clear();
  }
  return s;
}

}  // namespace

Status DecodeDomainEvent(std::string_view type, std::string_view payload, DomainEvent* out) {
  return DecodeFresh(type, payload, /*padded=*/false, out);
}

bool AsDomainEvent(const Event& e, DomainEvent* out) {
  if (!IsDomainEventType(e.type)) return false;
  // A payload string with room for simdjson's padding is parsed where it
  // is, not copied first (a reader that reuses its events has that room).
  static_assert(kDecodePadding >= simdjson::SIMDJSON_PADDING, "the parser reads this far");
  const bool padded = e.payload.capacity() - e.payload.size() >= kDecodePadding;
  return DecodeFresh(e.type, e.payload, padded, out).ok();
}

EventDraft ToDraft(const DomainEvent& e, const std::string& tenant, const std::string& stream,
                   const EventId& causation, const EventId& correlation) {
  EventDraft d;
  d.tenant = tenant;
  d.stream = stream;
  d.type = e.type;
  d.schema_version = 1;
  if (e.source_time_us) d.source_time_us = e.source_time_us;
  d.causation_id = causation;
  d.correlation_id = correlation;
  d.payload = EncodeDomainEvent(e);
  return d;
}

}  // namespace dfm
