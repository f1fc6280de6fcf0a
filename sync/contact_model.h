// The merge rules of one contact: pure functions over a ContactState.
//
//   Decide(state, fact, ctx) -> the domain events the fact calls for
//   Apply(&state, event)      -> the state after an event
//
// A contact actor calls Decide, appends the events, then Applies them; a
// recovering actor Applies its stream. The same rules therefore run live,
// on recovery and in `dfm replay`.
//
// Rules (docs/sync-rules.md):
// - What a system changed is what differs from what the engine last knew that
//   system to hold (`known`), so full-snapshot webhooks only count their
//   edits.
// - A field with an owner (MergePolicy::owner) takes the owner's edits and
//   refuses other systems' edits once the owner has set it. Otherwise the
//   newer source time wins. Every refused value is kept in a
//   contact.conflict_recorded event with both sides.
// - Echoes: a value a system reports that equals what the engine pushed to
//   it within the echo window is that push coming back, not an edit. A real
//   edit from the system ends the window.
// - Every system that holds a value different from the merged one (or does
//   not have the contact yet) is sent a push.requested.
// - A fact's consent statements (ContactFact::consents) are decided after
//   its contact part, which identifies the contact (creating it when
//   unknown, so an opt-out from a stranger is kept too). An opt-out or
//   opt-in that changes a channel's state is recorded (contact.opted_out /
//   opted_in) and sent to every other system as a push with priority 10
//   (op "opt_out" / "opt_in"), ahead of ordinary pushes. A statement older
//   than the channel's current one changes nothing; at the same time the
//   opt-out wins. A review fact is recorded as contact.opt_out_flagged only.
// - A snapshot consent (a system's DND setting, repeated by every webhook of
//   the contact) counts only where it differs from what that system was
//   known to hold, is newer than that knowledge (an opt-in by more than
//   kSnapshotSkewUs), and no consent push to it is on its way: so our own
//   opt-out coming back, or a webhook written before our push arrived, is
//   not a statement. An unknown setting counts as opted in.
// - A consent fact about a number nobody knows creates the contact only for
//   an opt-out; a stranger's opt-in changes nothing and a flagged text is
//   recorded on a contact stream of its own.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "sync/domain_event.h"
#include "sync/fact.h"

namespace dfm {

// Vendor clocks drift: a snapshot that would undo an opt-out must be this
// much newer than what the engine knew the system to hold.
inline constexpr int64_t kSnapshotSkewUs = 5 * 1000000;

struct MergePolicy {
  std::map<std::string, std::string> owner;  // field -> system
  int64_t echo_window_us = 10LL * 60 * 1000000;
  // GoHighLevel owns name, email, address and tags (issue 3's default).
  static MergePolicy Defaults();
};

struct SyncContext {
  MergePolicy policy;
  // Systems that contacts are synced to, and the fields each accepts.
  std::map<std::string, std::set<std::string>> targets;
  // The consent channels each target keeps; a target not listed keeps all.
  std::map<std::string, std::set<std::string>> channels;
  // Targets that keep their channels as one flag (Aloware's is_dnc): it is
  // set when any of them is opted out and cleared only when none is.
  std::set<std::string> one_flag;
  int64_t now_us = 0;
};

struct ContactState {
  std::string contact_id;
  bool exists = false;
  bool deleted = false;
  std::map<std::string, Attributed> fields;  // the merged truth
  std::map<std::string, std::string> links;  // system -> external id
  // What each system is believed to hold, from its facts and our pushes.
  std::map<std::string, std::map<std::string, std::string>> known;
  // Echo memory: system -> field -> every value pushed -> when it was
  // requested. Several pushes can be on their way; any of them may echo.
  using PushMemo = std::map<std::string, std::map<std::string, int64_t>>;
  std::map<std::string, PushMemo> pushed;
  // Values requested of each system and not yet confirmed: counted as held
  // so that a second fact does not push them again.
  std::map<std::string, std::map<std::string, std::string>> pending;
  // Per channel: opted out or not, and when that was stated (source time),
  // from contact.opted_out / opted_in.
  struct ChannelConsent {
    bool out = false;
    int64_t at_us = 0;
  };
  std::map<std::string, ChannelConsent> consent;
  // What each system is believed to hold per channel, from its own
  // statements (at: their source time) and our confirmed consent pushes
  // (at: when confirmed); and consent pushes requested, not yet settled.
  struct HeldConsent {
    bool out = false;
    int64_t at_us = 0;
  };
  std::map<std::string, std::map<std::string, HeldConsent>> known_consent;
  struct PendingConsent {
    bool out = false;
    std::string push_id;
  };
  std::map<std::string, std::map<std::string, PendingConsent>> pending_consent;
  uint64_t last_fact_seq = 0;   // newest webhook decided
  uint64_t last_event_seq = 0;  // newest log event applied
};

std::vector<DomainEvent> Decide(const ContactState& state, const ContactFact& fact,
                                const SyncContext& ctx);

// `seq` and `recorded_at_us` are the event's envelope values; an event at or
// below state.last_event_seq is ignored (applying twice is harmless).
void Apply(ContactState* state, const DomainEvent& e, uint64_t seq, int64_t recorded_at_us);

}  // namespace dfm
