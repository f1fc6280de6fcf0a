// The consent family's pushes (sync/consent_rules.cc decides when): whom a
// statement tells, and with which push. Pure; internal to the family.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "sync/domain_event.h"
#include "sync/fact.h"
#include "sync/model_internal.h"

namespace dfm::model {

// What `system` was known to hold for `channel` (its statements, our
// confirmed pushes); all false when nothing is known.
ContactState::HeldConsent KnownConsent(const ContactState& s, const std::string& system,
                                       const std::string& channel);
// Whom a statement concerns: the fact's phone/email, else the contact's.
std::map<std::string, std::string> Whom(const ContactState& s, const ContactFact& fact);
// The channels of `chans` that `target` keeps (SyncContext::channels; a
// target not listed keeps all).
std::vector<std::string> KeptBy(const SyncContext& ctx, const std::string& target,
                                const std::vector<std::string>& chans);
// The channels `target` keeps as one flag (SyncContext::one_flag), or null.
const std::set<std::string>* OneFlag(const SyncContext& ctx, const std::string& target);
// What a push to `target` of `chans` (going `opt_out`) names (consent_pushes.cc).
std::vector<std::string> ToTell(const ContactState& s, const SyncContext& ctx,
                                const std::string& target, const std::vector<std::string>& chans,
                                bool opt_out);
// A consent push of `chans` to `target` for `fact`: its id
// "<contact>:<target>:<fact tag>:<op>"; `who`'s fields the target accepts.
DomainEvent ConsentPush(const ContactState& s, const ContactFact& fact, const std::string& target,
                        bool opt_out, const std::vector<std::string>& chans,
                        const std::string& reason, const std::map<std::string, std::string>& who,
                        const std::set<std::string>& accepted);
// The pushes of a statement that changed `changed` (consent_pushes.cc says
// each one's contract).
void PushToOthers(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                  bool opt_out, const std::vector<std::string>& changed, const std::string& reason,
                  const std::map<std::string, std::string>& who, std::vector<DomainEvent>* out);
void PushToOwn(const ContactState& s, const ContactFact& fact, const SyncContext& ctx, bool opt_out,
               const std::vector<std::string>& changed, const std::string& reason,
               const std::map<std::string, std::string>& who, std::vector<DomainEvent>* out);
void PushToDuplicatesSystem(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                            const std::vector<std::string>& changed, const std::string& reason,
                            const std::map<std::string, std::string>& who,
                            std::vector<DomainEvent>* out);
void PushToUnconfirmed(const ContactState& s, const ContactFact& fact, const SyncContext& ctx,
                       const std::vector<std::string>& chans, const std::string& reason,
                       const std::map<std::string, std::string>& who,
                       std::vector<DomainEvent>* out);

}  // namespace dfm::model
