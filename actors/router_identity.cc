// Whom a webhook's fact is about, as the router routes it (actors/router.h):
// what it recorded the first time, the claims of identity keys not yet in
// the mappings projection, and an identity conflict's opt-outs.
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

// What the router recorded the first time about fact `n` of `e`
// (Earlier, actors/router_internal.h).
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

}  // namespace router_internal
}  // namespace dfm
