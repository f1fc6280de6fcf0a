// A normalized statement by one system about one of its contacts, produced by
// that connector's inbound mapper from a `webhook.received` event (or by a
// backfill page). Facts are not stored: the webhook is, and a fact can always
// be made again from it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "events/webhook_received.h"

namespace dfm {

// Contact field names shared by every system. Values are normalized: phone
// in E.164, email lower-case; `tags` is the sorted, de-duplicated list
// joined by '\n'.
namespace fields {
inline constexpr char kFirstName[] = "first_name";
inline constexpr char kLastName[] = "last_name";
inline constexpr char kEmail[] = "email";
inline constexpr char kPhone[] = "phone";
inline constexpr char kAddress1[] = "address1";
inline constexpr char kCity[] = "city";
inline constexpr char kState[] = "state";
inline constexpr char kPostalCode[] = "postal_code";
inline constexpr char kCountry[] = "country";
inline constexpr char kCompanyName[] = "company_name";
inline constexpr char kTags[] = "tags";
// The person's time zone, an IANA name (e.g. "America/Chicago"), as
// GoHighLevel holds it: a campaign's quiet hours are read in it first.
inline constexpr char kTimezone[] = "timezone";
// What enrichment (an `enrichment` system, e.g. Apollo) adds, and systems
// may hold: the person's job title and LinkedIn profile, their company's
// domain (no "www."), size (employees) and industry.
inline constexpr char kTitle[] = "title";
inline constexpr char kLinkedinUrl[] = "linkedin_url";
inline constexpr char kCompanyDomain[] = "company_domain";
inline constexpr char kCompanySize[] = "company_size";
inline constexpr char kIndustry[] = "industry";
}  // namespace fields

// A statement about a person's consent (ContactFact::consents).
struct Consent {
  enum class Change {
    kOptOut,  // stop contacting on these channels
    kOptIn,   // contacting on these channels is allowed again
    kReview,  // looks like an opt-out but is not one: flagged for a person
  };
  Change change = Change::kOptOut;
  std::vector<std::string> channels;  // sync/consent.h names, e.g. "sms"
  std::string reason;      // what it was: "keyword STOP", "OptOutType STOP", "dndSettings.SMS"
  std::string message_id;  // the system's id of the message or record that carried it
  // True when it is the system's current setting read from a full record
  // (GoHighLevel dndSettings, Aloware is_dnc), which every webhook of the
  // contact repeats: only a difference from what the system was known to
  // hold is a statement. False for events (a text, an opt-out event).
  bool snapshot = false;
  // Who made the statement (docs/sync-rules.md, "Who may undo an
  // opt-out"): the person themselves (their text, their unsubscribe click),
  // a member of staff or a system setting (DND toggled, DNC cleared, an
  // import), or the carrier or texting provider (its own opt-out list).
  enum class Actor { kPerson, kStaff, kCarrier };
  Actor actor = Actor::kPerson;
  // An opt-out the system holds as permanent (GoHighLevel's DND status
  // "permanent"): the engine never sends it an opt-in for the channel.
  bool permanent = false;
  // An opt-in that counts only as a reply to a confirmation: a bare "YES"
  // (START and UNSTOP always count; so does a provider's own opt-in report).
  bool needs_reply = false;
};

// "person", "staff", "carrier": the names in contact.opted_out / opted_in
// and consent.conflict events. ActorOf reads them back; an event without
// one (written before actors were recorded) is read as the person's.
const char* ActorName(Consent::Actor a);
Consent::Actor ActorOf(std::string_view name);

// A message or call on the person's conversation in one system
// (ContactFact::activities), or later news about one.
// The system a campaign's sends come from (campaigns/README.md): a kSend
// activity of a fact of this system asks to text the contact the fact
// names, which the campaign engine resolved itself, so no link to the
// campaign is asked of it; consent is checked as for any send.
inline constexpr char kCampaignSystem[] = "campaign";

struct Activity {
  enum class Kind {
    kText,    // a text message the system carried (sent or received)
    kCall,    // a phone call that ended (with its disposition)
    kStatus,  // a later delivery status of a message already stated
    kSend,    // a request to deliver a text (GoHighLevel's ProviderOutboundMessage)
    // A campaign's (kCampaignSystem) word that its send `message_id` is
    // no longer wanted (its campaign was cancelled: `status` says why);
    // a send still on its way is refused. From no other system.
    kWithdraw,
  };
  Kind kind = Kind::kText;
  std::string message_id;   // the system's id of the message or call
  // The engine's key of the message when the system carries it back
  // (Verity's externalId of a text the engine sent); else empty.
  std::string message_key;
  std::string direction;    // "inbound" (from the person) | "outbound"
  std::string body;         // the text; empty for calls
  std::string status;       // the system's word: "delivered", "failed", "completed", "no-answer"…
  std::string our_number;   // the business line (E.164), when stated
  // The channel it went on (sync/consent.h names); empty: "sms" for texts,
  // "call" for calls. A WhatsApp message is "whatsapp"; a send request on
  // it is refused while the person is opted out of that channel.
  std::string channel;
  // Why a delivery failed, in the vendor's words ("131047: Message failed to
  // send because more than 24 hours have passed…"); never personal data.
  std::string error;
  // Media passed by reference (a link the other side can fetch, or the
  // vendor's media id with its type): "<kind> <mime> <url-or-id>" lines,
  // kind image|video|audio|document|sticker. Reported, never dropped.
  std::string media;
  int64_t duration_s = -1;  // calls; -1: not stated
  std::string disposition;  // calls: the agent's disposition
  // A send on channel "email" (kSend): its subject, and the one-click
  // unsubscribe link its List-Unsubscribe header names (RFC 8058).
  std::string subject, list_unsubscribe;
  std::string recording_url, transcript, summary;  // calls, when present
};

struct ContactFact {
  // kUpsert: the system holds these values (a text's sender: just the
  // phone). kDelete: it deleted the contact.
  enum class Kind { kUpsert, kDelete };
  Kind kind = Kind::kUpsert;
  // What the same webhook says about consent (an upsert's): the phone
  // and/or email in `fields` are whom it concerns.
  std::vector<Consent> consents;
  // Messages and calls the same webhook states (an upsert's), in order:
  // the phone in `fields` is the person's number.
  std::vector<Activity> activities;
  std::string tenant;
  std::string system;       // "ghl", "aloware"
  std::string external_id;  // the system's id of the contact; may be empty
  int64_t source_time_us = 0;  // when the system says it changed; 0: unknown
  // Only the fields the system stated. An absent field says nothing; an
  // empty value says the system has it empty.
  std::map<std::string, std::string> fields;
  // Only `consents` are decided: nothing merged, no contact made or linked.
  // Set on the opt-outs an identity conflict hands to its candidates at
  // once (ConflictOptOuts, sync/identity.h); never by a mapper.
  bool consents_only = false;

  // Provenance (set by the router): the webhook the fact was read from,
  // or the contact.imported event of `dfm backfill` when `imported`.
  bool imported = false;
  uint64_t webhook_seq = 0;
  // Its place among the facts the mapper read from that webhook (0 for the
  // first): a webhook may carry several facts about one person (a batched
  // WhatsApp notification's messages), and each is decided on its own.
  uint32_t fact_index = 0;
  EventId webhook_id;
  EventId correlation_id;
  int64_t recorded_at_us = 0;
};

// Stamps a fact mapped from the log event `e` (a webhook.received or
// contact.imported) with where it came from, as the router does.
inline void StampFact(ContactFact* f, const Event& e, uint32_t index = 0) {
  f->tenant = e.tenant;
  f->imported = e.type == kContactImportedType;
  f->webhook_seq = e.seq;
  f->fact_index = index;
  f->webhook_id = e.id;
  f->correlation_id = e.correlation_id.IsZero() ? e.id : e.correlation_id;
  f->recorded_at_us = e.recorded_at_us;
}

// A fact's place in the log, for the ids of what it causes: "<seq>" for a
// webhook's first fact (as before facts had places), "<seq>.<index>" for
// the others. Push ids and decision keys carry it, so two facts of one
// webhook never share one.
inline std::string FactTag(uint64_t webhook_seq, uint32_t fact_index) {
  std::string t = std::to_string(webhook_seq);
  if (fact_index != 0) t += "." + std::to_string(fact_index);
  return t;
}
inline std::string FactTag(const ContactFact& f) { return FactTag(f.webhook_seq, f.fact_index); }

}  // namespace dfm
