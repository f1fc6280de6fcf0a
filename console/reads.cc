// The keyed API's reads (docs/http-api.md, "Reads"): GET /v1/contacts/trace,
// /v1/contacts/as-of, /v1/events, /v1/audit/*, /v1/dead-letters. Each is a
// function of the tenant's log and the request's parameters; in cluster
// mode the node running the tenant's partition runs it (AnswerRemoteRead)
// for the node that was asked (Read).
#include <charconv>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "console/console_internal.h"
#include "console/contact_story.h"
#include "console/installation_events.h"
#include "console/remote_read.h"
#include "replay-tools/audit.h"
#include "replay-tools/campaign_audit.h"
#include "replay-tools/consent_audit.h"
#include "replay-tools/events_command.h"
#include "replay-tools/projection_commands.h"
#include "replay-tools/replay.h"
#include "replay-tools/tool_log.h"
#include "replay-tools/trace.h"
#include "sync/contact_model.h"
#include "sync/normalize.h"
#include "util/strings.h"

namespace dfm {

namespace {

// What one read needs besides its log.
struct ReadContext {
  const Console::Impl& im;
  const EventLog& log;
  const Params& p;
  const std::string& tenant;
  int64_t now_us;
  bool whole;  // the caller sees the installation's own records too
};
using Answer = std::optional<ApiResponse>;  // nullopt: go on

ApiResponse Bad(const std::string& why) { return JsonError(400, "bad_parameter", why); }
ApiResponse LogUnavailable(const Status& s) { return JsonError(503, "log_unavailable", s.ToString()); }
ApiResponse Lines(const std::string& lines) {
  ApiResponse a;
  a.body = JsonLinesDocument(lines);
  return a;
}

// A read's answer once it collected `items` (status `s`): 503, or what
// `print` writes of them as JSON lines.
template <typename Items, typename Print>
ApiResponse Printed(const Status& s, const Items& items, Print print) {
  if (!s.ok()) return LogUnavailable(s);
  std::ostringstream out;
  print(items, out);
  return Lines(out.str());
}

// A time parameter (RFC 3339, a date, "now", "-2h"); 0 when absent.
Answer TimeParam(const ReadContext& c, const char* name, int64_t* out) {
  const std::string v = Param(c.p, name);
  *out = 0;
  if (v.empty()) return std::nullopt;
  auto t = ParseToolTime(v, c.now_us);
  if (!t) return Bad(std::string("\"") + name + "\" is not a time (2026-11-20T15:04:05Z, 2026-11-20, -2h)");
  *out = *t;
  return std::nullopt;
}

Answer TimeRange(const ReadContext& c, const char* from, const char* to, int64_t* from_us, int64_t* to_us) {
  if (auto a = TimeParam(c, from, from_us)) return a;
  return TimeParam(c, to, to_us);
}

// The contacts ?contact= names, in this tenant; an answer when none.
Answer Contacts(const ReadContext& c, std::vector<ContactMatch>* out) {
  ContactRef ref;
  Status s = ParseContactRef(Param(c.p, "contact"), c.im.normalizer, &ref);
  if (!s.ok()) return Bad("\"contact\": " + s.message());
  s = ResolveContacts(c.log, ref, {c.tenant}, out);
  if (!s.ok()) return LogUnavailable(s);
  if (out->empty()) return JsonError(404, "unknown_contact", "no contact of tenant " + c.tenant + " matches");
  return std::nullopt;
}

ApiResponse TraceRead(const ReadContext& c) {
  std::vector<ContactMatch> matches;
  if (auto a = Contacts(c, &matches)) return *a;
  TraceOptions o;
  o.reveal = true;
  o.mapper = c.im.mapper;
  o.scan_webhooks = Param(c.p, "scan") == "true";
  if (auto a = TimeRange(c, "since", "until", &o.since_us, &o.until_us)) return *a;
  o.targets[c.tenant];
  for (const auto& [system, f] : SyncContextFor(c.im.Live(), c.tenant).targets)
    o.targets[c.tenant].insert(system);
  Trace t;
  Status s = BuildTrace(c.log, matches, o, &t);
  return Printed(s, t, [](const Trace& x, std::ostream& out) { PrintTrace(x, /*json=*/true, out); });
}

ApiResponse AsOfRead(const ReadContext& c) {
  std::vector<ContactMatch> matches;
  if (auto a = Contacts(c, &matches)) return *a;
  int64_t at = 0;
  if (auto a = TimeParam(c, "at", &at)) return *a;
  if (Param(c.p, "at").empty()) return Bad("\"at\" is required: the time to look at");
  std::ostringstream out, err;
  if (RunAsOf(c.log, at, matches, /*json=*/true, /*reveal=*/true, out, err) != 0)
    return LogUnavailable(Status::IOError(err.str()));
  return Lines(out.str());
}

ApiResponse EventsRead(const ReadContext& c) {
  EventFilter f;
  f.tenant = c.tenant;
  // The key ids `hidden` needs are read up to at least this head, so a
  // key of every tenant made meanwhile is not shown as the tenant's own.
  f.until_seq = c.log.LastSequence();
  if (!c.whole) {
    std::set<std::string> all_tenant_keys;
    Status s = AllTenantKeyIds(c.log, &all_tenant_keys);
    if (!s.ok()) return LogUnavailable(s);
    f.hidden = [keys = std::move(all_tenant_keys)](const Event& e) {
      return InstallationWide(e, keys);
    };
  }
  f.system = Param(c.p, "system");
  f.type = Param(c.p, "type");
  f.stream = Param(c.p, "stream");
  const std::string limit = Param(c.p, "limit");
  f.limit = limit.empty() ? 1000 : std::strtoull(limit.c_str(), nullptr, 10);
  if (f.limit == 0 || f.limit > 10000) return Bad("\"limit\" must be 1 to 10000 (1000 by default)");
  if (auto a = TimeRange(c, "from", "to", &f.from_us, &f.to_us)) return *a;
  const std::string after = Param(c.p, "after");
  if (!after.empty()) {
    if (after.size() > 18 || after.find_first_not_of("0123456789") != std::string::npos)
      return Bad("\"after\" must be a sequence number (the \"next_after\" of the page before)");
    f.after_seq = std::strtoull(after.c_str(), nullptr, 10);
  }
  if (!Param(c.p, "contact").empty()) {
    if (auto a = Contacts(c, &f.contacts)) return *a;
    f.by_contact = true;
  }
  std::ostringstream out, err;
  uint64_t next_after = 0;
  if (ListEvents(c.log, f, /*json=*/true, /*reveal=*/true, out, err, &next_after) != 0)
    return LogUnavailable(Status::IOError(err.str()));
  ApiResponse a = Lines(out.str());
  a.body.pop_back();  // the document's closing brace
  a.body += ",\"next_after\":" + std::to_string(next_after) + "}";
  return a;
}

ApiResponse OptOutsRead(const ReadContext& c) {
  OptOutAuditOptions o;
  o.tenant = c.tenant;
  if (!Param(c.p, "email").empty()) {
    // As the log keeps it (Normalizer::Email); a "+" the query string
    // turned into a space is refused, not answered "none".
    std::optional<std::string> email = Normalizer::Email(Param(c.p, "email"));
    if (!email) return Bad("\"email\" is not an email address (write a \"+\" in it as %2B)");
    o.email = *email;
    o.fold_plus_addressing = c.im.Live().sync().fold_plus_addressing;
  }
  if (!Param(c.p, "phone").empty()) {
    ContactRef ref;
    if (!ParseContactRef(Param(c.p, "phone"), c.im.normalizer, &ref).ok() || ref.kind != ContactRef::Kind::kPhone)
      return Bad("\"phone\" is not a phone number");
    o.phone = ref.value;
  }
  if (auto a = TimeRange(c, "since", "until", &o.since_us, &o.until_us)) return *a;
  std::string format = Param(c.p, "format");
  if (format.empty()) format = "json";
  if (format != "json" && format != "csv") return Bad("\"format\" is csv or json");
  std::vector<ConsentRecord> records;
  Status s = CollectConsentRecords(c.log, o, &records);
  if (!s.ok()) return LogUnavailable(s);
  std::ostringstream out, err;
  PrintConsentRecords(records, format, out, err);
  if (format == "json") return Lines(out.str());
  ApiResponse a;
  a.content_type = "text/csv; charset=utf-8";
  a.body = out.str();
  return a;
}

ApiResponse ViolationsRead(const ReadContext& c) {
  ViolationOptions o;
  o.tenant = c.tenant;
  o.now_us = c.now_us;
  const std::string days = Param(c.p, "threshold_days");
  if (!days.empty()) o.threshold_business_days = std::atoi(days.c_str());
  if (o.threshold_business_days <= 0) return Bad("\"threshold_days\" must be a positive number");
  std::vector<Violation> v;
  Status s = FindViolations(c.log, o, &v);
  if (s.ok())
    s = FindCampaignQuietHourSends(c.log, CampaignHoursFrom(c.im.Live().campaigns(), c.tenant), &v);
  return Printed(s, v, [](const auto& x, std::ostream& out) { PrintViolations(x, /*json=*/true, out); });
}

ApiResponse ConflictsRead(const ReadContext& c) {
  std::vector<ConsentConflictRecord> conflicts;
  Status s = CollectConsentConflicts(c.log, c.tenant, &conflicts);
  return Printed(s, conflicts,
                 [](const auto& x, std::ostream& out) { PrintConsentConflicts(x, /*json=*/true, out); });
}

ApiResponse DeadLettersRead(const ReadContext& c) {
  DeadLetterFilter f;
  f.tenant = c.tenant;
  f.system = Param(c.p, "system");
  f.push_id = Param(c.p, "push");
  if (auto a = TimeRange(c, "from", "to", &f.from_us, &f.to_us)) return *a;
  if (!Param(c.p, "contact").empty()) {
    if (auto a = Contacts(c, &f.contacts)) return *a;
  }
  std::vector<DeadLetter> dead;
  Status s = FindDeadLetters(c.log, f, &dead);
  const TextAgeLimit age{c.now_us, c.im.Live().sync().redrive_max_text_age_us()};
  return Printed(s, dead, [&age](const auto& x, std::ostream& out) { PrintDeadLetters(x, /*json=*/true, out, age); });
}

// The status page's search in one tenant (cluster mode: asked by the node
// whose page was searched; params q and reveal).
ApiResponse StoryRead(const ReadContext& c) {
  StoryOptions o;
  o.tenants = {c.tenant};
  o.reveal = Param(c.p, "reveal") == "true";
  o.now_us = c.now_us;
  for (const auto& [system, f] : SyncContextFor(c.im.Live(), c.tenant).targets)
    o.targets[c.tenant].insert(system);
  std::vector<ContactStory> stories;
  Status s = BuildContactStories(c.log, Param(c.p, "q"), c.im.normalizer, o, &stories);
  if (s.IsInvalidArgument()) return Bad(s.message());
  if (!s.ok()) return LogUnavailable(s);
  ApiResponse a;
  a.body = EncodeStories(stories);
  return a;
}

// An admin write planned here for the node that was asked (the reads
// kReplayPlanRoute and kSettlePlanRoute; param body).
ApiResponse PlannedRead(const ReadContext& c, Console::Impl::PlanFn plan) {
  EventDraft d;
  uint64_t items = 0;
  ApiResponse a = (c.im.*plan)(c.log, c.tenant, Param(c.p, "body"), &d, &items);
  if (a.status == 200) a.body = EncodePlannedDraft(d, items);
  return a;
}
ApiResponse ReplayPlanRead(const ReadContext& c) { return PlannedRead(c, &Console::Impl::PlanReplay); }
ApiResponse SettlePlanRead(const ReadContext& c) { return PlannedRead(c, &Console::Impl::PlanSettle); }
ApiResponse CustomerPlanRead(const ReadContext& c) { return PlannedRead(c, &Console::Impl::PlanCustomer); }
ApiResponse PaymentPlanRead(const ReadContext& c) { return PlannedRead(c, &Console::Impl::PlanPayment); }
ApiResponse CampaignPlanRead(const ReadContext& c) { return PlannedRead(c, &Console::Impl::PlanCampaign); }
// Whether this partition's log holds the event of an idempotency key
// (kStoredRoute: a cluster write's answer waits for it).
ApiResponse StoredRead(const ReadContext& c) {
  uint64_t seq = 0;
  Status s = c.log.LookupIdempotency(c.tenant, Param(c.p, "system"), Param(c.p, "key"), &seq);
  if (s.IsNotFound()) return JsonError(404, "not_stored", "not in the partition's log yet");
  if (!s.ok()) return LogUnavailable(s);
  Event e;  // its id alone: the payload is not opened
  s = c.log.ReadUnopened(seq, &e);
  if (!s.ok()) return LogUnavailable(s);
  ApiResponse a;
  a.body = JsonObject().UInt("seq", seq).Str("event_id", e.id.ToString()).Finish();
  return a;
}
ApiResponse CampaignChangePlanRead(const ReadContext& c) {
  return PlannedRead(c, &Console::Impl::PlanCampaignChange);
}

const std::map<std::string, ApiResponse (*)(const ReadContext&)>& ReadRoutes() {
  static const auto* routes = new std::map<std::string, ApiResponse (*)(const ReadContext&)>{
      {"/v1/contacts/trace", TraceRead},         {"/v1/contacts/as-of", AsOfRead},
      {"/v1/events", EventsRead},                {"/v1/audit/opt-outs", OptOutsRead},
      {"/v1/audit/violations", ViolationsRead},  {"/v1/audit/consent-conflicts", ConflictsRead},
      {"/v1/dead-letters", DeadLettersRead},    {kStoryRoute, StoryRead},
      {kReplayPlanRoute, ReplayPlanRead},        {kSettlePlanRoute, SettlePlanRead},
      {kCustomerPlanRoute, CustomerPlanRead},    {kPaymentPlanRoute, PaymentPlanRead},
      {kCampaignPlanRoute, CampaignPlanRead},    {kCampaignChangePlanRoute, CampaignChangePlanRead},
      {kStoredRoute, StoredRead},
  };
  return *routes;
}

}  // namespace

ApiResponse Console::Impl::ReadFrom(const EventLog& from, const std::string& route, const Params& p,
                                    const std::string& tenant, bool whole) const {
  if (IsCampaignRoute(route)) return CampaignRead(from, route, p, tenant);
  auto it = ReadRoutes().find(route);
  if (it == ReadRoutes().end()) return JsonError(404, "not_found", "no read " + route);
  return it->second(ReadContext{*this, from, p, tenant, clock->NowMicros(), whole});
}

namespace {

// 503 owner_unreachable with Retry-After: asking again will do.
ApiResponse AskAgain(const std::string& detail) {
  ApiResponse a = JsonError(503, "owner_unreachable", detail);
  a.headers.emplace_back("Retry-After", "2");
  return a;
}

ApiResponse Unreachable(const Status& s) {
  return AskAgain(s.ToString() +
                  "; the tenant's partition is moving or its node is down: retry in a few seconds");
}

ApiResponse Unreadable() {
  return JsonError(503, "owner_unreachable", "the partition's node answered something unreadable");
}

// A part that did not come: the whole read is asked again.
ApiResponse PartLost(const std::string& why) {
  return AskAgain(why + ": the answer came in parts and one was lost; ask again");
}

}  // namespace

void Console::Impl::Read(const std::string& route, const Params& p, const std::string& tenant,
                         bool whole, Headers headers, Responder respond) {
  std::function<void(ApiResponse)> finish = [this, headers = std::move(headers),
                                             respond = std::move(respond)](ApiResponse a) {
    if (a.status == 400) counters->rejected.fetch_add(1);
    if (a.status == 503) counters->unavailable.fetch_add(1);
    respond(With(std::move(a), headers));
  };
  if (!remote_reads) {
    worker->Post([this, route, p, tenant, whole, finish = std::move(finish)]() mutable {
      finish(ReadFrom(*log, route, p, tenant, whole));
    });
    return;
  }
  // Cluster mode: the node running the tenant's partition reads its log.
  RemoteRead asked{route, tenant, p, whole, /*parts=*/true};
  remote_reads(tenant, EncodeRemoteRead(asked),
               [self = shared_from_this(), asked, finish = std::move(finish)](
                   Status s, std::string answer) mutable {
                 ApiResponse a;
                 ReadPart first;
                 if (!s.ok()) {
                   a = Unreachable(s);
                 } else if (DecodeReadPart(answer, &first)) {
                   return self->ReadParts(asked, std::move(first), std::move(finish));
                 } else if (!DecodeReadAnswer(answer, &a)) {
                   a = Unreadable();
                 }
                 finish(std::move(a));
               });
}

void Console::Impl::ReadParts(const RemoteRead& asked, ReadPart first,
                              std::function<void(ApiResponse)> done) {
  if (first.offset != 0) return done(Unreadable());
  if (!parked.Fits(first.total))  // the other node's word: no more than it may hold
    return done(JsonError(503, "answer_too_large",
                          "the answer passes what a cluster read holds (" +
                              std::to_string(kMaxTenantParkedAnswers >> 20) + " MiB): narrow it"));
  auto r = std::make_shared<PartedRead>();
  r->next = RemoteRead{kReadPartRoute, asked.tenant, {}, asked.whole, /*parts=*/true};
  r->token = first.token;
  r->total = first.total;
  r->whole.status = first.status;
  r->whole.content_type = first.content_type;
  r->whole.body = std::move(first.body);
  r->whole.body.reserve(first.total);
  r->done = std::move(done);
  AskNextPart(std::move(r));
}

// Each part asks the next from its answer's thread (no recursion when the
// answers come on another thread, as NATS's do).
void Console::Impl::AskNextPart(std::shared_ptr<PartedRead> r) {
  if (r->whole.body.size() == r->total) return r->done(std::move(r->whole));
  r->next.params = {{"token", r->token}, {"offset", std::to_string(r->whole.body.size())}};
  remote_reads(r->next.tenant, EncodeRemoteRead(r->next),
               [self = shared_from_this(), r](Status s, std::string answer) {
                 ReadPart part;
                 if (!s.ok()) return r->done(PartLost(s.ToString()));
                 // A refusal (its node no longer holds it, or knows no
                 // parts: the partition moved), or a stranger's.
                 if (!DecodeReadPart(answer, &part) || part.token != r->token ||
                     part.total != r->total || part.offset != r->whole.body.size() ||
                     part.status != r->whole.status)
                   return r->done(PartLost("the partition's node did not give the next part"));
                 r->whole.body += part.body;
                 self->AskNextPart(r);
               });
}

ApiResponse Console::Impl::AnswerPart(const RemoteRead& rr) {
  uint64_t offset = 0;
  std::string encoded;
  const std::string token = Param(rr.params, "token"), at = Param(rr.params, "offset");
  auto [end, ec] = std::from_chars(at.data(), at.data() + at.size(), offset);
  if (ec == std::errc() && end == at.data() + at.size() && !at.empty() &&
      parked.Part(token, rr.tenant, offset, clock->NowMicros(), kMaxReadAnswer, &encoded)) {
    ApiResponse a;
    a.body = std::move(encoded);  // already a part: sent as it is
    return a;
  }
  return JsonError(503, "owner_unreachable",
                   "the answer's other parts are no longer held by the partition's node (it "
                   "moved, or a minute passed): ask again");
}

void Console::Impl::AnswerRemoteRead(const EventLog& from, std::string request,
                                     std::function<void(std::string)> reply) {
  RemoteRead rr;
  if (!DecodeRemoteRead(request, &rr))
    return reply(EncodeReadAnswer(JsonError(400, "bad_request", "not a read request")));
  if (rr.route == kReadPartRoute) {  // no read: answered at once
    ApiResponse a = AnswerPart(rr);
    return reply(a.status == 200 ? std::move(a.body) : EncodeReadAnswer(a));
  }
  worker->Post([this, &from, rr = std::move(rr), reply = std::move(reply)] {
    ApiResponse a = ReadFrom(from, rr.route, rr.params, rr.tenant, rr.whole);
    std::string answer = EncodeReadAnswer(a);
    if (answer.size() <= kMaxReadAnswer) return reply(std::move(answer));
    const bool fits = parked.Fits(a.body.size());
    std::string token =
        rr.parts && fits ? parked.Park(rr.tenant, std::move(a), clock->NowMicros()) : "";
    if (!token.empty() &&
        parked.Part(token, rr.tenant, 0, clock->NowMicros(), kMaxReadAnswer, &answer))
      return reply(std::move(answer));
    std::string why =
        !rr.parts ? "the answer passes what a cluster read of this kind carries (" +
                        std::to_string(kMaxReadAnswer / 1024) + " KiB): narrow it"
        : !fits
            ? "the answer passes what a cluster read holds (" +
                  std::to_string(kMaxTenantParkedAnswers >> 20) + " MiB): narrow it"
            : "the partition's node holds as many large answers as it may now: retry in a minute";
    reply(EncodeReadAnswer(JsonError(503, "answer_too_large", why)));
  });
}

}  // namespace dfm
