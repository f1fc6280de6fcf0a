// Apply: a contact's state after one of its events (sync/contact_model.h).
// The same fold runs live, on a contact actor's recovery and in replay.
#include <algorithm>
#include <set>

#include "sync/consent.h"
#include "sync/contact_model.h"
#include "sync/model_internal.h"
#include "util/strings.h"

namespace dfm {

using model::Lookup;

namespace {

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

// Whether an outbound message in this status went out (or may have: one
// seen with no status, or with one this does not know): not one still
// "pending" (GoHighLevel's OutboundMessage of a text it asks its provider,
// the engine, to send: it goes out only if that send does, which notes it
// then), nor one that failed (any vendor's "...failed" words), never left
// or was refused. A YES after a confirmation that was only pending does not
// lift a held opt-out: the person can still send START.
bool WentOut(const std::string& status) {
  if (status == "pending" || status.find("fail") != std::string::npos) return false;
  for (const char* never :
       {"undelivered", "expired", "rejected", "refused", "withdrawn", "canceled", "cancelled"})
    if (status == never) return false;
  return true;
}

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

// Contact events: what the contact is, holds and links.
bool ApplyContactEvent(ContactState* s, const DomainEvent& e) {
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
    // A real edit ends the echo window of the fields it changed: pushes of
    // other fields on their way may still echo.
    if (auto memo = s->pushed.find(e.system); memo != s->pushed.end()) {
      for (const auto& c : e.changes) memo->second.erase(c.field);
      if (memo->second.empty()) s->pushed.erase(memo);
    }
  } else if (e.type == ev::kContactLinked) {
    if (e.via == "search") {
      // Another record than the one the engine wrote to (a merge's
      // survivor): what it holds is not known, so the contact's next
      // change writes every field there, and nothing of it is an echo.
      s->known.erase(e.system);
      s->pushed.erase(e.system);
    }
    s->links[e.system] = e.external_id;
    for (const auto& [f, v] : e.fields) s->known[e.system][f] = v;
  } else if (e.type == ev::kContactDeleted) {
    s->deleted = true;
    s->deleted_at_us = e.source_time_us;
    s->deleted_in = e.system;
    s->deleted_record = e.external_id;
  } else if (e.type == ev::kConflictRecorded) {
    // The losing system still holds its value, unless it lost to its own
    // newer value (an out-of-order webhook).
    if (e.kept.system != e.lost.system && !e.lost.system.empty())
      s->known[e.lost.system][e.field] = e.lost.value;
  } else if (e.type == ev::kEchoSuppressed) {
    for (const auto& [f, v] : e.fields) s->known[e.system][f] = v;
  } else {
    return false;
  }
  return true;
}

// Message events: a message's record and its ids in each system.
bool ApplyMessageEvent(ContactState* s, const DomainEvent& e, int64_t recorded_at_us) {
  if (e.type == ev::kMessageLogged || e.type == ev::kMessageStatus) {
    auto& m = s->messages[e.message_key];
    if (m.origin.empty()) m.origin = e.system;
    if (!e.channel.empty()) m.channel = e.channel;
    if (auto d = e.fields.find("direction"); d != e.fields.end()) m.direction = d->second;
    if (auto st = e.fields.find("status"); st != e.fields.end()) m.status = st->second;
    if (!e.outcome.empty()) m.status = e.outcome;
    // A text seen going out; not a send asked of the engine (op "send"),
    // which goes out only when its push succeeds (noted then), if ever.
    if (e.type == ev::kMessageLogged && e.op != "send" && m.direction == "outbound" &&
        !m.channel.empty() && WentOut(m.status))
      NoteOutbound(s, m.channel, e.source_time_us ? e.source_time_us : recorded_at_us);
    if (!e.external_id.empty()) {
      m.ids[e.system] = e.external_id;
      s->message_keys[e.system + "\n" + e.external_id] = e.message_key;
    }
  } else if (e.type == ev::kMessageRefused) {
    // A withdrawn send is never sent again, not even by a re-drive (redrive.h).
    s->messages[e.message_key].status = IsWithdrawal(e) ? "withdrawn" : "refused";
    s->messages[e.message_key].delivery_decided = true;
    if (!e.push_id.empty()) s->pending_sends.erase(e.push_id);
  } else {
    return false;
  }
  return true;
}

// push.requested: what is on its way to a system, by operation.
void ApplyPushRequested(ContactState* s, const DomainEvent& e, int64_t recorded_at_us) {
  if ((e.op == "note" || e.op == "tags") && !e.message_key.empty()) {
    auto& m = s->messages[e.message_key];
    auto f = e.fields.find(e.op == "note" ? "body" : "tags_add");
    (e.op == "note" ? m.note : m.tag) = f == e.fields.end() ? "" : f->second;
  } else if (e.op == "message" || e.op == "call") {
    auto body = e.fields.find("body");
    auto dir = e.fields.find("direction");
    s->pending_records[e.push_id] = {e.message_key, e.op,
                                     dir == e.fields.end() ? "inbound" : dir->second,
                                     body == e.fields.end() ? "" : body->second};
  } else if (e.op == "send") {
    s->pending_sends[e.push_id] = {e.message_key, e.channel, e.system};
    s->messages[e.message_key].delivery_decided = true;
  } else if (e.op == "message_status" && !e.message_key.empty()) {
    // Reported failed (a re-drive's text not sent): not reported again.
    const std::string* status = Lookup(e.fields, "status");
    if (status && *status == "failed") s->messages[e.message_key].delivery_decided = true;
  } else if (e.op == "enrich") {
    s->enrich_requested_us = std::max(s->enrich_requested_us, recorded_at_us);
  } else if (e.op == "opt_out" || e.op == "opt_in") {
    for (const auto& ch : SplitChannels(e.channel))
      s->pending_consent[e.system][ch] = {e.op == "opt_out", e.push_id};
  } else if (e.op == "upsert") {
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
}

// push.succeeded or push.dead_lettered: what the push's end settles.
// A succeeded consent push: the records it set and their channels
// (ContactState::told).
void NoteToldRecords(ContactState* s, const DomainEvent& e) {
  const std::vector<std::string> chans = SplitChannels(e.channel);
  if (e.op == "opt_in") {  // lifted there
    for (const auto& ch : chans) model::ForgetTold(s, e.system, ch);
    return;
  }
  if (e.op != "opt_out" || LinksNoRecord(e) || chans.empty()) return;  // a conflict's: others'
  auto note = [&](const std::string& id) {
    if (!id.empty()) s->told[e.system][id].insert(chans.begin(), chans.end());
  };
  note(e.external_id);
  if (auto ids = e.fields.find("answer.ids"); ids != e.fields.end())
    for (const auto& id : SplitChannels(ids->second)) note(id);
}

// A dead-lettered upsert: the values it carried (e.fields) are no longer
// on their way to its system, so they may be sent again; other pushes'
// stay. The echo memory (pushed) keeps them for its window: an upsert
// still on its way may carry the same value (phone and email ride on
// every one), and its echo must not be taken for an edit newer than the
// contact's. One that names none (written before dead letters carried
// them) forgets every value of its system, as it did.
void ForgetUpsert(ContactState* s, const DomainEvent& e) {
  if (e.fields.empty()) {
    s->pushed.erase(e.system);
    s->pending.erase(e.system);
    return;
  }
  auto pending = s->pending.find(e.system);
  if (pending == s->pending.end()) return;
  for (const auto& [f, v] : e.fields) {
    auto it = pending->second.find(f);
    if (it != pending->second.end() && it->second == v) pending->second.erase(it);
  }
  if (pending->second.empty()) s->pending.erase(pending);
}

void ApplyPushEnded(ContactState* s, const DomainEvent& e, int64_t recorded_at_us) {
  const bool succeeded = e.type == ev::kPushSucceeded;
  if (IsMessageOp(e.op) || e.op == "note" || e.op == "tags" || e.op == "lists") {
    s->pending_sends.erase(e.push_id);
    s->pending_records.erase(e.push_id);
    if (succeeded && e.op == "send")
      NoteOutbound(s, e.channel.empty() ? channels::kSms : e.channel, recorded_at_us);
    if (succeeded && IsMessageOp(e.op) && !e.message_key.empty() && !e.external_id.empty()) {
      auto& m = s->messages[e.message_key];
      m.ids[e.system] = e.external_id;
      s->message_keys[e.system + "\n" + e.external_id] = e.message_key;
    }
  } else if (IsAnswerOp(e.op)) {
    // What it answered is recorded by contact.enriched (consent.classified),
    // not held as a system's copy of the contact.
  } else if (!succeeded) {
    // An upsert never arrived: its values may be sent again. A mark's or a
    // consent push's end says nothing of the upserts on their way there.
    if (e.op == "upsert") ForgetUpsert(s, e);
    if (e.op == "opt_out" || e.op == "opt_in") model::SettleConsentPush(s, e, nullptr);
  } else {
    // A conflict's push links nothing; a new record's was linked by its
    // webhook or the answer that named it (its re-drive, later, must not
    // move the link back).
    if (!e.external_id.empty() && !LinksNoRecord(e) && !HasOptOutTag(e, kNewRecordTag) &&
        !MarksRecordAfterDeletion(e))
      s->links[e.system] = e.external_id;
    NoteToldRecords(s, e);
    if (e.op == "opt_out" || e.op == "opt_in") {
      ContactState::HeldConsent held{e.op == "opt_out", recorded_at_us};
      // A conflict's opt-out push set the contact's own record only where
      // it has one there; else it set others', which says nothing of it.
      const bool own = !LinksNoRecord(e) || s->links.count(e.system);
      model::SettleConsentPush(s, e, own ? &held : nullptr);
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

void ApplyEvent(ContactState* s, const DomainEvent& e, int64_t recorded_at_us) {
  const bool later = e.webhook_seq > s->last_fact_seq ||
                     (e.webhook_seq == s->last_fact_seq && e.fact_index > s->last_fact_index);
  if (later && (e.type == ev::kContactCreated || e.type == ev::kContactChanged ||
                e.type == ev::kContactLinked || e.type == ev::kContactDeleted ||
                e.type == ev::kConflictRecorded || e.type == ev::kEchoSuppressed ||
                e.type == ev::kPushRequested || e.type == ev::kFactRejected ||
                e.type == ev::kOptedOut || e.type == ev::kOptedIn || e.type == ev::kOptOutFlagged ||
                e.type == ev::kConsentConflict || e.type == ev::kConsentKnown ||
                e.type == ev::kMessageLogged || e.type == ev::kMessageStatus ||
                e.type == ev::kMessageRefused || e.type == ev::kRedriveSkipped)) {
    s->last_fact_seq = e.webhook_seq;
    s->last_fact_index = e.fact_index;
  }
  if (s->contact_id.empty()) s->contact_id = e.contact_id;
  if (ApplyContactEvent(s, e) || ApplyMessageEvent(s, e, recorded_at_us)) return;
  if (e.type == ev::kPushRequested) {
    ApplyPushRequested(s, e, recorded_at_us);
  } else if (e.type == ev::kPushSucceeded || e.type == ev::kPushDeadLettered) {
    ApplyPushEnded(s, e, recorded_at_us);
  } else if (e.type == ev::kPushAttempted && e.outcome == "refused") {
    // An opt-out the system refused: a repeated STOP asks again (consent rules).
    auto pend = s->pending_consent.find(e.system);
    if (pend != s->pending_consent.end())
      for (auto& [ch, p] : pend->second)
        if (p.push_id == e.push_id) p.refused = true;
  } else if (e.type == ev::kOptedOut || e.type == ev::kOptedIn || e.type == ev::kConsentConflict ||
             e.type == ev::kConsentKnown) {
    model::ApplyConsentStatement(s, e);
  }
}

}  // namespace

}  // namespace dfm
