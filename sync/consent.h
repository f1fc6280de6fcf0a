// Consent: what an inbound text, or a system's do-not-disturb setting, says
// about a person's wish to be contacted. Pure functions (no I/O).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sync/fact.h"

namespace dfm {

// Channel names in facts, domain events and the opt-out registry.
namespace channels {
inline constexpr char kSms[] = "sms";
inline constexpr char kCall[] = "call";
inline constexpr char kEmail[] = "email";
inline constexpr char kWhatsApp[] = "whatsapp";
// Not a person's channel: a campaign's request that the tenant's model
// draft a text (campaigns/agent.h). Nobody opts out of it.
inline constexpr char kDraft[] = "draft";
}  // namespace channels

// Channel lists in events and pushes are names joined by ',' (other lists,
// e.g. tags, by `sep`); empty items are dropped.
std::vector<std::string> SplitChannels(std::string_view list, char sep = ',');
std::string JoinChannels(const std::vector<std::string>& channels);

struct TextConsent {
  enum class Kind {
    kNone,    // an ordinary text
    kOptOut,  // the whole text is an opt-out word
    kOptIn,   // the whole text is an opt-in word
    kReview,  // an opt-out word inside a longer text: for a person to judge
  };
  Kind kind = Kind::kNone;
  std::string word;  // the word found, upper-case ("STOP", "OPT OUT"); empty for kNone
};

// Reads an inbound text (docs/sync-rules.md, "Opt-outs"):
// - The text is compared after removing punctuation (and any non-ASCII
//   character: emoji, curly quotes, no-break spaces), upper-casing ASCII
//   letters, and collapsing whitespace runs into one space and trimming
//   them: "  Stop. " and "opt-out" count, "stop stop" does not.
// - Whole text one of the opt-out keywords the connected providers document
//   (Twilio: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT;
//   Telnyx, under Verity: the same first six and STOP ALL) or OPT OUT:
//   kOptOut. One of their opt-in keywords START, UNSTOP, YES: kOptIn (YES
//   is Twilio's; elsewhere it counts only as a reply, ConsentFromText).
// - Otherwise, an opt-out word among the text's words (split at whitespace
//   and punctuation; "OPT OUT" as two adjacent words): kReview, so
//   "stop by at 3pm?" is flagged and never acted on. Opt-in words inside a
//   longer text are ordinary ("yes, see you then").
TextConsent ClassifyText(std::string_view body);
// ClassifyText as a fact's consent, the person's own: sets c->change,
// c->reason ("keyword STOP", "contains STOP"), c->actor (kPerson) and
// c->needs_reply (for YES) and returns true, or false for an ordinary text.
bool ConsentFromText(std::string_view text, Consent* c);

// The rule every holder of a channel's consent applies (the contact actor,
// the opt-out registry, dfm trace; dfm audit's timelines still sort by their
// own equivalent comparator, replay-tools/violations.cc): a
// statement (an opt-out or an opt-in, at when it happened) replaces the
// current one when it happened later, or at the same time when it is an
// opt-out or neither is. A late, older opt-in never undoes a newer opt-out,
// and at a tie the opt-out wins.
inline bool ConsentSupersedes(bool new_out, int64_t new_at_us, bool cur_out, int64_t cur_at_us) {
  return new_at_us > cur_at_us || (new_at_us == cur_at_us && (new_out || !cur_out));
}

// The reason of the push.dead_lettered (outcome "superseded") that settles
// a refused opt-out push when a later consent push for the same contact
// and channels comes: "superseded by a later <op> (<push id>) before
// <system> took it". SupersedingPush reads the push id back ("" when
// `reason` is not one), so an audit follows the opt-out to the push that
// took its place.
std::string SupersededReason(std::string_view op, std::string_view push_id,
                             std::string_view system);
std::string SupersedingPush(std::string_view reason);

}  // namespace dfm
