#include "campaigns/campaign_view.h"

#include <simdjson.h>

#include <algorithm>

#include "util/clock.h"
#include "util/json.h"

namespace dfm {

namespace {

bool DecodeChange(simdjson::dom::object o, CampaignChange* c) {
  std::string_view id, action, state, by, reason;
  if (o["id"].get(id) || o["action"].get(action) || o["state"].get(state) ||
      o["at_us"].get(c->at_us) || o["by"].get(by) || !ParseCampaignAction(action, &c->action) ||
      !ParseCampaignState(state, &c->state))
    return false;
  c->id = std::string(id);
  c->by = std::string(by);
  if (o["reason"].get(reason) == simdjson::SUCCESS) c->reason = std::string(reason);
  return true;
}

}  // namespace

EventDraft CampaignCreatedDraft(const std::string& tenant, const CampaignSpec& spec) {
  EventDraft d;
  d.tenant = tenant;
  d.stream = "campaign:" + spec.id;
  d.type = std::string(kCampaignCreated);
  d.payload = JsonObject().Int("v", 1).Raw("spec", EncodeCampaignSpec(spec)).Finish();
  d.idempotency_system = "campaign";
  d.idempotency_key = spec.id + "/created";
  return d;
}

EventDraft CampaignChangedDraft(const std::string& tenant, const CampaignChange& c,
                                int changes_before) {
  EventDraft d;
  d.tenant = tenant;
  d.stream = "campaign:" + c.id;
  d.type = std::string(kCampaignChanged);
  JsonObject o;
  o.Int("v", 1)
      .Str("id", c.id)
      .Str("action", CampaignActionName(c.action))
      .Str("state", CampaignStateName(c.state))
      .Int("at_us", c.at_us)
      .Str("by", c.by);
  if (!c.reason.empty()) o.Str("reason", c.reason);
  d.payload = o.Finish();
  d.idempotency_system = "campaign";
  d.idempotency_key = c.id + "/change/" + std::to_string(changes_before) + "/" +
                      std::string(CampaignActionName(c.action));
  return d;
}

Status PlanCampaignChange(const CampaignView& v, CampaignAction action, int64_t now_us,
                          const std::string& by, const std::string& reason, CampaignChange* out) {
  CampaignChange c;
  c.id = v.spec.id;
  c.action = action;
  c.at_us = now_us;
  c.by = by;
  c.reason = reason;
  Status s = NextState(v.state, action, v.spec.start_at_us, now_us, &c.state);
  if (s.ok()) *out = std::move(c);
  return s;
}

Status ApplyCampaignEvent(std::string_view type, std::string_view payload, int64_t recorded_at_us,
                          CampaignView* v) {
  if (type != kCampaignCreated && type != kCampaignChanged) return Status::OK();
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  int64_t version = 0;
  if (parser.parse(payload.data(), payload.size()).get(o) || o["v"].get(version) || version != 1)
    return Status::InvalidArgument(std::string(type) + ": a payload that does not read");
  if (type == kCampaignCreated) {
    if (!v->spec.id.empty())
      return Status::InvalidArgument("campaign.created of a campaign that exists");
    simdjson::dom::element spec;
    if (o["spec"].get(spec)) return Status::InvalidArgument("campaign.created without its spec");
    std::vector<ValidationDetail> problems;
    CampaignView made;
    DecodeCampaignSpec(simdjson::minify(spec), &made.spec, &problems);
    if (!problems.empty())
      return Status::InvalidArgument("campaign.created with a spec that does not read");
    made.created_us = recorded_at_us;
    *v = std::move(made);
    return Status::OK();
  }
  CampaignChange c;
  if (!DecodeChange(o, &c))
    return Status::InvalidArgument("campaign.changed: a payload that does not read");
  if (v->spec.id.empty() || c.id != v->spec.id)
    return Status::InvalidArgument("a change of a campaign never created");
  CampaignState expected;
  Status s = NextState(v->state, c.action, v->spec.start_at_us, c.at_us, &expected);
  if (!s.ok()) return s;
  if (expected != c.state)
    return Status::InvalidArgument(
        "campaign.changed names " + std::string(CampaignStateName(c.state)) +
        ", the lifecycle gives " + std::string(CampaignStateName(expected)));
  const bool was_paused = v->state == CampaignState::kPaused;
  v->state = c.state;
  if (!was_paused && c.state == CampaignState::kPaused) v->pauses.emplace_back(c.at_us, 0);
  if (was_paused && c.state != CampaignState::kPaused && !v->pauses.empty())
    v->pauses.back().second = c.at_us;
  if (c.state == CampaignState::kRunning && v->started_us == 0) v->started_us = c.at_us;
  if (c.action == CampaignAction::kResetTasks) v->reset_us = c.at_us;
  v->changed_us = c.at_us;
  v->changed_by = c.by;
  v->reason = c.reason;
  v->changes++;
  return Status::OK();
}

int64_t PausedBetween(const CampaignView& v, int64_t from_us, int64_t to_us) {
  int64_t total = 0;
  for (const auto& [paused, resumed] : v.pauses) {
    const int64_t start = std::max(paused, from_us);
    const int64_t end = std::min(resumed == 0 ? to_us : resumed, to_us);
    if (end > start) total += end - start;
  }
  return total;
}

std::string CampaignViewJson(const CampaignView& v) {
  JsonObject o;
  o.Raw("spec", EncodeCampaignSpec(v.spec))
      .Str("state", CampaignStateName(v.state))
      .Str("created_at", FormatIso8601Millis(v.created_us));
  if (v.started_us) o.Str("started_at", FormatIso8601Millis(v.started_us));
  if (v.changed_us)
    o.Str("changed_at", FormatIso8601Millis(v.changed_us)).Str("changed_by", v.changed_by);
  if (!v.reason.empty()) o.Str("reason", v.reason);
  return o.Finish();
}

}  // namespace dfm
