// The projections of contact sync. Key layouts (values are plain text):
//
// "mappings", layout 5
//   x/<tenant>/<system>/<external id> -> contact id; also each other record
//                                 of the person a consent push set there
//                                 (push.succeeded answer.ids: duplicates)
//                                 that no other contact holds (layout 4)
//   c/<contact id>/<system>    -> external id   (contact ids are unique
//                                                across tenants)
//   p/<tenant>/<E.164 phone>   -> contact id
//   e/<tenant>/<email>         -> contact id
//   f/<tenant>/<email without its +tag> -> contact id (sync/identity.h,
//                                 FoldedEmailKey; layout 2 added it)
//   (layout 4 also kept each message's id in each system, m/ and k/
//   rows, which nothing read)
// "contacts" (the contact view), layout 3
//   f/<contact id>/<field>     -> "<system that set it> <merged value>"
//   d/<contact id>             -> "1" while deleted
//   (layout 1 kept the system under s/<contact id>/<field>)
// "sync_status", layout 4
//   p/<push id>                -> "<state> <system> <contact id> <tenant>";
//                                 state is pending | retrying | succeeded |
//                                 dead | cancelled (a send refused before it
//                                 went out: message.refused naming the push)
//   u/<push id>                -> "<system> <contact id> <tenant>" while the
//                                 push is pending or retrying (unsettled):
//                                 what the router's start reads, in rows as
//                                 many as the pushes open, not all ever made
//   n/<tenant>/<system>/<state> -> number of pushes in that state
//   k/<contact id>             -> the same per contact, one key:
//                                 "<state>=<n>" for each state it has
//                                 pushes in, space-separated, in the order
//                                 above ("pending=1 succeeded=40")
//   (layout 1 kept one key per contact and state, k/<contact id>/<state>;
//   layout 3 had no u/)
// "opt_outs" (the opt-out registry), layout 3: below, at its class
// Every projection also keeps, since the layouts (mappings 3,
// contacts 3, sync_status 3, opt_outs 4, enrichments 2, conversations 2),
// "~o/<contact id>\n<key>" -> "" for each key a fold of one of the
// contact's events put that does not begin with the contact's id (the
// contact view's f/ and d/, the mappings' c/, sync_status's p/, k/ and u/ do:
// Projection::OwnKinds) or with its tenant and id (campaign_tasks' i/ and
// d/: Projection::TenantOwnKinds), so a contact.erased erases the
// contact's rows (docs/privacy.md).
// A state of another layout is dropped and folded again from the log when
// a runner starts (Projection::layout); the layout is kept under "~layout".
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "projections/campaign_projections.h"
#include "projections/projection.h"

namespace dfm {

class MappingsProjection : public Projection {
 public:
  static constexpr char kName[] = "mappings";
  std::string name() const override { return kName; }
  // 6: a push that links no record (LinksNoRecord) maps nothing
  int layout() const override { return 6; }
  bool Uses(std::string_view type) const override;
  void FoldDecoded(const Event& e, const DomainEvent* d, ProjectionState* state) override;

 protected:
  std::string_view OwnKinds() const override { return "c"; }
  bool OwnedBy(std::string_view key, std::string_view value,
               std::string_view contact_id) const override;
};

class ContactViewProjection : public Projection {
 public:
  static constexpr char kName[] = "contacts";
  std::string name() const override { return kName; }
  int layout() const override { return 3; }
  bool Uses(std::string_view type) const override;
  void FoldDecoded(const Event& e, const DomainEvent* d, ProjectionState* state) override;

 protected:
  std::string_view OwnKinds() const override { return "fd"; }
};

// The opt-out registry (layout 5), per tenant, per E.164 phone or email,
// per channel:
//   "o/<tenant>/<phone|email>/<channel>" -> "<in|out> <when> <seq> <system> <contact id>"
//       the current status: the newest by when it happened (source time,
//       else recorded time; µs, printf %020lld: 20 characters, a time
//       before 1970 a '-' and 19 digits); at the same time opt-out wins
//       (ConsentSupersedes). Layout 1 compared <when> as text, which put
//       two times before 1970 in the wrong order.
//   "h/<tenant>/<phone|email>/<channel>/<seq, 20 digits>" -> JSON
//       {"status","system","contact_id","cause","reason","event_id","at_us"}
//   "c/<tenant>/<seq, 20 digits>" -> JSON {"contact_id","system","actor",
//       "channel","reason","detail","event_id","at_us"}: a consent.conflict
//       (a staff opt-in refused over the person's opt-out), for a person to
//       look at (the status page lists them). Layout 3 added these.
//   "z/<tenant>/<subject hash>/<channel>" -> "<in|out> <when> <seq> <system>"
//       an erased person's consent as it stood (contact.erased, sync/
//       erasure.h), under the keyed hash of the phone or email; the newest
//       by ConsentSupersedes. Layout 4 added these and the owner index.
// History entries are never erased. (`dfm audit opt-outs` reads the log
// itself, so it also shows who was told and when, and each record's hash.)
class OptOutRegistryProjection : public Projection {
 public:
  static constexpr char kName[] = "opt_outs";
  std::string name() const override { return kName; }
  int layout() const override { return 5; }  // 5: an o/ row names its contact
  bool Uses(std::string_view type) const override;
  void FoldDecoded(const Event& e, const DomainEvent* d, ProjectionState* state) override;

 protected:
  bool OwnedBy(std::string_view key, std::string_view value,
               std::string_view contact_id) const override;
};
// The z/ key of an erased person's phone or email (sync/erasure.h).
std::string ErasedSubjectKey(std::string_view tenant, std::string_view hash,
                             std::string_view channel);

class SyncStatusProjection : public Projection {
 public:
  static constexpr char kName[] = "sync_status";
  std::string name() const override { return kName; }
  int layout() const override { return 4; }
  bool Uses(std::string_view type) const override;
  void FoldDecoded(const Event& e, const DomainEvent* d, ProjectionState* state) override;

  // The unsettled pushes' rows: ScanConsumerState(kName, kUnsettledPrefix).
  static constexpr char kUnsettledPrefix[] = "u/";
  struct Unsettled {
    std::string system, contact_id, tenant;
  };
  // A u/ row's value; false when it does not parse.
  static bool ParseUnsettled(std::string_view value, Unsettled* out);
  // The u/ row of push `push_id` (tests write one as the fold would).
  static std::pair<std::string, std::string> UnsettledRow(std::string_view push_id,
                                                          const Unsettled& u);

 protected:
  // p/, u/ <push id>: "<contact>:..."
  std::string_view OwnKinds() const override { return "pku"; }
  void Forget(std::string_view key, std::string_view value, ProjectionState* state) override;
};

// "enrichments" (docs/sync-rules.md, "Enrichment"): when a person or a
// company was last enriched in a tenant, from contact.enriched events:
//   p/<tenant>/<email>   -> µs (decimal) of the newest answer for that email
//   d/<tenant>/<domain>  -> the same for a company domain asked without an email
// A contact is not asked about again within the period (SyncContext::
// last_enriched reads these).
class EnrichmentsProjection : public Projection {
 public:
  static constexpr char kName[] = "enrichments";
  std::string name() const override { return kName; }
  int layout() const override { return 2; }
  bool Uses(std::string_view type) const override;
  void FoldDecoded(const Event& e, const DomainEvent* d, ProjectionState* state) override;
};
// The key EnrichmentsProjection keeps for an email, or for a domain.
std::string EnrichedEmailKey(const std::string& tenant, const std::string& email);
std::string EnrichedDomainKey(const std::string& tenant, const std::string& domain);

// "conversations" (docs/sync-rules.md, "Conversations"): the conversation
// each person's messages are in, in a system that keeps conversations
// (Genesys Open Messaging), from push.succeeded of op "message" whose
// answer named one (answer.conversation_id):
//   c/<tenant>/<system>/<person's phone>/<our number> ->
//       "<conversation id> <contact id> <seq of the newest such answer>"
// <our number> is the business line the messages came to (empty when not
// stated). A newer conversation for the same pair replaces the older.
class ConversationsProjection : public Projection {
 public:
  static constexpr char kName[] = "conversations";
  std::string name() const override { return kName; }
  int layout() const override { return 2; }
  bool Uses(std::string_view type) const override;
  void FoldDecoded(const Event& e, const DomainEvent* d, ProjectionState* state) override;

 protected:
  bool OwnedBy(std::string_view key, std::string_view value,
               std::string_view contact_id) const override;
};
std::string ConversationKey(const std::string& tenant, const std::string& system,
                            const std::string& phone, const std::string& our_number);

// Every projection the service runs, for a tool or a test that runs them all.
struct SyncProjections {
  MappingsProjection mappings;
  ContactViewProjection contacts;
  SyncStatusProjection sync_status;
  OptOutRegistryProjection opt_outs;
  EnrichmentsProjection enrichments;
  ConversationsProjection conversations;
  CampaignsProjection campaigns;           // projections/campaign_projections.h
  CampaignTasksProjection campaign_tasks;  // the same
  std::vector<Projection*> All() {
    return {&mappings,    &contacts,      &sync_status, &opt_outs,
            &enrichments, &conversations, &campaigns,   &campaign_tasks};
  }
};

}  // namespace dfm
