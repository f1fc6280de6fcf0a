// `dfm diagnose`: is everything set up and reachable? One line per check,
// ✓ (fine), ✗ (with what to do) or – (not checked, and why); `--json` for
// tools; exit 1 when any check fails.
//
//   configuration       every problem `dfm config check` reports
//   data directory      exists (or can be made), only its owner's, writable,
//                       free space above storage.min_free_mb
//   event log           opens and reads (safe while the service runs)
//   service             answers /readyz at server.listen (– when not running)
//   <system> webhooks   per tenant: its verification builds from the settings
//   <system> <probe>    per tenant: the connector's probe (Connector::probe:
//                       token, location or account, conversation provider)
//   clock               our clock against the vendors' Date headers
//   <system> limits     what each vendor's last answer said of its rate limits
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "connectors/common/probe.h"

namespace dfm {

struct DiagnoseLine {
  std::string check;
  ProbeCheck::State state = ProbeCheck::State::kOk;
  std::string detail, hint;
};

// The clock's line from the probes' answers: fails when a vendor's Date is
// further from ours than `tolerance_us` plus the request's round trip.
DiagnoseLine ClockLine(const std::vector<std::pair<std::string, ProbeResult>>& answers,
                       int64_t tolerance_us);
// A vendor's rate-limit line from its answer; nullopt-like `check` empty
// when it said nothing of its limits. Fails with nothing left (or under
// 5% of a daily limit).
DiagnoseLine RateLine(const std::string& who, const ProbeResult& answer);

// Prints the lines (text, or one JSON object) and returns the exit code:
// 1 when any failed, else 0.
int PrintDiagnosis(const std::vector<DiagnoseLine>& lines, bool json, std::ostream& out);

// Runs every check for the configuration at `config_path` ($DFM_CONFIG or
// defaults when empty) and prints them; the exit code.
int RunDiagnose(const std::string& config_path, bool json, std::ostream& out);

}  // namespace dfm
