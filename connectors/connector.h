// A connector: everything the engine knows of one external system, in one
// descriptor its folder exports (connectors/<system>/). Nothing outside
// connectors/ names a vendor: the service, its tools and the sync ask the
// registry below. docs/connectors.md tells how to add one.
//
// Contract for a descriptor: made once, never changed; its functions are
// pure functions of their arguments, thread-safe, and never log secrets or
// personal data. Every setting a function reads is in `settings` (the
// configuration fills in each one, its default when not set).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/common/http_client.h"
#include "connectors/common/mapper.h"
#include "connectors/common/outbound.h"
#include "connectors/common/probe.h"
#include "connectors/common/webhook_source.h"

namespace dfm {

// What a system can be for the sync (docs/sync-rules.md). Which system
// plays a role is configuration (`sync.roles.<role>`, per tenant
// `tenants.<t>.roles.<role>`); a connector says which it can play.
enum class Role {
  kConversations,  // records every text and call; asks for texts to be sent
  kSender,         // delivers the texts the conversations ask to send
  kLists,          // holds the lists tags map to (sync.tag_lists)
  kEnrichment,     // answers what it knows of a new contact (title, company): fills empty fields
  kClassifier,     // gives a second opinion on texts the keyword rule flags (docs/classifier.md)
  kMailer,         // delivers the emails the engine sends (a campaign's email steps)
  kDialer,         // puts a person on a dialer's list for a human agent (a campaign's call steps)
};
// "conversations", "sender", "lists", "enrichment", "classifier", "mailer",
// "dialer"
std::string_view RoleName(Role role);
const std::vector<Role>& AllRoles();

struct Connector {
  std::string system;  // its name everywhere: route segment, config table, "ghl"
  std::string name;    // for people: "GoHighLevel"
  // Every key of its configuration table (webhooks, mapping, pushes), with
  // its type, secrecy, default and help. The system is enabled for a
  // tenant when any of them is set.
  std::vector<SettingSpec> settings;
  // The secret settings that authenticate its webhooks (a shared secret, not
  // a vendor's public key): no two tenants may hold the same one. Each gets
  // a "<key>_previous" setting in the registry (PreviousSecretKey): while
  // set, webhooks verified with it are taken too (a rotation's overlap).
  std::vector<std::string> webhook_secret_keys;
  // For a system whose one sender serves many tenants (WhatsApp: one Meta
  // app signs every number's notifications with its one App Secret): the
  // setting that tells the tenants apart ("phone_number_id"), which no two
  // tenants may share; the front gives each webhook to the tenant its body
  // names (WebhookSource::TenantKey). Such a system's secret is not in
  // webhook_secret_keys: tenants may share it. Empty: the URL says.
  std::string tenant_key;
  // For a system whose webhooks are signed by a key per vendor account
  // (Telnyx's public key) that several tenants may share: `account_key`
  // names that setting, `account_binding` the comma-separated setting whose
  // values bind a webhook to its tenant (the source refuses a body not
  // naming one of them). Config check requires the binding of every tenant
  // sharing an account's key, with no value in two tenants'. Empty: none.
  std::string account_key;
  std::string account_binding;

  // Its webhooks: the source that verifies and identifies them, built from
  // a tenant's settings (every problem reported, null returned); null for a
  // system that sends none.
  std::function<std::unique_ptr<WebhookSource>(const SystemSettings&,
                                               std::vector<SettingProblem>*)>
      webhook_source;
  // What a stored webhook (webhook.received) says, as facts; and what a
  // contact its API listed says (contact.imported, `dfm backfill`). Empty
  // when it has none.
  InboundMapper map_webhook;
  InboundMapper map_import;
  // For a system whose webhooks are links the service hands out (the
  // one-click unsubscribe links, docs/email.md): makes the link's token
  // (what follows `?u=`) for `subject` (an address) and `campaign`, at
  // `now_s`. Empty for every other system.
  std::function<Status(const SystemSettings&, std::string_view subject, std::string_view campaign,
                       int64_t now_s, std::string* token)>
      make_link;
  // What a webhook is, in the vendor's words ("ContactCreate", "status
  // callback"), for people (`dfm trace`, `dfm events`); "" when unknown.
  std::function<std::string(const WebhookReceived&)> describe_webhook;

  // Pushes: whether a tenant's settings ask for them, its API client, and
  // the credentials the settings hold. `client` empty: it takes none.
  std::function<bool(const SystemSettings&)> outbound_enabled;
  std::function<std::unique_ptr<VendorClient>(const SystemSettings&, HttpClient*)> client;
  std::function<Credentials(const SystemSettings&)> credentials;
  // What `dfm diagnose` checks of a tenant's settings with the vendor
  // (connectors/common/probe.h); empty: nothing to check but the config.
  Probe probe;
  // How `dfm backfill` reads what it holds: a list API, or a lookup by
  // each phone the engine knows; neither: no backfill.
  enum class Backfill { kNone, kList, kLookupByPhone };
  Backfill backfill = Backfill::kNone;

  // What it can hold, as a sync target.
  std::vector<std::string> accepted_fields;  // sync/fact.h names
  std::vector<std::string> consent_channels;  // the channels it keeps (sync/consent.h)
  bool consent_one_flag = false;  // they are one setting (Aloware's is_dnc)
  // Its client answers op "read_consent": held.<channel> = "out" | "in",
  // what the record holds now (docs/sync-rules.md, read back).
  bool reads_consent = false;
  // Its client answers op "mark_dnc": the person marked do-not-contact
  // there (a contact deleted elsewhere). Not set: no mark goes to it.
  bool marks_dnc = false;
  // False for a system that holds no contacts, only messages (a person is
  // their number there): it gets no upserts (SyncContext::messages_only).
  bool holds_contacts = true;
  // When set: whether a tenant's settings let it hold contacts (a
  // deployment's Verity may not offer its contacts API). False makes it
  // messages-only for that tenant, keeping no consent either.
  std::function<bool(const SystemSettings&)> contacts_enabled;
  // It is told the status other systems state of the messages it sent us
  // (a read receipt), as op "message_status".
  bool takes_receipts = false;
  // The field it keys contacts by, when it cannot hold one without it.
  std::string key_field;
  // The roles it can play, and why a tenant's settings keep it from
  // playing one now ("" when they do not: GoHighLevel records texts only
  // under a conversation provider).
  std::vector<Role> roles;
  std::function<std::string(Role, const SystemSettings&)> role_unavailable;

  // Defaults, when the configuration says nothing: the roles it plays and
  // the fields whose edits win when it makes them (`sync.owners.<field>`).
  std::vector<Role> default_roles;
  std::vector<std::string> default_owner_of;

  bool CanPlay(Role r) const;
};

// The connectors of this build (connectors/CMakeLists.txt lists the
// built-in ones, one line each), then any registered at run time, in
// that order.
const std::vector<const Connector*>& Connectors();
const Connector* FindConnector(std::string_view system);
// Their systems joined by ", " ("ghl, aloware, verity, twilio"), and
// their names ("GoHighLevel, Aloware, Verity and Twilio").
std::string ConnectorSystems();
std::string ConnectorNames();

// "<key>_previous": the setting that holds a webhook secret's value before
// its rotation (docs/operations.md, "Rotate API keys and secrets").
std::string PreviousSecretKey(std::string_view key);

// `c`'s webhook source for a tenant's `settings` (c.webhook_source), with
// the previous secrets' source beside it while any "<key>_previous" is
// set: a webhook either one verifies is taken, the current one tried
// first. Null when `c` takes no webhooks or the settings have problems
// (appended to *problems).
std::unique_ptr<WebhookSource> MakeWebhookSource(const Connector& c, const SystemSettings& settings,
                                                 std::vector<SettingProblem>* problems);

// Adds a connector the build does not carry (tests, a local extension).
// REQUIRES: before anything reads the registry; its system unique.
void RegisterConnector(const Connector* connector);

// The mapper of a logged event of `event_type` (webhook.received: the
// inbound one; contact.imported: the import one) from `system`; null for
// other types and systems without one.
const InboundMapper* FindMapperFor(std::string_view event_type, std::string_view system);

}  // namespace dfm
