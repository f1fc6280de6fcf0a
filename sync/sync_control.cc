#include "sync/sync_control.h"

#include <simdjson.h>

#include <algorithm>

#include "util/clock.h"
#include "util/json.h"

namespace dfm {

namespace {

std::string Text(simdjson::dom::object& o, const char* key) {
  std::string_view v;
  return o[key].get(v) == simdjson::SUCCESS ? std::string(v) : std::string();
}

// A scope's part: absent or empty means every one.
std::string Part(simdjson::dom::object& o, const char* key) {
  std::string v = Text(o, key);
  return v.empty() ? std::string(kEverything) : v;
}

bool CoversPart(const std::string& scope, const std::string& value) {
  return scope == kEverything || scope == value;
}

// The event of a pause (`resume` false) or a resume. Not idempotent:
// every pause and resume is an act of its own.
EventDraft Draft(bool resume, const SyncControlRequest& r, const std::string& by, const std::string& request_id,
                 int64_t at_us) {
  JsonObject o;
  o.Str("tenant", r.scope.tenant).Str("system", r.scope.system);
  if (resume) {
    o.Int("concurrency", r.concurrency);
  } else {
    o.Str("reason", r.reason);
  }
  o.Int("at_us", at_us).Str("by", by).Str("request_id", request_id);
  EventDraft d;
  d.tenant = r.scope.tenant == kEverything ? std::string("default") : r.scope.tenant;
  d.stream = std::string(kSyncControlStream);
  d.type = std::string(resume ? kSyncResumed : kSyncPaused);
  d.payload = o.Finish();
  return d;
}

}  // namespace

bool SyncScope::Covers(const std::string& t, const std::string& s) const {
  return CoversPart(tenant, t) && CoversPart(system, s);
}

bool SyncScope::Within(const SyncScope& outer) const {
  return CoversPart(outer.tenant, tenant) && CoversPart(outer.system, system);
}

Status DecodeSyncControlRequest(std::string_view body, bool resume, SyncControlRequest* out) {
  const std::string shape = resume ? "{\"tenant\"?, \"system\"?, \"concurrency\"?: 1-1000}"
                                   : "{\"tenant\"?, \"system\"?, \"reason\"?: at most 200 characters}";
  *out = SyncControlRequest{};
  if (body.empty()) return Status::OK();  // everything
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  if (parser.parse(body.data(), body.size()).get(o) != simdjson::SUCCESS)
    return Status::InvalidArgument("expected " + shape);
  for (const char* key : {"tenant", "system", "reason"}) {
    auto f = o[key];
    if (f.error() != simdjson::NO_SUCH_FIELD && !f.is_string())
      return Status::InvalidArgument(std::string("\"") + key + "\" is text; expected " + shape);
  }
  out->scope.tenant = Part(o, "tenant");
  out->scope.system = Part(o, "system");
  out->reason = Text(o, "reason");
  if (out->reason.size() > 200) return Status::InvalidArgument("\"reason\" is at most 200 characters");
  if (o["concurrency"].error() != simdjson::NO_SUCH_FIELD) {
    int64_t n = 0;
    if (!resume || o["concurrency"].get(n) != simdjson::SUCCESS || n < 1 || n > 1000)
      return Status::InvalidArgument("expected " + shape);
    out->concurrency = static_cast<int>(n);
  }
  return Status::OK();
}

EventDraft SyncPausedDraft(const SyncControlRequest& r, const std::string& by, const std::string& request_id,
                           int64_t at_us) {
  return Draft(false, r, by, request_id, at_us);
}

EventDraft SyncResumedDraft(const SyncControlRequest& r, const std::string& by, const std::string& request_id,
                            int64_t at_us) {
  return Draft(true, r, by, request_id, at_us);
}

bool SyncControl::Apply(const Event& e) {
  const bool pause = e.type == kSyncPaused;
  if (!pause && e.type != kSyncResumed) return true;
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  if (parser.parse(e.payload.data(), e.payload.size()).get(o) != simdjson::SUCCESS) return false;
  SyncScope scope{Part(o, "tenant"), Part(o, "system")};
  int64_t at_us = 0;
  if (o["at_us"].get(at_us) != simdjson::SUCCESS || at_us <= 0) at_us = e.recorded_at_us;
  std::lock_guard<std::mutex> lk(mu_);
  if (pause) {
    // A scope already paused keeps its first pause: "since" is when it stopped.
    for (const auto& p : pauses_)
      if (p.scope == scope) return true;
    pauses_.push_back(SyncPause{scope, at_us, Text(o, "by"), Text(o, "reason")});
    return true;
  }
  int64_t concurrency = 0;
  if (o["concurrency"].get(concurrency) != simdjson::SUCCESS) concurrency = 0;
  auto inside = [&scope](const auto& x) { return x.scope.Within(scope); };
  pauses_.erase(std::remove_if(pauses_.begin(), pauses_.end(), inside), pauses_.end());
  limits_.erase(std::remove_if(limits_.begin(), limits_.end(), inside), limits_.end());
  if (concurrency > 0)
    limits_.push_back(SyncLimit{scope, static_cast<int>(concurrency), at_us, Text(o, "by")});
  return true;
}

void SyncControl::Fold(std::vector<Event> events) {
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return a.seq < b.seq; });
  for (const auto& e : events) Apply(e);
}

std::optional<SyncPause> SyncControl::PausedBy(const std::string& tenant, const std::string& system) const {
  std::lock_guard<std::mutex> lk(mu_);
  const SyncPause* oldest = nullptr;
  for (const auto& p : pauses_)
    if (p.scope.Covers(tenant, system) && (!oldest || p.since_us < oldest->since_us)) oldest = &p;
  if (!oldest) return std::nullopt;
  return *oldest;
}

int SyncControl::Limit(const std::string& tenant, const std::string& system) const {
  std::lock_guard<std::mutex> lk(mu_);
  int lowest = 0;
  for (const auto& l : limits_)
    if (l.scope.Covers(tenant, system) && (lowest == 0 || l.concurrency < lowest)) lowest = l.concurrency;
  return lowest;
}

std::vector<SyncPause> SyncControl::Pauses() const {
  std::lock_guard<std::mutex> lk(mu_);
  return pauses_;
}

std::vector<SyncLimit> SyncControl::Limits() const {
  std::lock_guard<std::mutex> lk(mu_);
  return limits_;
}

std::string SyncControl::Json(std::string_view tenant) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto shown = [tenant](const SyncScope& s) {
    return tenant == kEverything || s.tenant == kEverything || s.tenant == tenant;
  };
  JsonArray pauses, limits;
  bool paused = false;
  for (const auto& p : pauses_) {
    if (!shown(p.scope)) continue;
    paused = true;
    pauses.Raw(JsonObject()
                   .Str("tenant", p.scope.tenant)
                   .Str("system", p.scope.system)
                   .Str("since", FormatIso8601Millis(p.since_us))
                   .Str("by", p.by)
                   .Str("reason", p.reason)
                   .Finish());
  }
  for (const auto& l : limits_) {
    if (!shown(l.scope)) continue;
    limits.Raw(JsonObject()
                   .Str("tenant", l.scope.tenant)
                   .Str("system", l.scope.system)
                   .Int("concurrency", l.concurrency)
                   .Str("since", FormatIso8601Millis(l.since_us))
                   .Str("by", l.by)
                   .Finish());
  }
  return JsonObject()
      .Bool("paused", paused)
      .Raw("pauses", pauses.Finish())
      .Raw("limits", limits.Finish())
      .Finish();
}

}  // namespace dfm
