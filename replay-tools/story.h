// One line per event, for people: what happened, in the log's own words.
// Personal data (phones, emails, field values, bodies) only when `reveal`.
#pragma once

#include <string>

#include "events/event.h"
#include "sync/domain_event.h"
#include "util/json.h"

namespace dfm {

struct EventStory {
  std::string system;  // the system the event is about ("" when none)
  std::string what;    // one line
  bool decoded = false;
  DomainEvent domain;  // when the event is a domain event
  std::string webhook_system;
};

EventStory TellEvent(const Event& e, bool reveal);

// The event as one JSON object for --json output: the envelope
// (events/describe.h), "system", "what", and "payload" when `reveal`; callers
// may add keys before Finish().
JsonObject EventJson(const Event& e, const EventStory& story, bool reveal);

}  // namespace dfm
