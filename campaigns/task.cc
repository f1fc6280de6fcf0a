#include "campaigns/task.h"

#include <simdjson.h>

#include <charconv>

#include "campaigns/names.h"
#include "util/json.h"

namespace dfm {

namespace {

constexpr std::string_view kCampaignKeyPrefix = "campaign:";  // sync/fact.h kCampaignSystem + ':'

constexpr std::pair<TaskState, std::string_view> kTaskStates[] = {
    {TaskState::kPending, "pending"},
    {TaskState::kInProgress, "in_progress"},
    {TaskState::kDone, "done"},
    {TaskState::kFailed, "failed"},
    {TaskState::kSkipped, "skipped"}};

bool Known(std::string_view type) {
  for (std::string_view t : {kTaskCreated, kTaskDeferred, kTaskClaimed, kTaskReleased, kTaskDone,
                             kTaskFailed, kTaskSkipped})
    if (t == type) return true;
  return false;
}

bool Str(simdjson::dom::object o, const char* key, bool required, std::string* out) {
  std::string_view s;
  auto v = o[key];
  if (v.error() == simdjson::NO_SUCH_FIELD) return !required;
  if (v.get(s) != simdjson::SUCCESS || (required && s.empty())) return false;
  *out = std::string(s);
  return true;
}

bool Int(simdjson::dom::object o, const char* key, int64_t* out) {
  return o[key].get(*out) == simdjson::SUCCESS && *out >= 0;
}

Status Refuse(const TaskEvent& e, const Task& t, const char* why) {
  return Status::InvalidArgument(std::string(e.type) + " of a task that is " +
                                 std::string(TaskStateName(t.state)) + ": " + why);
}

}  // namespace

std::string_view TaskStateName(TaskState s) { return NameIn(kTaskStates, s); }
bool ParseTaskState(std::string_view name, TaskState* out) {
  return ValueIn(kTaskStates, name, out);
}

TaskEvent TaskEventFor(const Task& t, std::string_view type) {
  TaskEvent e;
  e.type = std::string(type);
  e.campaign = t.campaign;
  e.contact = t.contact;
  e.step = t.step;
  return e;
}

std::string EncodeTaskEvent(const TaskEvent& e) {
  JsonObject o;
  o.Int("v", 1).Str("campaign", e.campaign).Str("contact", e.contact).Int("step", e.step);
  if (e.type == kTaskCreated) o.Int("due_us", e.due_us);
  if (e.type == kTaskDeferred) o.Int("until_us", e.until_us);
  if (e.type == kTaskClaimed) o.Int("lease_until_us", e.lease_until_us);
  if (!e.agent.empty()) o.Str("agent", e.agent);
  if (!e.agent.empty() || (e.type == kTaskSkipped && e.claim > 0)) o.Int("claim", e.claim);
  if (e.type == kTaskDone || (e.type == kTaskClaimed && !e.channel.empty()))
    o.Str("channel", e.channel);
  if (e.type == kTaskClaimed && !e.body.empty()) o.Str("body", e.body);
  if (e.type == kTaskClaimed && !e.subject.empty()) o.Str("subject", e.subject);
  if (e.type == kTaskClaimed && !e.unsubscribe.empty()) o.Str("unsubscribe", e.unsubscribe);
  if (!e.reason.empty()) o.Str("reason", e.reason);
  if (!e.detail.empty()) o.Str("detail", e.detail);
  return o.Finish();
}

bool DecodeTaskEvent(std::string_view type, std::string_view payload, TaskEvent* e) {
  if (!Known(type)) return false;
  // Kept: a parser made per call allocates its buffers each time (a
  // campaign's tick decodes every task row).
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object o;
  if (parser.parse(payload.data(), payload.size()).get(o) != simdjson::SUCCESS) return false;
  int64_t v = 0, step = 0;
  TaskEvent x;
  x.type = std::string(type);
  if (o["v"].get(v) != simdjson::SUCCESS || v != 1 || !Str(o, "campaign", true, &x.campaign) ||
      !Str(o, "contact", true, &x.contact) || !Int(o, "step", &step) || step > 1000)
    return false;
  x.step = static_cast<int>(step);
  const bool by_agent =
      type == kTaskClaimed || type == kTaskReleased || type == kTaskDone || type == kTaskFailed;
  const bool with_reason =
      type == kTaskDeferred || type == kTaskReleased || type == kTaskFailed || type == kTaskSkipped;
  if (!Str(o, "agent", by_agent, &x.agent) || !Str(o, "reason", with_reason, &x.reason) ||
      !Str(o, "detail", false, &x.detail))
    return false;
  if (type == kTaskCreated && !Int(o, "due_us", &x.due_us)) return false;
  if (type == kTaskDeferred && !Int(o, "until_us", &x.until_us)) return false;
  if (type == kTaskClaimed && !Int(o, "lease_until_us", &x.lease_until_us)) return false;
  if (type == kTaskDone && !Str(o, "channel", true, &x.channel)) return false;
  if (type == kTaskClaimed &&
      (!Str(o, "channel", false, &x.channel) || !Str(o, "body", false, &x.body) ||
       !Str(o, "subject", false, &x.subject) || !Str(o, "unsubscribe", false, &x.unsubscribe)))
    return false;
  int64_t claim = 0;
  const bool claimed =
      by_agent || (type == kTaskSkipped && o["claim"].error() == simdjson::SUCCESS);
  if (claimed && (!Int(o, "claim", &claim) || claim < 1 || claim > 1000000)) return false;
  if (type == kTaskSkipped && !x.agent.empty() && claim == 0)
    return false;  // a cancel's names both
  x.claim = static_cast<int>(claim);
  *e = std::move(x);
  return true;
}

EventDraft TaskEventDraft(const std::string& tenant, const TaskEvent& e) {
  EventDraft d;
  d.tenant = tenant;
  d.stream = "campaign-tasks:" + e.campaign;
  d.type = e.type;
  d.payload = EncodeTaskEvent(e);
  d.idempotency_system = "campaign";
  const int64_t n = e.type == kTaskDeferred ? e.until_us : e.type == kTaskSkipped ? 0 : e.claim;
  d.idempotency_key =
      e.campaign + "/" + std::to_string(e.step) + "/" + e.contact + "/" + e.type + "/" + std::to_string(n);
  if (e.type == kTaskDeferred && e.claim > 0) d.idempotency_key += "/" + std::to_string(e.claim);
  return d;
}

std::string CampaignMessageId(const std::string& campaign, int step, const std::string& contact) {
  return campaign + "/" + std::to_string(step) + "/" + contact;
}

std::string CampaignMessageKey(const std::string& campaign, int step, const std::string& contact) {
  return std::string(kCampaignKeyPrefix) + CampaignMessageId(campaign, step, contact);
}

bool ParseCampaignMessageKey(std::string_view key, std::string* campaign, int* step,
                             std::string* contact) {
  if (key.substr(0, kCampaignKeyPrefix.size()) != kCampaignKeyPrefix) return false;
  key.remove_prefix(kCampaignKeyPrefix.size());
  const size_t a = key.find('/');
  const size_t b = a == std::string_view::npos ? a : key.find('/', a + 1);
  if (a == 0 || b == std::string_view::npos || b == a + 1 || b + 1 >= key.size()) return false;
  int n = 0;
  const auto [end, ec] = std::from_chars(key.data() + a + 1, key.data() + b, n);
  if (ec != std::errc() || end != key.data() + b || n < 0 || n > 1000) return false;
  *campaign = std::string(key.substr(0, a));
  *step = n;
  *contact = std::string(key.substr(b + 1));
  return true;
}

namespace {
constexpr std::string_view kDraftSuffix = "/draft";
}  // namespace

std::string CampaignDraftId(const std::string& campaign, int step, const std::string& contact) {
  return CampaignMessageId(campaign, step, contact) + std::string(kDraftSuffix);
}

std::string CampaignDraftKey(const std::string& campaign, int step, const std::string& contact) {
  return CampaignMessageKey(campaign, step, contact) + std::string(kDraftSuffix);
}

bool ParseCampaignDraftKey(std::string_view key, std::string* campaign, int* step,
                           std::string* contact) {
  if (key.size() <= kDraftSuffix.size() ||
      key.substr(key.size() - kDraftSuffix.size()) != kDraftSuffix)
    return false;
  return ParseCampaignMessageKey(key.substr(0, key.size() - kDraftSuffix.size()), campaign, step,
                                 contact);
}

std::string EncodeDraft(const Draft& d) {
  JsonObject o;
  o.Int("v", 1).Bool("ok", d.ok);
  if (d.ok) {
    o.Str("text", d.text).Str("model", d.model).Str("prompt_version", d.prompt_version);
  } else {
    o.Str("reason", d.reason);
  }
  return o.Finish();
}

bool DecodeDraft(std::string_view row, Draft* d) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  int64_t v = 0;
  bool ok = false;
  if (parser.parse(row.data(), row.size()).get(o) || o["v"].get(v) || v != 1 || o["ok"].get(ok))
    return false;
  Draft x;
  x.ok = ok;
  auto str = [&o](const char* k, std::string* out) {
    std::string_view s;
    if (!o[k].get(s)) *out = std::string(s);
  };
  str("text", &x.text);
  str("model", &x.model);
  str("prompt_version", &x.prompt_version);
  str("reason", &x.reason);
  if (x.ok && x.text.empty()) return false;
  *d = std::move(x);
  return true;
}

std::string EncodeSendOutcome(const SendOutcome& o) {
  const char* kind = o.kind == SendOutcome::Kind::kSent      ? "sent"
                     : o.kind == SendOutcome::Kind::kRefused ? "refused"
                                                             : "failed";
  std::string row = kind;
  if (o.at_us != 0) row += "@" + std::to_string(o.at_us);
  return row + " " + o.detail;
}

bool DecodeSendOutcome(std::string_view row, SendOutcome* o) {
  const size_t sp = row.find(' ');
  if (sp == std::string_view::npos) return false;
  std::string_view kind = row.substr(0, sp);
  o->at_us = 0;
  if (const size_t at = kind.find('@'); at != std::string_view::npos) {
    const std::string_view n = kind.substr(at + 1);
    const auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), o->at_us);
    if (ec != std::errc() || end != n.data() + n.size()) return false;
    kind = kind.substr(0, at);
  }
  if (kind == "sent") o->kind = SendOutcome::Kind::kSent;
  else if (kind == "refused") o->kind = SendOutcome::Kind::kRefused;
  else if (kind == "failed") o->kind = SendOutcome::Kind::kFailed;
  else return false;
  o->detail = std::string(row.substr(sp + 1));
  return true;
}

Status ApplyTaskEvent(const TaskEvent& e, Task* t) {
  if (e.type == kTaskCreated) {
    if (!t->campaign.empty()) return Refuse(e, *t, "it exists");
    Task n;
    n.campaign = e.campaign;
    n.contact = e.contact;
    n.step = e.step;
    n.due_us = e.due_us;
    n.first_due_us = e.due_us;
    *t = std::move(n);
    return Status::OK();
  }
  if (t->campaign.empty()) return Status::InvalidArgument(e.type + " of a task never created");
  if (t->ended()) return Refuse(e, *t, "it has ended");
  // The agent holding it, answering its current claim.
  const bool holder = t->state == TaskState::kInProgress && t->agent == e.agent && e.claim == t->claims;
  if (e.type == kTaskDeferred) {
    if (t->state != TaskState::kPending) return Refuse(e, *t, "only a waiting task is deferred");
    t->due_us = e.until_us;
    t->reason = e.reason;
  } else if (e.type == kTaskClaimed) {
    if (t->state != TaskState::kPending) return Refuse(e, *t, "another agent holds it");
    if (e.claim != t->claims + 1) return Refuse(e, *t, "not its next claim");
    t->state = TaskState::kInProgress;
    t->agent = e.agent;
    t->lease_until_us = e.lease_until_us;
    t->claims++;
  } else if (e.type == kTaskReleased) {
    if (!holder) return Refuse(e, *t, "that agent does not hold it");
    t->state = TaskState::kPending;
    t->agent.clear();
    t->lease_until_us = 0;
    t->reason = e.reason;
  } else if (e.type == kTaskDone || e.type == kTaskFailed) {
    if (!holder) return Refuse(e, *t, "that agent does not hold it");
    t->state = e.type == kTaskDone ? TaskState::kDone : TaskState::kFailed;
    t->reason = e.reason;
    t->detail = e.detail;
  } else if (e.type == kTaskSkipped) {
    t->state = TaskState::kSkipped;
    t->agent.clear();
    t->reason = e.reason;
    t->detail = e.detail;
  } else {
    return Status::InvalidArgument("not a task event: " + e.type);
  }
  return Status::OK();
}

bool LeaseLapsed(const Task& t, int64_t now_us) {
  return t.state == TaskState::kInProgress && now_us >= t.lease_until_us;
}

bool TaskStuck(const Task& t, int64_t now_us) {
  if (t.state != TaskState::kInProgress) return false;
  // A call's claim holds while a person works the dialer: stuck only when
  // its lease lapsed.
  if (t.agent == "call") return LeaseLapsed(t, now_us);
  return LeaseLapsed(t, now_us) || (t.changed_us != 0 && now_us - t.changed_us >= kStuckAfterUs);
}

}  // namespace dfm
