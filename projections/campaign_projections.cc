#include "projections/campaign_tasks.h"

#include <simdjson.h>

#include <charconv>
#include <cstdio>

#include "util/json.h"

namespace dfm {

namespace {

std::string CountKey(const std::string& tenant, const std::string& campaign, std::string_view state) {
  return "n/" + tenant + "/" + campaign + "/" + std::string(state);
}

std::string SendKey(const std::string& tenant, const std::string& contact, int64_t at_us, const std::string& campaign) {
  char when[24];
  std::snprintf(when, sizeof when, "%020lld", static_cast<long long>(at_us));
  return "s/" + tenant + "/" + contact + "/" + when + "/" + campaign;
}

}  // namespace

std::string CampaignTaskKey(const std::string& tenant, const std::string& campaign, int step,
                            const std::string& contact) {
  char s[8];
  std::snprintf(s, sizeof s, "%03d", step);
  return "t/" + tenant + "/" + campaign + "/" + s + "/" + contact;
}

std::string EncodeTaskRow(const Task& t) {
  return JsonObject()
      .Int("v", 1)
      .Str("campaign", t.campaign)
      .Str("contact", t.contact)
      .Int("step", t.step)
      .Int("due_us", t.due_us)
      .Str("state", TaskStateName(t.state))
      .Str("agent", t.agent)
      .Int("lease_until_us", t.lease_until_us)
      .Int("claims", t.claims)
      .Str("reason", t.reason)
      .Str("detail", t.detail)
      .Finish();
}

bool DecodeTaskRow(std::string_view row, Task* t) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  if (parser.parse(row.data(), row.size()).get(o) != simdjson::SUCCESS) return false;
  int64_t v = 0, step = 0, claims = 0;
  std::string_view campaign, contact, state, agent, reason, detail;
  Task x;
  if (o["v"].get(v) || v != 1 || o["campaign"].get(campaign) || o["contact"].get(contact) || o["step"].get(step) ||
      o["due_us"].get(x.due_us) || o["state"].get(state) || o["agent"].get(agent) ||
      o["lease_until_us"].get(x.lease_until_us) || o["claims"].get(claims) || o["reason"].get(reason) ||
      o["detail"].get(detail))
    return false;
  if (!ParseTaskState(state, &x.state)) return false;
  x.campaign = std::string(campaign);
  x.contact = std::string(contact);
  x.step = static_cast<int>(step);
  x.claims = static_cast<int>(claims);
  x.agent = std::string(agent);
  x.reason = std::string(reason);
  x.detail = std::string(detail);
  *t = std::move(x);
  return true;
}

bool CampaignTasksProjection::Uses(std::string_view type) const { return type.rfind("task.", 0) == 0; }

void CampaignTasksProjection::FoldDecoded(const Event& e, const DomainEvent*, ProjectionState* st) {
  TaskEvent te;
  if (!DecodeTaskEvent(e.type, e.payload, &te)) return;
  const std::string key = CampaignTaskKey(e.tenant, te.campaign, te.step, te.contact);
  Task t;
  std::optional<std::string_view> row = st->Peek(key);
  if (row && !DecodeTaskRow(*row, &t)) return;
  const Task before = t;
  if (!ApplyTaskEvent(te, &t).ok()) return;
  st->Put(key, EncodeTaskRow(t));
  if (te.type != kTaskCreated) st->Add(CountKey(e.tenant, te.campaign, TaskStateName(before.state)), -1);
  st->Add(CountKey(e.tenant, te.campaign, TaskStateName(t.state)), 1);
  if (te.type == kTaskSkipped) st->Add("r/" + e.tenant + "/" + te.campaign + "/" + te.reason, 1);
  if (te.type == kTaskDone && (te.channel == "sms" || te.channel == "email"))
    st->Put(SendKey(e.tenant, te.contact, e.recorded_at_us, te.campaign), te.channel);
}

Status ReadCampaignTask(const EventLog& log, const std::string& tenant, const std::string& campaign, int step,
                        const std::string& contact, Task* t) {
  std::string row;
  Status s = log.GetConsumerState(CampaignTasksProjection::kName, CampaignTaskKey(tenant, campaign, step, contact), &row);
  if (!s.ok()) return s;
  if (!DecodeTaskRow(row, t)) return Status::Corruption("a campaign task row that does not read");
  return Status::OK();
}

Status ReadCampaignCounts(const EventLog& log, const std::string& tenant, const std::string& campaign,
                          std::map<std::string, int64_t>* by_state, std::map<std::string, int64_t>* skipped_by) {
  auto scan = [&](const std::string& prefix, std::map<std::string, int64_t>* out) {
    return log.ScanConsumerState(CampaignTasksProjection::kName, prefix,
                                 [&](std::string_view key, std::string_view value) {
                                   int64_t n = 0;
                                   std::from_chars(value.data(), value.data() + value.size(), n);
                                   (*out)[std::string(key.substr(prefix.size()))] = n;
                                   return true;
                                 });
  };
  Status s = scan("n/" + tenant + "/" + campaign + "/", by_state);
  return s.ok() ? scan("r/" + tenant + "/" + campaign + "/", skipped_by) : s;
}

Status ReadRecentSends(const EventLog& log, const std::string& tenant, const std::string& contact, int64_t since_us,
                       std::vector<int64_t>* at_us) {
  const std::string prefix = "s/" + tenant + "/" + contact + "/";
  return log.ScanConsumerState(CampaignTasksProjection::kName, prefix, [&](std::string_view key, std::string_view) {
    int64_t when = 0;
    std::from_chars(key.data() + prefix.size(), key.data() + std::min(key.size(), prefix.size() + 20), when);
    if (when >= since_us) at_us->push_back(when);
    return true;
  });
}

}  // namespace dfm
