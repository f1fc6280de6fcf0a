// A contact's snapshot: its ContactState and the pushes it has requested
// and not yet seen settled, as of one event of its stream, so that a
// contact actor starts from the snapshot and the stream's events after it
// instead of the whole stream (issue 36, "Bounded state"). A snapshot is a
// cache: dropping it changes nothing but the next start's cost, since the
// actor then folds the whole stream as before.
//
// Format (version 7; docs/event-format.md, "Contact snapshots"): binary,
// every integer a LEB128 varint (signed ones zig-zag), every string and
// every map length-prefixed, maps in key order:
//
//   snapshot   := "DFCS" version:u8(=7) rules:varint state outstanding
//   state      := contact_id:str exists:u8 deleted:u8 deleted_at:zigzag
//                 deleted_in:str deleted_record:str
//                 fields:map<str, attributed> links:map<str,str>
//                 told:map<str,map<str,set<str>>>
//                 known:map<str,map<str,str>>
//                 pushed:map<str,map<str,map<str,zigzag>>>
//                 pending:map<str,map<str,str>>
//                 consent:map<str, out:u8 at:zigzag held:u8 held_by:str
//                         person_in:zigzag>
//                 known_consent:map<str,map<str, out:u8 at:zigzag permanent:u8>>
//                 pending_consent:map<str,map<str, out:u8 push_id:str refused:u8>>
//                 last_outbound:map<str,zigzag>
//                 messages:map<str, message>
//                 message_keys:map<str,str>
//                 pending_sends:map<str, key:str channel:str system:str>
//                 pending_records:map<str, key:str op:str direction:str body:str>
//                 next_forget:zigzag enrich_requested:zigzag
//                 last_fact_seq:varint last_fact_index:varint last_event_seq:varint
//   attributed := value:str system:str source_time:zigzag
//   message    := origin:str channel:str direction:str status:str ids:map<str,str>
//                 delivery_decided:u8 note:str tag:str last:zigzag
//   outstanding:= count:varint { type:str payload:str request_id:16 bytes
//                               correlation_id:16 bytes }
//   map<K,V>   := count:varint { K V }
//   set<K>     := count:varint { K }     (in order)
//
// `rules` is kContactRulesVersion when the snapshot was written: a build
// whose Apply folds events differently raises it, and a snapshot of
// another rules version is not used (the stream is folded whole).
// ContactState::message_memory_us is configuration, not state: not kept.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "sync/contact_model.h"
#include "util/status.h"

namespace dfm {

// Raise it whenever Apply (sync/contact_model.h) changes what a stream
// folds into.
// 7: only an outbound text seen going out (message.logged, not pending,
// failed or refused) is a confirmation a YES answers
// 8: a system's real edit ends the echo memory of the fields it changed
// only
// 9: a contact keeps when it was deleted (ContactState::deleted_at_us)
// 10: an opt-in over a channel in keeps the later time; a contact.linked
// via "search" forgets what that system was known to hold
// 11: an identity conflict's opt-out push (LinksNoRecord) links no record,
// and records what its system holds only where the contact has a record
// there
// 12: a contact keeps the records its opt-out pushes set (told)
// 13: told keeps each record's channels; a new record's push links nothing
// 14: a system showing a channel in (consent.conflict, consent.known)
// forgets it on that system's records (told)
// 15: a consent push's end takes every channel its id names off the way
// (pending_consent; two pushes of one id, before one push per id)
// 16: a contact keeps the record its deletion came from (deleted_in,
// deleted_record); a mark of a record linked after it links nothing
// 17: only an upsert's dead letter forgets the values pushed to its system
// and on their way there (pushed, pending), not a mark's or a consent
// push's; one naming its fields takes only those off the way (pending)
inline constexpr uint32_t kContactRulesVersion = 17;

// A push.requested event not yet settled, as the contact actor holds it.
struct OutstandingPush {
  DomainEvent request;
  EventId request_id;
  EventId correlation_id;
};

std::string EncodeContactSnapshot(const ContactState& state,
                                  const std::vector<OutstandingPush>& outstanding);

// Fills *state (all but message_memory_us, left as it is) and
// *outstanding. Corruption when the bytes do not read as this version;
// InvalidArgument when they were written under other rules.
Status DecodeContactSnapshot(std::string_view bytes, ContactState* state,
                             std::vector<OutstandingPush>* outstanding);

// The key a contact's snapshot is kept under (consumer "contact_snapshots").
inline constexpr std::string_view kContactSnapshotConsumer = "contact_snapshots";
inline std::string ContactSnapshotKey(std::string_view tenant, std::string_view contact_id) {
  std::string k(tenant);
  k.push_back('\n');
  k.append(contact_id);
  return k;
}

}  // namespace dfm
