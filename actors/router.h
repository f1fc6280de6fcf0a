// The router: tails the log and sends each contact fact to its contact actor.
//
// Contract:
// - It reads the log in order from its checkpoint + 1. Each webhook.received
//   is read by its system's inbound mapper (connectors/common/mapper.h); a
//   payload the mapper cannot read is quarantined (webhook.quarantined on
//   the source stream, with the reason); other events are skipped.
// - Each fact is resolved (sync/identity.h) against the mappings projection
//   plus the router's own claims not yet folded into it, so two webhooks
//   about one new person reach one contact even when the projection lags.
//   An ambiguous fact becomes identity.conflict; one without phone or email
//   becomes fact.rejected (both on the source stream). A conflict's
//   opt-outs go to its candidates at once (ConflictOptOuts), handed again
//   whenever the webhook is read again (contacts skip what they decided).
// - The checkpoint ("router") only moves past a webhook once every fact of
//   it has been answered durably, so a crash re-reads at most unanswered
//   webhooks and those since the last commit. Reading one again does not
//   decide it again: what the router recorded about a fact the first time
//   stands (RouterState::reread_until), contact actors skip facts they
//   have decided, and appends carry idempotency keys. Not covered: a fact
//   that now resolves to another contact than the first time
//   (actors/README.md).
// - A replay.requested event (sync/redrive.h) is routed item by item to the
//   contacts it names, as Redrive messages, answered like facts.
// - A task.claimed with a text, email or call (campaigns/agent.h) goes to the contact it
//   names as a send request of the system "campaign", answered like a fact.
//   A task.skipped that names its claims (a cancelled campaign's,
//   campaigns/planner.h) goes there as a withdrawal of what they asked for
//   (Activity::Kind::kWithdraw, the text and its draft request): one still
//   waiting is refused and its connector drops it.
// - An identity.settled event (sync/settle.h) naming a contact: the
//   conflict's webhook is mapped again and the facts it was about
//   (SettledFacts) go to that contact, stamped with the settlement's
//   sequence number and id, answered like facts. None found, or the fact's
//   external id now leading to another contact, becomes fact.rejected on
//   the source stream. A dismissal routes nothing.
// - It spawns contact actors on demand and agrees to passivate one only if
//   it routed nothing to it since the actor last looked (handshake).
// - A contact actor that fails (its stream cannot be read) took facts with
//   it: the router reads again from its checkpoint. One that fails twice
//   in a row is held (RouterState::failing): its facts wait, unanswered,
//   while everyone else's are decided; the hold doubles at each failure
//   (kContactHoldUs .. kContactHoldMaxUs), and its end reads again from
//   the checkpoint, handing them to a new actor; push reports for it are
//   kept and handed to that actor. So one unreadable contact delays its
//   own facts, not the others' (an opt-out among them), while what each
//   read again covers (the log since the checkpoint, which stays before
//   its first fact) takes less than the hold: see docs/limits.md.
// - It starts reading when it receives recover_atom (sent once the
//   connectors know the router): it first reads its checkpoint and spawns
//   the contacts with unsettled pushes so they re-drive them. Until both
//   succeed it reads nothing (a contact spawned by a fact would not
//   re-drive) and tries again each second. poll_atom makes it read what is
//   new.
//   When the log cannot be read, or an earlier record cannot be looked up,
//   it stops at that event and reads again env->append_retry_us later by
//   itself (one such poll pending at a time), with no new event needed.
// - Push reports from connectors pass through it to the contact actor,
//   which is spawned again if it was passivated (kept while it is held).
#pragma once

#include <caf/all.hpp>

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/messages.h"
#include "actors/sync_env.h"

namespace dfm {

struct RouterState {
  std::shared_ptr<const SyncEnv> env;
  uint64_t next_seq = 1;
  uint64_t committed = 0;
  // Events up to here may have been routed before: by the run that ended
  // before this router started, or before a contact's failure sent this
  // one back to its checkpoint. Its own claims are gone and the mappings
  // projection may have moved on, so a fact it recorded as a conflict, a
  // rejection or a quarantine could now resolve to a contact: such facts
  // are looked up on the source stream first and left as decided.
  uint64_t reread_until = 0;
  // This reading of the log: one more at each read again from the
  // checkpoint. Facts are handed with it (RoutedFact, Redrive) and an
  // answer (FactDone) of an earlier one does not count: the fact was
  // handed again and that hand-out's answer is the one awaited.
  uint64_t epoch = 1;
  int64_t last_commit_us = 0;     // env->now_us() of the last checkpoint commit
  bool commit_scheduled = false;  // an idle_atom will come to commit
  bool poll_later_scheduled = false;  // a (poll_atom, retry_atom) will come
  bool recovered = false;             // its checkpoint read, the unsettled pushes handed on
  int recover_failures = 0;           // in a row
  struct Contact {
    caf::actor actor;
    uint64_t sent = 0;
    bool started = false;  // its actor said started_atom: it can no longer fail
  };
  std::unordered_map<std::string, Contact> contacts;  // "<tenant>/<contact id>"
  // Contacts that owe their unsettled pushes a re-drive (spawned for it at
  // the start, or spawned before it) -> {tenant, contact id}: kept until
  // one of their actors starts, so that an actor
  // that failed to read its stream is followed by one that re-drives, even
  // when no new fact comes for the contact.
  std::unordered_map<std::string, std::pair<std::string, std::string>> redrive_owed;
  std::unordered_map<caf::actor_id, std::string> keys_by_actor;  // live contacts' keys
  std::map<uint64_t, int> in_flight;  // webhook seq -> answers still awaited
  // A contact whose actor failed (its stream could not be read), by its
  // key: its failures in a row, and until when it is held. A held
  // contact's facts are not handed to it: their webhooks stay unanswered
  // (the checkpoint waits before them) while every other contact's go on,
  // and the router reads again from its checkpoint when the hold ends.
  // Forgotten when it answers a fact, passivates or is erased.
  struct Failing {
    int failures = 0;
    int64_t held_until_us = 0;  // 0: not held
    bool forget = false;        // recovered or erased while held: gone at its release
  };
  std::unordered_map<std::string, Failing> failing;
  // Webhooks with a fact a held contact waits for -> how many: the
  // checkpoint stays before the first (answers to facts handed on before
  // a read again do not count against these).
  std::map<uint64_t, int> held_webhooks;
  uint64_t held_version = 0;  // one more at each change of its keys (RouterStatus::SetDecided)
  // Push reports for a contact, by its key, while it has no actor that
  // started (none while it is held): handed to each actor it gets next
  // (they are idempotent), forgotten once one starts, answers a fact or
  // passivates, or the contact is erased.
  std::unordered_map<std::string, std::vector<PushReport>> held_reports;
  struct Claim {
    std::string contact_id;
    uint64_t webhook_seq = 0;
    uint64_t settled_at = 0;  // log seq that makes the claim visible in the projection; 0: not yet
  };
  std::unordered_map<std::string, Claim> claims;  // identity key -> claim
  std::map<uint64_t, std::vector<std::string>> claims_by_webhook;
  // Erased contacts (contact.erased) -> the event's seq: a lookup that
  // still leads to one leads nowhere until the mappings projection has
  // folded the erasure (docs/privacy.md).
  std::unordered_map<std::string, uint64_t> erased;
  // The router's own appends (quarantine, conflicts, rejections) under way.
  struct OwnAppend {
    uint64_t webhook_seq = 0;
    std::vector<EventDraft> drafts;
  };
  std::map<uint64_t, OwnAppend> own_appends;
  uint64_t next_token = 1;
  uint64_t facts_routed = 0;
  uint64_t quarantined = 0;
  uint64_t inbound_counted = 0;  // the newest webhook counted on the board (RouterStatus::CountInbound)
  static inline const char* name = "dfm.router";
};

caf::behavior Router(caf::stateful_actor<RouterState>* self, std::shared_ptr<const SyncEnv> env);

// A contact that failed this many times in a row is held, first for
// kContactHoldUs, twice as long at each failure after, at most
// kContactHoldMaxUs. (A first failure is read again at once: a passing
// read error.)
inline constexpr int kContactFailuresBeforeHold = 2;
inline constexpr int64_t kContactHoldUs = 1'000'000;
inline constexpr int64_t kContactHoldMaxUs = 60'000'000;

// The router's consumer name (its checkpoint).
inline constexpr char kRouterConsumer[] = "router";
// The checkpoint is committed once it is this many events behind, or this
// long after the last commit (a crash re-reads at most that much, which is
// harmless: see above).
inline constexpr uint64_t kRouterCommitEvery = 4096;
inline constexpr int64_t kRouterCommitUs = 200000;

}  // namespace dfm
