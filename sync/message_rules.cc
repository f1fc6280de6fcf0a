// Message and call rules of one contact (sync/contact_model.h): the texts
// and calls a fact carries to the other systems, the statuses reported
// back to the conversation, and the sends an opt-out refuses. Pure, like
// the rest of the model.
#include <algorithm>

#include "sync/consent.h"
#include "sync/model_internal.h"
#include "util/strings.h"

namespace dfm::model {

namespace {

// Whether the engine opened the contact's conversation in `system`: it
// recorded a message of theirs there, or asked to and has no answer yet
// (an agent or a bot may reply before our push's answer arrives; the
// person's id reached that system only through that push).
bool RecordedThere(const ContactState& s, const std::string& system) {
  for (const auto& [key, m] : s.messages)
    if (m.origin != system && m.ids.count(system)) return true;
  const std::string in_flight = s.contact_id + ":" + system + ":message:";  // MessagePush's id
  for (const auto& [push_id, rec] : s.pending_records)
    if (rec.op == "message" && push_id.compare(0, in_flight.size(), in_flight) == 0) return true;
  return false;
}

const std::string* FindMessageKey(const ContactState& s, const std::string& system,
                                  const std::string& id) {
  return Lookup(s.message_keys, system + "\n" + id);
}

}  // namespace

// A push of a message op to `target`, identified by the message key.
DomainEvent MessagePush(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                        const std::string& target, const std::string& op,
                        const std::string& key) {
  DomainEvent p = Base(ev::kPushRequested, s, fact);
  p.system = target;
  auto link = s.links.find(target);
  p.external_id = link != s.links.end() ? link->second : "";
  p.op = op;
  p.message_key = key;
  auto accepted = ctx.targets.find(target);
  for (const char* f : {fields::kPhone, fields::kEmail}) {
    auto v = Current(s, f);
    std::string val = v ? v->value : "";
    if (auto fv = Lookup(fact.fields, f); fv && !fv->empty()) val = *fv;
    if (!val.empty() && accepted != ctx.targets.end() && accepted->second.count(f))
      p.fields[f] = val;
  }
  p.push_id = s.contact_id + ":" + target + ":" + op + ":" + key;
  return p;
}

namespace {

// GoHighLevel's words for a delivery status it can be told; empty: none.
std::string ConversationStatus(const std::string& status) {
  if (status == "delivered" || status == "read") return status;
  if (status == "failed" || status == "undelivered" || status == "refused") return "failed";
  return "";
}

// Tells `target` the status of a message it holds as `their_id`.
void ReportStatusTo(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                    const std::string& target, const std::string& key,
                    const std::string& their_id, const std::string& status,
                    const std::string& error, std::vector<DomainEvent>* out) {
  std::string word = ConversationStatus(status);
  if (word.empty() || their_id.empty() || !ctx.targets.count(target)) return;
  DomainEvent p = MessagePush(s, fact, ctx, target, "message_status", key);
  p.fields["message_id"] = their_id;
  p.fields["status"] = word;
  if (!error.empty()) p.fields["error"] = error;
  p.push_id += ":" + word + ":" + FactTag(fact);
  out->push_back(std::move(p));
}

}  // namespace

// Tells ctx.conversations the status of a message it asked to send.
void ReportStatus(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                  const std::string& key, const std::string& ghl_id, const std::string& status,
                  const std::string& error, std::vector<DomainEvent>* out) {
  ReportStatusTo(s, fact, ctx, ctx.conversations, key, ghl_id, status, error, out);
}

namespace {

// A call's note (recording, transcript, summary) and disposition tag for
// ctx.conversations, unless `known` shows them already asked for (a call
// restated by a later webhook adds only what is new).
void CallExtras(const ContactState& s, const ContactFact& fact, const Activity& a,
                const SyncContext& ctx, const std::string& key,
                const ContactState::MessageState* known, std::vector<DomainEvent>* out) {
  const std::string& target = ctx.conversations;
  if (target == fact.system || !ctx.targets.count(target)) return;
  std::string note;
  if (!a.recording_url.empty()) note += "Call recording: " + a.recording_url + "\n";
  if (!a.transcript.empty()) note += "Transcript:\n" + a.transcript + "\n";
  if (!a.summary.empty()) note += "Summary:\n" + a.summary + "\n";
  if (!note.empty() && (!known || known->note != note)) {
    DomainEvent n = MessagePush(s, fact, ctx, target, "note", key);
    n.fields["body"] = note;
    if (known) n.push_id += ":" + FactTag(fact);
    out->push_back(std::move(n));
  }
  if (a.disposition.empty()) return;
  std::string tag = ctx.disposition_tag_prefix + a.disposition;
  AsciiLowerInPlace(&tag);
  if (known && known->tag == tag) return;
  DomainEvent tg = MessagePush(s, fact, ctx, target, "tags", key);
  tg.fields["tags_add"] = tag;
  if (known) tg.push_id += ":" + FactTag(fact);
  out->push_back(std::move(tg));
}

// Another word on a message the engine knows (`known`, its `key`): a
// status or this system's id of it, told to the systems that want it.
void DecideKnownMessage(const ContactState& s, const ContactFact& fact, const Activity& a,
                        const SyncContext& ctx, const std::string& key,
                        const ContactState::MessageState* known, int64_t t,
                        std::vector<DomainEvent>* out) {
  bool linked = known->ids.count(fact.system) && known->ids.at(fact.system) == a.message_id;
  bool new_status = !a.status.empty() && a.status != known->status;
  if (!linked || new_status) {
    DomainEvent m = Base(ev::kMessageStatus, s, fact);
    m.external_id = a.message_id;
    m.message_key = key;
    m.channel = known->channel;
    m.outcome = a.status.empty() ? known->status : a.status;
    m.source_time_us = t;
    if (!a.error.empty()) m.reason = a.error;
    out->push_back(m);
    const std::string why = !a.error.empty() ? a.error : a.status == "failed" ? "delivery failed" : "";
    if (new_status && known->origin == ctx.conversations && fact.system != ctx.conversations) {
      auto ghl = known->ids.find(ctx.conversations);
      if (ghl != known->ids.end())
        ReportStatus(s, fact, ctx, key, ghl->second, a.status, why, out);
    }
    // The conversations system read (or failed) a message that came from
    // another system that takes receipts (WhatsApp's read receipts).
    if (new_status && fact.system == ctx.conversations && known->origin != fact.system &&
        known->direction == "inbound" && ctx.takes_receipts.count(known->origin)) {
      auto theirs = known->ids.find(known->origin);
      if (theirs != known->ids.end())
        ReportStatusTo(s, fact, ctx, known->origin, key, theirs->second, a.status, why, out);
    }
  }
  if (a.kind == Activity::Kind::kCall && known->origin == fact.system)
    CallExtras(s, fact, a, ctx, key, known, out);
}

// A request to deliver `a` (its message `key`, on `channel`): the push to
// the system that delivers it, or message.refused saying why not.
void DecideSend(const ContactState& s, const ContactFact& fact, const Activity& a,
                const SyncContext& ctx, const std::string& channel, const std::string& key,
                int64_t t, std::vector<DomainEvent>* out) {
  std::string why;
  // A delivery request is not timed or signed for one contact: it is sent
  // only for a contact the asking system had made known to the engine
  // before it (linked, by that id when the request names one); a
  // campaign's send names its contact by the engine's own id
  // (kCampaignSystem).
  auto link = s.links.find(fact.system);
  const bool by_conversation =
      link == s.links.end() && ctx.messages_only.count(fact.system) &&
      RecordedThere(s, fact.system);
  if (!by_conversation && fact.system != kCampaignSystem &&
      (link == s.links.end() || (!fact.external_id.empty() && link->second != fact.external_id))) {
    why = fact.system + " asked to deliver a text to a contact it had not made known to the "
          "engine before: not sent";
  }
  // Who delivers it: a text the tenant's sender; an email its mailer; a
  // call (a place on a dialer's list for a human agent) its dialer; a
  // campaign's request to draft a text (campaigns/task.h, channel
  // "draft") its classifier model, which holds no contacts.
  const bool email = channel == channels::kEmail, call = channel == channels::kCall;
  const bool draft = channel == channels::kDraft;
  if (draft && fact.system != kCampaignSystem) why = "only a campaign asks for a draft";
  const std::string& via = draft ? ctx.classifier : email ? ctx.mailer : call ? ctx.dialer : ctx.sender;
  // (OptedOut may say why before it finds an opt-in decided with the
  // send: its words count only when it refuses.)
  std::string consent_why;
  const bool consent = why.empty() && (OptedOut(s, *out, channel, &consent_why) ||
                                       ErasedOptOut(s, ctx, channel, &consent_why));
  if (consent) why = consent_why;
  if (!why.empty() || via.empty() || (!draft && !ctx.targets.count(via))) {
    DomainEvent r = Base(ev::kMessageRefused, s, fact);
    if (!consent) r.rule = std::string(kNotDeliverableRule);
    r.system = via;
    r.external_id.clear();
    r.message_key = key;
    r.channel = channel;
    r.reason = !why.empty() ? why
               : via.empty()
                   ? std::string("no system plays the ") +
                         (draft ? "classifier" : email ? "mailer" : call ? "dialer" : "sender") +
                         " role"
                   : via + " is not configured to deliver " +
                         (email ? "emails" : call ? "calls" : "texts");
    r.source_time_us = t;
    out->push_back(r);
    if (fact.system == ctx.conversations)
      ReportStatus(s, fact, ctx, key, a.message_id, "refused", r.reason, out);
    return;
  }
  DomainEvent p = MessagePush(s, fact, ctx, via, "send", key);
  p.fields["body"] = a.body;
  if (!a.media.empty()) p.fields["media"] = a.media;
  if (!a.subject.empty()) p.fields["subject"] = a.subject;
  if (!a.list_unsubscribe.empty()) p.fields["list_unsubscribe"] = a.list_unsubscribe;
  p.channel = channel;
  out->push_back(std::move(p));
}

// A campaign's withdrawal of its send `key` (Activity::kWithdraw): each
// push of it still on its way refused, so that its connector drops it.
void WithdrawSend(const ContactState& s, const ContactFact& fact, const Activity& a,
                  const std::string& key, int64_t t, std::vector<DomainEvent>* out) {
  for (const auto& [push_id, send] : s.pending_sends) {
    if (send.message_key != key) continue;
    DomainEvent r = Base(ev::kMessageRefused, s, fact);
    r.system = send.system;
    r.external_id.clear();
    r.message_key = key;
    r.channel = send.channel;
    r.push_id = push_id;
    r.source_time_us = t;
    r.reason =
        std::string(kWithdrawnReason) + " (" + (a.status.empty() ? "no reason" : a.status) + ")";
    out->push_back(std::move(r));
  }
}

// What the engine knows of the activity's message: by the key carried
// back, else by this system's id; null (and *key empty) when nothing.
const ContactState::MessageState* KnownMessage(const ContactState& s, const ContactFact& fact,
                                               const Activity& a, std::string* key) {
  if (!a.message_key.empty()) {
    if (auto it = s.messages.find(a.message_key); it != s.messages.end()) {
      *key = a.message_key;
      return &it->second;
    }
  }
  if (auto k = FindMessageKey(s, fact.system, a.message_id)) {
    *key = *k;
    auto it = s.messages.find(*key);
    if (it != s.messages.end()) return &it->second;
  }
  return nullptr;
}

// Our own record in the conversations system coming back before the
// push's answer gave us its id: its message's status, with the id; false
// when the activity is none of ours.
bool TieOwnRecord(const ContactState& s, const ContactFact& fact, const Activity& a,
                  const SyncContext& ctx, int64_t t, std::vector<DomainEvent>* out) {
  if (fact.system != ctx.conversations ||
      (a.kind != Activity::Kind::kText && a.kind != Activity::Kind::kCall))
    return false;
  const std::string op = a.kind == Activity::Kind::kCall ? "call" : "message";
  for (const auto& [push_id, rec] : s.pending_records) {
    if (rec.op != op || rec.direction != (a.direction.empty() ? "inbound" : a.direction)) continue;
    if (op == "message" && rec.body != a.body) continue;
    bool taken = false;  // by an earlier activity of this fact
    for (const auto& e : *out)
      if (e.type == ev::kMessageStatus && e.message_key == rec.message_key) taken = true;
    if (taken || s.messages.count(rec.message_key) == 0 ||
        s.messages.at(rec.message_key).ids.count(fact.system))
      continue;
    DomainEvent m = Base(ev::kMessageStatus, s, fact);
    m.external_id = a.message_id;
    m.message_key = rec.message_key;
    m.channel = s.messages.at(rec.message_key).channel;
    m.outcome = a.status.empty() ? s.messages.at(rec.message_key).status : a.status;
    m.source_time_us = t;
    out->push_back(m);
    return true;
  }
  return false;
}

// A message the engine has not seen, logged under `key` (a send asked of
// the engine: pending until its push succeeds).
void LogNewMessage(const ContactState& s, const ContactFact& fact, const Activity& a,
                   const std::string& channel, const std::string& key, int64_t t,
                   std::vector<DomainEvent>* out) {
  if (s.messages.count(key) > 0) return;
  DomainEvent m = Base(ev::kMessageLogged, s, fact);
  m.external_id = a.message_id;
  m.message_key = key;
  m.channel = channel;
  m.source_time_us = t;
  if (!a.direction.empty()) m.fields["direction"] = a.direction;
  if (!a.status.empty()) m.fields["status"] = a.status;
  if (a.duration_s >= 0) m.fields["duration_s"] = std::to_string(a.duration_s);
  if (!a.disposition.empty()) m.fields["disposition"] = a.disposition;
  if (a.kind == Activity::Kind::kSend) {
    m.fields["status"] = "pending";
    m.op = "send";  // asked of the engine: it goes out only when its push succeeds
  }
  out->push_back(m);
}

// A text or call from another system, recorded on the conversations
// system's conversation (a call with its note and tags).
void RecordInConversations(const ContactState& s, const ContactFact& fact, const Activity& a,
                           const SyncContext& ctx, const std::string& channel,
                           const std::string& key, int64_t t, std::vector<DomainEvent>* out) {
  const std::string& target = ctx.conversations;
  if (target == fact.system || !ctx.targets.count(target)) return;
  DomainEvent p =
      MessagePush(s, fact, ctx, target, a.kind == Activity::Kind::kCall ? "call" : "message", key);
  p.channel = channel;
  p.fields["direction"] = a.direction.empty() ? "inbound" : a.direction;
  p.fields["date_us"] = std::to_string(t);
  if (!a.our_number.empty()) p.fields["our_number"] = a.our_number;
  if (!a.status.empty()) p.fields["status"] = a.status;
  if (a.kind == Activity::Kind::kText) {
    p.fields["body"] = a.body;
    if (!a.media.empty()) p.fields["media"] = a.media;
    out->push_back(std::move(p));
    return;
  }
  if (a.duration_s >= 0) p.fields["duration_s"] = std::to_string(a.duration_s);
  if (!a.recording_url.empty()) p.fields["recording_url"] = a.recording_url;
  out->push_back(std::move(p));
  CallExtras(s, fact, a, ctx, key, nullptr, out);
}

}  // namespace

void DecideActivity(const ContactState& s, const ContactFact& fact, const Activity& a,
                    const SyncContext& ctx, int64_t t, std::vector<DomainEvent>* out) {
  if (a.message_id.empty()) return;
  if (a.kind == Activity::Kind::kWithdraw) {
    if (fact.system == kCampaignSystem)
      WithdrawSend(s, fact, a, fact.system + ":" + a.message_id, t, out);
    return;
  }
  const std::string channel = !a.channel.empty()                ? a.channel
                              : a.kind == Activity::Kind::kCall ? channels::kCall
                                                                : channels::kSms;
  std::string key;
  const ContactState::MessageState* known = KnownMessage(s, fact, a, &key);
  // The same message decided earlier in this fact's events (a repeated id).
  for (const auto& e : *out)
    if (e.type == ev::kMessageLogged && e.system == fact.system && e.external_id == a.message_id)
      return;
  if (known && a.kind == Activity::Kind::kSend && !known->delivery_decided) {
    known = nullptr;  // seen (GoHighLevel's OutboundMessage came first), not yet sent
    key.clear();
  }
  if (known) {
    DecideKnownMessage(s, fact, a, ctx, key, known, t, out);
    return;
  }
  if (TieOwnRecord(s, fact, a, ctx, t, out)) return;
  if (a.kind == Activity::Kind::kStatus && a.direction != "outbound")
    return;  // nothing to tie it to
  key = a.message_key.empty() ? fact.system + ":" + a.message_id : a.message_key;
  LogNewMessage(s, fact, a, channel, key, t, out);
  if (a.kind == Activity::Kind::kSend) {
    DecideSend(s, fact, a, ctx, channel, key, t, out);
    return;
  }
  if (a.kind == Activity::Kind::kStatus) return;  // observed only: nothing to record elsewhere
  RecordInConversations(s, fact, a, ctx, channel, key, t, out);
}

// An opt-out refuses the sends still on their way to its channels.
void RefusePendingSends(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                       const std::vector<std::string>& chans, const DomainEvent& opt_out,
                       std::vector<DomainEvent>* out) {
  for (const auto& [push_id, send] : s.pending_sends) {
    if (std::find(chans.begin(), chans.end(), send.channel) == chans.end()) continue;
    DomainEvent r = Base(ev::kMessageRefused, s, fact);
    r.contact_id = opt_out.contact_id;
    r.system = send.system;
    r.external_id.clear();
    r.message_key = send.message_key;
    r.channel = send.channel;
    r.push_id = push_id;
    r.source_time_us = opt_out.source_time_us;
    r.reason = send.channel + " opted out (" + opt_out.reason + " via " + opt_out.system +
               ") before the text was sent";
    out->push_back(r);
    auto m = s.messages.find(send.message_key);
    if (m == s.messages.end() || m->second.origin != ctx.conversations) continue;
    auto ghl = m->second.ids.find(ctx.conversations);
    if (ghl != m->second.ids.end())
      ReportStatus(s, fact, ctx, send.message_key, ghl->second, "refused", r.reason, out);
  }
}

void DecideFoundAnew(const ContactState& s, const DomainEvent& ok, const SyncContext& ctx,
                     std::vector<DomainEvent>* out) {
  if (!IsMessageOp(ok.op) && ok.op != "note" && ok.op != "tags") return;
  const std::string* found = Lookup(ok.fields, "answer.contact_id");
  const std::string* gone = Lookup(ok.fields, "answer.gone");
  if (!found || !gone || found->empty() || *found == *gone) return;
  // Linked anew since the push was asked for (an upsert's answer, a
  // webhook): that link stands.
  const std::string* link = Lookup(s.links, ok.system);
  if (!link || *link != *gone) return;
  // A phone or email two people share: the record may be the other's.
  if (ctx.record_holder) {
    const std::string holder = ctx.record_holder(ok.system, *found);
    if (!holder.empty() && holder != s.contact_id) return;
  }
  DomainEvent l;
  l.type = std::string(ev::kContactLinked);
  l.contact_id = s.contact_id;
  l.system = ok.system;
  l.external_id = *found;
  l.via = "search";
  l.source_time_us = ctx.now_us;
  l.detail = "the record linked before answered not found";
  out->push_back(std::move(l));
}

}  // namespace dfm::model
