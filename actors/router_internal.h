// The router's internals (actors/router.h), shared by its files:
//   router.cc           reading the log, routing each webhook, the checkpoint
//   router_contacts.cc  the contacts' actors: spawned, handed facts and
//                       reports, held after failures
//   router_identity.cc  whom a fact is about: earlier records, claims
//   router_events.cc    the events that are no webhook: replays, campaigns,
//                       erasures, settlements
// Each function's contract is at its definition.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "actors/router.h"

namespace dfm {
namespace router_internal {

using Self = caf::stateful_actor<RouterState>;

// router.cc
void Publish(Self* self);
bool CommitCheckpoint(Self* self);
void MaybeCommit(Self* self);
void Answered(Self* self, uint64_t webhook_seq);
void OwnAppend(Self* self, uint64_t token);
void PollLater(Self* self);
caf::behavior Behavior(Self* self, std::shared_ptr<const SyncEnv> env);

// router_contacts.cc
std::string ContactKey(const std::string& tenant, const std::string& contact_id);
RouterState::Contact& Spawn(Self* self, const std::string& tenant, const std::string& contact_id,
                            bool redrive);
void HandKeptReports(Self* self, const std::string& key, RouterState::Contact* c);
caf::actor ContactFor(Self* self, const std::string& tenant, const std::string& contact_id);
void ReportToContact(Self* self, PushReport r);
void Started(Self* self, caf::actor_id actor);
void Recovered(Self* self, const std::string& key);
void Hold(Self* self, const std::string& key);
void ReadAgainFromCheckpoint(Self* self);
void RespawnOwing(Self* self);
void Release(Self* self);

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

// router_identity.cc

// What the router recorded the first time about fact `n` of `e`, when `e`
// is read again (RouterState::reread_until): nothing, a durable record, an
// append still under way (its answer is still awaited), or unknown because
// the lookup failed. The record's type goes to `type` when not null.
enum class Earlier { kNone, kRecorded, kPending, kUnknown };
Earlier EarlierRecord(Self* self, const Event& e, size_t n, std::string* type);
bool Stands(Self* self, const Event& e, Earlier earlier);
void RecordOnSource(Self* self, const Event& e, const std::string& system, DomainEvent d, size_t n);
bool RecordedCandidates(Self* self, const Event& e, size_t n, Earlier earlier,
                        std::vector<std::pair<std::string, std::string>>* out);
bool StatesAnOptOut(const ContactFact& f);
void HandConflictOptOuts(Self* self, const Event& e, const ContactFact& f,
                         const std::vector<std::pair<std::string, std::string>>& candidates);
std::optional<std::string> Lookup(Self* self, const std::string& key);

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

void Claim(Self* self, const ContactFact& f, const std::string& contact_id, FactLookups& lookups);
void PruneClaims(Self* self);

// router_events.cc
void RouteReplay(Self* self, const Event& e);
void RouteCampaignSend(Self* self, const Event& e);
void RouteCampaignWithdraw(Self* self, const Event& e);
void RouteErased(Self* self, const Event& e);
bool RouteSettled(Self* self, const Event& e);

}  // namespace router_internal
}  // namespace dfm
