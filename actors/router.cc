#include "actors/router.h"

#include <algorithm>

#include "actors/contact_actor.h"
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

namespace {

using Self = caf::stateful_actor<RouterState>;

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

// Hands `m`, about webhook `webhook_seq`, to the contact's actor (a fact
// or a replay's items stamped with the router's epoch). A held contact's
// fact waits, its webhook counted in RouterState::held_webhooks, until the
// hold ends and the router reads it again.
template <typename M>
void SendToContact(Self* self, uint64_t webhook_seq, const std::string& tenant,
                   const std::string& contact_id, M&& m) {
  auto& st = self->state;
  using T = std::decay_t<M>;
  if (caf::actor c = ContactFor(self, tenant, contact_id)) {
    if constexpr (std::is_same_v<T, ContactFact>) {
      self->send(c, RoutedFact{std::forward<M>(m), st.epoch});
    } else if constexpr (std::is_same_v<T, Redrive>) {
      m.epoch = st.epoch;
      self->send(c, std::forward<M>(m));
    } else {
      self->send(c, std::forward<M>(m));
    }
  } else if (webhook_seq != 0) {
    // Counted apart: it does not fill the in-flight limit, and answers to
    // facts handed on before a read again cannot lower it.
    if (st.held_webhooks[webhook_seq]++ == 0) st.held_version++;
    if (auto it = st.in_flight.find(webhook_seq); it != st.in_flight.end() && --it->second <= 0)
      st.in_flight.erase(it);
  }
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

// Every webhook up to this one has been decided.
uint64_t Decided(const RouterState& st) {
  uint64_t first = st.in_flight.empty() ? st.next_seq : st.in_flight.begin()->first;
  if (!st.held_webhooks.empty()) first = std::min(first, st.held_webhooks.begin()->first);
  return first - 1;
}

// Shows the router's state on the status board (GET /v1/health).
void Publish(Self* self) {
  auto& st = self->state;
  if (!st.env->board) return;
  RouterStatus& b = st.env->board->router;
  constexpr auto kRelaxed = std::memory_order_relaxed;
  b.decided.store(Decided(st), kRelaxed);
  b.SetDecided((st.in_flight.empty() ? st.next_seq : st.in_flight.begin()->first) - 1,
               st.held_version, st.held_webhooks);
  b.read.store(st.next_seq - 1, kRelaxed);
  b.webhooks_in_flight.store(st.in_flight.size(), kRelaxed);
  b.contacts_live.store(st.contacts.size(), kRelaxed);
  b.facts_routed.store(st.facts_routed, kRelaxed);
  b.quarantined.store(st.quarantined, kRelaxed);
  b.contacts_held.store(std::count_if(st.failing.begin(), st.failing.end(),
                                      [](const auto& f) { return f.second.held_until_us != 0; }),
                        kRelaxed);
}

bool CommitCheckpoint(Self* self) {
  auto& st = self->state;
  uint64_t cp = Decided(st);
  if (cp <= st.committed) return true;
  Status s = st.env->log->CommitConsumer(kRouterConsumer, cp, {});
  if (s.ok()) {
    st.committed = cp;
    return true;
  }
  Logger("actors")->warn("event=router_checkpoint_failed error=\"{}\"", s.ToString());
  return false;
}

// Commits the checkpoint when it is far behind or was last moved a while
// ago; otherwise makes sure an idle_atom comes to commit it later. So the
// router's write does not join every group commit of a busy log.
void MaybeCommit(Self* self) {
  auto& st = self->state;
  int64_t now = st.env->now_us();
  uint64_t done = Decided(st);
  if (done <= st.committed) return;
  bool due = done - st.committed >= kRouterCommitEvery || now - st.last_commit_us >= kRouterCommitUs;
  if (due && CommitCheckpoint(self)) {
    st.last_commit_us = now;
  } else if (!st.commit_scheduled) {  // later, or again after a failed commit
    st.commit_scheduled = true;
    self->delayed_send(self, std::chrono::microseconds(kRouterCommitUs), idle_atom::value);
  }
}

void Answered(Self* self, uint64_t webhook_seq) {
  auto& st = self->state;
  auto it = st.in_flight.find(webhook_seq);
  if (it == st.in_flight.end()) return;
  bool was_full = st.in_flight.size() >= st.env->router_max_in_flight;
  if (--it->second <= 0) st.in_flight.erase(it);
  if (was_full && st.in_flight.size() < st.env->router_max_in_flight)
    self->send(self, poll_atom::value);
  MaybeCommit(self);
  Publish(self);
}

void OwnAppend(Self* self, uint64_t token) {
  auto& st = self->state;
  auto it = st.own_appends.find(token);
  if (it == st.own_appends.end()) return;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  st.env->log->AppendAsync(it->second.drafts,
                           [me, token](const Status& s, const std::vector<AppendOutcome>&) {
                             AppendResult r;
                             r.token = token;
                             if (!s.ok()) r.error = s.ToString();
                             caf::anon_send(me, std::move(r));
                           });
}

// What the router recorded the first time about fact `n` of `e`, when `e`
// is read again (RouterState::reread_until): nothing, a durable record, an
// append still under way (its answer is still awaited), or unknown because
// the lookup failed. The record's type goes to `type` when not null.
enum class Earlier { kNone, kRecorded, kPending, kUnknown };

Earlier EarlierRecord(Self* self, const Event& e, size_t n, std::string* type) {
  auto& st = self->state;
  if (e.seq > st.reread_until) return Earlier::kNone;
  const std::string key = SourceDecisionKey(e.seq, n);
  for (const auto& [token, a] : st.own_appends) {
    if (a.webhook_seq != e.seq) continue;
    for (const auto& d : a.drafts) {
      if (d.idempotency_key != key) continue;
      if (type) *type = d.type;
      return Earlier::kPending;
    }
  }
  uint64_t seq = 0;
  Status s = st.env->log->LookupIdempotency(e.tenant, kDecisionKeySystem, key, &seq);
  if (s.IsNotFound()) return Earlier::kNone;
  if (!s.ok()) return Earlier::kUnknown;
  if (!type) return Earlier::kRecorded;
  Event read;  // its type alone: the payload is not opened
  if (!st.env->log->ReadUnopened(seq, &read).ok()) return Earlier::kUnknown;
  *type = read.type;
  return Earlier::kRecorded;
}

// True when `earlier` says the router decided before (recorded, or being
// appended): that decision stands. One still being appended keeps `e` in
// flight until its answer comes.
bool Stands(Self* self, const Event& e, Earlier earlier) {
  if (earlier == Earlier::kPending) self->state.in_flight[e.seq]++;
  return earlier == Earlier::kRecorded || earlier == Earlier::kPending;
}

// Appends `d` to the source stream on behalf of the webhook `e`.
void RecordOnSource(Self* self, const Event& e, const std::string& system, DomainEvent d,
                    size_t n) {
  auto& st = self->state;
  d.webhook_seq = e.seq;
  EventDraft draft = ToDraft(d, e.tenant, SourceStream(system), e.id,
                             e.correlation_id.IsZero() ? e.id : e.correlation_id);
  draft.idempotency_system = kDecisionKeySystem;
  draft.idempotency_key = SourceDecisionKey(e.seq, n);
  uint64_t token = st.next_token++;
  st.own_appends[token] = RouterState::OwnAppend{e.seq, {std::move(draft)}};
  st.in_flight[e.seq]++;
  OwnAppend(self, token);
}

// The candidates of the identity conflict the router recorded for fact `n`
// of `e` when it was first routed (`earlier`: kRecorded or kPending); none
// when that record is no conflict, or no longer opens (its person erased).
// False when it could not be read now.
bool RecordedCandidates(Self* self, const Event& e, size_t n, Earlier earlier,
                        std::vector<std::pair<std::string, std::string>>* out) {
  auto& st = self->state;
  out->clear();
  const std::string key = SourceDecisionKey(e.seq, n);
  DomainEvent d;
  if (earlier == Earlier::kPending) {
    for (const auto& [token, a] : st.own_appends) {
      if (a.webhook_seq != e.seq) continue;
      for (const auto& draft : a.drafts)
        if (draft.idempotency_key == key && draft.type == ev::kIdentityConflict &&
            DecodeDomainEvent(draft.type, draft.payload, &d).ok())
          *out = d.candidates;
    }
    return true;
  }
  uint64_t seq = 0;
  if (!st.env->log->LookupIdempotency(e.tenant, kDecisionKeySystem, key, &seq).ok()) return false;
  std::vector<Event> read;
  if (!st.env->log->Read(seq, 1, &read).ok()) return false;
  if (!read.empty() && read[0].seq == seq && read[0].type == ev::kIdentityConflict &&
      AsDomainEvent(read[0], &d))
    *out = d.candidates;
  return true;
}

bool StatesAnOptOut(const ContactFact& f) {
  for (const Consent& c : f.consents)
    if (c.change == Consent::Change::kOptOut) return true;
  return false;
}

// Hands the opt-outs of `f`, a fact of `e` that is an identity conflict
// between `candidates`, to each candidate at once (ConflictOptOuts): an
// opt-out never waits for a person to settle the conflict, nor is lost
// when it is dismissed. An erased candidate is told nothing. Read again,
// they are handed again: a contact skips a fact it decided.
void HandConflictOptOuts(Self* self, const Event& e, const ContactFact& f,
                         const std::vector<std::pair<std::string, std::string>>& candidates) {
  auto& st = self->state;
  for (auto& [contact, opt_outs] : ConflictOptOuts(f, candidates)) {
    if (st.erased.count(contact)) continue;
    st.in_flight[e.seq]++;
    SendToContact(self, e.seq, e.tenant, contact, std::move(opt_outs));
  }
}

std::optional<std::string> Lookup(Self* self, const std::string& key) {
  auto& st = self->state;
  auto it = st.claims.find(key);
  if (it != st.claims.end()) return it->second.contact_id;
  std::string v;
  if (st.env->log->GetConsumerState("mappings", key, &v).ok() && !st.erased.count(v)) return v;
  return std::nullopt;
}

// Lookup, keeping each key's answer while one fact is routed: Resolve and
// then Claim ask about the same keys, and nothing between them changes
// where a key leads (Claim adds claims only for keys found leading
// nowhere, after asking). One per fact: a claim made for one fact must be
// seen by the next.
class FactLookups {
 public:
  explicit FactLookups(Self* self) : self_(self) {}
  std::optional<std::string> operator()(const std::string& key) {
    auto it = answers_.find(key);
    if (it == answers_.end()) it = answers_.emplace(key, Lookup(self_, key)).first;
    return it->second;
  }

 private:
  Self* self_;
  std::map<std::string, std::optional<std::string>> answers_;
};

// The fact's identity keys now lead to `contact_id` unless they lead
// elsewhere; `lookups` is the fact's own (the one its Resolve asked
// through, when it was resolved).
void Claim(Self* self, const ContactFact& f, const std::string& contact_id, FactLookups& lookups) {
  auto& st = self->state;
  std::vector<std::string> keys;
  if (!f.external_id.empty()) keys.push_back(ExternalIdKey(f.tenant, f.system, f.external_id));
  auto p = f.fields.find(fields::kPhone);
  if (p != f.fields.end() && !p->second.empty()) keys.push_back(PhoneKey(f.tenant, p->second));
  auto m = f.fields.find(fields::kEmail);
  if (m != f.fields.end() && !m->second.empty()) {
    keys.push_back(EmailKey(f.tenant, m->second));
    // Only a tenant that folds plus addresses resolves by the folded key.
    if (st.env->ContextFor(f.tenant).fold_plus_addressing) {
      keys.push_back(FoldedEmailKey(f.tenant, m->second));
    }
  }
  for (auto& k : keys) {
    // A key that leads here only by an earlier fact's claim stays claimed
    // until this fact's decisions are projected: the earlier one may have
    // appended nothing (a refused send), and this one be the first to
    // record the key (found by simulation seed 1394: a second contact).
    if (auto c = st.claims.find(k); c != st.claims.end()) {
      if (c->second.contact_id == contact_id && c->second.webhook_seq != f.webhook_seq) {
        c->second.webhook_seq = f.webhook_seq;
        c->second.settled_at = 0;
        st.claims_by_webhook[f.webhook_seq].push_back(k);
      }
      continue;
    }
    if (lookups(k)) continue;
    st.claims[k] = RouterState::Claim{contact_id, f.webhook_seq, 0};
    st.claims_by_webhook[f.webhook_seq].push_back(std::move(k));
  }
}

// Drops claims that the mappings projection now shows, and erased
// contacts it has forgotten.
void PruneClaims(Self* self) {
  auto& st = self->state;
  if (st.claims_by_webhook.empty() && st.erased.empty()) return;
  uint64_t projected = 0;
  if (!st.env->log->ReadCheckpoint("mappings", &projected).ok()) return;
  for (auto it = st.erased.begin(); it != st.erased.end();)
    it = it->second <= projected ? st.erased.erase(it) : std::next(it);
  for (auto it = st.claims_by_webhook.begin(); it != st.claims_by_webhook.end();) {
    bool all = true;
    for (const auto& k : it->second) {
      auto c = st.claims.find(k);
      if (c == st.claims.end()) continue;
      if (c->second.settled_at == 0 || c->second.settled_at > projected) {
        all = false;
        break;
      }
    }
    if (!all && st.held_webhooks.count(it->first)) {  // kept while it waits; the rest go on
      ++it;
      continue;
    }
    if (!all) break;
    for (const auto& k : it->second) st.claims.erase(k);
    it = st.claims_by_webhook.erase(it);
  }
}

// A replay.requested event: each item goes to its contact's actor, which
// answers with FactDone like a fact (sync/redrive.h).
void RouteReplay(Self* self, const Event& e) {
  auto& st = self->state;
  ReplayRequest req;
  Status s = DecodeReplayRequest(e.payload, &req);
  if (!s.ok()) {
    Logger("actors")->warn("event=replay_unreadable seq={} error=\"{}\"", e.seq, s.ToString());
    return;
  }
  Logger("actors")->info("event=replay_requested seq={} items={}", e.seq, req.items.size());
  std::map<std::string, Redrive> by_contact;  // one message per contact: decided together
  for (size_t i = 0; i < req.items.size(); ++i) {
    Redrive& r = by_contact[req.items[i].contact_id];
    r.tenant = e.tenant;
    r.contact_id = req.items[i].contact_id;
    r.replay_seq = e.seq;
    r.replay_id = e.id;
    r.items.emplace_back(i, std::move(req.items[i]));
  }
  for (auto& [contact, r] : by_contact) {
    st.in_flight[e.seq]++;
    SendToContact(self, e.seq, e.tenant, contact, std::move(r));
  }
}

// `activities`, of the campaign's task event `e`, handed to `contact`'s
// actor as a fact of kCampaignSystem, answered like a fact.
void RouteCampaignActivities(Self* self, const Event& e, const std::string& contact,
                             std::vector<Activity> activities) {
  auto& st = self->state;
  ContactFact f;
  f.system = kCampaignSystem;
  f.activities = std::move(activities);
  StampFact(&f, e);
  f.source_time_us = e.recorded_at_us;
  st.in_flight[e.seq]++;
  st.facts_routed++;
  SendToContact(self, e.seq, e.tenant, contact, std::move(f));
}

// A task.claimed with a text, an email, a call or a draft request
// (campaigns/agent.h; a draft request goes to the tenant's classifier
// model): the campaign's send,
// handed to the person's contact (named by its id: the campaign resolved
// its audience itself) as a send request of kCampaignSystem, answered like
// a fact. The contact's consent gate decides it as any send.
void RouteCampaignSend(Self* self, const Event& e) {
  TaskEvent t;
  if (!DecodeTaskEvent(e.type, e.payload, &t)) return;
  const bool call = t.channel == channels::kCall, draft = t.channel == channels::kDraft;
  if ((t.channel != channels::kSms && t.channel != channels::kEmail && !call && !draft) ||
      (t.body.empty() && !call))  // a call's note may be empty
    return;
  Activity a;
  a.kind = Activity::Kind::kSend;
  a.direction = "outbound";
  a.message_id = draft ? CampaignDraftId(t.campaign, t.step, t.contact)
                       : CampaignMessageId(t.campaign, t.step, t.contact);
  a.body = std::move(t.body);
  a.channel = t.channel;
  a.subject = std::move(t.subject);
  a.list_unsubscribe = std::move(t.unsubscribe);
  RouteCampaignActivities(self, e, t.contact, {std::move(a)});
}

// A task.skipped that names its claims (a cancelled campaign's,
// campaigns/planner.h): what they asked for withdrawn at the person's
// contact, as a fact of kCampaignSystem: the send, and the draft request
// of an AI-drafted step (its claims may have asked for either, whichever
// agent holds it now). A skip of a task never claimed routes nothing.
void RouteCampaignWithdraw(Self* self, const Event& e) {
  TaskEvent t;
  if (!DecodeTaskEvent(e.type, e.payload, &t) || t.claim == 0) return;
  Activity a;
  a.kind = Activity::Kind::kWithdraw;
  a.status = "campaign " + t.reason;
  a.message_id = CampaignDraftId(t.campaign, t.step, t.contact);
  Activity send = a;
  send.message_id = CampaignMessageId(t.campaign, t.step, t.contact);
  RouteCampaignActivities(self, e, t.contact, {std::move(send), std::move(a)});
}

// A contact.erased event (app/erase.h): the contact's identities lead
// nowhere from now on, its actor, if live, drops its state, and its
// snapshot is deleted.
void RouteErased(Self* self, const Event& e) {
  auto& st = self->state;
  constexpr std::string_view kPrefix = "contact:";
  if (e.stream.compare(0, kPrefix.size(), kPrefix) != 0) return;
  const std::string contact = e.stream.substr(kPrefix.size());
  st.erased[contact] = e.seq;
  Erasure erasure;
  if (st.env->erased_subjects && DecodeErasure(e.payload, &erasure).ok()) {
    for (const auto& sub : erasure.subjects)
      st.env->erased_subjects->Add(ErasedSubjectKey(e.tenant, sub.hash, sub.channel),
                                   ErasedConsent{sub.out, sub.at_us});
  }
  for (auto it = st.claims.begin(); it != st.claims.end();)
    it = it->second.contact_id == contact ? st.claims.erase(it) : std::next(it);
  Recovered(self, ContactKey(e.tenant, contact));  // a hold of it ends
  // Its snapshot (personal data in clear) goes, and one its actor may
  // still make before it hears of the erasure is never written.
  if (st.env->snapshots) st.env->snapshots->Erase(ContactSnapshotKey(e.tenant, contact));
  auto live = st.contacts.find(ContactKey(e.tenant, contact));
  if (live != st.contacts.end() && live->second.actor)
    self->send(live->second.actor, erase_atom::value);
  // Its pushes waiting at the connectors (a retry, a pause, a breaker, a
  // credit budget) never go: an upsert would make the person again. (A
  // live actor sends the cancel too, after what it ordered itself.)
  for (const caf::actor& c : st.env->ConnectorsOf(e.tenant))
    self->send(c, PushCancel{e.tenant, "", "the contact was erased", contact});
  Logger("actors")->info("event=contact_erased seq={} contact={}", e.seq, contact);
}

// An identity.settled event (sync/settle.h): the facts of the conflict's
// webhook that it is about go to the chosen contact, stamped with the
// settlement, so what the contact decides is caused by it. A dismissal
// routes nothing; a settlement that finds no such fact records that.
bool RouteSettled(Self* self, const Event& e) {
  auto& st = self->state;
  DomainEvent s;
  if (!AsDomainEvent(e, &s) || s.contact_id.empty()) return true;
  const Earlier earlier = EarlierRecord(self, e, 0, nullptr);
  if (earlier == Earlier::kUnknown) return false;
  if (Stands(self, e, earlier)) return true;  // refused the first time: stays refused
  std::vector<Event> read;
  Status rs = st.env->log->Read(s.webhook_seq, 1, &read);
  if (!rs.ok()) return false;  // not read now (the log, or its key): not a refusal, read again
  std::vector<ContactFact> facts;
  const Event* w_event = !read.empty() && read[0].seq == s.webhook_seq ? &read[0] : nullptr;
  WebhookReceived w;
  const InboundMapper* mapper = nullptr;
  if (w_event && DecodeWebhookReceived(w_event->schema_version, w_event->payload, &w).ok())
    mapper = FindMapperFor(w_event->type, w.system);
  if (!mapper || !(*mapper)(w, st.env->MapperFor(e.tenant, w.system), &facts).ok()) facts.clear();
  std::vector<size_t> settled = SettledFacts(facts, s);
  Logger("actors")->info("event=identity_settled seq={} webhook_seq={} contact={} facts={}", e.seq,
                         s.webhook_seq, s.contact_id, settled.size());
  // The facts share the conflict's system and external id: that id may have
  // reached another contact since (another settlement, a later webhook).
  std::optional<std::string> owner;
  if (!settled.empty() && !s.external_id.empty())
    owner = Lookup(self, ExternalIdKey(e.tenant, s.system, s.external_id));
  if (settled.empty() || (owner && *owner != s.contact_id)) {
    DomainEvent d;
    d.type = std::string(ev::kFactRejected);
    d.system = s.system;
    d.external_id = s.external_id;
    d.reason = !settled.empty() ? "settled to " + s.contact_id + ", but its " + s.system +
                                      " id now belongs to contact " + *owner
                                : "settled, but its webhook no longer maps to the conflicting fact";
    RecordOnSource(self, e, s.system, d, 0);
    return true;
  }
  for (size_t k = 0; k < settled.size(); ++k) {
    ContactFact& f = facts[settled[k]];
    StampFact(&f, *w_event, static_cast<uint32_t>(k));
    f.webhook_seq = e.seq;  // decided now, as the settlement, each fact in its place
    f.webhook_id = e.id;
    FactLookups fact_lookups(self);
    Claim(self, f, s.contact_id, fact_lookups);
    st.in_flight[e.seq]++;
    st.facts_routed++;
    SendToContact(self, e.seq, e.tenant, s.contact_id, std::move(f));
  }
  return true;
}

// Routes `e`; false when it cannot be decided now (an earlier record could
// not be looked up, or a settlement's webhook read) and is to be read
// again later.
bool Route(Self* self, const Event& e) {
  auto& st = self->state;
  if (e.type == kReplayRequestedType) {
    RouteReplay(self, e);
    return true;
  }
  if (e.type == ev::kIdentitySettled) return RouteSettled(self, e);
  if (e.type == kTaskClaimed) {
    RouteCampaignSend(self, e);
    return true;
  }
  if (e.type == kTaskSkipped) {
    RouteCampaignWithdraw(self, e);
    return true;
  }
  if (e.type == kContactErasedType) {
    RouteErased(self, e);
    return true;
  }
  bool imported = e.type == kContactImportedType;
  if (e.type != WebhookReceived::kType && !imported) return true;
  WebhookReceived w;
  if (!DecodeWebhookReceived(e.schema_version, e.payload, &w).ok())
    return true;  // verify reports it
  const InboundMapper* mapper = FindMapperFor(e.type, w.system);
  if (!mapper) return true;
  // Read again: what the router recorded the first time stands (a
  // quarantine for the whole webhook; a conflict or a rejection for its
  // fact), even if the mapper or the identities would decide otherwise now.
  // Looked up before anything is routed, so a failed lookup routes nothing.
  std::string first_type;
  const Earlier first = EarlierRecord(self, e, 0, &first_type);
  if (first == Earlier::kUnknown) return false;
  if (first_type == ev::kWebhookQuarantined && Stands(self, e, first)) return true;
  std::vector<ContactFact> facts;
  Status s = (*mapper)(w, st.env->MapperFor(e.tenant, w.system), &facts);
  if (!s.ok() && Stands(self, e, first)) return true;  // it mapped the first time
  if (!s.ok()) {
    DomainEvent q;
    q.type = std::string(ev::kWebhookQuarantined);
    q.system = w.system;
    q.reason = s.message();
    st.quarantined++;
    Logger("actors")->warn("event=webhook_quarantined seq={} system={} reason=\"{}\"", e.seq,
                           w.system, LogText(s.message()));
    RecordOnSource(self, e, w.system, q, 0);
    return true;
  }
  if (!imported && e.seq > st.inbound_counted && st.env->board) {
    st.env->board->router.CountInbound(e.tenant, w.system, facts.size());
    st.inbound_counted = e.seq;
  }
  std::vector<Earlier> earlier(facts.size(), Earlier::kNone);
  // A conflict's opt-outs are handed again with it: read before any is routed.
  std::vector<std::vector<std::pair<std::string, std::string>>> conflicts(facts.size());
  for (size_t n = 0; n < facts.size(); ++n) {
    earlier[n] = n == 0 ? first : EarlierRecord(self, e, n, nullptr);
    if (earlier[n] == Earlier::kUnknown) return false;
    if ((earlier[n] == Earlier::kRecorded || earlier[n] == Earlier::kPending) &&
        StatesAnOptOut(facts[n]) && !RecordedCandidates(self, e, n, earlier[n], &conflicts[n]))
      return false;
  }
  for (size_t n = 0; n < facts.size(); ++n) {
    ContactFact& f = facts[n];
    StampFact(&f, e, static_cast<uint32_t>(n));
    if (Stands(self, e, earlier[n])) {  // a conflict stays one until settled
      HandConflictOptOuts(self, e, f, conflicts[n]);
      continue;
    }
    FactLookups lookups(self);
    Resolution r = Resolve(f, [&](const std::string& key) { return lookups(key); },
                           st.env->ContextFor(f.tenant).fold_plus_addressing);
    if (r.kind == Resolution::Kind::kNew && n > 0) r.contact_id = NewContactId(e.id, n);
    if (r.kind == Resolution::Kind::kMatched || r.kind == Resolution::Kind::kNew) {
      Claim(self, f, r.contact_id, lookups);
      st.in_flight[e.seq]++;
      st.facts_routed++;
      SendToContact(self, e.seq, e.tenant, r.contact_id, std::move(f));
    } else {
      DomainEvent d;
      d.system = f.system;
      d.external_id = f.external_id;
      if (r.kind == Resolution::Kind::kAmbiguous) {
        d.type = std::string(ev::kIdentityConflict);
        d.candidates = r.candidates;
        d.fields = f.fields;
      } else {
        d.type = std::string(ev::kFactRejected);
        d.reason = r.reason;
      }
      RecordOnSource(self, e, f.system, d, n);
      if (r.kind == Resolution::Kind::kAmbiguous) HandConflictOptOuts(self, e, f, r.candidates);
    }
  }
  return true;
}

// Reads again env->append_retry_us from now, whether or not anything new
// is appended meanwhile: the log could not be read, a lookup failed, or a
// contact failed. At most one such poll is pending.
void PollLater(Self* self) {
  auto& st = self->state;
  if (st.poll_later_scheduled) return;
  st.poll_later_scheduled = true;
  self->delayed_send(self, std::chrono::microseconds(st.env->append_retry_us), poll_atom::value,
                     retry_atom::value);
}

void Poll(Self* self) {
  auto& st = self->state;
  if (!st.recovered) return;  // Recover polls once it succeeds
  if (st.in_flight.size() >= st.env->router_max_in_flight) return;  // answers will poll again
  std::vector<Event> batch;
  Status s = st.env->log->Read(st.next_seq, st.env->router_batch, &batch);
  if (!s.ok()) {
    Logger("actors")->error("event=router_read_failed seq={} error=\"{}\"", st.next_seq,
                            s.ToString());
    PollLater(self);
    return;
  }
  bool stopped = false;
  for (const auto& e : batch) {
    if (!Route(self, e)) {  // read from it again, after a pause
      Logger("actors")->error("event=router_lookup_failed seq={}", e.seq);
      PollLater(self);
      stopped = true;
      break;
    }
    st.next_seq = e.seq + 1;
  }
  PruneClaims(self);
  MaybeCommit(self);
  Publish(self);
  if (!stopped && batch.size() == st.env->router_batch) self->send(self, poll_atom::value);
}

// Spawns the contacts that have pushes not yet settled, so they hand them to
// their connectors again (sync_status projection, caught up before start:
// its u/ rows, one per push still open). A scan that fails spawns none of
// them.
Status RecoverPendingPushes(Self* self) {
  auto& st = self->state;
  std::vector<std::pair<std::string, std::string>> to_spawn;
  SyncStatusProjection::Unsettled u;
  Status scanned = st.env->log->ScanConsumerState(SyncStatusProjection::kName,
                                                  SyncStatusProjection::kUnsettledPrefix,
                                                  [&](std::string_view, std::string_view v) {
                                                    if (SyncStatusProjection::ParseUnsettled(v, &u))
                                                      to_spawn.emplace_back(u.tenant, u.contact_id);
                                                    return true;
                                                  });
  if (!scanned.ok()) return scanned;
  for (const auto& [tenant, contact] : to_spawn) {
    auto key = ContactKey(tenant, contact);
    if (!st.contacts.count(key)) Spawn(self, tenant, contact, true);
  }
  if (!to_spawn.empty())
    Logger("actors")->info("event=pending_pushes_recovered contacts={}", st.contacts.size());
  return Status::OK();
}

// The router's start: its checkpoint, then the contacts with unsettled
// pushes, then the first poll. Nothing is read from the log before both
// succeed (a contact a fact spawned first would not re-drive its pushes:
// an opt-out among them could wait for that contact's next fact); a
// failure is logged (the first, then every 60th) and the start is made
// again a second later.
void Recover(Self* self) {
  auto& st = self->state;
  uint64_t cp = 0;
  Status s = st.env->log->ReadCheckpoint(kRouterConsumer, &cp);
  if (s.ok()) s = RecoverPendingPushes(self);
  if (!s.ok()) {
    if (st.recover_failures++ % 60 == 0)
      Logger("actors")->error("event=router_start_failed attempts={} retry_in_ms=1000 error=\"{}\"",
                              st.recover_failures, s.ToString());
    self->delayed_send(self, std::chrono::seconds(1), recover_atom::value, retry_atom::value);
    Publish(self);
    return;
  }
  if (st.recover_failures > 0)
    Logger("actors")->info("event=router_started attempts={}", st.recover_failures + 1);
  st.committed = cp;
  st.next_seq = cp + 1;
  st.recovered = true;
  Poll(self);
  Publish(self);  // Poll does not when it cannot read
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

}  // namespace

caf::behavior Router(Self* self, std::shared_ptr<const SyncEnv> env) {
  auto& st = self->state;
  st.env = std::move(env);
  // committed and next_seq are read by Recover (recover_atom).
  st.reread_until = st.env->log->LastSequence();
  // Shutting down: the contacts go with the router.
  // A contact that stopped with an error (its stream could not be read)
  // took facts with it: start over from the checkpoint. What is read again
  // is not decided again (reread_until; contacts skip decided facts).
  self->set_down_handler([self](caf::down_msg& m) {
    auto& s = self->state;
    auto found = s.keys_by_actor.find(m.source.id());
    if (found == s.keys_by_actor.end()) return;
    const std::string key = std::move(found->second);
    s.keys_by_actor.erase(found);  // before anything spawns (and may rehash the map)
    auto it = s.contacts.find(key);
    // A passivated contact's entry is gone, or already names its successor.
    if (it != s.contacts.end() && it->second.actor.address() == m.source) s.contacts.erase(it);
    if (m.reason && m.reason != caf::exit_reason::user_shutdown) {
      Logger("actors")->error("event=contact_failed restart_from={}", s.committed + 1);
      Hold(self, key);
      ReadAgainFromCheckpoint(self);
      RespawnOwing(self);
    }
    Publish(self);
  });
  self->set_exit_handler([self](caf::exit_msg& m) {
    for (auto& [key, c] : self->state.contacts) self->send_exit(c.actor, m.reason);
    CommitCheckpoint(self);
    self->quit(m.reason);
  });
  return {
      [self](recover_atom) {  // start: once the connectors know the router
        if (!self->state.recovered && self->state.recover_failures == 0) Recover(self);
      },
      [self](recover_atom, retry_atom) {
        if (!self->state.recovered) Recover(self);
      },
      [self](poll_atom) { Poll(self); },
      [self](poll_atom, retry_atom) {
        self->state.poll_later_scheduled = false;
        Poll(self);
      },
      [self](idle_atom) {
        self->state.commit_scheduled = false;
        MaybeCommit(self);
      },
      [self](release_atom) { Release(self); },
      [self](FactDone& d) {
        auto& state = self->state;
        if (!state.failing.empty() || !state.held_reports.empty())
          Recovered(self, ContactKey(d.tenant, d.contact_id));
        // Handed before a read again: the fact is handed again as the new
        // reading reaches it (or waits for a held contact), and that
        // hand-out's answer is the one awaited.
        if (d.epoch != state.epoch) return;
        auto it = state.claims_by_webhook.find(d.webhook_seq);
        if (it != state.claims_by_webhook.end()) {
          for (const auto& k : it->second) {
            auto c = state.claims.find(k);
            // Nothing appended: the projection will never show the claim;
            // it stays settled "now" (the log head) and goes with the next prune.
            // (A claim a later fact has taken over waits for that one.)
            if (c != state.claims.end() && c->second.contact_id == d.contact_id &&
                c->second.webhook_seq == d.webhook_seq)
              c->second.settled_at = d.last_seq ? d.last_seq : state.env->log->LastSequence();
          }
        }
        Answered(self, d.webhook_seq);
      },
      [self](AppendResult& r) {
        auto& state = self->state;
        auto it = state.own_appends.find(r.token);
        if (it == state.own_appends.end()) return;
        if (!r.error.empty()) {
          self->delayed_send(self, std::chrono::microseconds(state.env->append_retry_us),
                             retry_atom::value, r.token);
          return;
        }
        uint64_t seq = it->second.webhook_seq;
        state.own_appends.erase(it);
        Answered(self, seq);
      },
      [self](retry_atom, uint64_t token) { OwnAppend(self, token); },
      [self](started_atom) {
        if (self->current_sender()) Started(self, self->current_sender()->id());
      },
      [self](PushReport& r) {
        ReportToContact(self, std::move(r));
        Publish(self);  // the contact may have been spawned again
      },
      [self](passivate_atom, const std::string& tenant, const std::string& contact_id,
             uint64_t received) {
        auto& state = self->state;
        auto it = state.contacts.find(ContactKey(tenant, contact_id));
        if (it == state.contacts.end() || it->second.sent != received) return false;
        Recovered(self, it->first);
        state.contacts.erase(it);
        Publish(self);
        return true;
      },
  };
}

}  // namespace dfm
