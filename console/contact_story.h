// A contact's story for the status page's search (docs/status-page.md):
// the same facts as `dfm trace` (replay-tools/trace.h), told for people who
// are not engineers -- where the contact exists, what synced when, what is
// waiting and why, its consent per channel with since when and through
// which system -- and the "what to send IT" report. Reads the log.
//
// Personal data (name, phone, email, field values) only when `reveal`
// (a signed-in viewer); otherwise masked as `dfm trace` masks it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "replay-tools/trace.h"
#include "storage/event_log.h"
#include "sync/normalize.h"

namespace dfm {

struct StoryChannel {
  std::string channel;  // "sms", "call", "email"
  bool opted_out = false;
  int64_t since_us = 0;
  std::string via;  // the system it came through ("Verity")
  std::string how;  // what it was ("keyword STOP", "dndSettings.SMS")
  std::string who;  // "the person", "staff", "the carrier"
};

struct StoryLine {
  int64_t at_us = 0;
  std::string system;  // for people ("GoHighLevel"), "" when none
  std::string what;
};

struct ContactStory {
  std::string tenant, contact_id;
  std::string name, phone, email;  // masked unless revealed
  // Each connected system: its name and its id of the contact ("" when the
  // contact is not there), then "(also <id>, ...)": the person's other
  // records there its consent pushes set (duplicates).
  std::vector<std::pair<std::string, std::string>> where;
  std::vector<StoryChannel> consent;
  std::vector<StoryLine> timeline;  // newest first, at most kStoryLines
  std::vector<std::string> waiting;  // what is on its way, and why it waits
  std::vector<std::string> findings;  // `dfm trace`'s, for IT
  std::string it_report;  // what to send IT, as plain text
};

inline constexpr size_t kStoryLines = 40;

struct StoryOptions {
  std::vector<std::string> tenants;  // searched (a key sees its own)
  bool reveal = false;
  int64_t now_us = 0;
  // tenant -> the systems contacts are pushed to (TraceOptions::targets).
  std::map<std::string, std::set<std::string>> targets;
};

// The contacts `query` names (a phone in any spelling, an email,
// `<system>:<id>` or `contact:<id>`). InvalidArgument when the query names
// nothing a contact can be found by; an empty *out when none matches.
Status BuildContactStories(const EventLog& log, const std::string& query,
                           const Normalizer& normalizer, const StoryOptions& options,
                           std::vector<ContactStory>* out);

// What an operation is, in words ("update the contact").
std::string OpInWords(const std::string& op);

}  // namespace dfm
