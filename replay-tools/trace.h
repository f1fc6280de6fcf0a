// `dfm trace <phone | email | system:id>`: the story of one contact across
// all systems in time order, and what it says about why something did not
// sync. Read-only.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "connectors/connector.h"
#include "replay-tools/tool_log.h"

namespace dfm {

struct TraceOptions {
  // The events listed; the findings describe the contact as of until_us
  // (its history before since_us counts).
  int64_t since_us = 0;  // 0: from the contact's first webhook
  int64_t until_us = 0;  // 0: the head
  bool reveal = false;   // personal data in the output
  // Also read the webhooks in the window that changed nothing (the ones the
  // contact's events do not name): their bodies are matched against the
  // contact's phones, emails and ids. Needs `mapper`.
  bool scan_webhooks = true;
  MapperSource mapper;
  // tenant -> the systems contacts are pushed to (the configured targets):
  // a target that was never asked to hold the contact is a finding.
  std::map<std::string, std::set<std::string>> targets;
  // tenant -> target -> the field it cannot hold a contact without
  // (SyncContext::key_field): a target never asked because the contact
  // lacks it is said so, not suspected of a missing connector.
  std::map<std::string, std::map<std::string, std::string>> key_fields;
};

struct TraceEntry {
  uint64_t seq = 0;
  int64_t at_us = 0;
  std::string event_id;
  std::string tenant;
  std::string contact_id;
  std::string system;
  std::string type;
  std::string what;
};

struct TraceSystem {
  std::string system;
  std::string link;  // its id of the contact
  // Every record of the person there its consent pushes set (their
  // push.succeeded answer.ids: GoHighLevel's duplicates); shown beside
  // `link` without it.
  std::vector<std::string> other_ids;
  int requested = 0, succeeded = 0, dead = 0, unsettled = 0, skipped = 0;
  std::string last;  // the last push's outcome, in words
};

// One step of a campaign the contact is in (campaigns/task.h), as the
// campaign_tasks projection holds it now.
struct TraceCampaignStep {
  std::string campaign, channel, state, reason;
  int step = 0;
  int64_t due_us = 0, changed_us = 0;
};

struct Trace {
  std::vector<TraceEntry> entries;  // time (log) order
  // Per contact: its systems, its campaigns' steps, and findings: what
  // stands out, each with what to do about it.
  struct PerContact {
    ContactMatch contact;
    std::vector<TraceSystem> systems;
    std::vector<TraceCampaignStep> campaign_steps;  // by campaign, then step
    std::vector<std::string> findings;
  };
  std::vector<PerContact> contacts;
};

Status BuildTrace(const EventLog& log, const std::vector<ContactMatch>& contacts,
                  const TraceOptions& options, Trace* out);

void PrintTrace(const Trace& trace, bool json, std::ostream& out);

}  // namespace dfm
