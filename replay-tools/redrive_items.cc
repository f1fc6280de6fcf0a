#include "replay-tools/redrive_items.h"

#include "events/webhook_received.h"
#include "replay-tools/tool_log.h"
#include "sync/domain_event.h"

namespace dfm {

namespace {

// When the push `asked` was first asked for: its own recorded time, or,
// for a re-drive, the time its replay.requested item said the push it
// re-drove was first asked for.
int64_t FirstAsked(const EventLog& log, const Event& request, const DomainEvent& asked) {
  auto cause = RedriveCause(asked);
  if (!cause) return request.recorded_at_us;
  Event replay;
  ReplayRequest r;
  if (!ReadEventBySeq(log, asked.webhook_seq, &replay).ok() ||
      replay.type != kReplayRequestedType || !DecodeReplayRequest(replay.payload, &r).ok())
    return request.recorded_at_us;
  for (const auto& item : r.items)
    if (item.cause == cause->ToString() && item.asked_at_us != 0) return item.asked_at_us;
  return request.recorded_at_us;
}

// A push.requested of the contact, dead-lettered and not re-driven since.
Status DeadLetterItem(const EventLog& log, const std::string& tenant, const Event& request,
                      const RedriveItem& posted, RedriveItem* out, std::string* why) {
  DomainEvent asked;
  if (!DecodeDomainEvent(request.type, request.payload, &asked).ok()) {
    *why = "its cause cannot be read";
    return Status::OK();
  }
  if (request.stream != ContactStream(posted.contact_id)) {
    *why = "its cause is a push of another contact";
    return Status::OK();
  }
  if (asked.system != posted.push.system || asked.op != posted.push.op) {
    *why = "its cause is a push of another system or op";
    return Status::OK();
  }
  bool dead = false;
  Status s = log.ScanStream(
      tenant, request.stream,
      [&](const Event& e) {
        if (e.type != ev::kPushDeadLettered) return true;
        DomainEvent d;
        dead = DecodeDomainEvent(e.type, e.payload, &d).ok() && d.push_id == asked.push_id;
        return !dead;
      },
      request.seq + 1);
  if (!s.ok()) return s;
  if (!dead) {
    *why = "its push was not dead-lettered";
    return Status::OK();
  }
  const std::string cause = request.id.ToString();
  s = log.ScanStream(
      tenant, kReplayStream,
      [&](const Event& e) {
        ReplayRequest r;
        if (e.type != kReplayRequestedType || !DecodeReplayRequest(e.payload, &r).ok()) return true;
        for (const auto& item : r.items)
          if (item.cause == cause) *why = "its push was re-driven by event " + std::to_string(e.seq);
        return why->empty();
      },
      request.seq + 1);
  if (!s.ok() || !why->empty()) return s;
  out->contact_id = posted.contact_id;
  out->cause = cause;
  out->push = asked;
  out->asked_at_us = FirstAsked(log, request, asked);
  return Status::OK();
}

// A push the rules call for now that the webhook's decision did not request:
// the one posted, by contact and PushKey (system, op, message, channel,
// place), then, where several of the webhook's facts call for such a push
// (two facts' upserts, a message's statuses), by its push id (as `dfm
// replay --json` prints it), so that two missing pushes of one webhook are
// each re-driven once, never one of them twice.
Status MissingItem(const EventLog& log, const std::string& tenant, const Event& webhook,
                   const RedriveItem& posted, const ReplayOptions& base, RedriveItem* out,
                   std::string* why) {
  ReplayOptions o = base;
  o.from_us = webhook.recorded_at_us;
  o.to_us = webhook.recorded_at_us + 1;
  o.contacts = {ContactMatch{tenant, posted.contact_id}};
  o.system = posted.push.system;
  o.tenant = tenant;
  ReplayPlan plan;
  Status s = PlanReplay(log, o, &plan);
  if (!s.ok()) return s;
  const PushDiff* found = nullptr;
  int alike = 0;
  for (const auto& d : plan.diffs) {
    if (d.kind != "missing" || d.webhook_seq != webhook.seq ||
        d.contact.contact_id != posted.contact_id || PushKey(d.now) != PushKey(posted.push))
      continue;
    alike++;
    if (!found || (!posted.push.push_id.empty() && d.now.push_id == posted.push.push_id))
      found = &d;
  }
  if (alike > 1 && found->now.push_id != posted.push.push_id) {
    *why = "several of that webhook's facts call for a missing " + posted.push.op + " push to " +
           posted.push.system + ": name it by its push_id";
    return Status::OK();
  }
  if (!found) {
    *why = "the rules call for no missing " + posted.push.op + " push to " + posted.push.system +
           " for that webhook and contact (done, re-driven already, or never due)";
    return Status::OK();
  }
  out->contact_id = posted.contact_id;
  out->cause = webhook.id.ToString();
  out->push = found->now;
  out->asked_at_us = found->webhook_at_us;
  return Status::OK();
}

// An opt-out a system was found not to hold (dfm reconcile): an "opt_out"
// of the posted channels to the posted system, for a contact of the tenant.
// DecideRedrive sends it only while the person is opted out of them, so
// it can never opt anyone out who is not.
Status OptOutItem(const EventLog& log, const std::string& tenant, const Event& cause,
                  const RedriveItem& posted, RedriveItem* out, std::string* why) {
  if (posted.push.system.empty() || posted.push.channel.empty()) {
    *why = "an opt_out item names its system and channels";
    return Status::OK();
  }
  std::vector<Event> first;
  Status s = log.ReadStream(tenant, ContactStream(posted.contact_id), 1, 1, &first);
  if (!s.ok()) return s;
  if (first.empty()) {
    *why = "no contact " + posted.contact_id + " in tenant " + tenant;
    return Status::OK();
  }
  out->contact_id = posted.contact_id;
  out->cause = cause.id.ToString();
  out->push.type = std::string(ev::kPushRequested);
  out->push.contact_id = posted.contact_id;
  out->push.system = posted.push.system;
  out->push.op = "opt_out";
  out->push.channel = posted.push.channel;
  out->push.external_id = posted.push.external_id;
  out->push.reason = posted.push.reason.empty() ? "opt-out set again" : posted.push.reason;
  out->push.priority = 10;
  return Status::OK();
}

}  // namespace

Status RebuildRedriveItems(const EventLog& log, const std::string& tenant,
                           const ReplayRequest& posted, const ReplayOptions& base,
                           ReplayRequest* rebuilt) {
  rebuilt->reason = posted.reason;
  rebuilt->items.clear();
  for (size_t i = 0; i < posted.items.size(); ++i) {
    const RedriveItem& item = posted.items[i];
    auto refuse = [&](const std::string& why) {
      return Status::InvalidArgument("item " + std::to_string(i) + ": " + why +
                                     "; only a contact's own dead-lettered or missing pushes, "
                                     "and opt-outs, are re-driven");
    };
    auto id = EventId::Parse(item.cause);
    if (!id) return refuse("its cause is not an event id");
    Event cause;
    Status s = ReadEventById(log, *id, &cause);
    if (s.IsNotFound() || (s.ok() && cause.tenant != tenant))
      return refuse("its cause is no event of tenant " + tenant);
    if (!s.ok()) return s;
    RedriveItem out;
    std::string why;
    const bool webhook = cause.type == WebhookReceived::kType || cause.type == kContactImportedType;
    // A missing opt-out push to a particular record (a new record's, a
    // conflict's duplicate's) is decided again as any missing push, its id
    // and so its tag kept; other opt-out items (a reconcile's) are built
    // afresh for the contact's records.
    const bool tagged = HasOptOutTag(item.push, kNewRecordTag) || LinksNoRecord(item.push);
    if (cause.type == ev::kPushRequested) {
      s = DeadLetterItem(log, tenant, cause, item, &out, &why);
    } else if (item.push.op == "opt_out" && !(webhook && tagged)) {
      s = OptOutItem(log, tenant, cause, item, &out, &why);
    } else if (webhook) {
      s = MissingItem(log, tenant, cause, item, base, &out, &why);
      // The same diff rebuilt twice (push ids alone do not tell: in logs
      // from before one push per id, a fact's consent pushes to one target
      // share one, whatever their channels).
      for (const RedriveItem& before : rebuilt->items)
        if (why.empty() && before.cause == out.cause && before.contact_id == out.contact_id &&
            before.push == out.push)
          why = "another item of this request names the same missing push";
    } else {
      why = "its cause is a " + cause.type + ", neither a push nor a webhook";
    }
    if (!s.ok()) return s;
    if (!why.empty()) return refuse(why);
    rebuilt->items.push_back(std::move(out));
  }
  return Status::OK();
}

}  // namespace dfm
