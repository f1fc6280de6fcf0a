// The merge rules of one contact: pure functions over a ContactState.
//
//   Decide(state, fact, ctx) -> the domain events the fact calls for
//   Apply(&state, event)      -> the state after an event
//
// A contact actor calls Decide, appends the events, then Applies them; a
// recovering actor Applies its stream. The same rules therefore run live,
// on recovery and in `dfm replay`.
//
// Rules (docs/sync-rules.md):
// - What a system changed is what differs from what the engine last knew that
//   system to hold (`known`), so full-snapshot webhooks only count their
//   edits.
// - A field with an owner (MergePolicy::owner) takes the owner's edits and
//   refuses other systems' edits once the owner has set it. Otherwise the
//   newer source time wins. Every refused value is kept in a
//   contact.conflict_recorded event with both sides.
// - Echoes: a value a system reports that equals what the engine pushed to
//   it within the echo window is that push coming back, not an edit. A real
//   edit from the system ends the window of the fields it changed.
// - Every system that holds a value different from the merged one (or does
//   not have the contact yet) is sent a push.requested.
// - A fact's consent statements (ContactFact::consents) are decided after
//   its contact part, which identifies the contact (creating it when
//   unknown, so an opt-out from a stranger is kept too). An opt-out or
//   opt-in that changes a channel's state is recorded (contact.opted_out /
//   opted_in) and sent to every other system as a push with priority 10
//   (op "opt_out" / "opt_in"), ahead of ordinary pushes; to its own system
//   too where a push of the engine's there would undo it, and, for an
//   identity conflict's opt-out, to every record of the contact's address
//   there, linking none (LinksNoRecord). A statement older
//   than the channel's current one changes nothing; at the same time the
//   opt-out wins. A review fact is recorded as contact.opt_out_flagged only.
//   Who may undo an opt-out (the person's and the carrier's hold; a staff
//   opt-in over one is a consent.conflict, set again there): sync/
//   consent_rules.cc.
// - A snapshot consent (a system's DND setting, repeated by every webhook of
//   the contact) counts only where it differs from what that system was
//   known to hold, is newer than that knowledge (an opt-in by more than
//   kSnapshotSkewUs), and no consent push to it is on its way: so our own
//   opt-out coming back, or a webhook written before our push arrived, is
//   not a statement. An unknown setting counts as opted in.
// - A consent fact about a number nobody knows creates the contact only for
//   an opt-out; a stranger's opt-in changes nothing and a flagged text is
//   recorded on a contact stream of its own.
// - Messages and calls (ContactFact::activities) are decided last: a new
//   one is logged (message.logged) and recorded in ctx.conversations
//   (push "message" / "call", plus "note" for a call's recording,
//   transcript or summary and "tags" for its disposition); one the engine
//   already knows (by any system's id, or by the key the system carried
//   back) is only linked. A send request (Activity::kSend) goes to
//   ctx.sender (push "send") unless the channel is opted out: then it is
//   refused (message.refused) and its status in the asking system set to
//   failed. An opt-out also refuses every send still on its way to the
//   channel (message.refused with the push id: the connector drops it if
//   it has not gone yet). So does a campaign's withdrawal of its send
//   (Activity::kWithdraw: message.refused with the push id, the reason
//   "withdrawn before it was sent (<why>)"); a send already settled stays
//   as it is. Delivery statuses (message.status) of a message
//   that ctx.conversations asked to send are reported back to it.
// - Tags -> lists: when the merged tags change, the lists ctx.tag_lists
//   maps them to are diffed and sent to ctx.lists_target (push "lists":
//   lists_add, lists_remove and lists_keep, comma-separated).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sync/domain_event.h"
#include "sync/fact.h"

namespace dfm {

// Vendor clocks drift: a snapshot that would undo an opt-out must be this
// much newer than what the engine knew the system to hold.
inline constexpr int64_t kSnapshotSkewUs = 5 * 1000000;

struct MergePolicy {
  std::map<std::string, std::string> owner;  // field -> system
  int64_t echo_window_us = 10LL * 60 * 1000000;
};

// An erased person's consent on one channel (SyncContext::erased_consent).
struct ErasedConsent {
  bool out = false;
  int64_t at_us = 0;
};

struct SyncContext {
  MergePolicy policy;
  // Roles (configuration: sync.roles, per tenant tenants.<t>.roles; empty:
  // nobody plays it). Messages and calls (docs/sync-rules.md, "Messages
  // and calls"): the system whose conversations record every text and
  // call, and the one that delivers the texts it asks to send.
  std::string conversations;
  std::string sender;
  // The system that delivers emails the engine sends (a send on channel
  // "email"), and the one that puts a person on a dialer's list (a send on
  // channel "call"); empty: nobody.
  std::string mailer;
  std::string dialer;
  // Targets that hold no contacts, only messages (WhatsApp, Genesys Open
  // Messaging: a person is their number): no upserts go to them, and a
  // send request from one is trusted for a person whose conversation the
  // engine opened there (a message of theirs it recorded in that system).
  std::set<std::string> messages_only;
  // Systems told the status (read, failed) another system states of a
  // message that came from them (WhatsApp's read receipts).
  std::set<std::string> takes_receipts;
  // Tags -> lists: tag (normalized, sync/fact.h) -> list id in lists_target.
  std::map<std::string, std::string> tag_lists;
  std::string lists_target;
  // A call's disposition becomes the tag prefix + the disposition, lower-case.
  std::string disposition_tag_prefix = "disposition: ";
  // Systems that contacts are synced to, and the fields each accepts.
  std::map<std::string, std::set<std::string>> targets;
  // The consent channels each target keeps; a target not listed keeps all.
  std::map<std::string, std::set<std::string>> channels;
  // Targets that keep their channels as one flag (Aloware's is_dnc): it is
  // set when any of them is opted out and cleared only when none is.
  std::set<std::string> one_flag;
  // Targets whose client reads back what they hold of a person's consent
  // (op "read_consent", read_back_rules.cc).
  std::set<std::string> reads_consent;
  // Targets whose client marks a person do-not-contact (op "mark_dnc"):
  // the only ones a deletion's marks go to.
  std::set<std::string> marks_dnc;
  // Targets whose connector takes no marks whatever its settings (HaloPSA,
  // Genesys; not Verity, whose marks need its contacts API): an open mark
  // to one is withdrawn at the start (WithdrawnAtStart).
  std::set<std::string> takes_no_marks;
  // Targets that cannot hold a contact without a field (target -> field):
  // no upsert goes to them while the merged contact lacks it (a push would
  // only be dead-lettered, again at every change).
  std::map<std::string, std::string> key_field;
  // Consent (docs/sync-rules.md, "Who may undo an opt-out"): whether a
  // staff member's opt-out also holds until the person opts in (the law
  // allows the stricter rule; the person's own opt-out always holds), and
  // how long after an outbound text a bare YES counts as the reply to it.
  bool staff_opt_outs_hold = false;
  int64_t reply_window_us = 24LL * 3600 * 1000000;
  // Settled messages older than this are forgotten (ContactState::
  // message_memory_us, which the contact actor sets from it).
  int64_t message_memory_us = 30LL * 86400 * 1000000;
  // Enrichment (docs/sync-rules.md, "Enrichment"): the system asked about
  // a contact when it first has an email or a company domain (empty:
  // nobody), and how long an answer stands before the same person is asked
  // again. `last_enriched` (may be empty) says when the person with that
  // email, or the company with that domain, was last enriched in this
  // tenant (the enrichments projection), 0 for never.
  std::string enrichment;
  // The system asked about texts the keyword rule flags (docs/classifier.md);
  // empty: none.
  std::string classifier;
  int64_t enrich_again_us = 90LL * 86400 * 1000000;
  std::function<int64_t(const std::string& email, const std::string& domain)> last_enriched;
  // The consent an erased person left on a phone or email for a channel
  // (sync/erasure.h: the opt-out registry's z/ rows), nullopt for none;
  // may be empty. A text is refused while it says out and the contact's
  // own consent on that channel is not newer.
  std::function<std::optional<ErasedConsent>(const std::string& phone_or_email,
                                             const std::string& channel)>
      erased_consent;
  // The contact that holds record `id` of `system` in this tenant (the
  // mappings projection), empty for none; a row that cannot be read
  // answers a holder. The function may be unset: nobody is known.
  std::function<std::string(const std::string& system, const std::string& id)> record_holder;
  // Whether "ann+news@x.com" and "ann@x.com" are one person when matching
  // (sync/identity.h; `sync.email_plus_addressing`).
  bool fold_plus_addressing = false;
  // A re-driven text (sync/redrive.h) first asked for longer ago than this
  // is not sent; 0: no limit.
  int64_t redrive_max_text_age_us = 0;
  int64_t now_us = 0;
};

struct ContactState {
  std::string contact_id;
  bool exists = false;
  bool deleted = false;
  // When the deletion happened (its fact's source time): a fact about the
  // contact from before then, delivered late, does not bring it back.
  int64_t deleted_at_us = 0;
  // The record whose deletion deleted the contact (its system and id):
  // every other record linked while the contact stays deleted is marked
  // do-not-contact (model::MarkRecordAfterDeletion).
  std::string deleted_in;
  std::string deleted_record;
  std::map<std::string, Attributed> fields;  // the merged truth
  std::map<std::string, std::string> links;  // system -> external id
  // Per system, the records known to hold the contact's opt-outs, and the
  // channels each holds out: set by the contact's opt_out pushes there (the
  // answer's record and answer.ids, the push's channels). A channel is
  // forgotten on a system's records when an opt_in push of it there
  // succeeds or the system shows it in (consent.conflict, consent.known),
  // and on every record when it is newly opted out (its pushes set it
  // again). A record a fact newly links, or a push's answer names anew (an
  // upsert's, a text's found anew), is told the held channels it is not
  // known to hold (PushToNewRecord, PushToRecordMade).
  std::map<std::string, std::map<std::string, std::set<std::string>>> told;
  // What each system is believed to hold, from its facts and our pushes.
  std::map<std::string, std::map<std::string, std::string>> known;
  // Echo memory: system -> field -> every value pushed -> when it was
  // requested. Several pushes can be on their way; any of them may echo.
  using PushMemo = std::map<std::string, std::map<std::string, int64_t>>;
  std::map<std::string, PushMemo> pushed;
  // Values requested of each system and not yet confirmed: counted as held
  // so that a second fact does not push them again.
  std::map<std::string, std::map<std::string, std::string>> pending;
  // Per channel: opted out or not, and when that was stated (source time),
  // from contact.opted_out / opted_in.
  // `held`: an opt-out that only the person's own opt-in undoes (theirs,
  // the carrier's, or staff's where SyncContext::staff_opt_outs_hold), and
  // `held_by` which one ("keyword STOP via verity").
  struct ChannelConsent {
    bool out = false;
    int64_t at_us = 0;
    bool held = false;
    std::string held_by;
    // When the person last opted the channel in themselves (0: never): a
    // person's opt-out dated before another's lift, delivered after it,
    // still stands unless they opted in after it (consent_rules.cc).
    int64_t person_in_us = 0;
  };
  std::map<std::string, ChannelConsent> consent;
  // What each system is believed to hold per channel, from its own
  // statements (at: their source time) and our confirmed consent pushes
  // (at: when confirmed); and consent pushes requested, not yet settled.
  struct HeldConsent {
    bool out = false;
    int64_t at_us = 0;
    bool permanent = false;  // the system holds the opt-out as permanent
  };
  std::map<std::string, std::map<std::string, HeldConsent>> known_consent;
  struct PendingConsent {
    bool out = false;
    std::string push_id;
    bool refused = false;  // the system refused it: kept open, tried again
  };
  std::map<std::string, std::map<std::string, PendingConsent>> pending_consent;
  // Per channel, when the newest outbound text went out (a bare YES counts
  // as an opt-in only as a reply to one sent after the opt-out).
  std::map<std::string, int64_t> last_outbound_us;
  // Messages and calls by the engine's key (message.logged, .status,
  // .refused), every system's id of each, and sends not yet settled.
  struct MessageState {
    std::string origin;  // the system that stated it first
    std::string channel;
    std::string direction;
    // The system's last word ("delivered", "failed"…), or "refused" (the
    // engine refused the send) or "withdrawn" (its campaign withdrew it:
    // never sent again, not even by a re-drive).
    std::string status;
    std::map<std::string, std::string> ids;  // system -> its id of the message
    bool delivery_decided = false;  // a send was requested or refused
    std::string note, tag;  // a call's note and disposition tag, as asked of ctx.conversations
    int64_t last_us = 0;    // when an event about it was last applied
  };
  std::map<std::string, MessageState> messages;
  std::map<std::string, std::string> message_keys;  // "<system>\n<id>" -> key
  struct PendingSend {
    std::string message_key;
    std::string channel;
    std::string system;
  };
  std::map<std::string, PendingSend> pending_sends;  // push id -> the send
  // Texts and calls being recorded in ctx.conversations, not yet confirmed:
  // its webhook about such a record may come before our push's answer (the
  // only place its id is learned), and is then known by what it says.
  struct PendingRecord {
    std::string message_key;
    std::string op;  // "message" | "call"
    std::string direction;
    std::string body;
  };
  std::map<std::string, PendingRecord> pending_records;  // push id -> the record
  // Bounded memory: a settled message (no send or record of it on its way)
  // whose last event is older than this is forgotten from `messages` and
  // `message_keys` (0: never). The log keeps it: replay and audit read the
  // log. A status or echo of a forgotten message is decided as news of an
  // unknown one. Forgetting runs as events are applied, at most every
  // eighth of the window, so a contact's state holds the messages of about
  // one window, whatever the contact's age. Set by the contact actor from
  // SyncContext::message_memory_us before it applies anything.
  int64_t message_memory_us = 0;
  int64_t next_forget_us = 0;
  // When enrichment was last asked for (push.requested, op "enrich").
  int64_t enrich_requested_us = 0;
  uint64_t last_fact_seq = 0;   // newest webhook decided
  uint32_t last_fact_index = 0;  // and its newest fact decided (ContactFact::fact_index)
  uint64_t last_event_seq = 0;  // newest log event applied
};

// push.dead_lettered outcome of a send the provider refused because the
// recipient opted out at its end (PushResult::recipient_opted_out).
inline constexpr char kRecipientOptedOut[] = "recipient_opted_out";

// Whether `channel` is opted out in `s` (the latest statement about it).
bool IsOptedOut(const ContactState& s, const std::string& channel);
// The channels `record` of `system` is known to hold out (ContactState::told),
// or null.
const std::set<std::string>* ToldChannels(const ContactState& s, const std::string& system,
                                          const std::string& record);

// Whether an erased person's opt-out on `channel` still covers the
// contact's phone or email (SyncContext::erased_consent), the contact's own
// consent on it not being newer; *why then says so.
bool ErasedOptOut(const ContactState& s, const SyncContext& ctx, const std::string& channel,
                  std::string* why);

// The field `target` cannot hold a contact without (SyncContext::key_field)
// when `values` lack it or have it empty; else empty. No upsert goes to
// `target` then, live or re-driven.
std::string KeyFieldMissing(const SyncContext& ctx, const std::string& target,
                            const std::map<std::string, std::string>& values);

// What an upsert to `target` should carry: the fields of `values` it
// accepts that it is not known to hold (`known`, and the values on their
// way to it in s.pending unless `ignore_pending`), plus phone and email
// whenever anything differs (the vendors match on them). Empty when it
// holds everything.
std::map<std::string, std::string> FieldsToPush(
    const ContactState& s, const std::string& target, const std::set<std::string>& accepted,
    const std::map<std::string, std::string>& values,
    const std::map<std::string, std::map<std::string, std::string>>& known, bool ignore_pending);

std::vector<DomainEvent> Decide(const ContactState& state, const ContactFact& fact,
                                const SyncContext& ctx);

// What a connector's report calls for (reports are appended as they come;
// this decides what follows from them): a send that was dead-lettered is
// reported as failed to ctx.conversations when it asked for the text, once
// per death (a re-driven send that dies again is reported again); an
// answer is recorded (enrichment, classifier, read back); a message op
// that found the person's record anew links the contact to it
// (model::DecideFoundAnew); that record, and an upsert's answered other
// than the contact's link there, is told the held opt-outs
// (model::PushToRecordMade).
std::vector<DomainEvent> DecideReport(const ContactState& state,
                                      const std::vector<DomainEvent>& report,
                                      const SyncContext& ctx);

// A push left unsettled by an earlier build, which a contact hands to its
// connector again at the service's start, that this build would not ask
// for: a mark_dnc to a target whose connector takes no marks whatever its
// settings (ctx.takes_no_marks). That system refuses it, and an opt-out
// push is never given up on, so it would stay open for good. It is
// settled instead by the push.dead_lettered returned (outcome
// kWithdrawnOutcome, the reason why); nullopt: hand `request` on. (A mark
// to a system that takes marks only with a setting on stays open.)
std::optional<DomainEvent> WithdrawnAtStart(const DomainEvent& request, const SyncContext& ctx);

// Tells ctx.conversations that the text `message_key` it asked for was not
// sent (status "failed", `reason` as the error): the message_status push,
// id `<contact>:<conversations>:message_status:<key>:failed:<seq>:<suffix>`.
// Empty when the text did not come from there or has no id there. `seq`:
// the deciding event's (0 for a connector's report).
std::vector<DomainEvent> ReportTextNotSent(const ContactState& state,
                                           const std::string& message_key,
                                           const std::string& reason, uint64_t seq,
                                           const std::string& suffix, const SyncContext& ctx);

// `seq` and `recorded_at_us` are the event's envelope values; an event at or
// below state.last_event_seq is ignored (applying twice is harmless); `seq`
// 0 skips that check. Each event Decide returns sets, inserts or erases and
// counts nothing, so applying the first part of a run of them early, then
// the whole run again in order, leaves the state as applying the run once:
// the contact actor applies a batch's decisions before they are durable and
// again after (actors/contact_actor.h;
// MessageModelTest.DecisionsAppliedTwiceDecideAsAppliedOnce). A decision
// the log answers as a duplicate (an old seq) is not applied the second
// time, so only its early apply counts; a fact decided before decides
// nothing again (last_fact_seq), so that happens only to events that change
// nothing else.
void Apply(ContactState* state, const DomainEvent& e, uint64_t seq, int64_t recorded_at_us);

}  // namespace dfm
