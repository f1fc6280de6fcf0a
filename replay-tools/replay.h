// `dfm replay`: re-runs the sync decisions of a window of webhooks with the
// current code and configuration, and compares the pushes they call for
// with the pushes that were requested then. `dfm replay dead-letters`: the
// dead-lettered pushes, to re-drive. Both build a ReplayRequest
// (sync/redrive.h) for --execute.
//
// How one webhook is replayed: its facts are mapped again (the current
// mappers) and resolved to contacts with the current mappings; the
// contact's state is rebuilt from its stream up to just before the events
// the webhook caused then (or, for a webhook that caused none, up to the
// next one that did); Decide runs with the current rules and targets at the
// webhook's recorded time. Pushes compare by (target, op, message, channel):
//   missing:   the rules call for it now, it was not requested then
//   extra:     it was requested then, the rules do not call for it now
//   different: both, with other values
// A missing push that a replay.requested already named (same webhook,
// target and op) is counted as re-driven, not missing: its outcome is in
// the log (`dfm trace`), and --execute does not ask again.
// Reports of pushes (attempts, dead letters) are not replayed.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "connectors/common/http_client.h"
#include "connectors/connector.h"
#include "replay-tools/tool_log.h"
#include "sync/contact_model.h"
#include "sync/redrive.h"

namespace dfm {

struct ServerSettings;

struct ReplayOptions {
  int64_t from_us = 0;                 // webhooks recorded at or after
  int64_t to_us = 0;                   // and before; 0: the head
  std::vector<ContactMatch> contacts;  // empty: every contact
  std::string system;                  // only pushes to this system; empty: all
  std::string tenant;                  // one tenant; empty: all
  MapperSource mapper;
  // The mappings, loaded (MappingsView::Load); null: PlanReplay loads them.
  MappingsView* mappings = nullptr;
  // The rules and targets of a tenant now (the configuration's).
  std::function<SyncContext(const std::string& tenant)> context;
};

struct PushDiff {
  std::string kind;  // "missing", "extra", "different"
  ContactMatch contact;
  uint64_t webhook_seq = 0;
  std::string webhook_id;
  int64_t webhook_at_us = 0;  // when the webhook was recorded
  DomainEvent now;   // what the rules call for (missing, different)
  DomainEvent then;  // what was requested (extra, different)
};

struct ReplayPlan {
  uint64_t webhooks = 0;  // replayed
  uint64_t facts = 0;
  uint64_t contacts = 0;
  uint64_t same = 0;        // pushes that agree
  uint64_t unresolved = 0;  // facts whose contact could not be named (new, ambiguous)
  // Facts the engine applied to no contact, which a replay leaves alone too:
  // the router rejected them, quarantined their webhook, or recorded an
  // identity conflict for them that is still open, was dismissed, or whose
  // settlement it refused (sync/settle.h).
  uint64_t held_back = 0;
  uint64_t redriven = 0;    // missing, but a replay.requested already asked for them
  uint64_t events_read = 0;
  std::vector<PushDiff> diffs;
};

Status PlanReplay(const EventLog& log, const ReplayOptions& options, ReplayPlan* plan);

// What a replay matches a webhook's pushes for a contact by (then against
// now): system, op, message key, channels, and where a consent push goes
// (a new record's, a duplicate's; a re-drive keeps it). Where one side has
// a key for several of the webhook's facts, the fact index too.
std::string PushKey(const DomainEvent& push);

struct DeadLetterFilter {
  std::string push_id;  // one push; empty: all that match the rest
  std::string system;
  std::vector<ContactMatch> contacts;
  int64_t from_us = 0, to_us = 0;  // when it was dead-lettered
  std::string tenant;
};

struct DeadLetter {
  ContactMatch contact;
  DomainEvent request;  // the push.requested
  std::string request_id;
  // When the push was first asked for: the push.requested's recorded time,
  // or for a re-drive the time its replay.requested item carried.
  int64_t request_at_us = 0;
  std::string reason;
  int64_t at_us = 0;
  uint64_t seq = 0;
};

// Dead-lettered pushes not yet re-driven: a push named as the cause of an
// item of any replay.requested is left out (its re-drive is a new push,
// which `dfm trace` follows).
Status FindDeadLetters(const EventLog& log, const DeadLetterFilter& filter,
                       std::vector<DeadLetter>* out);

// What the listings say about a text's age: a re-driven text first asked
// for longer than `max_text_age_us` before `now_us` will be skipped by a
// service with that limit (sync.redrive_max_text_age_h; 0: none). The
// command's configuration is the guess; the service's decides.
struct TextAgeLimit {
  int64_t now_us = 0;
  int64_t max_text_age_us = 0;
  // Whether a re-drive of `push` (a `send`), first asked for at
  // `asked_at_us`, would be skipped for its age.
  bool TooOld(const DomainEvent& push, int64_t asked_at_us) const;
  // When TooOld: "asked 30 h 05 min ago, limit 24 h"; else "".
  std::string Note(const DomainEvent& push, int64_t asked_at_us) const;
  // When TooOld: {"age_min": n, "limit_h": n}; else "".
  std::string Json(const DomainEvent& push, int64_t asked_at_us) const;
};

void PrintReplayPlan(const ReplayPlan& plan, bool json, bool reveal, std::ostream& out,
                     const TextAgeLimit& age = {});
void PrintDeadLetters(const std::vector<DeadLetter>& dead, bool json, std::ostream& out,
                      const TextAgeLimit& age = {});

// The re-drive requests, one per tenant, for --execute.
std::map<std::string, ReplayRequest> RedriveMissing(const ReplayPlan& plan,
                                                    const std::string& reason);
std::map<std::string, ReplayRequest> RedriveDeadLetters(const std::vector<DeadLetter>& dead,
                                                        const std::string& reason);

// Where a running service answers its admin endpoints: "http://host:port"
// of server.admin_listen when set, else of server.listen (an address that
// listens on every interface is reached on the loopback one).
std::string AdminBaseUrl(const ServerSettings& server);

// What a running service said to an admin POST.
struct ServiceAnswer {
  HttpResponse http;  // status 0: no answer came, or no token (no service ran here)
  // From a 200 answer ({"status":"accepted"|"duplicate","seq":N,...}).
  uint64_t seq = 0;
  bool duplicate = false;
};
// POSTs the JSON `body` to <base_url><path> with the data directory's admin
// token, when there is one.
ServiceAnswer PostToService(const std::string& data_dir, const std::string& base_url,
                            const std::string& path, const std::string& body);
// The same with another method ("DELETE") and how long to wait.
ServiceAnswer AskService(const std::string& data_dir, const std::string& base_url,
                         const std::string& method, const std::string& path,
                         const std::string& body, int timeout_ms = 30000);
// Opens the log for writing, for a tool that found no service answering at
// `base_url`; the error says so when a service holds the log.
Status OpenLogWithoutService(const std::string& data_dir, const std::string& base_url,
                             std::unique_ptr<RocksDbEventLog>* log);

// Hands `request` to the service: POST <base_url>/v1/admin/replay with the
// data directory's admin token when the service runs; otherwise appends the
// replay.requested event to the log directly (the service carries it out
// when it starts). *how says which, *seq the event's sequence number.
Status SubmitReplay(const std::string& data_dir, const std::string& base_url,
                    const std::string& tenant, const ReplayRequest& request, std::string* how,
                    uint64_t* seq);

}  // namespace dfm
