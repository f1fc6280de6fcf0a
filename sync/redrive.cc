#include "sync/redrive.h"

#include <simdjson.h>

#include <cstdio>
#include <set>

#include "sync/consent.h"
#include "util/crypto.h"
#include "util/json.h"

namespace dfm {

std::string EncodeReplayRequest(const ReplayRequest& r) {
  JsonArray items;
  for (const auto& item : r.items) {
    JsonObject o;
    o.Str("contact_id", item.contact_id).Str("cause", item.cause);
    if (item.asked_at_us != 0) o.Int("asked_at_us", item.asked_at_us);
    items.Raw(o.Raw("push", EncodeDomainEvent(item.push)).Finish());
  }
  return JsonObject().Str("reason", r.reason).Raw("items", items.Finish()).Finish();
}

EventDraft ReplayRequestDraft(const std::string& tenant, const ReplayRequest& r) {
  EventDraft d;
  d.tenant = tenant;
  d.stream = kReplayStream;
  d.type = std::string(kReplayRequestedType);
  d.payload = EncodeReplayRequest(r);
  d.idempotency_system = kReplayKeySystem;
  d.idempotency_key = ReplayIdempotencyKey(tenant, d.payload);
  return d;
}

std::string ReplayIdempotencyKey(const std::string& tenant, const std::string& payload) {
  auto d = Sha256(tenant + "\n" + payload);
  return "replay/" + HexEncode(d);
}

Status DecodeReplayRequest(std::string_view payload, ReplayRequest* out) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(payload.data(), payload.size()).get(root) != simdjson::SUCCESS)
    return Status::InvalidArgument("replay request: not JSON");
  ReplayRequest r;
  std::string_view s;
  if (root["reason"].get(s) == simdjson::SUCCESS) r.reason = std::string(s);
  simdjson::dom::array items;
  if (root["items"].get(items) != simdjson::SUCCESS)
    return Status::InvalidArgument("replay request: \"items\" must be an array");
  for (auto it : items) {
    RedriveItem item;
    std::string_view contact, cause;
    simdjson::dom::object push;
    if (it["contact_id"].get(contact) != simdjson::SUCCESS || contact.empty())
      return Status::InvalidArgument("replay request: an item has no \"contact_id\"");
    if (it["push"].get(push) != simdjson::SUCCESS)
      return Status::InvalidArgument("replay request: an item has no \"push\" object");
    if (it["cause"].get(cause) == simdjson::SUCCESS) item.cause = std::string(cause);
    int64_t asked_at = 0;
    if (it["asked_at_us"].get(asked_at) == simdjson::SUCCESS) item.asked_at_us = asked_at;
    item.contact_id = std::string(contact);
    Status st = DecodeDomainEvent(ev::kPushRequested, simdjson::minify(push), &item.push);
    if (!st.ok()) return st;
    if (item.push.system.empty() || item.push.op.empty())
      return Status::InvalidArgument("replay request: an item's push has no system or op");
    r.items.push_back(std::move(item));
  }
  *out = std::move(r);
  return Status::OK();
}

std::string FormatAgeHoursMinutes(int64_t age_us) {
  const int64_t min = age_us / 60000000;
  char text[48];
  std::snprintf(text, sizeof(text), "%lld h %02lld min", static_cast<long long>(min / 60),
                static_cast<long long>(min % 60));
  return text;
}

namespace {

bool TargetHasMessage(const ContactState& s, const std::string& key, const std::string& system) {
  auto m = s.messages.find(key);
  return m != s.messages.end() && m->second.ids.count(system) > 0;
}

// `reported`: the texts this request already reported failed, `sending`
// those it already re-sends (two items may name one text, e.g. a dead
// letter and its earlier re-drive's; all are decided against the same
// state, so only the first of them is sent).
std::vector<DomainEvent> DecideOne(const ContactState& s, const RedriveItem& item,
                                   uint64_t replay_seq, uint64_t index, const SyncContext& ctx,
                                   std::set<std::string>* reported,
                                   std::set<std::string>* sending) {
  const DomainEvent& asked = item.push;
  DomainEvent skip;
  skip.type = std::string(ev::kRedriveSkipped);
  skip.contact_id = s.contact_id.empty() ? item.contact_id : s.contact_id;
  skip.system = asked.system;
  skip.op = asked.op;
  skip.push_id = asked.push_id;
  skip.message_key = asked.message_key;
  skip.detail = kRedriveDetailPrefix + item.cause;
  skip.webhook_seq = replay_seq;
  auto skipped = [&](std::string reason) {
    skip.reason = std::move(reason);
    return std::vector<DomainEvent>{skip};
  };

  // A text this re-drive does not send, never asked of the sender (a
  // missing push), is still pending where it was asked for: that system is
  // told it failed, whatever the reason (a deleted contact, a sender with
  // no connector, a changed number, an opt-out, its age). A dead-lettered
  // one was told when it died. Not when the sender holds it all the same,
  // and once per request.
  auto not_sent = [&](std::vector<DomainEvent> out) {
    if (asked.op != "send") return out;
    auto m = s.messages.find(asked.message_key);
    if (m != s.messages.end() && !m->second.delivery_decided &&
        !TargetHasMessage(s, asked.message_key, asked.system) &&
        reported->insert(asked.message_key).second) {
      for (auto& r : ReportTextNotSent(s, asked.message_key, "not sent: " + out[0].reason,
                                       replay_seq, "redrive", ctx))
        out.push_back(std::move(r));
    }
    return out;
  };

  if (!s.exists) return skipped("the contact does not exist");  // it has no texts
  if (s.deleted) return not_sent(skipped("the contact is deleted"));
  auto target = ctx.targets.find(asked.system);
  if (target == ctx.targets.end()) return not_sent(skipped(asked.system + " has no connector"));
  if (asked.op == "mark_dnc" && !ctx.marks_dnc.count(asked.system))
    return skipped(asked.system + " takes no do-not-contact marks");

  DomainEvent p = asked;
  p.type = std::string(ev::kPushRequested);
  p.contact_id = s.contact_id;
  p.webhook_seq = replay_seq;
  p.push_id = s.contact_id + ":" + asked.system + ":replay" + std::to_string(replay_seq) + ":" +
              std::to_string(index);
  // A conflict's opt-out re-driven still links no record; a new record's
  // still goes to that record, by its address as asked.
  const bool new_record = HasOptOutTag(asked, kNewRecordTag);
  if (LinksNoRecord(asked)) p.push_id.append(":opt_out").append(kLinksNoRecordTag);
  if (new_record) p.push_id.append(":opt_out").append(kNewRecordTag);
  p.attempt = 0;
  p.outcome.clear();
  p.http_status = 0;
  p.next_attempt_us = 0;
  p.detail = kRedriveDetailPrefix + item.cause;
  auto link = s.links.find(asked.system);
  if (link != s.links.end() && !new_record) p.external_id = link->second;

  if (asked.op == "upsert") {
    // What the target should hold now, less what it is known to hold (what
    // was on its way is what the replay is about: not counted as held).
    std::map<std::string, std::string> values;
    for (const auto& [f, a] : s.fields) values[f] = a.value;
    std::string key = KeyFieldMissing(ctx, asked.system, values);
    if (!key.empty()) return skipped(asked.system + " needs a " + key + "; the contact has none");
    p.fields = FieldsToPush(s, asked.system, target->second, values, s.known,
                            /*ignore_pending=*/true);
    if (p.fields.empty()) return skipped(asked.system + " already holds the contact's values");
    return {p};
  }
  if (asked.op == "opt_out" || asked.op == "opt_in") {
    const bool want_out = asked.op == "opt_out";
    // A one-flag target (Aloware's is_dnc) is decided on its whole flag,
    // whatever channels the push named (a reconcile's item names those out).
    auto group = ctx.channels.find(asked.system);
    const bool one_flag =
        ctx.one_flag.count(asked.system) && group != ctx.channels.end() && !group->second.empty();
    std::vector<std::string> named, still, moved;
    for (const auto& ch : SplitChannels(asked.channel))  // those it keeps (none listed: all)
      if (group == ctx.channels.end() || group->second.count(ch)) named.push_back(ch);
    if (one_flag) named.assign(group->second.begin(), group->second.end());
    for (const auto& ch : named) (IsOptedOut(s, ch) == want_out ? still : moved).push_back(ch);
    // An opt-in only while every channel it names is in (the flag: none of
    // it out); an opt-out while any is out, naming those (the flag whole).
    if (named.empty()) return skipped(asked.system + " keeps none of its channels");
    if (!moved.empty() && (!want_out || still.empty()))
      return skipped("the " + moved.front() + " channel is opted " + (want_out ? "in" : "out") +
                     " now");
    p.channel = JoinChannels(one_flag ? named : still);
    if (new_record) {  // its own record and address, as asked; unless it holds them now
      const std::set<std::string>* holds = ToldChannels(s, asked.system, asked.external_id);
      if (holds && std::all_of(still.begin(), still.end(),
                               [&](const std::string& ch) { return holds->count(ch) > 0; }))
        return skipped(asked.system + " record " + asked.external_id + " holds them already");
      return {p};
    }
    // Who it is now: a system finds every record of the person by these.
    for (const char* f : {fields::kPhone, fields::kEmail}) {
      auto cur = s.fields.find(f);
      if (cur != s.fields.end() && !cur->second.value.empty() && target->second.count(f))
        p.fields[f] = cur->second.value;
    }
    return {p};
  }
  if (asked.op == "send") {
    if (auto m = s.messages.find(asked.message_key);
        m != s.messages.end() && m->second.status == "withdrawn")
      return skipped("its campaign withdrew it before it was sent");
    // Only ever to the number it was asked for, and only if that is still
    // the contact's.
    auto phone = s.fields.find(fields::kPhone);
    std::string now = phone == s.fields.end() ? "" : phone->second.value;
    auto was = asked.fields.find(fields::kPhone);
    if (was != asked.fields.end() && was->second != now)
      return not_sent(skipped("the contact's number changed since the text was asked for"));
    if (!now.empty()) p.fields[fields::kPhone] = now;
    for (const auto& ch : SplitChannels(asked.channel.empty() ? "sms" : asked.channel)) {
      std::string erased;
      if (IsOptedOut(s, ch) || ErasedOptOut(s, ctx, ch, &erased)) {
        DomainEvent r = skip;
        r.type = std::string(ev::kMessageRefused);
        r.push_id.clear();
        r.channel = ch;
        r.reason = erased.empty() ? "the " + ch + " channel is opted out" : erased;
        return not_sent({r});
      }
    }
    if (TargetHasMessage(s, asked.message_key, asked.system))
      return skipped(asked.system + " already has the message");
    // Not a text that has gone stale: a person asked hours ago does not get
    // it now.
    if (TextTooOldToResend(item.asked_at_us, ctx.now_us, ctx.redrive_max_text_age_us)) {
      return not_sent(skipped("the text was first asked for " +
                              FormatAgeHoursMinutes(ctx.now_us - item.asked_at_us) +
                              " ago, longer than sync.redrive_max_text_age_h (" +
                              std::to_string(ctx.redrive_max_text_age_us / 3600000000) +
                              " h): not re-sent"));
    }
    // A send of it already on its way (an earlier request's re-drive, or
    // the first send still retrying) goes once: two requests planned
    // before either was in the log both pass the planner's check.
    for (const auto& [id, on_way] : s.pending_sends)
      if (on_way.system == asked.system && on_way.message_key == asked.message_key)
        return skipped("a send of the same text to " + asked.system + " is on its way (push " + id +
                       ")");
    if (!sending->insert(asked.system + "\n" + asked.message_key).second)
      return skipped("an earlier item of this request re-sends the same text");
    return {p};
  }
  if (asked.op == "message" || asked.op == "call" || asked.op == "message_status") {
    if (asked.op != "message_status" && TargetHasMessage(s, asked.message_key, asked.system))
      return skipped(asked.system + " already has the message");
    // A delivery told after the message was read would move it back (one
    // webhook's statuses, each missing, are re-driven in order: the read
    // goes).
    auto m = s.messages.find(asked.message_key);
    auto status = asked.fields.find("status");
    if (asked.op == "message_status" && status != asked.fields.end() &&
        status->second == "delivered" && m != s.messages.end() && m->second.status == "read")
      return skipped("the message was read since: its delivery is not told after that");
    return {p};
  }
  return {p};  // note, tags, lists, mark_dnc: as they were asked
}

}  // namespace

std::vector<DomainEvent> DecideRedrive(const ContactState& s,
                                       const std::vector<std::pair<uint64_t, RedriveItem>>& items,
                                       uint64_t replay_seq, const SyncContext& ctx) {
  if (replay_seq != 0 && replay_seq <= s.last_fact_seq) return {};  // decided already
  std::vector<DomainEvent> out;
  std::set<std::string> reported, sending;
  for (const auto& [index, item] : items)
    for (auto& e : DecideOne(s, item, replay_seq, index, ctx, &reported, &sending))
      out.push_back(std::move(e));
  return out;
}

}  // namespace dfm
