#include "sync/contact_model.h"

#include <algorithm>

#include "sync/consent.h"
#include "sync/model_internal.h"
#include "util/strings.h"

namespace dfm {

namespace model {

const Attributed* Current(const ContactState& s, const std::string& f) {
  auto it = s.fields.find(f);
  return it == s.fields.end() ? nullptr : &it->second;
}

const std::string* Lookup(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? nullptr : &it->second;
}

DomainEvent Base(std::string_view type, const ContactState& s, const ContactFact& fact) {
  DomainEvent e;
  e.type = std::string(type);
  e.contact_id = s.contact_id;
  e.system = fact.system;
  e.external_id = fact.external_id;
  e.webhook_seq = fact.webhook_seq;
  e.fact_index = fact.fact_index;
  return e;
}

}  // namespace model

using model::Base;
using model::Current;
using model::Lookup;
using model::RefusePendingSends;

namespace {

bool HasIdentity(const std::map<std::string, std::string>& f) {
  auto p = Lookup(f, fields::kPhone);
  auto e = Lookup(f, fields::kEmail);
  return (p && !p->empty()) || (e && !e->empty());
}

// push.requested for every target whose known values differ from `merged`
// (or that does not have the contact yet), the fact's own system included
// when one of its values lost.
void RequestPushes(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                   const std::map<std::string, std::string>& merged,
                   const std::map<std::string, std::map<std::string, std::string>>& known,
                   std::vector<DomainEvent>* out) {
  for (const auto& [target, accepted] : ctx.targets) {
    if (ctx.messages_only.count(target)) continue;  // it holds no contacts
    if (!KeyFieldMissing(ctx, target, merged).empty()) continue;
    std::map<std::string, std::string> diff =
        FieldsToPush(s, target, accepted, merged, known, /*ignore_pending=*/false);
    if (diff.empty()) continue;  // it holds (or is being sent) all it accepts
    DomainEvent p = Base(ev::kPushRequested, s, fact);
    p.system = target;
    auto link = s.links.find(target);
    p.external_id = link != s.links.end() ? link->second
                                          : (target == fact.system ? fact.external_id : "");
    p.op = "upsert";
    p.fields = std::move(diff);
    p.push_id = s.contact_id + ":" + target + ":" + FactTag(fact);
    out->push_back(std::move(p));
  }
}

}  // namespace

std::string KeyFieldMissing(const SyncContext& ctx, const std::string& target,
                            const std::map<std::string, std::string>& values) {
  auto key = ctx.key_field.find(target);
  if (key == ctx.key_field.end()) return "";
  const std::string* v = Lookup(values, key->second);
  return v && !v->empty() ? "" : key->second;
}

std::map<std::string, std::string> FieldsToPush(
    const ContactState& s, const std::string& target, const std::set<std::string>& accepted,
    const std::map<std::string, std::string>& values,
    const std::map<std::string, std::map<std::string, std::string>>& known, bool ignore_pending) {
  auto kit = known.find(target);
  auto pit = ignore_pending ? s.pending.end() : s.pending.find(target);  // on their way: held
  std::map<std::string, std::string> diff;
  for (const auto& [f, v] : values) {
    if (!accepted.count(f)) continue;
    // What the target will hold: a value on its way there, else what it
    // holds. (Not what it holds when another value is on its way: that
    // value lands after, and had left a newer one unsent; the simulation
    // found it, tests/sim seed 114.)
    const std::string* k = pit == s.pending.end() ? nullptr : Lookup(pit->second, f);
    if (!k) k = kit == known.end() ? nullptr : Lookup(kit->second, f);
    if (!k || *k != v) diff[f] = v;
  }
  if (diff.empty()) return diff;
  // The vendor matches (and the connector looks up) by phone and email:
  // always send them.
  for (const char* id : {fields::kPhone, fields::kEmail}) {
    auto m = Lookup(values, id);
    if (m && accepted.count(id)) diff[id] = *m;
  }
  return diff;
}

bool IsOptedOut(const ContactState& s, const std::string& channel) {
  auto it = s.consent.find(channel);
  return it != s.consent.end() && it->second.out;
}

namespace {

// Whether `channel` is opted out once the events decided so far apply.
bool OptedOut(const ContactState& s, const std::vector<DomainEvent>& decided,
              const std::string& channel, std::string* why) {
  bool out = IsOptedOut(s, channel);
  if (out && why) *why = channel + " opted out";
  for (const auto& e : decided) {
    if (e.type != ev::kOptedOut && e.type != ev::kOptedIn) continue;
    for (const auto& ch : SplitChannels(e.channel)) {
      if (ch != channel) continue;
      out = e.type == ev::kOptedOut;
      if (out && why) *why = channel + " opted out (" + e.reason + " via " + e.system + ")";
    }
  }
  return out;
}

}  // namespace

bool ErasedOptOut(const ContactState& s, const SyncContext& ctx, const std::string& channel,
                  std::string* why) {
  if (!ctx.erased_consent) return false;
  auto own = s.consent.find(channel);
  for (const char* f : {fields::kPhone, fields::kEmail}) {
    auto v = s.fields.find(f);
    if (v == s.fields.end() || v->second.value.empty()) continue;
    std::optional<ErasedConsent> c = ctx.erased_consent(v->second.value, channel);
    if (!c || !c->out) continue;
    // The contact's own opt-in after the erasure stands.
    if (own != s.consent.end() && own->second.at_us > c->at_us) continue;
    if (why) *why = channel + " opted out before an erasure (its " + f + "'s earlier owner)";
    return true;
  }
  return false;
}

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

// Tells ctx.conversations the status of a message it asked to send.
void ReportStatus(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                  const std::string& key, const std::string& ghl_id, const std::string& status,
                  const std::string& error, std::vector<DomainEvent>* out) {
  ReportStatusTo(s, fact, ctx, ctx.conversations, key, ghl_id, status, error, out);
}

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
  if (!why.empty() || OptedOut(s, *out, channel, &why) || ErasedOptOut(s, ctx, channel, &why) ||
      via.empty() || (!draft && !ctx.targets.count(via))) {
    DomainEvent r = Base(ev::kMessageRefused, s, fact);
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

void DecideActivity(const ContactState& s, const ContactFact& fact, const Activity& a,
                    const SyncContext& ctx, int64_t t, std::vector<DomainEvent>* out) {
  if (a.message_id.empty()) return;
  const std::string channel = !a.channel.empty()                ? a.channel
                              : a.kind == Activity::Kind::kCall ? channels::kCall
                                                                : channels::kSms;
  // What the engine knows of it: by the key carried back, else by this system's id.
  std::string key;
  const ContactState::MessageState* known = nullptr;
  if (!a.message_key.empty()) {
    if (auto it = s.messages.find(a.message_key); it != s.messages.end()) {
      key = a.message_key;
      known = &it->second;
    }
  }
  if (!known) {
    if (auto k = FindMessageKey(s, fact.system, a.message_id)) {
      key = *k;
      auto it = s.messages.find(key);
      if (it != s.messages.end()) known = &it->second;
    }
  }
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
  if (fact.system == ctx.conversations &&
      (a.kind == Activity::Kind::kText || a.kind == Activity::Kind::kCall)) {
    // Our own record coming back before the push's answer gave us its id.
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
      return;
    }
  }
  if (a.kind == Activity::Kind::kStatus && a.direction != "outbound") return;  // nothing to tie it to
  key = a.message_key.empty() ? fact.system + ":" + a.message_id : a.message_key;
  const bool seen = s.messages.count(key) > 0;
  DomainEvent m = Base(ev::kMessageLogged, s, fact);
  m.external_id = a.message_id;
  m.message_key = key;
  m.channel = channel;
  m.source_time_us = t;
  if (!a.direction.empty()) m.fields["direction"] = a.direction;
  if (!a.status.empty()) m.fields["status"] = a.status;
  if (a.duration_s >= 0) m.fields["duration_s"] = std::to_string(a.duration_s);
  if (!a.disposition.empty()) m.fields["disposition"] = a.disposition;
  if (a.kind == Activity::Kind::kSend) m.fields["status"] = "pending";
  if (!seen) out->push_back(m);

  if (a.kind == Activity::Kind::kSend) {
    DecideSend(s, fact, a, ctx, channel, key, t, out);
    return;
  }
  if (a.kind == Activity::Kind::kStatus) return;  // observed only: nothing to record elsewhere
  const std::string& target = ctx.conversations;
  if (target == fact.system || !ctx.targets.count(target)) return;
  DomainEvent p = MessagePush(s, fact, ctx, target, a.kind == Activity::Kind::kCall ? "call" : "message", key);
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

namespace model {

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

}  // namespace model

namespace {

// Tags -> lists: the lists of ctx.lists_target that the tags map to,
// before and after this fact.
void DecideLists(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                 const std::vector<DomainEvent>& decided, std::vector<DomainEvent>* out) {
  if (ctx.tag_lists.empty() || !ctx.targets.count(ctx.lists_target)) return;
  const Attributed* cur = Current(s, fields::kTags);
  std::string before = cur ? cur->value : "", after = before;
  bool changed = false;
  for (const auto& e : decided) {
    if (e.type == ev::kContactCreated) {
      if (auto t = Lookup(e.fields, fields::kTags)) after = *t, changed = true;
    } else if (e.type == ev::kContactChanged) {
      for (const auto& c : e.changes)
        if (c.field == fields::kTags) after = c.new_value, changed = true;
    }
  }
  if (!changed) return;
  auto lists = [&](const std::string& tags) {
    std::set<std::string> l;
    for (const auto& tag : SplitChannels(tags, '\n')) {
      auto it = ctx.tag_lists.find(tag);
      if (it != ctx.tag_lists.end()) l.insert(it->second);
    }
    return l;
  };
  std::set<std::string> was = lists(before), now = lists(after);
  // Never onto a dialer's list while the person is opted out of calls
  // (their own opt-out, as decided so far, or an erased earlier owner's of
  // the number): nothing is added, and a removal (which takes the contact
  // out of every list) writes nothing back.
  const bool no_calls =
      OptedOut(s, decided, channels::kCall, nullptr) || ErasedOptOut(s, ctx, channels::kCall, nullptr);
  if (no_calls) now.clear();
  std::vector<std::string> add, remove;
  for (const auto& l : now)
    if (!was.count(l)) add.push_back(l);
  for (const auto& l : was)
    if (!now.count(l)) remove.push_back(l);
  if (add.empty() && remove.empty()) return;
  DomainEvent p = MessagePush(s, fact, ctx, ctx.lists_target, "lists", "");
  p.message_key.clear();
  p.fields["lists_add"] = JoinChannels(add);
  p.fields["lists_remove"] = JoinChannels(remove);
  p.fields["lists_keep"] = JoinChannels(std::vector<std::string>(now.begin(), now.end()));
  p.push_id = s.contact_id + ":" + ctx.lists_target + ":" + FactTag(fact) + ":lists";
  out->push_back(std::move(p));
}

std::vector<DomainEvent> DecideContact(const ContactState& s, const ContactFact& fact,
                                       const SyncContext& ctx, int64_t t) {
  std::vector<DomainEvent> out;
  if (fact.kind == ContactFact::Kind::kDelete) {
    if (!s.exists || s.deleted) return out;
    DomainEvent d = Base(ev::kContactDeleted, s, fact);
    d.source_time_us = t;
    out.push_back(d);
    for (const auto& [system, ext] : s.links) {
      if (system == fact.system || !ctx.targets.count(system)) continue;
      DomainEvent p = Base(ev::kPushRequested, s, fact);
      p.system = system;
      p.external_id = ext;
      p.op = "mark_dnc";
      p.push_id = s.contact_id + ":" + system + ":" + FactTag(fact);
      p.reason = "deleted in " + fact.system;
      auto ph = Current(s, fields::kPhone);
      if (ph) p.fields[fields::kPhone] = ph->value;
      out.push_back(std::move(p));
    }
    return out;
  }

  if (!s.exists) {
    if (!HasIdentity(fact.fields)) {
      DomainEvent r = Base(ev::kFactRejected, s, fact);
      r.contact_id.clear();
      r.reason = "a contact needs a phone or an email; the fact has neither";
      out.push_back(std::move(r));
      return out;
    }
    DomainEvent c = Base(ev::kContactCreated, s, fact);
    c.source_time_us = t;
    c.fields = fact.fields;
    out.push_back(c);
    std::map<std::string, std::map<std::string, std::string>> known;
    known[fact.system] = fact.fields;
    RequestPushes(s, fact, ctx, fact.fields, known, &out);
    return out;
  }

  // An existing contact.
  bool new_link = false;
  if (!fact.external_id.empty()) {
    auto it = s.links.find(fact.system);
    new_link = it == s.links.end() || it->second != fact.external_id;
  }
  const ContactState::PushMemo* memo = nullptr;
  if (auto it = s.pushed.find(fact.system); it != s.pushed.end()) memo = &it->second;
  static const std::map<std::string, std::string> kEmpty;
  auto kit = s.known.find(fact.system);
  const auto& known_s = kit == s.known.end() ? kEmpty : kit->second;

  std::map<std::string, std::string> echoed;
  std::set<std::string> stale;  // fields the system itself has since changed again
  std::vector<FieldChange> changes;
  // Fields whose merged value this system set and now states again, later:
  // the value stands as of this time (ApplyContactEvent moves it on), so an
  // older edit of the system's arriving after it cannot replace it. Found
  // by the simulation (tests/sim, seed 93): Gus at 4, Gus at 9, then a late
  // Flo at 8 had ended as Flo.
  bool restated = false;
  std::vector<DomainEvent> conflicts;
  std::map<std::string, std::string> merged;
  for (const auto& [f, a] : s.fields) merged[f] = a.value;

  for (const auto& [f, v] : fact.fields) {
    if (const Attributed* m = Current(s, f);
        m && m->value == v && m->system == fact.system && t > m->source_time_us)
      restated = true;
    const std::string* k = Lookup(known_s, f);
    if (k && *k == v) continue;  // the system did not change it
    if (memo) {
      auto fit = memo->find(f);
      if (fit != memo->end()) {
        auto vit = fit->second.find(v);
        if (vit != fit->second.end() && ctx.now_us - vit->second <= ctx.policy.echo_window_us) {
          echoed[f] = v;
          continue;
        }
      }
    }
    const Attributed* cur = Current(s, f);
    if (cur && cur->value == v) continue;  // agrees with the merged value
    if (!cur && v.empty()) continue;       // empty where nothing is known: no change
    Attributed incoming{v, fact.system, t};
    auto owner_it = ctx.policy.owner.find(f);
    const std::string* owner = owner_it == ctx.policy.owner.end() ? nullptr : &owner_it->second;
    const std::string& field = f;  // a lambda may not capture a structured binding (C++17)
    auto conflict = [&](const Attributed& kept, const Attributed& lost, const char* rule) {
      DomainEvent c = Base(ev::kConflictRecorded, s, fact);
      c.field = field;
      c.kept = kept;
      c.lost = lost;
      c.rule = rule;
      conflicts.push_back(std::move(c));
    };
    if (owner && *owner != fact.system && cur && cur->system == *owner) {
      conflict(*cur, incoming, "owner");
      continue;
    }
    if (cur && cur->system == fact.system && cur->source_time_us > t) {
      // The system's own older edit arriving late (webhooks out of order),
      // owner or not: its newer value stands.
      conflict(*cur, incoming, "newer");
      stale.insert(f);
      continue;
    }
    if (owner && *owner == fact.system) {
      if (cur && cur->system != fact.system && cur->source_time_us > t) {
        conflict(incoming, *cur, "owner");
      }
    } else if (cur && cur->source_time_us > t) {
      conflict(*cur, incoming, "newer");
      if (cur->system == fact.system) stale.insert(f);
      continue;
    }
    changes.push_back({f, cur ? cur->value : std::string(), v});
    merged[f] = v;
  }

  if (!HasIdentity(merged)) {
    DomainEvent r = Base(ev::kFactRejected, s, fact);
    r.reason = "the change would leave the contact without a phone or an email";
    out.push_back(std::move(r));
    return out;
  }
  if (new_link) {
    DomainEvent l = Base(ev::kContactLinked, s, fact);
    l.via = fact.imported ? "import" : "webhook";
    l.fields = fact.fields;
    out.push_back(std::move(l));
  }
  if (!changes.empty() || (restated && echoed.empty())) {
    DomainEvent c = Base(ev::kContactChanged, s, fact);
    c.source_time_us = t;
    c.changes = changes;
    c.fields = fact.fields;  // what the system holds now
    out.push_back(std::move(c));
  } else if (!echoed.empty() && conflicts.empty()) {
    DomainEvent e = Base(ev::kEchoSuppressed, s, fact);
    e.fields = echoed;
    out.push_back(std::move(e));
  }
  for (auto& c : conflicts) out.push_back(std::move(c));

  if (!changes.empty() || !conflicts.empty() || new_link) {
    auto known = s.known;
    for (const auto& [f, v] : fact.fields)
      if (!stale.count(f)) known[fact.system][f] = v;
    RequestPushes(s, fact, ctx, merged, known, &out);
  }
  return out;
}

// Forgets the settled messages whose last event is older than the window
// (ContactState::message_memory_us).
void ForgetSettledMessages(ContactState* s, int64_t now_us) {
  s->next_forget_us = now_us + std::max<int64_t>(s->message_memory_us / 8, 60'000'000);
  std::set<std::string> busy;
  for (const auto& [id, send] : s->pending_sends) busy.insert(send.message_key);
  for (const auto& [id, rec] : s->pending_records) busy.insert(rec.message_key);
  const int64_t before = now_us - s->message_memory_us;
  for (auto it = s->messages.begin(); it != s->messages.end();) {
    if (it->second.last_us >= before || busy.count(it->first)) {
      ++it;
      continue;
    }
    for (const auto& [system, id] : it->second.ids) s->message_keys.erase(system + "\n" + id);
    it = s->messages.erase(it);
  }
}

// A text went out on `channel` at `at_us` (the confirmation a bare YES may
// answer).
void NoteOutbound(ContactState* s, const std::string& channel, int64_t at_us) {
  int64_t& last = s->last_outbound_us[channel];
  last = std::max(last, at_us);
}

}  // namespace

std::vector<DomainEvent> Decide(const ContactState& s, const ContactFact& fact,
                                const SyncContext& ctx) {
  if (fact.webhook_seq != 0 && (fact.webhook_seq < s.last_fact_seq ||
                                (fact.webhook_seq == s.last_fact_seq &&
                                 fact.fact_index <= s.last_fact_index)))
    return {};  // decided
  const int64_t t = fact.source_time_us ? fact.source_time_us
                                        : (fact.recorded_at_us ? fact.recorded_at_us : ctx.now_us);
  // A stranger's opt-in or flagged text is no reason to create a contact.
  bool consent_only = !s.exists && fact.kind == ContactFact::Kind::kUpsert &&
                      !fact.consents.empty() && fact.external_id.empty();
  for (const auto& [f, v] : fact.fields)
    if (f != fields::kPhone && f != fields::kEmail) consent_only = false;
  for (const Consent& c : fact.consents)
    if (c.change == Consent::Change::kOptOut) consent_only = false;
  // A stranger's delivery status is no reason either; a text or call is.
  bool status_only = !fact.activities.empty();
  for (const Activity& a : fact.activities)
    if (a.kind != Activity::Kind::kStatus) status_only = false;
  if (!s.exists && fact.kind == ContactFact::Kind::kUpsert && fact.external_id.empty() &&
      status_only) {
    bool only_ids = true;
    for (const auto& [f, v] : fact.fields)
      if (f != fields::kPhone && f != fields::kEmail) only_ids = false;
    if (only_ids && (fact.consents.empty() || consent_only)) consent_only = true;
  }
  std::vector<DomainEvent> out;
  if (!consent_only) out = DecideContact(s, fact, ctx, t);
  if (fact.kind != ContactFact::Kind::kUpsert) return out;
  for (const auto& e : out)
    if (e.type == ev::kFactRejected) return out;
  for (const Consent& c : fact.consents) {
    model::DecideConsent(s, fact, c, ctx, t, &out);
    model::DecideClassifierRequest(s, fact, c, ctx, t, &out);
  }
  DecideLists(s, fact, ctx, out, &out);  // after the fact's own opt-outs: it reads them
  if (s.exists || !consent_only)
    for (const Activity& a : fact.activities) DecideActivity(s, fact, a, ctx, t, &out);
  if (!consent_only) model::DecideEnrichmentRequest(s, fact, ctx, out, &out);
  return out;
}

std::vector<DomainEvent> DecideReport(const ContactState& s, const std::vector<DomainEvent>& report,
                                      const SyncContext& ctx) {
  std::vector<DomainEvent> out;
  for (const auto& e : report) {
    if (e.type == ev::kPushSucceeded && e.op == "enrich") model::DecideEnriched(s, e, ctx, &out);
    if (e.type == ev::kPushSucceeded && e.op == "classify") model::DecideClassified(s, e, ctx, &out);
    if (e.type == ev::kPushSucceeded && e.op == "opt_out") model::DecideReadAfterOptOut(s, e, ctx, &out);
    if (e.type == ev::kPushSucceeded && e.op == "read_consent") model::DecideReadBack(s, e, ctx, &out);
    if (e.type != ev::kPushDeadLettered || e.op != "send" || e.message_key.empty()) continue;
    if (e.outcome == kRecipientOptedOut)
      model::DecideCarrierOptOut(s, e, ctx, ctx.now_us, &out);
    // Each death is told once: the first send's report ends in ":dead",
    // a re-driven send's in ":dead:replay<seq>:<item>" (its own push id's
    // tail), so a text that dies again after a re-drive is reported again
    // rather than taken for the first report and deduplicated.
    std::string suffix = "dead";
    size_t redrive = e.push_id.find(":replay");
    if (redrive != std::string::npos) suffix += e.push_id.substr(redrive);
    for (auto& p : ReportTextNotSent(s, e.message_key, e.system + " did not send it: " + e.reason,
                                     0, suffix, ctx))
      out.push_back(std::move(p));
  }
  return out;
}

std::vector<DomainEvent> ReportTextNotSent(const ContactState& s, const std::string& message_key,
                                           const std::string& reason, uint64_t seq,
                                           const std::string& suffix, const SyncContext& ctx) {
  std::vector<DomainEvent> out;
  auto m = s.messages.find(message_key);
  if (m == s.messages.end() || m->second.origin != ctx.conversations) return out;
  auto asked = m->second.ids.find(ctx.conversations);
  if (asked == m->second.ids.end()) return out;
  ContactFact none;
  none.webhook_seq = seq;
  ReportStatus(s, none, ctx, message_key, asked->second, "failed", reason, &out);
  for (auto& p : out) p.push_id += ":" + suffix;
  return out;
}

namespace {
void ApplyEvent(ContactState* s, const DomainEvent& e, int64_t recorded_at_us);
}  // namespace

void Apply(ContactState* s, const DomainEvent& e, uint64_t seq, int64_t recorded_at_us) {
  if (seq != 0 && seq <= s->last_event_seq) return;
  if (seq != 0) s->last_event_seq = seq;
  if (s->message_memory_us > 0 && recorded_at_us >= s->next_forget_us && !s->messages.empty())
    ForgetSettledMessages(s, recorded_at_us);
  ApplyEvent(s, e, recorded_at_us);
  if (!e.message_key.empty()) {  // whatever the event did to it, it was about it now
    auto m = s->messages.find(e.message_key);
    if (m != s->messages.end()) m->second.last_us = std::max(m->second.last_us, recorded_at_us);
  }
}

namespace {

void ApplyEvent(ContactState* s, const DomainEvent& e, int64_t recorded_at_us) {
  const bool later = e.webhook_seq > s->last_fact_seq ||
                     (e.webhook_seq == s->last_fact_seq && e.fact_index > s->last_fact_index);
  if (later &&
      (e.type == ev::kContactCreated || e.type == ev::kContactChanged ||
       e.type == ev::kContactLinked || e.type == ev::kContactDeleted ||
       e.type == ev::kConflictRecorded || e.type == ev::kEchoSuppressed ||
       e.type == ev::kPushRequested || e.type == ev::kFactRejected ||
       e.type == ev::kOptedOut || e.type == ev::kOptedIn || e.type == ev::kOptOutFlagged ||
       e.type == ev::kConsentConflict ||
       e.type == ev::kMessageLogged || e.type == ev::kMessageStatus ||
       e.type == ev::kMessageRefused || e.type == ev::kRedriveSkipped)) {
    s->last_fact_seq = e.webhook_seq;
    s->last_fact_index = e.fact_index;
  }
  if (s->contact_id.empty()) s->contact_id = e.contact_id;
  if (e.type == ev::kContactCreated) {
    s->exists = true;
    s->deleted = false;
    for (const auto& [f, v] : e.fields) s->fields[f] = Attributed{v, e.system, e.source_time_us};
    if (!e.external_id.empty()) s->links[e.system] = e.external_id;
    for (const auto& [f, v] : e.fields) s->known[e.system][f] = v;
  } else if (e.type == ev::kContactChanged) {
    s->exists = true;
    s->deleted = false;
    for (const auto& c : e.changes)
      s->fields[c.field] = Attributed{c.new_value, e.system, e.source_time_us};
    for (const auto& [f, v] : e.fields) {
      s->known[e.system][f] = v;
      // The system's own value stated again later stands as of then.
      auto it = s->fields.find(f);
      if (it != s->fields.end() && it->second.value == v && it->second.system == e.system &&
          e.source_time_us > it->second.source_time_us)
        it->second.source_time_us = e.source_time_us;
    }
    if (!e.changes.empty()) s->pushed.erase(e.system);  // a real edit ends the echo window
  } else if (e.type == ev::kContactLinked) {
    s->links[e.system] = e.external_id;
    for (const auto& [f, v] : e.fields) s->known[e.system][f] = v;
  } else if (e.type == ev::kContactDeleted) {
    s->deleted = true;
  } else if (e.type == ev::kConflictRecorded) {
    // The losing system still holds its value, unless it lost to its own
    // newer value (an out-of-order webhook).
    if (e.kept.system != e.lost.system && !e.lost.system.empty())
      s->known[e.lost.system][e.field] = e.lost.value;
  } else if (e.type == ev::kEchoSuppressed) {
    for (const auto& [f, v] : e.fields) s->known[e.system][f] = v;
  } else if (e.type == ev::kMessageLogged || e.type == ev::kMessageStatus) {
    auto& m = s->messages[e.message_key];
    if (m.origin.empty()) m.origin = e.system;
    if (!e.channel.empty()) m.channel = e.channel;
    if (auto d = e.fields.find("direction"); d != e.fields.end()) m.direction = d->second;
    if (auto st = e.fields.find("status"); st != e.fields.end()) m.status = st->second;
    if (!e.outcome.empty()) m.status = e.outcome;
    if (e.type == ev::kMessageLogged && m.direction == "outbound" && !m.channel.empty())
      NoteOutbound(s, m.channel, e.source_time_us ? e.source_time_us : recorded_at_us);
    if (!e.external_id.empty()) {
      m.ids[e.system] = e.external_id;
      s->message_keys[e.system + "\n" + e.external_id] = e.message_key;
    }
  } else if (e.type == ev::kMessageRefused) {
    s->messages[e.message_key].status = "refused";
    s->messages[e.message_key].delivery_decided = true;
    if (!e.push_id.empty()) s->pending_sends.erase(e.push_id);
  } else if (e.type == ev::kPushRequested && (e.op == "note" || e.op == "tags") &&
             !e.message_key.empty()) {
    auto& m = s->messages[e.message_key];
    auto f = e.fields.find(e.op == "note" ? "body" : "tags_add");
    (e.op == "note" ? m.note : m.tag) = f == e.fields.end() ? "" : f->second;
  } else if (e.type == ev::kPushRequested && (e.op == "message" || e.op == "call")) {
    auto body = e.fields.find("body");
    auto dir = e.fields.find("direction");
    s->pending_records[e.push_id] = {e.message_key, e.op,
                                     dir == e.fields.end() ? "inbound" : dir->second,
                                     body == e.fields.end() ? "" : body->second};
  } else if (e.type == ev::kPushRequested && e.op == "send") {
    s->pending_sends[e.push_id] = {e.message_key, e.channel, e.system};
    s->messages[e.message_key].delivery_decided = true;
  } else if (e.type == ev::kPushRequested && e.op == "message_status" && !e.message_key.empty()) {
    // Reported failed (a re-drive's text not sent): not reported again.
    const std::string* status = Lookup(e.fields, "status");
    if (status && *status == "failed") s->messages[e.message_key].delivery_decided = true;
  } else if ((e.type == ev::kPushSucceeded || e.type == ev::kPushDeadLettered) &&
             (IsMessageOp(e.op) || e.op == "note" || e.op == "tags" || e.op == "lists")) {
    s->pending_sends.erase(e.push_id);
    s->pending_records.erase(e.push_id);
    if (e.type == ev::kPushSucceeded && e.op == "send")
      NoteOutbound(s, e.channel.empty() ? channels::kSms : e.channel, recorded_at_us);
    if (e.type == ev::kPushSucceeded && IsMessageOp(e.op) && !e.message_key.empty() &&
        !e.external_id.empty()) {
      auto& m = s->messages[e.message_key];
      m.ids[e.system] = e.external_id;
      s->message_keys[e.system + "\n" + e.external_id] = e.message_key;
    }
  } else if (e.type == ev::kPushRequested && e.op == "enrich") {
    s->enrich_requested_us = std::max(s->enrich_requested_us, recorded_at_us);
  } else if ((e.type == ev::kPushSucceeded || e.type == ev::kPushDeadLettered) &&
             IsAnswerOp(e.op)) {
    // What it answered is recorded by contact.enriched (consent.classified),
    // not held as a system's copy of the contact.
  } else if (e.type == ev::kPushAttempted && e.outcome == "refused") {
    // An opt-out the system refused: a repeated STOP asks again (consent rules).
    auto pend = s->pending_consent.find(e.system);
    if (pend != s->pending_consent.end())
      for (auto& [ch, p] : pend->second)
        if (p.push_id == e.push_id) p.refused = true;
  } else if (e.type == ev::kPushRequested && (e.op == "opt_out" || e.op == "opt_in")) {
    for (const auto& ch : SplitChannels(e.channel))
      s->pending_consent[e.system][ch] = {e.op == "opt_out", e.push_id};
  } else if (e.type == ev::kPushRequested) {
    if (e.op == "upsert") {
      auto& memo = s->pushed[e.system];
      for (const auto& [f, v] : e.fields) memo[f][v] = recorded_at_us;
      // Forget pushes older than any sensible echo window (a day).
      constexpr int64_t kDayUs = 24LL * 3600 * 1000000;
      for (auto& [f, values] : memo) {
        for (auto it = values.begin(); it != values.end();)
          it = it->second < recorded_at_us - kDayUs ? values.erase(it) : std::next(it);
      }
      for (const auto& [f, v] : e.fields) s->pending[e.system][f] = v;
    }
  } else if (e.type == ev::kOptedOut || e.type == ev::kOptedIn ||
             e.type == ev::kConsentConflict) {
    model::ApplyConsentStatement(s, e);
  } else if (e.type == ev::kPushDeadLettered) {
    s->pushed.erase(e.system);  // it never arrived: the values may be sent again
    s->pending.erase(e.system);
    if (e.op == "opt_out" || e.op == "opt_in") model::SettleConsentPush(s, e, nullptr);
  } else if (e.type == ev::kPushSucceeded) {
    if (!e.external_id.empty()) s->links[e.system] = e.external_id;
    if (e.op == "opt_out" || e.op == "opt_in") {
      ContactState::HeldConsent held{e.op == "opt_out", recorded_at_us};
      model::SettleConsentPush(s, e, &held);
    }
    auto& pending = s->pending[e.system];
    for (const auto& [f, v] : e.fields) {
      s->known[e.system][f] = v;
      auto it = pending.find(f);
      if (it != pending.end() && it->second == v) pending.erase(it);
    }
    if (pending.empty()) s->pending.erase(e.system);
  }
}

}  // namespace

}  // namespace dfm
