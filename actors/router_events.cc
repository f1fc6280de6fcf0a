// The router's events that are no webhook (actors/router.h): replays,
// campaigns' tasks, erasures and identity settlements.
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

}  // namespace router_internal
}  // namespace dfm
