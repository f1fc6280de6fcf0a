// Domain events: the decisions the engine makes, appended to the log beside
// the webhooks that caused them. Their payload is one JSON object whose keys
// depend on the type; docs/event-format.md ("domain events") lists them.
// Every type is at schema version 1.
//
// One struct serves every type (only the members a type uses are encoded):
// the decisions are few and small, and one codec keeps `dfm events show`,
// projections and the actors reading the same bytes the same way.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "util/status.h"

namespace dfm {

namespace ev {
// Contact stream ("contact:<id>").
inline constexpr std::string_view kContactCreated = "contact.created";
inline constexpr std::string_view kContactChanged = "contact.changed";
inline constexpr std::string_view kContactLinked = "contact.linked";
inline constexpr std::string_view kContactDeleted = "contact.deleted";
inline constexpr std::string_view kConflictRecorded = "contact.conflict_recorded";
inline constexpr std::string_view kEchoSuppressed = "contact.echo_suppressed";
inline constexpr std::string_view kPushRequested = "push.requested";
inline constexpr std::string_view kPushAttempted = "push.attempted";
// Written by the connector, durable before the first request of a push
// that could be carried out twice (a text: VendorClient::MayApplyTwice),
// once per push and generation (idempotency key "r/<push id>/sending",
// then ".../sending/<g>"). A run that finds it already written (a restart
// re-drove the push) does not send: the earlier run may have, unanswered;
// the push is dead-lettered instead, unless a push.held of that
// generation says it never went (then the next generation is recorded).
inline constexpr std::string_view kPushSending = "push.sending";
// Written by the connector when a send recorded by push.sending is held
// before its request (an operator's pause, an open breaker), or every
// request of it was answered "not done" (a 429, a refused token, a known
// passing refusal, the vendor's own word: PushResult::not_done) or never
// left (not_sent) and it will be tried again; reason says which. Key "r/<push id>/held/<g>": no
// request under that generation was or will be carried out.
inline constexpr std::string_view kPushHeld = "push.held";
inline constexpr std::string_view kPushSucceeded = "push.succeeded";
inline constexpr std::string_view kPushDeadLettered = "push.dead_lettered";
// Source streams ("source:<system>"): facts that reached no contact.
inline constexpr std::string_view kFactRejected = "fact.rejected";
inline constexpr std::string_view kIdentityConflict = "identity.conflict";
// A person settled an identity.conflict (sync/settle.h): contact_id is the
// candidate chosen (empty: dismissed), reason their note; system,
// external_id, candidates, fields and webhook_seq are the conflict's.
inline constexpr std::string_view kIdentitySettled = "identity.settled";
inline constexpr std::string_view kWebhookQuarantined = "webhook.quarantined";
// A message or call on the contact's conversation in one system:
// external_id is that system's id of it, message_key the engine's id of the
// message (one message, the same key in every system it reaches), channel
// "sms" or "call", fields its attributes (direction, status, duration,
// disposition; never the text, which stays in the webhook and the push).
inline constexpr std::string_view kMessageLogged = "message.logged";
// A later delivery status of a logged message, as `system` reported it:
// outcome is the status ("delivered", "failed"), external_id that system's
// message id, message_key the engine's key.
inline constexpr std::string_view kMessageStatus = "message.status";
// A text the engine would have sent to an opted-out number, refused:
// message_key, system (where it would have been sent), channel, reason
// (which opt-out), and push_id when a send already requested was cancelled
// (the opt-out came while it waited: the push is settled by this event).
// A campaign's withdrawal of its send (Activity::kWithdraw) is one too,
// its reason beginning kWithdrawnReason: no consent refusal.
inline constexpr std::string_view kMessageRefused = "message.refused";
// A person opted out of (or back into) a channel: fields hold the phone
// and/or email it applies to, channel the channels ("sms", "call",
// "email"; several joined by ','), system where it came from, external_id
// the message or record that carried it, reason what it was (e.g.
// "keyword STOP", "dndSettings.SMS", "is_dnc"), actor who made it
// ("person", "staff", "carrier"; absent on events written before actors
// were recorded: read as "person"), detail "permanent" for an opt-out the
// system holds as permanent. An opted_out on a channel already out records
// a stronger holder (the person's own STOP after a staff DND) or a
// permanent mark, and is pushed nowhere.
inline constexpr std::string_view kOptedOut = "contact.opted_out";
inline constexpr std::string_view kOptedIn = "contact.opted_in";
// A staff or system opt-in refused because the person's (or the carrier's)
// opt-out holds (docs/sync-rules.md, "Who may undo an opt-out"): system
// and actor who tried, channel, reason what they did ("dndSettings",
// "is_dnc"), external_id their record, source_time_us when, detail which
// opt-out holds. Followed by an opt_out push that sets it again there; for
// a person to look at (dfm audit conflicts).
inline constexpr std::string_view kConsentConflict = "consent.conflict";
// What a system's own record now holds, and nothing more: a snapshot (a
// one-flag system's cleared flag, Aloware's is_dnc) showing a channel in
// that the engine knew held out there though the person never opted it
// out (the flag was set for another channel). system, channel,
// source_time_us, reason and external_id as above. Not a consent
// statement: the channel's state, the audit and the opt-out registry are
// unchanged; the system's next setting of the flag then reads as the
// change it is (docs/sync-rules.md).
inline constexpr std::string_view kConsentKnown = "consent.known";
// A text that contains an opt-out word but is not one ("stop by at 3pm?"),
// or a bare YES that answers no confirmation while an opt-out holds:
// flagged for a person, not acted on. channel, system, external_id (the
// message id), reason ("contains STOP") and fields (the phone) as above.
inline constexpr std::string_view kOptOutFlagged = "contact.opt_out_flagged";
// What the enrichment system (SyncContext::enrichment) answered about the
// contact (docs/sync-rules.md, "Enrichment"): system, push_id (the enrich
// push it answers), fields the values it answered (sync/fact.h names)
// and what was asked (asked.<field>), detail the system's own words,
// outcome "matched" or "no match". The empty fields it fills follow as
// contact.changed.
inline constexpr std::string_view kContactEnriched = "contact.enriched";
// The classifier's verdict on a flagged text (docs/classifier.md): system,
// push_id (the classify push it answers), message_key and external_id the
// text's message id, channel the flagged channels, fields verdict,
// confidence, model, prompt_version and min_confidence, outcome "opt_out"
// (applied: a contact.opted_out with reason "classifier" follows) or
// "flagged" (left for a person).
inline constexpr std::string_view kConsentClassified = "consent.classified";
// A push a replay asked to re-drive that the contact's state no longer
// calls for (sync/redrive.h): system, op, push_id (the push it re-drives,
// if any), reason, detail ("replay of <event id>").
inline constexpr std::string_view kRedriveSkipped = "push.redrive_skipped";
}  // namespace ev

// A field's value as the merge sees it: who said it and when.
struct Attributed {
  std::string value;
  std::string system;
  int64_t source_time_us = 0;
  bool operator==(const Attributed& o) const {
    return value == o.value && system == o.system && source_time_us == o.source_time_us;
  }
};

struct FieldChange {
  std::string field;
  std::string old_value;
  std::string new_value;
  bool operator==(const FieldChange& o) const {
    return field == o.field && old_value == o.old_value && new_value == o.new_value;
  }
};

struct DomainEvent {
  std::string type;
  std::string contact_id;
  std::string system;       // the system the event is about
  std::string external_id;  // that system's id of the contact
  int64_t source_time_us = 0;
  std::map<std::string, std::string> fields;  // values: created, pushed, echoed, rejected
  std::vector<FieldChange> changes;           // contact.changed
  // contact.conflict_recorded: the field, the value kept and the one that
  // lost, and the rule that chose ("owner" or "newer").
  std::string field;
  Attributed kept, lost;
  std::string rule;
  std::string reason;  // rejections, quarantines, dead letters
  std::string via;     // contact.linked: "webhook", "import" (dfm backfill), "search"
  // message.logged, and push.succeeded of a message (external_id is then
  // the message's id in the target system, not the contact's).
  std::string message_key;
  std::string channel;  // contact.opted_out / opted_in
  std::string actor;    // contact.opted_out / opted_in, consent.conflict
  // identity.conflict / identity.settled: contact ids and the key that
  // matched each
  std::vector<std::pair<std::string, std::string>> candidates;
  // push.*
  std::string push_id;
  // "upsert", "mark_dnc", "opt_out", "opt_in" (channel says which); message
  // ops (IsMessageOp): "send", "message", "call", "message_status"; and
  // "note", "tags" (a call's note and disposition tag), "lists" (tag lists)
  std::string op;
  int priority = 0;  // higher first; opt-outs are 10, ordinary syncs 0
  int attempt = 0;
  std::string outcome;  // push.attempted: "ok", "retry", "failed"; message.status: the status
  int http_status = 0;
  std::string detail;
  int64_t next_attempt_us = 0;
  // The webhook that the decision answers (webhook.quarantined, etc.).
  uint64_t webhook_seq = 0;
  // Which of that webhook's facts it answers (ContactFact::fact_index).
  uint32_t fact_index = 0;

  bool operator==(const DomainEvent& o) const;
};

// The idempotency key system of the engine's own events: decisions, the
// router's records, settlements (sync/settle.h).
inline constexpr char kDecisionKeySystem[] = "dfm";

std::string EncodeDomainEvent(const DomainEvent& e);
// InvalidArgument/Corruption on malformed payloads (*out is then empty, as
// a default DomainEvent); `type` comes from the envelope. Decodes into *out
// in place, reusing its buffers.
Status DecodeDomainEvent(std::string_view type, std::string_view payload, DomainEvent* out);
bool IsDomainEventType(std::string_view type);
// Every domain event type this build knows.
const std::vector<std::string_view>& DomainEventTypes();
// Decodes `e` when it is a domain event whose payload reads; false otherwise.
// Faster when e.payload has kDecodePadding bytes of capacity to spare.
bool AsDomainEvent(const Event& e, DomainEvent* out);
inline constexpr size_t kDecodePadding = 64;

// A draft ready for EventLog::AppendAsync.
EventDraft ToDraft(const DomainEvent& e, const std::string& tenant, const std::string& stream,
                   const EventId& causation, const EventId& correlation);

// Pushes that write a message, call or delivery status rather than the
// contact: their push.succeeded external_id is the message's id in the
// target (message_key names it), and they change neither links nor what
// the target holds. ("note", "tags" and "lists" change neither either.)
// When what `d` states happened: the source's time when known, else when
// `e` was recorded.
inline int64_t HappenedAt(const Event& e, const DomainEvent& d) {
  return d.source_time_us ? d.source_time_us : e.recorded_at_us;
}

// push.dead_lettered's outcome for a mark withdrawn at the start, never
// sent again (WithdrawnAtStart, sync/contact_model.h): settled, not given
// up after retries.
inline constexpr std::string_view kWithdrawnOutcome = "withdrawn";

// Whether a push of `op` is a consent push: an opt-out, an opt-in or a
// do-not-contact mark. These are the ones an erasure keeps: the contact
// actor still orders them, the connectors keep them through the
// erasure's cancel, and an erasure waits for them to land (app/erase.h).
inline bool IsConsentOp(std::string_view op) {
  return op == "opt_out" || op == "opt_in" || op == "mark_dnc";
}

// Whether `e` ends a push: it succeeded, was dead-lettered, or was refused
// before it went out (a send to a number opted out since it was requested).
inline bool SettlesPush(const DomainEvent& e) {
  return e.type == ev::kPushSucceeded || e.type == ev::kPushDeadLettered ||
         (e.type == ev::kMessageRefused && !e.push_id.empty());
}

// A consent push to an identity conflict's duplicate record's system
// (sync/consent_pushes.cc, PushToDuplicatesSystem) ends its push id with this, after the op. Its
// answer links no record: neither the record it names nor those it set
// (answer.ids) become the contact's, so the duplicate stays the conflict
// it is until somebody settles it.
inline constexpr std::string_view kLinksNoRecordTag = ":duplicate";
// Whether `e` (a push event) is such a push, or one decided from its
// answer: its id is "<contact>:<system>:<fact tag>:opt_out:duplicate", or
// a re-drive's "<contact>:<system>:replay<seq>:<i>:opt_out:duplicate",
// then anything later decisions add (":read", ":reapply"). Read by place,
// so that no vendor's text in an id can pass for it.
bool LinksNoRecord(const DomainEvent& e);
// A consent push to a record a fact newly linked (sync/consent_pushes.cc,
// PushToNewRecord) ends its push id with this, after the op; one to a
// record a push's answer named (PushToRecordMade) has it after the op,
// then ":<that push's id>". A re-drive of either goes to that record and
// address still (sync/redrive.cc). A mark_dnc of a record linked after
// the contact's deletion carries it the same way (MarksRecordAfterDeletion).
inline constexpr std::string_view kNewRecordTag = ":record";
// Whether `e`'s push id carries `tag` (kLinksNoRecordTag, kNewRecordTag)
// after its op opt_out, read by place as LinksNoRecord says.
bool HasOptOutTag(const DomainEvent& e, std::string_view tag);
// The same after `op` (":opt_out", ":mark_dnc").
bool HasTagAfterOp(const DomainEvent& e, std::string_view op, std::string_view tag);
// Whether `e` is (or answers) a mark_dnc of a record linked after the
// contact's deletion (sync/contact_model.cc, MarkRecordAfterDeletion): its
// id "<contact>:<system>:<fact tag>:mark_dnc" kNewRecordTag, then, when a
// push's answer named the record, ":<that push's id>". The record was
// linked already; its answer links nothing again.
bool MarksRecordAfterDeletion(const DomainEvent& e);

// The rule of a message.refused no consent made: nobody can deliver it (no
// system plays the role, the system is not configured for it, the asking
// system did not know the contact). Without it (and on events written
// before it was) a refusal is the consent gate's (opted out, erased).
inline constexpr std::string_view kNotDeliverableRule = "not_deliverable";

// How a withdrawn send's message.refused reason begins ("withdrawn before
// it was sent (campaign cancelled)"): its campaign no longer wanted it.
inline constexpr std::string_view kWithdrawnReason = "withdrawn before it was sent";
inline bool IsWithdrawal(const DomainEvent& e) {
  return e.type == ev::kMessageRefused &&
         std::string_view(e.reason).substr(0, kWithdrawnReason.size()) == kWithdrawnReason;
}

// A question to a system (an enrichment's "enrich", the classifier's
// "classify", a consent read back's "read_consent"): its push.succeeded carries what it
// answered and what was asked (asked.<field>, never a text's body), and is
// decided by the contact (DecideReport), never taken for a copy of it.
inline bool IsAnswerOp(std::string_view op) {
  return op == "enrich" || op == "classify" || op == "read_consent";
}

inline bool IsMessageOp(std::string_view op) {
  return op == "send" || op == "message" || op == "call" || op == "message_status";
}

}  // namespace dfm
