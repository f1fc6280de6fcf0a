// One actor per contact: the only writer of its "contact:<id>" stream.
//
// Contract:
// - On start it recovers its ContactState from its stream (every event,
//   through the same Apply as live), starting from its snapshot when
//   SyncEnv::snapshots keeps one (then only the events after it), so its
//   start costs what its recent traffic costs, not its age; it keeps a
//   snapshot when it passivates and every SyncEnv::snapshot_every events.
//   When asked to (service start), it hands
//   every push that was requested and has not yet succeeded or been
//   dead-lettered to its connector again
//   (connectors ignore a push id they already hold, vendors are written with
//   look-up-before-create, so a re-driven push cannot duplicate).
// - It handles one message at a time, to the end: a fact (RoutedFact) is decided
//   (sync/contact_model.h), the decisions are appended with idempotency keys
//   and become durable, then applied; only then are the pushes ordered and
//   the router told (FactDone). (Facts decided together, below, are also
//   applied before: the state runs ahead of the log while their append is
//   under way, when the actor reads nothing else.) A PushReport is appended and applied the
//   same way. Messages that arrive meanwhile wait in order.
// - Facts that waited together (up to kContactMaxFactsPerAppend at
//   the head of the queue) are decided together: each against the state
//   the ones before it leave, so each decides what it would alone, and all
//   their decisions go in one append, durable or refused together. So one
//   contact's backlog drains at many facts per group commit, not one. A
//   push that a later fact of the same append settles (a send an opt-out
//   refuses) is not ordered at all.
// - If its stream cannot be read it stops with an error (the router sees it
//   go and starts over from its checkpoint) rather than decide on a partial
//   state.
// - An append the log refuses (disk full) is tried again later; nothing is
//   dropped and nothing is answered before it is durable.
// - After `contact_idle_us` without work (by CAF's clock) it asks the
//   router to passivate it (the router agrees only if it routed nothing
//   since), then quits. One timer per contact is on CAF's clock at a time.
#pragma once

#include <caf/all.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/messages.h"
#include "actors/sync_env.h"

namespace dfm {

// The most facts decided together in one append.
inline constexpr size_t kContactMaxFactsPerAppend = 256;

struct ContactActorState {
  std::shared_ptr<const SyncEnv> env;
  caf::actor router;
  std::string tenant;
  std::string contact_id;
  ContactState model;
  std::map<std::string, PushOrder> outstanding;  // push id -> order not yet settled
  std::deque<caf::message>
      work;  // RoutedFact / Redrive / PushReport / erase_atom, in arrival order
  bool busy = false;
  // The append under way: its drafts (kept to try again) and what follows it.
  uint64_t token = 0;
  std::vector<EventDraft> drafts;
  std::vector<DomainEvent> events;
  std::function<void(const AppendResult&)> then;
  uint64_t since_snapshot = 0;  // events applied since the last snapshot (or the start)
  bool erased = false;  // contact.erased reached it: its state is dropped, no snapshot kept
  uint64_t received = 0;  // messages from the router, for the passivation handshake
  // Idleness: since when it has had no work, and whether its one idle
  // timer is on the clock. A timer is set when it falls idle with none
  // set; one that comes due early is set again for what is left, so the
  // clock holds at most one per contact, not one per decision.
  caf::actor_clock::time_point idle_since{};
  bool idle_timer_set = false;
  static inline const char* name = "dfm.contact";
};

// `redrive`: hand unsettled pushes to the connectors again (only at service
// start: a contact spawned again after passivation must not, since its
// connector may have just settled them and their report is on its way).
caf::behavior ContactActor(caf::stateful_actor<ContactActorState>* self,
                           std::shared_ptr<const SyncEnv> env, caf::actor router,
                           std::string tenant, std::string contact_id, bool redrive);

}  // namespace dfm
