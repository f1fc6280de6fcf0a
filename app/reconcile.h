// `dfm reconcile` (docs/sync-rules.md, "Opt-outs: reconcile"): compares the
// opt-out registry with what each system holds now, and re-applies the
// opt-outs a system no longer shows.
//
// Three steps, each its own function:
// 1. PlanReconcile reads the projections the service keeps (the opt-out
//    registry, the mappings and the contact view: consumer state, read
//    alike from the service's own log or a tool's secondary) and lists one
//    check per (opted-out contact, system that reads consent back): the
//    channels the registry holds opted out there, the record's id, the
//    contact's phone and email (how the system finds every record of the
//    person), and the event that opted them out (the re-application's cause).
// 2. RunReconcile asks each system with op "read_consent" through the
//    connector's own client (connectors/connector.h: reads_consent), paced
//    by a share of the system's configured rate limit (what the service
//    leaves it), honouring the vendor's rate headers and 429s. A drift is a
//    channel the registry holds out that the system shows "in".
// 3. ReapplyRequest turns the drift into one replay.requested (sync/
//    redrive.h): an "opt_out" item per drifting (contact, system) and
//    opt-out its drifted channels answer, which the contact's actor carries
//    out only while the person is still opted out.
//
// Nothing here writes to the log; the command and the daily schedule
// (reconcile_schedule.h) hand the request over.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "connectors/common/outbound.h"
#include "storage/event_log.h"
#include "sync/redrive.h"
#include "util/status.h"

namespace dfm {

class Config;

// A system reconcile may read for a tenant: its consent channels and its
// key field ("" when it finds records without one).
struct ReconcileSystem {
  std::vector<std::string> channels;
  std::string key_field;
};

struct ReconcileCheck {
  std::string contact_id;
  std::string system;
  std::string external_id;            // the system's id of the record; "" when not known
  std::vector<std::string> channels;  // opted out in the registry and kept by the system
  std::map<std::string, std::string> fields;  // the contact's phone and email
  std::string cause;                  // id of the newest event that opted them out
  int64_t opted_out_at_us = 0;        // when that opt-out happened
  // Per channel of `channels`: id of the newest event that opted it out
  // and when that happened (a re-application of a channel answers that
  // one: ReapplyRequest; the drift report names it: NewestOf).
  std::map<std::string, std::string> cause_of;
  std::map<std::string, int64_t> opted_out_at_of;
};

struct ReconcilePlan {
  std::vector<ReconcileCheck> checks;  // by contact id, then system
  int64_t opted_out_people = 0;        // registry subjects opted out since the cut
  int64_t without_contact = 0;         // of those: no contact mapped (erased, or never synced)
  uint64_t registry_seq = 0;           // the registry's checkpoint
};

// Reads the projections of `log` (consumer state) for `tenant`: every
// subject opted out (in the registry) at or after `since_us` (0: any time).
Status PlanReconcile(const EventLog& log, const std::string& tenant, int64_t since_us,
                     const std::map<std::string, ReconcileSystem>& systems, ReconcilePlan* plan);

// The systems `tenant` pushes to that read consent back.
std::map<std::string, ReconcileSystem> ReconcileSystems(const Config& config,
                                                        const std::string& tenant);

struct ReconcileDrift {
  ReconcileCheck check;
  std::vector<std::string> shown_in;  // the channels the system shows opted in
  std::string record;                 // the record read, when the system named it
  std::string detail;                 // what the read found ("read 2 GoHighLevel contacts")
};

struct ReconcileProgress {
  int64_t total = 0, checked = 0, requests = 0, drift = 0, failed = 0;
  std::map<std::string, int64_t> checked_by_system;
};

struct ReconcileReport {
  int64_t started_at_us = 0;  // when the run began (deps.now_us)
  ReconcileProgress progress;
  std::vector<ReconcileDrift> drift;
  // Checks that could not be read, per system: "ghl: 3 unread (HTTP 500)".
  std::map<std::string, std::string> unread;
};

// What a read answered: the channels of `check` that `answer` shows "in".
std::vector<std::string> DriftedChannels(const ReconcileCheck& check, const PushResult& answer);

struct ReconcileReader {
  VendorClient* client = nullptr;
  Credentials credentials;
  int rate_limit = 100;        // the system's requests per window
  int64_t window_us = 10'000'000;
  double share = 0.5;          // of them reconcile may use
};

struct ReconcileDeps {
  std::map<std::string, ReconcileReader> readers;  // by system
  std::function<int64_t()> now_us;
  std::function<void(int64_t)> sleep_us;
  // Asked before each check: true stops the run there; optional.
  std::function<bool()> cancelled;
  // After each check, from this thread; optional.
  std::function<void(const ReconcileProgress&)> progress;
};

// Reads every check in order. A system whose credentials are refused is not
// asked again this run (its checks are unread); a 429 waits as the vendor
// says and asks again (up to 5 times).
void RunReconcile(const ReconcilePlan& plan, const ReconcileDeps& deps, ReconcileReport* report);

// The newest opt-out of `channels` of the check (its time and event id),
// the check's newest of all when none of them has one of its own.
std::pair<int64_t, std::string> NewestOf(const ReconcileCheck& check,
                                         const std::vector<std::string>& channels);

// The replay.requested items that set the drift again (one per drift and
// opt-out its channels answer, ReconcileCheck::cause_of);
// its reason is `reason` and the run's start, `run_at_us`: a run finding
// the same drift as an earlier one (lifted again since) is a request of its
// own, not a duplicate of the earlier one (a replay.requested's
// idempotency key is its payload's), while a retry of one run stays one.
ReplayRequest ReapplyRequest(const std::vector<ReconcileDrift>& drift, const std::string& reason,
                             int64_t run_at_us);

// "reconcile: 1,200 of 10,000 read (ghl 700, aloware 500) · 3 drifting · 1 unread · 240/s"
std::string FormatReconcileProgress(const ReconcileProgress& p, double per_second);

// Builds the readers of `tenant`'s systems from `config`, with their clients
// on `http`; a stored newer OAuth grant (kCredentialsConsumer) wins over
// the configured one. `share` as above.
struct ReconcileClients {
  std::map<std::string, std::unique_ptr<VendorClient>> owned;
  std::map<std::string, ReconcileReader> readers;
};
void MakeReconcileReaders(const Config& config, const std::string& tenant, const EventLog& log,
                          HttpClient* http, double share, ReconcileClients* out);

}  // namespace dfm
