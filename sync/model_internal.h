// Helpers the families of merge rules share (sync/contact_model.cc: contact,
// lists; sync/message_rules.cc: messages and calls; sync/consent_rules.cc
// and consent_pushes.cc: consent). Internal to sync/.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "sync/contact_model.h"

namespace dfm::model {

const Attributed* Current(const ContactState& s, const std::string& f);
const std::string* Lookup(const std::map<std::string, std::string>& m, const std::string& k);
// A decision about `fact`'s contact: type, contact, the fact's system, its
// external id and webhook sequence.
DomainEvent Base(std::string_view type, const ContactState& s, const ContactFact& fact);

// Whether `channel` is opted out once the events decided so far apply;
// `why` (may be null) says by what (contact_model.cc).
bool OptedOut(const ContactState& s, const std::vector<DomainEvent>& decided,
              const std::string& channel, std::string* why);

// message_rules.cc (docs/sync-rules.md, "Messages and calls"). A push of
// a message op to `target`, identified by the message key.
DomainEvent MessagePush(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                        const std::string& target, const std::string& op, const std::string& key);
// Tells ctx.conversations the status of a message it asked to send.
void ReportStatus(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                  const std::string& key, const std::string& ghl_id, const std::string& status,
                  const std::string& error, std::vector<DomainEvent>* out);
// One text or call of a fact, carried to the systems that keep them.
void DecideActivity(const ContactState& s, const ContactFact& fact, const Activity& a,
                    const SyncContext& ctx, int64_t t, std::vector<DomainEvent>* out);
// An opt-out (`opt_out`, on `channels`) refuses the sends still on their
// way to them.
void RefusePendingSends(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                        const std::vector<std::string>& channels, const DomainEvent& opt_out,
                        std::vector<DomainEvent>* out);

// consent_rules.cc (docs/sync-rules.md, "Opt-outs" and "Who may undo an
// opt-out"): one consent statement of an upsert fact, decided after the
// fact's contact part; `t` is when it happened.
void DecideConsent(const ContactState& s, const ContactFact& fact, const Consent& c,
                   const SyncContext& ctx, int64_t t, std::vector<DomainEvent>* out);
// consent_rules.cc: `channel` no longer known held out on `system`'s
// records (every system's when `system` is empty): ContactState::told.
void ForgetTold(ContactState* s, const std::string& system, const std::string& channel);
// consent_pushes.cc: after the fact's consents, a record the fact newly
// links (`out` holds its contact.linked) told the channels the contact
// holds out there.
void PushToNewRecord(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                     std::vector<DomainEvent>* out);
// consent_pushes.cc: consent pushes from `from` on sharing a push id (one
// fact's statements asking one target the same) merged into the first,
// their channels joined: one push per id.
void MergeConsentPushes(std::vector<DomainEvent>* out, size_t from);
// consent_pushes.cc: after a fact's statements, a one-flag target's
// consent pushes that contradict the flag as the statements leave it
// dropped.
void KeepOneFlagAsItEnds(const ContactState& s, const SyncContext& ctx,
                         std::vector<DomainEvent>* out);
// consent_pushes.cc: the held opt-outs a record of `system` new to the
// contact is told (none stated by `stated`, known held there, or on their
// way there); empty: none.
std::vector<std::string> HeldToTell(const ContactState& s, const SyncContext& ctx,
                                    const std::string& system, const std::string& record,
                                    const std::set<std::string>& stated,
                                    const std::vector<DomainEvent>& decided);
// consent_pushes.cc: the record a push's answer names new to the contact
// (`ok`, push.succeeded: an upsert's record other than the contact's link
// there; a text's record found anew, linked by `out`'s contact.linked);
// empty: none.
std::string RecordMadeBy(const ContactState& s, const DomainEvent& ok,
                         const std::vector<DomainEvent>& out);
// contact_model.cc: a record of `fact.system` a push of ours made or found
// while the contact is deleted and stays so (no contact.created or
// contact.changed in `out`) is marked do-not-contact, as the deletion
// marked the records it linked: linked by the push's echo, dated after the
// deletion, or named by its answer (`answered`: that push's id). Not the
// deleted record itself, nor one another contact holds, nor in a system
// that takes no marks (SyncContext::marks_dnc). Id "<contact>:<system>:
// <fact tag>:mark_dnc" kNewRecordTag, then ":<answered>" when not empty.
void MarkRecordAfterDeletion(const ContactState& s, const ContactFact& fact,
                             const std::string& record, const std::string& answered,
                             const SyncContext& ctx, std::vector<DomainEvent>* out);
// The same for a record a push's answer names new to the contact (`ok`,
// push.succeeded: RecordMadeBy), after `out`'s decisions about it.
void MarkRecordMadeAfterDeletion(const ContactState& s, const DomainEvent& ok,
                                 const SyncContext& ctx, std::vector<DomainEvent>* out);
// consent_pushes.cc: a record a push's answer names (`ok`, push.succeeded:
// an upsert's record other than the contact's link there; a text's record
// found anew, linked by `out`'s contact.linked) told the held opt-outs.
void PushToRecordMade(const ContactState& s, const DomainEvent& ok, const SyncContext& ctx,
                      std::vector<DomainEvent>* out);
// DecideConsent for a statement a push's report made (a carrier's refusal,
// a classifier's verdict): its fact has no webhook (its tag is "0"), so the
// pushes it requests are named after the report, ":<how>:<report_push_id>",
// and each report's decisions are its own.
void DecideReportedConsent(const ContactState& s, const ContactFact& fact, const Consent& c,
                           const SyncContext& ctx, int64_t t, std::string_view how,
                           const std::string& report_push_id, std::vector<DomainEvent>* out);
// A send the provider refused because the recipient opted out at its end
// (push.dead_lettered with outcome "recipient_opted_out"): a carrier's
// opt-out of the send's channel, at `t`.
void DecideCarrierOptOut(const ContactState& s, const DomainEvent& dead, const SyncContext& ctx,
                         int64_t t, std::vector<DomainEvent>* out);
// enrichment_rules.cc (docs/sync-rules.md, "Enrichment"): after a fact's
// decisions (`decided`), whether to ask ctx.enrichment about the contact;
// and what its answer (push.succeeded of op "enrich") records and fills.
void DecideEnrichmentRequest(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                             const std::vector<DomainEvent>& decided, std::vector<DomainEvent>* out);
void DecideEnriched(const ContactState& s, const DomainEvent& answer, const SyncContext& ctx,
                    std::vector<DomainEvent>* out);
// classifier_rules.cc (docs/classifier.md): whether to ask ctx.classifier
// about a flagged text (a kReview consent of `fact`, at `t`); and what its
// answer (push.succeeded of op "classify") records and applies.
void DecideClassifierRequest(const ContactState& s, const ContactFact& fact, const Consent& c,
                             const SyncContext& ctx, int64_t t, std::vector<DomainEvent>* out);
void DecideClassified(const ContactState& s, const DomainEvent& answer, const SyncContext& ctx,
                      std::vector<DomainEvent>* out);
// read_back_rules.cc (docs/sync-rules.md, "Opt-outs"): a read_consent
// push to `target`; the one after an opt-out or opt-in push a reading
// system took (`ok`, its push.succeeded); and what a read's answer decides.
DomainEvent ReadBackPush(const ContactState& s, const std::string& target,
                         const std::vector<std::string>& chans, const std::string& push_id,
                         const std::string& reason, const SyncContext& ctx);
void DecideReadAfterConsentPush(const ContactState& s, const DomainEvent& ok,
                                const SyncContext& ctx, std::vector<DomainEvent>* out);
void DecideReadBack(const ContactState& s, const DomainEvent& answer, const SyncContext& ctx,
                    std::vector<DomainEvent>* out);
// message_rules.cc: a message op's push that found the person's record
// anew (`ok`, its push.succeeded with answer.contact_id, the record it
// wrote to, and answer.gone, the link that answered "not found"): that
// record becomes the contact's link (contact.linked via "search") while
// the contact is still linked to the gone one and no other contact holds
// the found one.
void DecideFoundAnew(const ContactState& s, const DomainEvent& ok, const SyncContext& ctx,
                     std::vector<DomainEvent>* out);
// Applies contact.opted_out, contact.opted_in and consent.conflict.
void ApplyConsentStatement(ContactState* s, const DomainEvent& e);
// A consent push ended: its channels are no longer on their way (unless a
// later push for them is), and on success the system holds `held`.
void SettleConsentPush(ContactState* s, const DomainEvent& e,
                       const ContactState::HeldConsent* held);

}  // namespace dfm::model
