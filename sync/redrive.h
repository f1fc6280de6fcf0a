// Re-driving pushes that a replay found missing, or that were dead-lettered
// (`dfm replay --execute`, `dfm replay dead-letters --execute`).
//
// The replay tool cannot write to the log of a running service, and must not
// write to a contact's stream behind its actor's back. So it asks: it
// appends (through the service's admin endpoint, or directly when the
// service is stopped) one `replay.requested` event on the tenant's "replay"
// stream, listing the pushes to re-drive. The router reads that event like
// a webhook and hands each item to the contact's actor, which decides it
// against the contact's state *now* (DecideRedrive) and orders the result
// through the normal connector path. Everything that follows is caused by,
// and correlated with, the replay.requested event.
//
// Payload of replay.requested (schema version 1), one JSON object:
//   {"reason": text, "items": [ {"contact_id": id, "cause": event id text,
//                                "asked_at_us": int (optional),
//                                "push": <push.requested payload>}, ... ]}
// `cause` names what the item answers: the webhook whose sync was missing,
// or the push.requested that was dead-lettered. `asked_at_us`: when the push
// was first asked for (that webhook's recorded time, or the first request's
// for a push re-driven before); absent (older requests, hand-written
// bodies) or not an integer: the item is not aged.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "events/event.h"
#include "sync/contact_model.h"
#include "util/status.h"

namespace dfm {

inline constexpr std::string_view kReplayRequestedType = "replay.requested";
inline constexpr char kReplayStream[] = "replay";
// The detail of every event DecideRedrive makes for an item (not of a
// text's failed report to the conversation provider): this prefix, then the
// item's cause (so `dfm replay` counts a re-drive for the webhook it answers).
inline constexpr char kRedriveDetailPrefix[] = "replay of ";

// The cause a re-drive's event answers (read back from its detail); nullopt
// for an event DecideRedrive did not make.
inline std::optional<EventId> RedriveCause(const DomainEvent& d) {
  std::string_view detail = d.detail, prefix = kRedriveDetailPrefix;
  if (detail.substr(0, prefix.size()) != prefix) return std::nullopt;
  return EventId::Parse(std::string(detail.substr(prefix.size())));
}

struct RedriveItem {
  std::string contact_id;
  std::string cause;  // event id (text) of the webhook or push it answers
  DomainEvent push;   // a push.requested: system, op and what it carried
  // When it was first asked for (the webhook's or the push.requested's
  // recorded time); 0: not said (requests written before it was).
  int64_t asked_at_us = 0;
};

struct ReplayRequest {
  std::string reason;
  std::vector<RedriveItem> items;
};

std::string EncodeReplayRequest(const ReplayRequest& r);
// The idempotency key of a replay.requested (system kReplayKeySystem): the same
// request for the same tenant is appended once, however often it is sent.
inline constexpr char kReplayKeySystem[] = "dfm";  // the engine's own keys
std::string ReplayIdempotencyKey(const std::string& tenant, const std::string& payload);
Status DecodeReplayRequest(std::string_view payload, ReplayRequest* out);
// The replay.requested event carrying `r` for `tenant`: stream
// kReplayStream, keyed by ReplayIdempotencyKey (appended once, however
// often the same request is made).
EventDraft ReplayRequestDraft(const std::string& tenant, const ReplayRequest& r);

// What re-driving a contact's items of one replay.requested calls for now.
// `replay_seq` is the sequence number of the replay.requested event and
// each item comes with its place in it: they make the new push's id. A
// contact's items are decided together, once: a state that already decided
// this replay (last_fact_seq >= replay_seq) gets nothing.
//
// Each item gives one push.requested (webhook_seq = replay_seq, detail
// kRedriveDetailPrefix + the cause) or one push.redrive_skipped with the
// reason (a refused text: message.refused), and for a text not sent maybe
// the failed report below:
// - no contact, a deleted contact, or a target without a connector now:
//   skipped;
// - "upsert": the values the target should hold now (merged, accepted by
//   it) that it is not known to hold; skipped when it holds them all, or
//   when it needs a key field (its phone) the contact does not have;
// - "opt_out": while any channel it names is still opted out, naming
//   those (a one-flag target, Aloware's is_dnc: every channel, as asked);
//   "opt_in": only while every channel it names is still in;
// - "send": skipped first when its campaign withdrew it (message.refused,
//   kWithdrawnReason, while the contact remembers the message); to the
//   contact's phone now, and only if that is the number the
//   text was first asked for (skipped otherwise); refused (message.refused)
//   while the contact's channel is opted out; skipped when the
//   sender already has the message or a send of it to the sender is on
//   its way (ContactState::pending_sends); skipped when it was first asked for
//   (asked_at_us) longer than ctx.redrive_max_text_age_us before ctx.now_us.
//   A text not sent for any of those reasons, or skipped above for a
//   deleted contact or a sender without a connector, never asked of the
//   sender (not dead-lettered) and not held by it, also gets ctx.conversations told it
//   failed (ReportTextNotSent, once per request): a second event, a
//   message_status push.requested without the "replay of" detail (with it,
//   dfm replay would count it against the webhook);
// - "message" / "call": skipped when the target already has the message
//   (by its id there); "message_status", "note", "tags", "lists": as they
//   were asked; "mark_dnc" too, but skipped where the target takes no
//   marks (SyncContext::marks_dnc).
// The age rule for re-driven texts, shared by the decision and by the
// listings that foresee it: first asked for at `asked_at_us` (0: unknown,
// never too old), longer than `max_age_us` (0: no limit) before `now_us`.
inline bool TextTooOldToResend(int64_t asked_at_us, int64_t now_us, int64_t max_age_us) {
  return max_age_us > 0 && asked_at_us > 0 && now_us - asked_at_us > max_age_us;
}
// An age in µs as "<h> h <mm> min" (the decision's reason and the listings).
std::string FormatAgeHoursMinutes(int64_t age_us);

std::vector<DomainEvent> DecideRedrive(const ContactState& state,
                                       const std::vector<std::pair<uint64_t, RedriveItem>>& items,
                                       uint64_t replay_seq, const SyncContext& ctx);

}  // namespace dfm
