// The campaign_tasks projection (CampaignTasksProjection,
// campaign_projections.h): its fold and its reads.
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "events/sealing.h"
#include "projections/campaign_projections.h"
#include "projections/campaign_rows.h"
#include "util/json.h"

namespace dfm {

using campaign_rows::DatedKey;
using campaign_rows::ReadRows;
using campaign_rows::ScanDated;

namespace {

std::string CountKey(const std::string& tenant, const std::string& campaign,
                     std::string_view state) {
  return "n/" + tenant + "/" + campaign + "/" + std::string(state);
}

// The count of a campaign's tasks skipped for `reason`.
std::string SkipKey(const std::string& tenant, const std::string& campaign,
                    const std::string& reason) {
  return "r/" + tenant + "/" + campaign + "/" + reason;
}

std::string ErasedKey(const std::string& tenant, std::string_view contact) {
  return "e/" + tenant + "/" + std::string(contact);
}

// The contact's one i/ row: when the person last sent a text.
std::string LastReplyKey(const std::string& tenant, const std::string& contact) {
  return "i/" + tenant + "/" + contact + "/last";
}

}  // namespace

std::string CampaignTaskKey(const std::string& tenant, const std::string& campaign, int step,
                            const std::string& contact) {
  char s[8];
  std::snprintf(s, sizeof s, "%03d", step);
  return "t/" + tenant + "/" + campaign + "/" + s + "/" + contact;
}

namespace {

// The key of a task's row of `kind` ('t' the task, 'o' its send's outcome,
// 'a' its draft): the same path under another letter.
std::string TaskRowKey(char kind, const std::string& tenant, const std::string& campaign, int step,
                       const std::string& contact) {
  std::string key = CampaignTaskKey(tenant, campaign, step, contact);
  key[0] = kind;
  return key;
}

}  // namespace

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
      .Int("changed_us", t.changed_us)
      .Int("first_due_us", t.first_due_us)
      .Finish();
}

bool DecodeTaskRow(std::string_view row, Task* t) {
  // Kept: a parser made per call allocates its buffers each time (a
  // campaign's tick decodes every task row).
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object o;
  if (parser.parse(row.data(), row.size()).get(o) != simdjson::SUCCESS) return false;
  int64_t v = 0, step = 0, claims = 0;
  std::string_view campaign, contact, state, agent, reason, detail;
  Task x;
  if (o["v"].get(v) || v != 1 || o["campaign"].get(campaign) || o["contact"].get(contact) ||
      o["step"].get(step) || o["due_us"].get(x.due_us) || o["state"].get(state) ||
      o["agent"].get(agent) || o["lease_until_us"].get(x.lease_until_us) ||
      o["claims"].get(claims) || o["reason"].get(reason) || o["detail"].get(detail) ||
      o["changed_us"].get(x.changed_us))
    return false;
  if (!ParseTaskState(state, &x.state)) return false;
  if (o["first_due_us"].get(x.first_due_us)) x.first_due_us = 0;  // a row of an earlier build
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

bool CampaignTasksProjection::Uses(std::string_view type) const {
  return type.rfind("task.", 0) == 0 || type == kContactErasedType || type == ev::kPushSucceeded ||
         type == ev::kPushDeadLettered || type == ev::kMessageRefused ||
         type == ev::kMessageLogged || type == ev::kMessageStatus;
}

namespace {

// How a call ended, when its status says it did ("" while it goes on).
std::string CallEnded(const DomainEvent& d) {
  auto field = [&d](const char* k) {
    auto it = d.fields.find(k);
    return it == d.fields.end() ? std::string() : it->second;
  };
  const std::string status = d.type == ev::kMessageStatus ? d.outcome : field("status");
  const std::string disposition = field("disposition");
  if (!disposition.empty()) return disposition;
  for (const char* going : {"", "ringing", "greeting", "queued", "ring-all", "transferring",
                            "in-progress", "whispering", "parked"})
    if (status == going) return "";
  return status;
}

// The answer to the draft request of task (campaign, step, contact): its
// a/ row; the first answer stands.
void FoldDraftAnswer(const Event& e, const DomainEvent& d, const std::string& campaign, int step,
                     const std::string& contact, ProjectionState* st) {
  auto field = [&d](const char* k) {
    auto it = d.fields.find(k);
    return it == d.fields.end() ? std::string() : it->second;
  };
  Draft draft;
  if (d.type == ev::kPushSucceeded && d.op == "send") {
    draft.text = field("answer.text");
    draft.model = field("answer.model");
    draft.prompt_version = field("answer.prompt_version");
    draft.ok = !draft.text.empty();
    if (!draft.ok) draft.reason = "the model returned no text";
  } else if ((d.type == ev::kPushDeadLettered && d.op == "send") || d.type == ev::kMessageRefused) {
    draft.reason = d.reason.empty() ? d.detail : d.reason;
    if (draft.reason.empty()) draft.reason = "the request failed";
  } else {
    return;
  }
  const std::string key = TaskRowKey('a', e.tenant, campaign, step, contact);
  if (!st->Peek(key)) st->Put(key, EncodeDraft(draft));
}

// Whether an o/ row says the vendor took the send.
bool OutcomeIsSent(std::string_view row) {
  SendOutcome o;
  return DecodeSendOutcome(row, &o) && o.kind == SendOutcome::Kind::kSent;
}

std::string HeldKey(const std::string& tenant, const std::string& contact,
                    const std::string& campaign, int step) {
  char digits[8];
  std::snprintf(digits, sizeof digits, "%03d", step);
  return "h/" + tenant + "/" + contact + "/" + campaign + "/" + digits;
}

// A text or email the vendor took (its send's first push.succeeded, `d`)
// counts against the person's caps from then, whatever its task becomes:
// its s/ row, dated as its o/ row, in place of its claim's h/ row. A task
// skipped while its send was in flight (a cancel, a reply, a payment: the
// withdrawal came too late) ends without task.done, and its text went all
// the same. A task.done later puts the same s/ row again.
void CountSent(const Event& e, const DomainEvent& d, const std::string& campaign, int step,
               const std::string& contact, ProjectionState* st) {
  if (d.channel != "sms" && d.channel != "email") return;
  st->Put(DatedKey('s', e.tenant, contact, e.recorded_at_us, campaign), d.channel);
  st->Erase(HeldKey(e.tenant, contact, campaign, step));
}

// A contact's event about a campaign's send, a reply, or a call that
// ended: its o/, i/ or d/ row (a/ for a draft's answer; s/ for a text or
// email that went, CountSent).
void FoldContactEvent(const Event& e, const DomainEvent& d, ProjectionState* st) {
  if (d.contact_id.empty()) return;
  std::string campaign, contact;
  int step = 0;
  if (ParseCampaignDraftKey(d.message_key, &campaign, &step, &contact)) {
    FoldDraftAnswer(e, d, campaign, step, contact, st);
    return;
  }
  const bool ours = ParseCampaignMessageKey(d.message_key, &campaign, &step, &contact);
  if ((d.type == ev::kMessageLogged || d.type == ev::kMessageStatus) && d.channel == "call") {
    const std::string how = ours ? "" : CallEnded(d);  // not the dialer request itself
    if (!how.empty())
      st->Put(DatedKey('d', e.tenant, d.contact_id, e.recorded_at_us, d.message_key), how);
    return;
  }
  if (d.type == ev::kMessageStatus) return;
  if (d.type == ev::kMessageLogged) {
    auto dir = d.fields.find("direction");
    if (dir != d.fields.end() && dir->second == "inbound") {
      char when[24];
      std::snprintf(when, sizeof when, "%020lld", static_cast<long long>(e.recorded_at_us));
      const std::string key = LastReplyKey(e.tenant, d.contact_id);
      std::optional<std::string_view> last = st->Peek(key);
      if (!last || *last < when) st->Put(key, when);  // 20 digits each: as numbers
    }
    return;
  }
  if (!ours) return;
  SendOutcome o;
  if (d.type == ev::kPushSucceeded && d.op == "send") {
    o = {SendOutcome::Kind::kSent, d.system, e.recorded_at_us};
  } else if (d.type == ev::kPushDeadLettered && d.op == "send") {
    o = {SendOutcome::Kind::kFailed, d.reason};
  } else if (d.type == ev::kMessageRefused) {
    // The consent gate's refusal is the person's choice; nobody able to
    // deliver it is a failure of the send.
    o = {d.rule == kNotDeliverableRule ? SendOutcome::Kind::kFailed : SendOutcome::Kind::kRefused,
         d.reason, e.recorded_at_us};
  } else {
    return;
  }
  const std::string key = TaskRowKey('o', e.tenant, campaign, step, contact);
  std::optional<std::string_view> had = st->Peek(key);
  if (had && !(o.kind == SendOutcome::Kind::kSent && !OutcomeIsSent(*had))) return;
  st->Put(key, EncodeSendOutcome(o));
  if (o.kind == SendOutcome::Kind::kSent) CountSent(e, d, campaign, step, contact, st);
}

}  // namespace

namespace {

// When a done task's text or email went: when the vendor took it (its
// outcome row, folded before the task.done that follows it), exactly the
// time CountSent dated its s/ row by (a wall clock stepped back before
// task.done must not date a second row), else when the task ended (rows
// written before sends were dated).
int64_t SentAt(const Event& e, const TaskEvent& te, ProjectionState* st) {
  SendOutcome o;
  std::optional<std::string_view> row =
      st->Peek(TaskRowKey('o', e.tenant, te.campaign, te.step, te.contact));
  if (row && DecodeSendOutcome(*row, &o) && o.kind == SendOutcome::Kind::kSent && o.at_us != 0)
    return o.at_us;
  return e.recorded_at_us;
}

// Whether the vendor took the text or email `te`'s task asked for.
bool SentAlready(const std::string& tenant, const TaskEvent& te, ProjectionState* st) {
  std::optional<std::string_view> row =
      st->Peek(TaskRowKey('o', tenant, te.campaign, te.step, te.contact));
  return row && OutcomeIsSent(*row);
}

}  // namespace

void CampaignTasksProjection::FoldDecoded(const Event& e, const DomainEvent* d,
                                          ProjectionState* st) {
  if (d) {
    FoldContactEvent(e, *d, st);
    return;
  }
  if (const std::string_view erased = ErasedContactOf(e); !erased.empty()) {
    st->Put(ErasedKey(e.tenant, erased), "");  // after ForgetContact (Projection::Apply)
    return;
  }
  TaskEvent te;
  if (!DecodeTaskEvent(e.type, e.payload, &te)) return;  // also: sealed, its contact erased
  const std::string key = CampaignTaskKey(e.tenant, te.campaign, te.step, te.contact);
  Task t;
  std::optional<std::string_view> row = st->Peek(key);
  if (row && !DecodeTaskRow(*row, &t)) return;
  const Task before = t;
  if (!ApplyTaskEvent(te, &t).ok()) return;
  t.changed_us = e.recorded_at_us;
  // The task's rows are its contact's (an owner-index row each): an
  // erasure forgets them, as a rebuild that cannot open the task's events
  // would never have put them.
  st->SetOwner(te.contact, OwnKinds(), e.tenant, TenantOwnKinds());
  st->Put(key, EncodeTaskRow(t));
  if (te.type != kTaskCreated)
    st->Add(CountKey(e.tenant, te.campaign, TaskStateName(before.state)), -1);
  st->Add(CountKey(e.tenant, te.campaign, TaskStateName(t.state)), 1);
  if (te.type == kTaskSkipped) st->Add(SkipKey(e.tenant, te.campaign, te.reason), 1);
  if (te.type == kTaskDone && (te.channel == "sms" || te.channel == "email"))
    st->Put(DatedKey('s', e.tenant, te.contact, SentAt(e, te, st), te.campaign), te.channel);
  // A text or email on its way counts against the person's caps from its
  // claim, across campaigns, as it will once sent.
  const std::string held = HeldKey(e.tenant, te.contact, te.campaign, te.step);
  // Given back (a lease lapsed), it may still go: counted until it ends.
  // Claimed again after the vendor took its text (a lease that lapsed):
  // counted by its s/ row already.
  if (te.type == kTaskClaimed && (te.channel == "sms" || te.channel == "email") &&
      !SentAlready(e.tenant, te, st))
    st->Put(held, std::to_string(e.recorded_at_us));
  else if (t.ended() && !before.ended() && before.claims > 0)
    st->Erase(held);
  st->SetOwner({});
}

void CampaignTasksProjection::Forget(std::string_view key, std::string_view value,
                                     ProjectionState* st) {
  Task t;
  if (key.substr(0, 2) != "t/" || !DecodeTaskRow(value, &t)) return;
  const std::string_view rest = key.substr(2);
  const std::string tenant(rest.substr(0, rest.find('/')));
  st->Add(CountKey(tenant, t.campaign, TaskStateName(t.state)), -1);
  if (t.state == TaskState::kSkipped) st->Add(SkipKey(tenant, t.campaign, t.reason), -1);
}

Status ReadErasedContacts(const EventLog& log, const std::string& tenant,
                          std::set<std::string>* out) {
  const std::string prefix = "e/" + tenant + "/";
  return log.ScanConsumerState(CampaignTasksProjection::kName, prefix,
                               [&](std::string_view key, std::string_view) {
                                 out->emplace(key.substr(prefix.size()));
                                 return true;
                               });
}

Status ReadCampaignTask(const EventLog& log, const std::string& tenant, const std::string& campaign,
                        int step, const std::string& contact, Task* t) {
  std::string row;
  Status s = log.GetConsumerState(CampaignTasksProjection::kName,
                                  CampaignTaskKey(tenant, campaign, step, contact), &row);
  if (!s.ok()) return s;
  if (!DecodeTaskRow(row, t)) return Status::Corruption("a campaign task row that does not read");
  return Status::OK();
}

Status ReadCampaignTasks(const EventLog& log, const std::string& tenant,
                         const std::string& campaign, std::vector<Task>* out) {
  return ReadRows(log, CampaignTasksProjection::kName, "t/" + tenant + "/" + campaign + "/",
                  &DecodeTaskRow, out);
}

Status ReadCampaignCounts(const EventLog& log, const std::string& tenant,
                          const std::string& campaign, std::map<std::string, int64_t>* by_state,
                          std::map<std::string, int64_t>* skipped_by) {
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

namespace {

// A task's row of `kind`, decoded by `decode`; NotFound while there is none.
template <typename T>
Status ReadTaskRow(const EventLog& log, char kind, const std::string& tenant,
                   const std::string& campaign, int step, const std::string& contact,
                   bool (*decode)(std::string_view, T*), const char* what, T* out) {
  std::string row;
  Status s = log.GetConsumerState(CampaignTasksProjection::kName,
                                  TaskRowKey(kind, tenant, campaign, step, contact), &row);
  if (!s.ok()) return s;
  return decode(row, out) ? Status::OK()
                          : Status::Corruption(std::string(what) + " that does not read");
}

}  // namespace

Status ReadSendOutcome(const EventLog& log, const std::string& tenant, const std::string& campaign,
                       int step, const std::string& contact, SendOutcome* out) {
  return ReadTaskRow(log, 'o', tenant, campaign, step, contact, &DecodeSendOutcome,
                     "a send outcome row", out);
}

Status ReadDraft(const EventLog& log, const std::string& tenant, const std::string& campaign,
                 int step, const std::string& contact, Draft* out) {
  return ReadTaskRow(log, 'a', tenant, campaign, step, contact, &DecodeDraft, "a draft row", out);
}

Status ReadCallEndedSince(const EventLog& log, const std::string& tenant,
                          const std::string& contact, int64_t since_us, bool* ended,
                          std::string* how) {
  *ended = false;
  const std::string prefix = "d/" + tenant + "/" + contact + "/";
  return log.ScanConsumerState(
      CampaignTasksProjection::kName, prefix, [&](std::string_view key, std::string_view value) {
        int64_t when = 0;
        std::from_chars(key.data() + prefix.size(),
                        key.data() + std::min(key.size(), prefix.size() + 20), when);
        if (when < since_us) return true;
        *ended = true;
        *how = std::string(value);
        return false;
      });
}

Status ReadRepliedSince(const EventLog& log, const std::string& tenant, const std::string& contact,
                        int64_t since_us, bool* replied) {
  *replied = false;
  std::string row;
  Status s =
      log.GetConsumerState(CampaignTasksProjection::kName, LastReplyKey(tenant, contact), &row);
  if (s.code() == Status::Code::kNotFound) return Status::OK();  // never
  if (!s.ok()) return s;
  int64_t last = 0;
  auto [end, ec] = std::from_chars(row.data(), row.data() + row.size(), last);
  if (ec != std::errc() || end != row.data() + row.size())
    return Status::Corruption("a last reply row that does not read");
  *replied = last >= since_us;
  return Status::OK();
}

Status ReadRecentSends(const EventLog& log, const std::string& tenant, const std::string& contact,
                       int64_t since_us, const std::string& campaign, int step,
                       std::vector<int64_t>* at_us) {
  const std::string prefix = "h/" + tenant + "/" + contact + "/";
  const std::string own = HeldKey(tenant, contact, campaign, step);
  Status s = ScanDated(log, CampaignTasksProjection::kName, 's', tenant, contact, since_us,
                       [at_us](int64_t when) {
                         at_us->push_back(when);
                         return true;
                       });
  if (!s.ok()) return s;
  s = log.ScanConsumerState(
      CampaignTasksProjection::kName, prefix, [&](std::string_view key, std::string_view claimed) {
        const int64_t when = std::strtoll(std::string(claimed).c_str(), nullptr, 10);
        if (when >= since_us && key != own) at_us->push_back(when);
        return true;
      });
  if (s.ok()) std::sort(at_us->begin(), at_us->end());
  return s;
}

}  // namespace dfm
