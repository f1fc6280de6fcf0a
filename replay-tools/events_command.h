// `dfm events`: list and filter the log; `dfm events show ID`: one event
// with its causes and consequences. Read-only.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "replay-tools/tool_log.h"

namespace dfm {

struct EventFilter {
  int64_t from_us = 0;  // recorded at or after; 0: the start
  int64_t to_us = 0;    // recorded before; 0: the head
  std::string tenant;
  std::string system;  // the system an event is about (webhook sender, push target, ...)
  std::string type;    // exact, or a prefix ending in '*' ("push.*")
  std::string stream;
  // Contacts (resolved by the caller): their streams and the webhooks and
  // replays that caused their events.
  bool by_contact = false;
  std::vector<ContactMatch> contacts;
  uint64_t limit = UINT64_MAX;
  // Only events with a greater sequence number: a reader's cursor (the
  // `next_after` of the page before). With by_contact, the contacts' own
  // events: each comes with what caused it (a webhook, a replay) unless an
  // earlier page brought that, whatever the cause's own number.
  uint64_t after_seq = 0;
  // None past this sequence number (the log's head when the read begins,
  // if that is lower): a caller that read something the filters depend on
  // (`hidden`'s key ids) up to a head it took first passes that head.
  uint64_t until_seq = UINT64_MAX;
  // When set, the events it is true of are left out whatever else matches
  // (for a reader of one tenant: the installation's own records).
  std::function<bool(const Event&)> hidden;
};

// Prints matching events in log order: a table, or JSON lines. Returns the
// exit code (0, or 2 on a read error). The log's head is taken when the
// read begins; later events wait for the next read. `next_after` (when
// given) is where the next page begins (its after_seq): the last event
// printed when `limit` ended the page, otherwise the last one the filters
// were asked about (the head, without `to_us`), never below after_seq.
// Paging with it visits every matching event once, each page in log order
// (by_contact: see after_seq; a page there ends at an own event, its cause
// with it, so its first may take it one past `limit`).
int ListEvents(const EventLog& log, const EventFilter& filter, bool json, bool reveal,
               std::ostream& out, std::ostream& err, uint64_t* next_after = nullptr);

// `id`: an event id (26 characters) or a sequence number. Prints the event,
// the chain of events that caused it back to the root, and everything it
// caused (directly or not), indented by depth. Returns the exit code (1
// when there is no such event).
int ShowEvent(const EventLog& log, const std::string& id, bool json, bool reveal, std::ostream& out,
              std::ostream& err);

}  // namespace dfm
