// Settling an identity.conflict (`dfm conflicts settle`,
// POST /v1/admin/settle).
//
// A fact whose phone names one contact and whose email another is applied
// to neither: the router records an identity.conflict on the fact's source
// stream (sync/identity.h), and hands only its opt-outs to the candidates
// at once (ConflictOptOuts). A person settles it by choosing one of the
// conflict's candidates, or by dismissing it (the fact concerns neither and
// stays unapplied; the opt-outs stand).
//
// A settlement is one identity.settled event on the conflict's stream,
// caused by the conflict and correlated with the webhook the conflict was
// about. Its payload is a domain event (sync/domain_event.h): contact_id,
// the chosen contact (empty when dismissed); system, external_id,
// candidates, fields and webhook_seq copied from the conflict; reason, the
// person's note. Its idempotency key (SettleIdempotencyKey under
// kDecisionKeySystem) makes each conflict settled once: a
// second settlement of the same conflict is a duplicate, whatever it chose.
//
// The router carries a settlement out like a webhook (actors/router.h): it
// reads the conflict's webhook, maps it again, and sends the facts the
// conflict was about (SettledFacts) to the chosen contact, stamped with the
// settlement's sequence number and id. So the contact decides them now,
// against its state now, and what it decides is caused by the settlement.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "sync/domain_event.h"
#include "sync/fact.h"
#include "util/status.h"

namespace dfm {

inline constexpr std::string_view kIdentitySettledType = ev::kIdentitySettled;

struct SettleRequest {
  uint64_t conflict_seq = 0;  // the identity.conflict event
  std::string contact_id;     // the candidate chosen; empty when dismissed
  bool dismiss = false;       // the fact concerns none of the candidates
  std::string reason;         // the person's note (optional)
};

// The admin endpoint's body: {"conflict": seq, "contact": id} or
// {"conflict": seq, "dismiss": true}, each with an optional "reason".
// InvalidArgument says what is wrong (not JSON, no positive "conflict",
// neither or both of "contact" and "dismiss").
Status DecodeSettleRequest(std::string_view body, SettleRequest* out);
std::string EncodeSettleRequest(const SettleRequest& r);

// The idempotency key (system kDecisionKeySystem) of the settlement of the conflict at
// `conflict_seq`.
std::string SettleIdempotencyKey(uint64_t conflict_seq);

// The idempotency key (system kDecisionKeySystem) of what the router
// records on the source stream about fact `n` of the event at `seq` (a
// webhook, or a settlement: its fact 0): an identity.conflict or a
// fact.rejected, and for fact 0 of a webhook also its webhook.quarantined.
// "s/<seq>/<n>".
std::string SourceDecisionKey(uint64_t seq, size_t n);

// The identity.settled draft that carries out `r` for `conflict`, the event
// at r.conflict_seq. InvalidArgument when that event is not an
// identity.conflict of `tenant` whose payload reads, or when the contact
// chosen is not one of its candidates.
Status PlanSettlement(const Event& conflict, std::string_view tenant, const SettleRequest& r,
                      EventDraft* out);

// Which of a webhook's facts (mapped again) a settlement is about: those of
// its system with its external id and fields; when none has its fields
// (the mapper changed since the conflict), those with its system and
// external id.
std::vector<size_t> SettledFacts(const std::vector<ContactFact>& facts, const DomainEvent& settled);

}  // namespace dfm
