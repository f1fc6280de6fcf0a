// The router's contacts (actors/router.h): their actors spawned and handed
// facts and reports, and held after failures (RouterState::failing).
#include <algorithm>

#include "actors/contact_actor.h"
#include "actors/router_internal.h"
#include "campaigns/task.h"
#include "connectors/connector.h"
#include "events/sealing.h"
#include "events/webhook_received.h"
#include "projections/sync_projections.h"
#include "sync/consent.h"
#include "sync/contact_snapshot.h"
#include "sync/erasure.h"
#include "sync/identity.h"
#include "sync/settle.h"
#include "util/logging.h"

namespace dfm {
namespace router_internal {

std::string ContactKey(const std::string& tenant, const std::string& contact_id) {
  return tenant + "/" + contact_id;
}

// Spawns the contact's actor (monitored); `redrive`: it re-sends its
// unsettled pushes (service start only).
RouterState::Contact& Spawn(Self* self, const std::string& tenant, const std::string& contact_id,
                            bool redrive) {
  auto& st = self->state;
  std::string key = ContactKey(tenant, contact_id);
  if (redrive) st.redrive_owed.emplace(key, std::make_pair(tenant, contact_id));
  auto& c = st.contacts[key];
  c.actor = self->spawn<caf::monitored>(ContactActor, st.env, caf::actor_cast<caf::actor>(self),
                                        tenant, contact_id, redrive);
  c.sent = 0;
  c.started = false;
  st.keys_by_actor[c.actor.id()] = std::move(key);
  return c;
}

// Hands a new actor of the contact `key` the push reports kept for it
// (RouterState::held_reports), each counted for the passivation handshake.
void HandKeptReports(Self* self, const std::string& key, RouterState::Contact* c) {
  auto& st = self->state;
  auto r = st.held_reports.find(key);
  if (r == st.held_reports.end()) return;
  for (const PushReport& report : r->second) self->send(c->actor, report);  // kept till it starts
  c->sent += r->second.size();
}

// The contact's actor, spawned when it has none; an invalid handle while
// the contact is held (RouterState::failing).
caf::actor ContactFor(Self* self, const std::string& tenant, const std::string& contact_id) {
  auto& st = self->state;
  const std::string key = ContactKey(tenant, contact_id);
  if (auto f = st.failing.find(key); f != st.failing.end() && f->second.held_until_us != 0)
    return caf::actor();  // until Release ends the hold
  auto found = st.contacts.find(key);
  const bool fresh = found == st.contacts.end() || !found->second.actor;
  // Before the start has handed the unsettled pushes on (Recover), a
  // contact spawned here hands on its own: it would be skipped as live;
  // so does one whose earlier actor failed before it could.
  const bool redrive = !st.recovered || st.redrive_owed.count(key);
  auto& c = fresh ? Spawn(self, tenant, contact_id, redrive) : found->second;
  c.sent++;
  if (fresh) HandKeptReports(self, key, &c);
  return c.actor;
}

// A push report for the contact: handed to its actor, and kept until an
// actor of the contact has started (started_atom), so that an actor that
// fails to read its stream with the report in its mailbox does not lose
// it: the next actor of the contact gets it (reports are idempotent).
void ReportToContact(Self* self, PushReport r) {
  auto& st = self->state;
  const std::string key = ContactKey(r.tenant, r.contact_id);
  if (caf::actor c = ContactFor(self, r.tenant, r.contact_id)) {
    self->send(c, r);
    if (st.contacts[key].started) return;  // it cannot fail now: nothing to keep
  }
  st.held_reports[key].push_back(std::move(r));
}

// The contact actor that sent started_atom has read its stream: it holds
// what its router kept for it.
void Started(Self* self, caf::actor_id actor) {
  auto& st = self->state;
  auto key = st.keys_by_actor.find(actor);
  if (key == st.keys_by_actor.end()) return;
  auto c = st.contacts.find(key->second);
  if (c == st.contacts.end() || c->second.actor.id() != actor) return;  // one before it
  c->second.started = true;
  st.held_reports.erase(key->second);
  st.redrive_owed.erase(key->second);
}

// The contact `key` could read its stream (it answered a fact, or it
// passivated) or was erased: its failures and kept push reports are
// forgotten. One still held has its hold ended by Release (a message: this
// may run in the middle of Poll's batch, which a read again must not
// interrupt), which reads again, handing on the facts it kept waiting.
void Recovered(Self* self, const std::string& key) {
  auto& st = self->state;
  st.held_reports.erase(key);
  st.redrive_owed.erase(key);
  auto f = st.failing.find(key);
  if (f == st.failing.end()) return;
  if (f->second.held_until_us == 0) {
    st.failing.erase(f);
    return;
  }
  f->second.held_until_us = 1;  // over
  f->second.forget = true;
  self->send(self, release_atom::value);
}

// A contact's actor failed: its failures in a row counted, and from the
// kContactFailuresBeforeHold-th on it is held (RouterState::failing), the
// release scheduled.
void Hold(Self* self, const std::string& key) {
  auto& st = self->state;
  RouterState::Failing& f = st.failing[key];
  if (++f.failures < kContactFailuresBeforeHold) return;
  const int doublings = std::min(f.failures - kContactFailuresBeforeHold, 6);
  const int64_t hold = std::min(kContactHoldMaxUs, kContactHoldUs << doublings);
  f.held_until_us = st.env->now_us() + hold;
  Logger("actors")->error("event=contact_held contact={} failures={} held_ms={}", key, f.failures,
                          hold / 1000);
  self->delayed_send(self, std::chrono::microseconds(hold), release_atom::value);
}

// Reads again from the checkpoint: the facts a failed contact took with
// it, or those a held one kept waiting, are handed on again (contacts skip
// what they decided; RouterState::reread_until).
void ReadAgainFromCheckpoint(Self* self) {
  auto& s = self->state;
  s.epoch++;
  if (s.env->board) s.env->board->router.ReadAgain();  // what it decided so far stays decided
  s.in_flight.clear();
  s.held_webhooks.clear();
  s.held_version++;
  s.claims.clear();
  s.claims_by_webhook.clear();
  s.reread_until = std::max(s.reread_until, s.next_seq - 1);
  s.next_seq = s.committed + 1;
  PollLater(self);
}

// Spawns the contacts that owe a re-drive (RouterState::redrive_owed) or
// have push reports kept for them (RouterState::held_reports), have no
// actor and are not held: their unsettled pushes (an opt-out among them)
// are handed on, and their reports taken, without waiting for the
// person's next fact.
void RespawnOwing(Self* self) {
  auto& st = self->state;
  std::map<std::string, std::pair<std::string, std::string>> due;
  auto consider = [&](const std::string& key, const std::string& tenant,
                      const std::string& contact) {
    if (auto c = st.contacts.find(key); c != st.contacts.end() && c->second.actor) return;
    if (auto f = st.failing.find(key); f != st.failing.end() && f->second.held_until_us != 0)
      return;
    due.emplace(key, std::make_pair(tenant, contact));
  };
  for (const auto& [key, who] : st.redrive_owed) consider(key, who.first, who.second);
  for (const auto& [key, reports] : st.held_reports)
    if (!reports.empty()) consider(key, reports.front().tenant, reports.front().contact_id);
  for (const auto& [key, who] : due)
    HandKeptReports(self, key, &Spawn(self, who.first, who.second, st.redrive_owed.count(key) > 0));
}

// A hold ended (release_atom): the contacts whose hold is over are no
// longer held and the router reads again from its checkpoint, handing their
// facts on; when none is over yet (the wall clock moved back), it looks
// again when the first will be.
void Release(Self* self) {
  auto& st = self->state;
  const int64_t now = st.env->now_us();
  bool due = false;
  int64_t next = 0;
  for (auto it = st.failing.begin(); it != st.failing.end();) {
    RouterState::Failing& f = it->second;
    if (f.held_until_us != 0 && f.held_until_us <= now) {
      f.held_until_us = 0;
      due = true;
    } else if (f.held_until_us != 0 && (next == 0 || f.held_until_us < next)) {
      next = f.held_until_us;
    }
    it = f.forget && f.held_until_us == 0 ? st.failing.erase(it) : std::next(it);
  }
  if (due) {
    ReadAgainFromCheckpoint(self);
    RespawnOwing(self);
  }
  if (!due && next != 0)  // at most a hold's longest (the clock may have stepped back far)
    self->delayed_send(self, std::chrono::microseconds(std::min(next - now, kContactHoldMaxUs)),
                       release_atom::value);
  Publish(self);
}

}  // namespace router_internal
}  // namespace dfm
