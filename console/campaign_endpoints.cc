// The campaign API (docs/http-api.md, "Campaigns"; campaigns/README.md):
// customers, their payments, campaigns and their lifecycle.
//
// Writes are planned over the tenant's log (here, or in cluster mode on the
// partition's node: PlanWrite) from the entity's own stream, then appended
// with their admin.action like every admin write; in cluster mode the
// answer waits until the partition holds the event (AppendThenWaitStored),
// so a request right after another plans from it. A change is appended
// once per position in the campaign's life and action (its idempotency
// key): two pauses at once append one. A customer or a campaign is read
// from its own stream; the listing and task counts from the projections,
// a moment behind the log.
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "campaigns/audience.h"
#include "campaigns/check.h"
#include "campaigns/request_fields.h"
#include "config/config.h"
#include "console/console_internal.h"
#include "console/remote_read.h"
#include "projections/audience_index.h"
#include "projections/campaign_projections.h"
#include "sync/contact_model.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/logging.h"

namespace dfm {

namespace {

// What a plan of this file reads from its body (PlanWrite carries one
// string): "<id>\n<action>\n<who>\n" then the request's body.
struct Envelope {
  std::string id, action, by, body;
};
std::string Wrap(const Envelope& e) { return e.id + "\n" + e.action + "\n" + e.by + "\n" + e.body; }
Envelope Unwrap(const std::string& s) {
  Envelope e;
  size_t at = 0;
  for (std::string* part : {&e.id, &e.action, &e.by}) {
    const size_t nl = s.find('\n', at);
    if (nl == std::string::npos) return Envelope();
    *part = s.substr(at, nl - at);
    at = nl + 1;
  }
  e.body = s.substr(at);
  return e;
}

// {"error":"Validation error","details":[{"field","problem"}...]}: the
// campaign API's 400 (and 422 for a campaign that would not start).
ApiResponse Invalid(const std::vector<ValidationDetail>& details, int status = 400) {
  ApiResponse a;
  a.status = status;
  a.body = JsonObject()
               .Str("error", "Validation error")
               .Raw("details", ValidationDetailsJson(details))
               .Finish();
  return a;
}
ApiResponse Unavailable(const Status& s) { return JsonError(503, "log_unavailable", s.ToString()); }

ApiResponse Json(std::string body) {
  ApiResponse a;
  a.content_type = "application/json";
  a.body = std::move(body);
  return a;
}

// The optional {"reason": "..."} of a lifecycle change.
std::string ReasonOf(const std::string& body, std::vector<ValidationDetail>* details) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return "";
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  if (!BodyObject(parser, body, &o, details)) return "";
  return TextField(o, "reason", "reason", false, 500, details);
}

// Whether the tenant has a system for `channel`: a texting sender for sms
// (a campaign's texts go through it), a mailer for email, a dialer for
// calls.
bool SenderFor(const SyncContext& ctx, Channel channel) {
  switch (channel) {
    case Channel::kSms:
      return !ctx.sender.empty() && ctx.targets.count(ctx.sender) > 0;
    case Channel::kCall:
      return !ctx.dialer.empty() && ctx.targets.count(ctx.dialer) > 0;
    case Channel::kEmail:
      return !ctx.mailer.empty() && ctx.targets.count(ctx.mailer) > 0;
  }
  return false;
}

// GET /v1/campaigns/{id}/tasks: ?state= one state, ?stuck=true those in
// progress whose lease ran out or that were claimed an hour ago or more
// (the guide's "tasks not executing"), ?limit= at most that many (1000,
// up to 10000), by step then contact.
ApiResponse TasksAnswer(const EventLog& from, const std::string& tenant, const std::string& id,
                        const Params& p, int64_t now_us) {
  const std::string state = Param(p, "state"), stuck = Param(p, "stuck"), limit = Param(p, "limit");
  TaskState only = TaskState::kPending;
  if (!state.empty() && !ParseTaskState(state, &only))
    return JsonError(400, "bad_parameter",
                     "\"state\" is pending, in_progress, done, failed or skipped");
  if (!stuck.empty() && stuck != "true" && stuck != "false")
    return JsonError(400, "bad_parameter", "\"stuck\" is true or false");
  size_t most = 1000;
  if (!limit.empty()) {
    char* end = nullptr;
    const long long n = std::strtoll(limit.c_str(), &end, 10);
    if (*end != '\0' || n < 1 || n > 10000)
      return JsonError(400, "bad_parameter", "\"limit\" is 1 to 10000");
    most = static_cast<size_t>(n);
  }
  std::vector<Task> tasks;
  Status s = ReadCampaignTasks(from, tenant, id, &tasks);
  if (!s.ok()) return Unavailable(s);
  JsonArray list;
  size_t listed = 0;
  bool truncated = false;
  for (const Task& t : tasks) {
    if (!state.empty() && t.state != only) continue;
    if (stuck == "true" && !TaskStuck(t, now_us)) continue;
    if (listed++ == most) {
      truncated = true;
      break;
    }
    JsonObject o;
    o.Str("contact", t.contact).Int("step", t.step).Str("state", TaskStateName(t.state));
    o.Str("due_at", FormatIso8601Millis(t.due_us)).Int("claims", t.claims);
    if (t.state == TaskState::kInProgress)
      o.Str("agent", t.agent).Str("lease_until", FormatIso8601Millis(t.lease_until_us));
    if (t.changed_us) o.Str("changed_at", FormatIso8601Millis(t.changed_us));
    if (!t.reason.empty()) o.Str("reason", t.reason);
    list.Raw(o.Finish());
  }
  return Json(JsonObject().Raw("tasks", list.Finish()).Bool("truncated", truncated).Finish());
}

}  // namespace

// The check of `v` (validate, and start before it goes): the customer, a
// payment, the steps, the start date, the sender, the audience.
Status Console::Impl::CheckOf(const EventLog& from, const std::string& tenant,
                              const CampaignView& v, std::vector<CampaignCheckItem>* out) const {
  Customer customer;
  Status s = FoldCustomerStream(from, tenant, v.spec.customer, &customer);
  if (!s.ok() && !s.IsNotFound()) return s;
  const bool has_customer = s.ok();
  const Config& now = Live();
  const SyncContext ctx = SyncContextFor(now, tenant);
  CampaignCheckInput in;
  in.spec = &v.spec;
  in.state = v.state;
  in.customer = has_customer ? &customer : nullptr;
  in.now_us = clock->NowMicros();
  if (!v.spec.steps.empty()) {
    const Channel first = v.spec.steps.front().channel;
    in.sender_configured = SenderFor(ctx, first);
    in.drafter_configured = !ctx.classifier.empty();
    auto failed = std::make_shared<bool>(false);
    const ResolvedAudience who = ResolveAudience(
        v.spec.audience, ProjectionAudienceIndex(from, tenant, ctx.tag_lists, failed), normalizer);
    if (*failed) return Status::Unavailable("the contacts cannot be read now");
    in.audience = static_cast<int64_t>(who.contacts.size());
    const std::string channel(ChannelName(first));
    for (const auto& c : who.contacts) {
      std::string address;
      bool opted_out = false;
      s = ReadContactOptOut(from, tenant, c, channel, &address, &opted_out);
      if (!s.ok()) return s;
      if (!address.empty() && !opted_out) ++in.reachable;
    }
  }
  *out = CheckCampaign(in);
  return Status::OK();
}

ApiResponse Console::Impl::PlanCustomer(const EventLog& from, const std::string& tenant,
                                        const std::string& body, EventDraft* d, uint64_t*) const {
  const Envelope e = Unwrap(body);
  Customer c;
  std::vector<ValidationDetail> details;
  DecodeCustomerRequest(e.body, &c, &details);
  if (!details.empty()) return Invalid(details);
  if (e.action == "update" && c.id != e.id)
    return Invalid({{"id", "must be the path's id, " + e.id}});
  Customer was;
  Status s = FoldCustomerStream(from, tenant, c.id, &was);
  const bool exists = s.ok();
  if (!exists && !s.IsNotFound()) return Unavailable(s);
  if (e.action == "create" && exists)
    return JsonError(409, "customer_exists",
                     "customer " + c.id + " exists: PUT /v1/customers/" + c.id);
  if (e.action == "update") {
    if (!exists) return JsonError(404, "unknown_customer", "no customer " + e.id);
    // "active" left out keeps what it was (a rename does not reactivate).
    simdjson::dom::parser parser;
    simdjson::dom::object o;
    simdjson::dom::element ignored;
    if (parser.parse(e.body).get(o) == simdjson::SUCCESS &&
        o["active"].get(ignored) != simdjson::SUCCESS)
      c.active = was.active;
  }
  *d = CustomerDraft(tenant, c, e.action == "create");
  return ApiResponse{};
}

ApiResponse Console::Impl::PlanPayment(const EventLog& from, const std::string& tenant,
                                       const std::string& body, EventDraft* d, uint64_t*) const {
  const Envelope e = Unwrap(body);
  Customer c;
  Status s = FoldCustomerStream(from, tenant, e.id, &c);
  if (s.IsNotFound()) return JsonError(404, "unknown_customer", "no customer " + e.id);
  if (!s.ok()) return Unavailable(s);
  Payment p;
  std::vector<ValidationDetail> details;
  DecodePaymentRequest(e.body, &p, &details);
  if (!details.empty()) return Invalid(details);
  *d = PaymentDraft(tenant, e.id, p);
  return ApiResponse{};
}

ApiResponse Console::Impl::PlanCampaign(const EventLog& from, const std::string& tenant,
                                        const std::string& body, EventDraft* d, uint64_t*) const {
  const Envelope e = Unwrap(body);
  CampaignSpec spec;
  std::vector<ValidationDetail> details;
  DecodeCampaignSpec(e.body, &spec, &details);
  if (!details.empty()) return Invalid(details);
  CampaignView was;
  Status s = FoldCampaignStream(from, tenant, spec.id, &was);
  if (s.ok()) return JsonError(409, "campaign_exists", "campaign " + spec.id + " exists");
  if (!s.IsNotFound()) return Unavailable(s);
  const SyncContext ctx = SyncContextFor(Live(), tenant);
  auto failed = std::make_shared<bool>(false);
  spec.audience.members =
      MembersAsContacts(spec.audience.members,
                        ProjectionAudienceIndex(from, tenant, ctx.tag_lists, failed), normalizer,
                        MemberHashOf(from, tenant));
  if (*failed) return Unavailable(Status::Unavailable("the contacts cannot be read now"));
  *d = CampaignCreatedDraft(tenant, spec);
  return ApiResponse{};
}

ApiResponse Console::Impl::PlanCampaignChange(const EventLog& from, const std::string& tenant,
                                              const std::string& body, EventDraft* d,
                                              uint64_t*) const {
  const Envelope e = Unwrap(body);
  CampaignAction action;
  if (!ParseCampaignAction(e.action, &action) || action == CampaignAction::kBegin ||
      action == CampaignAction::kComplete)
    return JsonError(404, "not_found", "no such action: " + e.action);
  std::vector<ValidationDetail> details;
  const std::string reason = ReasonOf(e.body, &details);
  if (!details.empty()) return Invalid(details);
  CampaignView v;
  Status s = FoldCampaignStream(from, tenant, e.id, &v);
  if (s.IsNotFound()) return JsonError(404, "unknown_campaign", "no campaign " + e.id);
  if (!s.ok()) return Unavailable(s);
  if (action == CampaignAction::kStart && v.state == CampaignState::kDraft) {
    std::vector<ValidationDetail> failing;
    std::vector<CampaignCheckItem> items;
    s = CheckOf(from, tenant, v, &items);
    if (!s.ok()) return Unavailable(s);
    for (const auto& item : items)
      if (!item.ok) failing.push_back({item.what, item.detail});
    if (!failing.empty()) return Invalid(failing, 422);
  }
  CampaignChange change;
  s = dfm::PlanCampaignChange(v, action, clock->NowMicros(), e.by, reason, &change);
  if (!s.ok()) return JsonError(409, "invalid_transition", s.message());
  *d = CampaignChangedDraft(tenant, change, v.changes);
  return ApiResponse{};
}

// GET /v1/customers/{id}, /v1/campaigns, /v1/campaigns/{id}, and POST
// /v1/campaigns/{id}/validate (a read: it changes nothing). `p` holds the
// path's id as "id".
ApiResponse Console::Impl::CampaignRead(const EventLog& from, const std::string& route,
                                        const Params& p, const std::string& tenant) const {
  const std::string id = Param(p, "id");
  if (route == kCustomerRoute) {
    Customer c;
    Status s = FoldCustomerStream(from, tenant, id, &c);
    if (s.IsNotFound()) return JsonError(404, "unknown_customer", "no customer " + id);
    if (!s.ok()) return Unavailable(s);
    return Json(JsonObject().Raw("customer", EncodeCustomerRow(c)).Finish());
  }
  if (route == kCampaignsRoute) {
    std::vector<CampaignView> all;
    Status s = ListCampaigns(from, tenant, &all);
    if (!s.ok()) return Unavailable(s);
    JsonArray list;
    for (const auto& v : all) list.Raw(CampaignViewJson(v));
    return Json(JsonObject().Raw("campaigns", list.Finish()).Finish());
  }
  CampaignView v;
  Status s = FoldCampaignStream(from, tenant, id, &v);
  if (s.IsNotFound()) return JsonError(404, "unknown_campaign", "no campaign " + id);
  if (!s.ok()) return Unavailable(s);
  if (route == kCampaignTasksRoute) return TasksAnswer(from, tenant, id, p, clock->NowMicros());
  if (route == kCampaignValidateRoute) {
    std::vector<CampaignCheckItem> items;
    s = CheckOf(from, tenant, v, &items);
    if (!s.ok()) return Unavailable(s);
    JsonArray checks;
    for (const auto& i : items)
      checks.Raw(
          JsonObject().Str("what", i.what).Bool("ok", i.ok).Str("detail", i.detail).Finish());
    return Json(
        JsonObject().Bool("ok", CheckPasses(items)).Raw("checks", checks.Finish()).Finish());
  }
  std::map<std::string, int64_t> by_state, skipped_by;
  s = ReadCampaignCounts(from, tenant, id, &by_state, &skipped_by);
  if (!s.ok()) return Unavailable(s);
  JsonObject tasks, skipped;
  for (const auto& [state, n] : by_state) tasks.Int(state, n);
  for (const auto& [why, n] : skipped_by) skipped.Int(why, n);
  return Json(JsonObject()
                  .Raw("campaign", CampaignViewJson(v))
                  .Raw("tasks", tasks.Finish())
                  .Raw("skipped", skipped.Finish())
                  .Finish());
}

bool IsCampaignRoute(const std::string& route) {
  if (route.find('#') != std::string::npos) return false;  // a plan: reads.cc's table
  return route.rfind("/v1/customers", 0) == 0 || route.rfind("/v1/campaigns", 0) == 0;
}

void Console::Impl::Campaigns(const ApiRequest& r, const Principal& who, const std::string& tenant,
                              const std::string& route, const std::string& id, Params params,
                              Headers headers, Responder respond) {
  if (r.method == "GET" || route == kCampaignValidateRoute) {
    params.erase(std::remove_if(params.begin(), params.end(),
                                [](const auto& kv) { return kv.first == "id"; }),
                 params.end());  // the path's id, never the query's
    params.emplace_back("id", id);
    return Read(route, params, tenant, who.tenant == kAllTenants, std::move(headers),
                std::move(respond));
  }
  // The write a route asks for: its plan, its envelope, its admin.action.
  struct Write {
    const char* plan_route;
    PlanFn plan;
    std::string action;
  };
  Write w{kCampaignChangePlanRoute, &Impl::PlanCampaignChange,
          route.substr(route.rfind('/') + 1)};  // /v1/campaigns/{id}/<action>
  if (route == kCustomersRoute) {
    w = {kCustomerPlanRoute, &Impl::PlanCustomer, "create"};
  } else if (route == kCustomerRoute) {
    w = {kCustomerPlanRoute, &Impl::PlanCustomer, "update"};
  } else if (route == kPaymentsRoute) {
    w = {kPaymentPlanRoute, &Impl::PlanPayment, "record"};
  } else if (route == kCampaignsRoute) {
    w = {kCampaignPlanRoute, &Impl::PlanCampaign, "create"};
  } else if (route == kCampaignResetRoute) {
    w.action = std::string(CampaignActionName(CampaignAction::kResetTasks));
  }
  const std::string body = Wrap({id, w.action, who.credential, r.body});
  const int created = w.action == "create" || w.action == "record" ? 201 : 200;
  PlanWrite(w.plan_route, w.plan, tenant, body, std::move(headers), std::move(respond),
            [this, r, who, tenant, created](EventDraft d, uint64_t, Headers h, Responder answer) {
              const std::string type = d.type, stream = d.stream;
              Logger("http")->info("request_id={} tenant={} event=campaign_api type={} by={}",
                                   r.request_id, tenant, type, who.credential);
              std::vector<EventDraft> drafts;
              drafts.push_back(std::move(d));
              drafts.push_back(AdminAction(r, who, tenant, type, stream));
              auto extra = [type, stream](JsonObject* o) {
                o->Str("type", type).Str("stream", stream);
              };
              if (!remote_reads)
                return AppendAndAnswer(std::move(drafts), std::move(h), std::move(answer), extra,
                                       created);
              AppendThenWaitStored(tenant, std::move(drafts), std::move(h), std::move(answer),
                                   extra, created);
            });
}

// Cluster mode: the front takes the drafts (the ingest stream), then the
// answer waits until the tenant's partition holds the first draft's event,
// at most kStoredWaitMs from now: a request right after plans from it. The
// answer says "duplicate" when the partition (or the front's seen ask)
// held an older event of that key, and is 202 "applying" when it did not
// appear in time (it will: the stream keeps it). No I/O or NATS thread
// waits: each ask's answer asks again 50 ms later, on `waits`.
struct Console::Impl::StoredWait {
  std::string tenant, ask, ours;
  bool known = false;  // the front found it stored already (its id is the stored one)
  std::chrono::steady_clock::time_point deadline;
  Headers headers;
  Responder respond;
  std::function<void(JsonObject*)> extra;
  int created = 200;
};

void Console::Impl::AppendThenWaitStored(const std::string& tenant, std::vector<EventDraft> drafts,
                                         Headers headers, Responder respond,
                                         std::function<void(JsonObject*)> extra, int created) {
  auto w = std::make_shared<StoredWait>();
  w->tenant = tenant;
  w->ask = EncodeRemoteRead(
      RemoteRead{kStoredRoute,
                 tenant,
                 {{"system", drafts[0].idempotency_system}, {"key", drafts[0].idempotency_key}}});
  w->deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kStoredWaitMs);
  w->headers = std::move(headers);
  w->respond = std::move(respond);
  w->extra = std::move(extra);
  w->created = created;
  log->AppendAsync(
      std::move(drafts),
      [this, self = shared_from_this(), w](const Status& s, const std::vector<AppendOutcome>& o) {
        if (!s.ok()) {
          (s.code() == Status::Code::kTooLarge ? counters->rejected : counters->unavailable)
              .fetch_add(1);
          return w->respond(With(AppendRefused(s, "the cluster cannot take writes; retry later"),
                                 std::move(w->headers)));
        }
        w->ours = o[0].id.ToString();
        w->known = o[0].duplicate;
        // The front's seen ask found it stored already: nothing to wait for.
        if (w->known) return AnswerStored(*w, true, w->ours, 0);
        PollStored(w);
      });
}

void Console::Impl::PollStored(std::shared_ptr<StoredWait> w) {
  if (waits_stopping.load() || std::chrono::steady_clock::now() >= w->deadline)
    return AnswerStored(*w, false, "", 0);
  remote_reads(w->tenant, w->ask, [this, self = shared_from_this(), w](Status s, std::string data) {
    ApiResponse a;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    std::string_view id;
    uint64_t seq = 0;
    if (s.ok() && DecodeReadAnswer(data, &a) && a.status == 200 &&
        parser.parse(a.body).get(doc) == simdjson::SUCCESS &&
        doc["event_id"].get(id) == simdjson::SUCCESS && doc["seq"].get(seq) == simdjson::SUCCESS)
      return AnswerStored(*w, true, std::string(id), seq);
    const auto due = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
    const bool posted = PostWait([this, w, due] {
      std::this_thread::sleep_until(due);  // jobs come in due order: none waits behind another
      PollStored(w);
    });
    if (!posted) AnswerStored(*w, false, "", 0);  // the console has ended
  });
}

void Console::Impl::AnswerStored(StoredWait& w, bool stored, const std::string& stored_id,
                                 uint64_t seq) {
  const bool duplicate = w.known || (stored && stored_id != w.ours);
  (duplicate ? counters->duplicates : counters->accepted).fetch_add(1);
  JsonObject body;
  body.Str("status", duplicate ? "duplicate"
                     : stored  ? "accepted"
                               : "applying")
      .Str("event_id", stored ? stored_id : w.ours);
  if (seq != 0) body.UInt("seq", seq);
  if (w.extra) w.extra(&body);
  ApiResponse a;
  a.content_type = "application/json";
  a.body = body.Finish();
  a.status = duplicate ? 200 : stored ? w.created : 202;
  w.respond(With(std::move(a), std::move(w.headers)));
}

}  // namespace dfm
