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

// One item of a re-drive request, decided against the contact's state:
// the push asked again, a skip saying why not, and for a text not sent a
// report to the system that asked for it.
class OneRedrive {
 public:
  // `reported`: the texts this request already reported failed, `sending`
  // those it already re-sends (two items may name one text, e.g. a dead
  // letter and its earlier re-drive's; all are decided against the same
  // state, so only the first of them is sent).
  OneRedrive(const ContactState& s, const RedriveItem& item, uint64_t replay_seq,
             const SyncContext& ctx, std::set<std::string>* reported,
             std::set<std::string>* sending)
      : s_(s),
        item_(item),
        asked_(item.push),
        replay_seq_(replay_seq),
        ctx_(ctx),
        reported_(reported),
        sending_(sending) {
    skip_.type = std::string(ev::kRedriveSkipped);
    skip_.contact_id = s.contact_id.empty() ? item.contact_id : s.contact_id;
    skip_.system = asked_.system;
    skip_.op = asked_.op;
    skip_.push_id = asked_.push_id;
    skip_.message_key = asked_.message_key;
    skip_.detail = kRedriveDetailPrefix + item.cause;
    skip_.webhook_seq = replay_seq;
  }

  std::vector<DomainEvent> Decide(uint64_t index) {
    if (!s_.exists) return Skipped("the contact does not exist");  // it has no texts
    // A deleted contact's opt-outs still land, and its marks are what its
    // deletion asked for; nothing else of it goes. A mark of a contact
    // that came back since would block a live one.
    const bool consent_or_mark = asked_.op == "opt_out" || asked_.op == "mark_dnc";
    if (s_.deleted && !consent_or_mark) return NotSent(Skipped("the contact is deleted"));
    if (!s_.deleted && asked_.op == "mark_dnc") return Skipped("the contact is not deleted now");
    target_ = ctx_.targets.find(asked_.system);
    if (target_ == ctx_.targets.end()) return NotSent(Skipped(asked_.system + " has no connector"));
    if (asked_.op == "mark_dnc" && !ctx_.marks_dnc.count(asked_.system))
      return Skipped(asked_.system + " takes no do-not-contact marks");
    AskAgain(index);
    if (asked_.op == "upsert") return Upsert();
    if (asked_.op == "opt_out" || asked_.op == "opt_in") return Consent();
    if (asked_.op == "send") return Send();
    if (asked_.op == "message" || asked_.op == "call" || asked_.op == "message_status")
      return Message();
    return {p_};  // note, tags, lists, mark_dnc: as they were asked
  }

 private:
  std::vector<DomainEvent> Skipped(std::string reason) {
    skip_.reason = std::move(reason);
    return {skip_};
  }

  // A text this re-drive does not send, never asked of the sender (a
  // missing push), is still pending where it was asked for: that system is
  // told it failed, whatever the reason (a deleted contact, a sender with
  // no connector, a changed number, an opt-out, its age). A dead-lettered
  // one was told when it died. Not when the sender holds it all the same,
  // and once per request.
  std::vector<DomainEvent> NotSent(std::vector<DomainEvent> out) {
    if (asked_.op != "send") return out;
    auto m = s_.messages.find(asked_.message_key);
    if (m != s_.messages.end() && !m->second.delivery_decided &&
        !TargetHasMessage(s_, asked_.message_key, asked_.system) &&
        reported_->insert(asked_.message_key).second) {
      for (auto& r : ReportTextNotSent(s_, asked_.message_key, "not sent: " + out[0].reason,
                                       replay_seq_, "redrive", ctx_))
        out.push_back(std::move(r));
    }
    return out;
  }

  // p_: the push as asked, under a push id of this request's, linked as
  // the contact is now.
  void AskAgain(uint64_t index) {
    p_ = asked_;
    p_.type = std::string(ev::kPushRequested);
    p_.contact_id = s_.contact_id;
    p_.webhook_seq = replay_seq_;
    p_.push_id = s_.contact_id + ":" + asked_.system + ":replay" + std::to_string(replay_seq_) +
                 ":" + std::to_string(index);
    // A conflict's opt-out re-driven still links no record; a new record's
    // still goes to that record, by its address as asked.
    new_record_ = HasOptOutTag(asked_, kNewRecordTag);
    if (LinksNoRecord(asked_)) p_.push_id.append(":opt_out").append(kLinksNoRecordTag);
    if (new_record_) p_.push_id.append(":opt_out").append(kNewRecordTag);
    // A mark is of the record its deletion named (or one linked after it):
    // that record still, never the link of now, and its answer links
    // nothing (MarksRecordAfterDeletion).
    if (asked_.op == "mark_dnc") {
      new_record_ = true;
      p_.push_id.append(":mark_dnc").append(kNewRecordTag);
    }
    p_.attempt = 0;
    p_.outcome.clear();
    p_.http_status = 0;
    p_.next_attempt_us = 0;
    p_.detail = kRedriveDetailPrefix + item_.cause;
    auto link = s_.links.find(asked_.system);
    if (link != s_.links.end() && !new_record_) p_.external_id = link->second;
  }

  std::vector<DomainEvent> Upsert() {
    // What the target should hold now, less what it is known to hold (what
    // was on its way is what the replay is about: not counted as held).
    std::map<std::string, std::string> values;
    for (const auto& [f, a] : s_.fields) values[f] = a.value;
    std::string key = KeyFieldMissing(ctx_, asked_.system, values);
    if (!key.empty()) return Skipped(asked_.system + " needs a " + key + "; the contact has none");
    p_.fields = FieldsToPush(s_, asked_.system, target_->second, values, s_.known,
                             /*ignore_pending=*/true);
    if (p_.fields.empty()) return Skipped(asked_.system + " already holds the contact's values");
    return {p_};
  }

  std::vector<DomainEvent> Consent() {
    const bool want_out = asked_.op == "opt_out";
    // A one-flag target (Aloware's is_dnc) is decided on its whole flag,
    // whatever channels the push named (a reconcile's item names those out).
    auto group = ctx_.channels.find(asked_.system);
    const bool one_flag = ctx_.one_flag.count(asked_.system) && group != ctx_.channels.end() &&
                          !group->second.empty();
    std::vector<std::string> named, still, moved;
    for (const auto& ch : SplitChannels(asked_.channel))  // those it keeps (none listed: all)
      if (group == ctx_.channels.end() || group->second.count(ch)) named.push_back(ch);
    if (one_flag) named.assign(group->second.begin(), group->second.end());
    for (const auto& ch : named) (IsOptedOut(s_, ch) == want_out ? still : moved).push_back(ch);
    // An opt-in only while every channel it names is in (the flag: none of
    // it out); an opt-out while any is out, naming those (the flag whole).
    if (named.empty()) return Skipped(asked_.system + " keeps none of its channels");
    if (!moved.empty() && (!want_out || still.empty()))
      return Skipped("the " + moved.front() + " channel is opted " + (want_out ? "in" : "out") +
                     " now");
    p_.channel = JoinChannels(one_flag ? named : still);
    if (new_record_) {  // its own record and address, as asked; unless it holds them now
      const std::set<std::string>* holds = ToldChannels(s_, asked_.system, asked_.external_id);
      if (holds && std::all_of(still.begin(), still.end(),
                               [&](const std::string& ch) { return holds->count(ch) > 0; }))
        return Skipped(asked_.system + " record " + asked_.external_id + " holds them already");
      return {p_};
    }
    // Who it is now: a system finds every record of the person by these.
    for (const char* f : {fields::kPhone, fields::kEmail}) {
      auto cur = s_.fields.find(f);
      if (cur != s_.fields.end() && !cur->second.value.empty() && target_->second.count(f))
        p_.fields[f] = cur->second.value;
    }
    return {p_};
  }

  std::vector<DomainEvent> Send() {
    if (auto m = s_.messages.find(asked_.message_key);
        m != s_.messages.end() && m->second.status == "withdrawn")
      return Skipped("its campaign withdrew it before it was sent");
    // Only ever to the number it was asked for, and only if that is still
    // the contact's.
    auto phone = s_.fields.find(fields::kPhone);
    std::string now = phone == s_.fields.end() ? "" : phone->second.value;
    auto was = asked_.fields.find(fields::kPhone);
    if (was != asked_.fields.end() && was->second != now)
      return NotSent(Skipped("the contact's number changed since the text was asked for"));
    if (!now.empty()) p_.fields[fields::kPhone] = now;
    for (const auto& ch : SplitChannels(asked_.channel.empty() ? "sms" : asked_.channel)) {
      std::string erased;
      if (IsOptedOut(s_, ch) || ErasedOptOut(s_, ctx_, ch, &erased)) {
        DomainEvent r = skip_;
        r.type = std::string(ev::kMessageRefused);
        r.push_id.clear();
        r.channel = ch;
        r.reason = erased.empty() ? "the " + ch + " channel is opted out" : erased;
        return NotSent({r});
      }
    }
    if (TargetHasMessage(s_, asked_.message_key, asked_.system))
      return Skipped(asked_.system + " already has the message");
    // Not a text that has gone stale: a person asked hours ago does not get
    // it now.
    if (TextTooOldToResend(item_.asked_at_us, ctx_.now_us, ctx_.redrive_max_text_age_us)) {
      return NotSent(Skipped(
          "the text was first asked for " + FormatAgeHoursMinutes(ctx_.now_us - item_.asked_at_us) +
          " ago, longer than sync.redrive_max_text_age_h (" +
          std::to_string(ctx_.redrive_max_text_age_us / 3600000000) + " h): not re-sent"));
    }
    // A send of it already on its way (an earlier request's re-drive, or
    // the first send still retrying) goes once: two requests planned
    // before either was in the log both pass the planner's check.
    for (const auto& [id, on_way] : s_.pending_sends)
      if (on_way.system == asked_.system && on_way.message_key == asked_.message_key)
        return Skipped("a send of the same text to " + asked_.system + " is on its way (push " +
                       id + ")");
    if (!sending_->insert(asked_.system + "\n" + asked_.message_key).second)
      return Skipped("an earlier item of this request re-sends the same text");
    return {p_};
  }

  // A message, a call or a message's status told to a system again.
  std::vector<DomainEvent> Message() {
    if (asked_.op != "message_status" && TargetHasMessage(s_, asked_.message_key, asked_.system))
      return Skipped(asked_.system + " already has the message");
    // A delivery told after the message was read would move it back (one
    // webhook's statuses, each missing, are re-driven in order: the read
    // goes).
    auto m = s_.messages.find(asked_.message_key);
    auto status = asked_.fields.find("status");
    if (asked_.op == "message_status" && status != asked_.fields.end() &&
        status->second == "delivered" && m != s_.messages.end() && m->second.status == "read")
      return Skipped("the message was read since: its delivery is not told after that");
    return {p_};
  }

  const ContactState& s_;
  const RedriveItem& item_;
  const DomainEvent& asked_;
  const uint64_t replay_seq_;
  const SyncContext& ctx_;
  std::set<std::string>* reported_;
  std::set<std::string>* sending_;
  DomainEvent skip_;  // a skip's fields but its reason
  DomainEvent p_;     // the push asked again (AskAgain)
  bool new_record_ = false;
  std::map<std::string, std::set<std::string>>::const_iterator target_;
};

}  // namespace

std::vector<DomainEvent> DecideRedrive(const ContactState& s,
                                       const std::vector<std::pair<uint64_t, RedriveItem>>& items,
                                       uint64_t replay_seq, const SyncContext& ctx) {
  if (replay_seq != 0 && replay_seq <= s.last_fact_seq) return {};  // decided already
  std::vector<DomainEvent> out;
  std::set<std::string> reported, sending;
  for (const auto& [index, item] : items)
    for (auto& e : OneRedrive(s, item, replay_seq, ctx, &reported, &sending).Decide(index))
      out.push_back(std::move(e));
  return out;
}

}  // namespace dfm
