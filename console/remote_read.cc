#include "console/remote_read.h"

#include <simdjson.h>

#include <cstdlib>

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

std::string Strings(const std::vector<std::string>& v) {
  JsonArray a;
  for (const auto& x : v) a.Str(x);
  return a.Finish();
}

bool ReadStrings(simdjson::dom::object& o, const char* key, std::vector<std::string>* out) {
  simdjson::dom::array a;
  if (o[key].get(a)) return false;
  for (simdjson::dom::element x : a) {
    std::string_view v;
    if (x.get(v)) return false;
    out->emplace_back(v);
  }
  return true;
}

std::string EncodeStory(const ContactStory& s) {
  JsonArray where, consent, timeline;
  for (const auto& [system, id] : s.where) where.Raw(JsonArray().Str(system).Str(id).Finish());
  for (const auto& c : s.consent)
    consent.Raw(JsonObject().Str("channel", c.channel).Bool("opted_out", c.opted_out).Int("since_us", c.since_us)
                    .Str("via", c.via).Str("how", c.how).Str("who", c.who).Finish());
  for (const auto& l : s.timeline)
    timeline.Raw(JsonObject().Int("at_us", l.at_us).Str("system", l.system).Str("what", l.what).Finish());
  return JsonObject()
      .Str("tenant", s.tenant).Str("contact_id", s.contact_id).Str("name", s.name).Str("phone", s.phone)
      .Str("email", s.email).Raw("where", where.Finish()).Raw("consent", consent.Finish())
      .Raw("timeline", timeline.Finish()).Raw("waiting", Strings(s.waiting))
      .Raw("findings", Strings(s.findings)).Str("it_report", s.it_report)
      .Finish();
}

bool DecodeStory(simdjson::dom::object o, ContactStory* s) {
  simdjson::dom::array where, consent, timeline;
  if (!Text(o, "tenant", &s->tenant) || !Text(o, "contact_id", &s->contact_id) || !Text(o, "name", &s->name) ||
      !Text(o, "phone", &s->phone) || !Text(o, "email", &s->email) || !Text(o, "it_report", &s->it_report) ||
      o["where"].get(where) || o["consent"].get(consent) || o["timeline"].get(timeline) ||
      !ReadStrings(o, "waiting", &s->waiting) || !ReadStrings(o, "findings", &s->findings))
    return false;
  for (simdjson::dom::element x : where) {
    simdjson::dom::array pair;
    std::string_view system, id;
    if (x.get(pair) || pair.size() != 2 || pair.at(0).get(system) || pair.at(1).get(id)) return false;
    s->where.emplace_back(std::string(system), std::string(id));
  }
  for (simdjson::dom::element x : consent) {
    simdjson::dom::object c;
    StoryChannel ch;
    if (x.get(c) || !Text(c, "channel", &ch.channel) || c["opted_out"].get(ch.opted_out) ||
        c["since_us"].get(ch.since_us) || !Text(c, "via", &ch.via) || !Text(c, "how", &ch.how) ||
        !Text(c, "who", &ch.who))
      return false;
    s->consent.push_back(std::move(ch));
  }
  for (simdjson::dom::element x : timeline) {
    simdjson::dom::object l;
    StoryLine line;
    if (x.get(l) || l["at_us"].get(line.at_us) || !Text(l, "system", &line.system) || !Text(l, "what", &line.what))
      return false;
    s->timeline.push_back(std::move(line));
  }
  return true;
}

}  // namespace

std::string EncodeStories(const std::vector<ContactStory>& stories) {
  JsonArray a;
  for (const auto& s : stories) a.Raw(EncodeStory(s));
  return JsonObject().Int("v", 1).Raw("stories", a.Finish()).Finish();
}

bool DecodeStories(std::string_view data, std::vector<ContactStory>* stories) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  simdjson::dom::array a;
  if (parser.parse(data.data(), data.size()).get(o) || !Version1(o) || o["stories"].get(a)) return false;
  stories->clear();
  for (simdjson::dom::element x : a) {
    simdjson::dom::object so;
    stories->emplace_back();
    if (x.get(so) || !DecodeStory(so, &stories->back())) return false;
  }
  return true;
}

std::string EncodePlannedDraft(const EventDraft& d, uint64_t items) {
  auto id = [](const EventId& e) { return e.IsZero() ? std::string() : e.ToString(); };
  return JsonObject()
      .Int("v", 1)
      .UInt("items", items)
      .Str("stream", d.stream)
      .Str("type", d.type)
      .UInt("schema_version", d.schema_version)
      .Str("payload", d.payload)
      .Str("causation_id", id(d.causation_id))
      .Str("correlation_id", id(d.correlation_id))
      .Str("idempotency_system", d.idempotency_system)
      .Str("idempotency_key", d.idempotency_key)
      .Finish();
}

bool DecodePlannedDraft(std::string_view data, EventDraft* d, uint64_t* items) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  uint64_t version = 0;
  std::string causation, correlation;
  if (parser.parse(data.data(), data.size()).get(o) || !Version1(o) || o["items"].get(*items) ||
      !Text(o, "stream", &d->stream) || !Text(o, "type", &d->type) || o["schema_version"].get(version) ||
      version > 0xffff || !Text(o, "payload", &d->payload) || !Text(o, "causation_id", &causation) ||
      !Text(o, "correlation_id", &correlation) || !Text(o, "idempotency_system", &d->idempotency_system) ||
      !Text(o, "idempotency_key", &d->idempotency_key))
    return false;
  d->schema_version = static_cast<uint16_t>(version);
  for (auto [text, id] : {std::pair{&causation, &d->causation_id}, std::pair{&correlation, &d->correlation_id}}) {
    if (text->empty()) continue;
    auto parsed = EventId::Parse(*text);
    if (!parsed) return false;
    *id = *parsed;
  }
  return true;
}

std::string EncodeRemoteRead(const RemoteRead& r) {
  JsonArray params;
  for (const auto& [k, v] : r.params) params.Raw(JsonArray().Str(k).Str(v).Finish());
  JsonObject o;
  o.Int("v", 1).Str("route", r.route).Str("tenant", r.tenant).Raw("params", params.Finish());
  if (r.whole) o.Bool("whole", true);
  if (r.parts) o.Bool("parts", true);
  return o.Finish();
}

bool DecodeRemoteRead(std::string_view data, RemoteRead* r) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  if (parser.parse(data.data(), data.size()).get(o) != simdjson::SUCCESS || !Version1(o)) return false;
  simdjson::dom::array params;
  if (!Text(o, "route", &r->route) || !Text(o, "tenant", &r->tenant) ||
      o["params"].get(params) != simdjson::SUCCESS)
    return false;
  bool whole = false;
  r->whole = o["whole"].get(whole) == simdjson::SUCCESS && whole;
  bool parts = false;
  r->parts = o["parts"].get(parts) == simdjson::SUCCESS && parts;
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

std::string EncodeEraseAnswer(const Status& s, const EraseAnswer& a) {
  const char* code = s.ok()                     ? "ok"
                     : s.IsNotFound()           ? "not_found"
                     : s.IsFailedPrecondition() ? "failed_precondition"
                                                : "unavailable";
  return JsonObject()
      .Int("v", 1).Str("code", code).Str("message", s.ok() ? "" : s.message())
      .UInt("seq", a.seq).Bool("already", a.already).UInt("keys", a.keys).UInt("events", a.events)
      .UInt("sources", a.sources).UInt("subjects", a.subjects)
      .Finish();
}

bool DecodeEraseAnswer(std::string_view data, Status* s, EraseAnswer* a) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  std::string code, message;
  if (parser.parse(data.data(), data.size()).get(o) || !Version1(o) || !Text(o, "code", &code) ||
      !Text(o, "message", &message) || o["seq"].get(a->seq) || o["already"].get(a->already) ||
      o["keys"].get(a->keys) || o["events"].get(a->events) || o["sources"].get(a->sources) ||
      o["subjects"].get(a->subjects))
    return false;
  if (code == "ok") {
    *s = Status::OK();
  } else if (code == "not_found") {
    *s = Status::NotFound(message);
  } else if (code == "failed_precondition") {
    *s = Status::FailedPrecondition(message);
  } else {
    *s = Status::Unavailable(message);
  }
  return true;
}

RemoteRead BackfillRequest(const std::string& tenant, const BackfillAsk& ask) {
  return RemoteRead{kBackfillRoute,
                    tenant,
                    {{"start", ask.start ? "1" : "0"},
                     {"system", ask.system},
                     {"page_size", std::to_string(ask.page_size)},
                     {"restart", ask.restart ? "1" : "0"}}};
}

bool DecodeBackfillRequest(const RemoteRead& r, BackfillAsk* ask) {
  if (r.route != kBackfillRoute) return false;
  for (const auto& [name, value] : r.params) {
    if (name == "start") ask->start = value == "1";
    if (name == "system") ask->system = value;
    if (name == "restart") ask->restart = value == "1";
    if (name == "page_size") ask->page_size = static_cast<int>(std::strtol(value.c_str(), nullptr, 10));
  }
  return true;
}

std::string EncodeBackfillAnswer(const Status& s, const std::string& json) {
  const char* code = s.ok()                                     ? "ok"
                     : s.code() == Status::Code::kAlreadyExists ? "exists"
                     : s.IsInvalidArgument()                    ? "invalid"
                                                                : "unavailable";
  return JsonObject().Int("v", 1).Str("code", code).Str("message", s.ok() ? "" : s.message()).Str("json", json).Finish();
}

bool DecodeBackfillAnswer(std::string_view data, Status* s, std::string* json) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  std::string code, message;
  if (parser.parse(data.data(), data.size()).get(o) || !Version1(o) || !Text(o, "code", &code) ||
      !Text(o, "message", &message) || !Text(o, "json", json))
    return false;
  if (code == "ok") {
    *s = Status::OK();
  } else if (code == "exists") {
    *s = Status::AlreadyExists(message);
  } else if (code == "invalid") {
    *s = Status::InvalidArgument(message);
  } else {
    *s = Status::Unavailable(message);
  }
  return true;
}

}  // namespace dfm
