// ReplayTools' commands that read the log (cli_internal.h).
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "config/config.h"
#include "connectors/connector.h"
#include "projections/sync_projections.h"
#include "replay-tools/access_audit.h"
#include "replay-tools/audit.h"
#include "replay-tools/campaign_audit.h"
#include "replay-tools/cli_internal.h"
#include "replay-tools/conflicts.h"
#include "replay-tools/consent_audit.h"
#include "replay-tools/events_command.h"
#include "replay-tools/projection_commands.h"
#include "replay-tools/replay.h"
#include "replay-tools/trace.h"
#include "replay-tools/webhook_audit.h"
#include "storage/rocksdb_event_log.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/logging.h"

namespace dfm {

// `dfm conversations`: the conversations projection, one tenant or all.
int ReplayTools::Impl::ListConversations(const EventLog& log) {
  int rows = 0;
  Status s = log.ScanConsumerState(SyncProjections().conversations.name(), "c/",
                                   [&](std::string_view key, std::string_view value) {
                                     // c/<tenant>/<system>/<phone>/<our number>
                                     std::vector<std::string> k;
                                     size_t start = 2;
                                     for (int i = 0; i < 3; ++i) {
                                       size_t slash = key.find('/', start);
                                       if (slash == std::string_view::npos) return true;
                                       k.emplace_back(key.substr(start, slash - start));
                                       start = slash + 1;
                                     }
                                     k.emplace_back(key.substr(start));
                                     if (!tenant.empty() && k[0] != tenant) return true;
                                     std::istringstream in{std::string(value)};
                                     std::string conversation, contact_id;
                                     in >> conversation >> contact_id;
                                     const std::string person = reveal ? k[2] : MaskPhone(k[2]);
                                     if (json) {
                                       std::cout << JsonObject()
                                                        .Str("tenant", k[0])
                                                        .Str("system", k[1])
                                                        .Str("person", person)
                                                        .Str("our_number", k[3])
                                                        .Str("conversation", conversation)
                                                        .Str("contact", contact_id)
                                                        .Finish()
                                                 << "\n";
                                     } else {
                                       std::cout << k[0] << "  " << k[1] << "  " << person << "  "
                                                 << k[3] << "  " << conversation << "  "
                                                 << contact_id << "\n";
                                     }
                                     rows++;
                                     return true;
                                   });
  if (!s.ok()) {
    std::cerr << "dfm conversations: " << s.ToString() << "\n";
    return 2;
  }
  if (!json && rows == 0) std::cout << "no conversations\n";
  return 0;
}

int ReplayTools::Impl::Execute(const std::map<std::string, ReplayRequest>& requests) {
  int rc = 0;
  for (const auto& [t, req] : requests) {
    std::string how;
    uint64_t seq = 0;
    Status s = SubmitReplay(data_dir, BaseUrl(), t, req, &how, &seq);
    if (!s.ok()) {
      std::cerr << "dfm replay --execute: " << s.ToString() << "\n";
      rc = 2;
      continue;
    }
    std::cout << "tenant " << t << ": " << req.items.size()
              << " push(es) to re-drive, replay.requested seq " << seq << ", " << how
              << "; follow it with `dfm events show " << seq << "`\n";
  }
  if (requests.empty()) std::cout << "nothing to re-drive\n";
  return rc;
}

// `dfm events`: the events that match the filters.
int ReplayTools::Impl::RunEvents(std::unique_ptr<RocksDbEventLog>& log) {
  EventFilter f;
  if (!Time(from, "--from", &f.from_us) || !Time(to, "--to", &f.to_us)) return 2;
  f.tenant = tenant;
  f.system = system;
  f.type = type;
  f.stream = stream;
  f.limit = limit;
  f.after_seq = after;
  if (!contact.empty()) {
    f.by_contact = true;
    if (int rc = Contacts(*log, contact, &f.contacts)) return rc;
  }
  return ListEvents(*log, f, json, reveal, std::cout, std::cerr);
}

// `dfm trace`: what happened to a contact, from the first webhook on.
int ReplayTools::Impl::RunTrace(std::unique_ptr<RocksDbEventLog>& log) {
  Status s;
  TraceOptions o;
  if (!Time(since, "--since", &o.since_us) || !Time(until, "--until", &o.until_us)) return 2;
  o.reveal = reveal;
  o.scan_webhooks = !no_scan;
  o.mapper = mapper;
  for (const auto& t : Tenants()) {
    SyncContext ctx = SyncContextFor(config, t);
    for (const auto& [sys, fields] : ctx.targets) o.targets[t].insert(sys);
    o.key_fields[t] = ctx.key_field;
  }
  std::vector<ContactMatch> contacts;
  if (int rc = Contacts(*log, ref, &contacts)) return rc;
  Trace t;
  s = BuildTrace(*log, contacts, o, &t);
  if (!s.ok()) {
    std::cerr << "dfm trace: " << s.ToString() << "\n";
    return 2;
  }
  PrintTrace(t, json, std::cout);
  return 0;
}

// `dfm replay dead-letters`: the pushes given up on; with --execute, re-driven.
int ReplayTools::Impl::RunDeadLetters(std::unique_ptr<RocksDbEventLog>& log) {
  Status s;
  DeadLetterFilter f;
  if (!Time(from, "--from", &f.from_us) || !Time(to, "--to", &f.to_us)) return 2;
  f.push_id = push_id;
  f.system = system;
  f.tenant = tenant;
  if (!contact.empty())
    if (int rc = Contacts(*log, contact, &f.contacts)) return rc;
  std::vector<DeadLetter> found;
  s = FindDeadLetters(*log, f, &found);
  if (!s.ok()) {
    std::cerr << "dfm replay dead-letters: " << s.ToString() << "\n";
    return 2;
  }
  PrintDeadLetters(found, json, std::cout, AgeLimit());
  if (!execute) return 0;
  log.reset();  // the service (or SubmitReplay) writes; we only read
  return Execute(RedriveDeadLetters(found, "dfm replay dead-letters"));
}

// `dfm replay`: the window's webhooks decided again and compared; with
// --execute, what is missing re-driven.
int ReplayTools::Impl::RunReplay(std::unique_ptr<RocksDbEventLog>& log) {
  Status s;
  ReplayOptions o;
  if (from.empty()) {
    std::cerr << "dfm replay: --from is required (the window's start)\n";
    return 2;
  }
  if (!Time(from, "--from", &o.from_us) || !Time(to, "--to", &o.to_us)) return 2;
  o.system = system;
  o.tenant = tenant;
  o.mapper = mapper;
  o.context = [this](const std::string& t) { return SyncContextFor(config, t); };
  // Loaded once, for --contact and for the plan.
  MappingsView mappings(*log);
  s = mappings.Load();
  if (!s.ok()) {
    std::cerr << "dfm replay: " << s.ToString() << "\n";
    return 2;
  }
  o.mappings = &mappings;
  if (!contact.empty())
    if (int rc = Contacts(*log, contact, &o.contacts, &mappings)) return rc;
  ReplayPlan plan;
  s = PlanReplay(*log, o, &plan);
  if (!s.ok()) {
    std::cerr << "dfm replay: " << s.ToString() << "\n";
    return 2;
  }
  PrintReplayPlan(plan, json, reveal, std::cout, AgeLimit());
  if (!execute) return plan.diffs.empty() ? 0 : 1;
  log.reset();
  return Execute(
      RedriveMissing(plan, "dfm replay --from " + from + (to.empty() ? "" : " --to " + to)));
}

// `dfm conflicts settle`: an identity conflict settled through the service.
int ReplayTools::Impl::RunSettle(std::unique_ptr<RocksDbEventLog>& log) {
  Status s;
  // The conflict names its tenant; checked here too, so a mistake is
  // told before anything is sent.
  Event conflict;
  s = ReadEventBySeq(*log, conflict_seq, &conflict);
  if (!s.ok()) {
    std::cerr << "dfm conflicts settle: event " << conflict_seq << ": " << s.ToString() << "\n";
    return s.IsNotFound() ? 1 : 2;
  }
  SettleRequest r;
  r.conflict_seq = conflict_seq;
  r.contact_id = settle_contact;
  r.dismiss = dismiss;
  r.reason = settle_reason;
  EventDraft draft;
  s = PlanSettlement(conflict, conflict.tenant, r, &draft);
  if (!s.ok()) {
    std::cerr << "dfm conflicts settle: " << s.message() << "\n";
    return 1;
  }
  log.reset();  // the service (or SubmitSettlement) writes; we only read
  std::string how;
  uint64_t seq = 0;
  bool duplicate = false;
  s = SubmitSettlement(data_dir, BaseUrl(), conflict.tenant, r, &how, &seq, &duplicate);
  if (!s.ok()) {
    std::cerr << "dfm conflicts settle: " << s.ToString() << "\n";
    return s.code() == Status::Code::kInvalidArgument ? 1 : 2;
  }
  if (duplicate) {
    std::cout << "conflict " << conflict_seq << " was settled before, by event " << seq << " ("
              << how << "); see `dfm events show " << seq << "`\n";
    return 1;
  }
  std::cout << "conflict " << conflict_seq << " settled by event " << seq << " ("
            << (dismiss ? "dismissed" : "its fact goes to " + settle_contact) << "), " << how
            << "; follow it with `dfm events show " << seq << "`\n";
  return 0;
}

// `dfm audit opt-outs`: the consent records, of a phone, an email or a tenant
// when asked (every one when not).
int ReplayTools::Impl::RunOptOutAudit(std::unique_ptr<RocksDbEventLog>& log) {
  Status s;
  OptOutAuditOptions o;
  o.tenant = tenant;
  if (!phone.empty()) {
    auto p = normalizer->Phone(phone);
    if (!p) {
      std::cerr << "dfm audit opt-outs: '" << phone << "' is not a phone number\n";
      return 2;
    }
    o.phone = *p;
  }
  if (!email.empty()) {
    auto e = Normalizer::Email(email);
    if (!e) {  // searched as it came, it would answer "no opt-outs"
      std::cerr << "dfm audit opt-outs: '" << email << "' is not an email address\n";
      return 2;
    }
    o.email = *e;
  }
  o.fold_plus_addressing = config.sync().fold_plus_addressing;
  if (!Time(since, "--since", &o.since_us) || !Time(until, "--until", &o.until_us)) return 2;
  std::vector<ConsentRecord> records;
  s = CollectConsentRecords(*log, o, &records);
  if (!s.ok()) {
    std::cerr << "dfm audit opt-outs: " << s.ToString() << "\n";
    return 2;
  }
  return PrintConsentRecords(records, format, std::cout, std::cerr);
}

// `dfm audit violations`: sends to opted-out numbers or in a campaign's quiet
// hours, and opt-outs slow to reach every system or refused.
int ReplayTools::Impl::RunViolations(std::unique_ptr<RocksDbEventLog>& log) {
  Status s;
  ViolationOptions o;
  o.threshold_business_days = threshold_days;
  o.tenant = tenant;
  o.now_us = now_us;
  if (!Time(now, "--now", &o.now_us)) return 2;
  std::vector<Violation> found;
  s = FindViolations(*log, o, &found);
  if (s.ok())
    s = FindCampaignQuietHourSends(*log, CampaignHoursFrom(config.campaigns(), tenant), &found);
  if (!s.ok()) {
    std::cerr << "dfm audit violations: " << s.ToString() << "\n";
    return 2;
  }
  return PrintViolations(found, json, std::cout);
}

// `dfm audit verify`: the hash chain, against a kept summary when given.
int ReplayTools::Impl::RunVerify(std::unique_ptr<RocksDbEventLog>& log) {
  std::string kept;
  if (!against.empty()) {
    std::ifstream in(against);
    if (!in) {
      std::cerr << "dfm audit verify: cannot read " << against << "\n";
      return 2;
    }
    // The summary is the last line that is a JSON object.
    std::string line;
    while (std::getline(in, line))
      if (!line.empty() && line[0] == '{') kept = line;
    if (kept.empty()) {
      std::cerr << "dfm audit verify: " << against << " holds no summary line\n";
      return 2;
    }
  }
  return RunAuditVerify(*log, kept, json, std::cout, std::cerr);
}

}  // namespace dfm
