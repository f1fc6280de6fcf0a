// What `dfm diagnose` asks of a system (Connector::probe): one cheap
// authenticated request for each thing its settings rely on -- its token,
// its account or location, a conversation provider -- read as checks a
// person can act on, with what the vendor said of its limits and its clock.
//
// A probe never writes anything the vendor keeps, and never reports a
// secret or personal data.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "connectors/common/http_client.h"
#include "connectors/common/outbound.h"

namespace dfm {

struct ProbeCheck {
  enum class State { kOk, kFail, kSkipped };
  std::string name;    // "token and location"
  State state = State::kOk;
  std::string detail;  // what was found
  std::string hint;    // kFail: what to do about it
};

struct ProbeResult {
  std::vector<ProbeCheck> checks;
  // The vendor's clock (its last answer's Date header) and when that
  // answer came by ours, for the skew; 0 when no answer had one.
  int64_t vendor_time_us = 0;
  int64_t local_time_us = 0;
  int64_t round_trip_us = 0;
  // What its last answer said of its limits (X-RateLimit-*), when it did.
  std::optional<int64_t> rate_remaining, rate_limit, daily_remaining, daily_limit;
};

using ProbeCallback = std::function<void(ProbeResult)>;

// Runs `done` exactly once, on any thread, like VendorClient's callbacks.
using Probe = std::function<void(const SystemSettings& settings, const Credentials& credentials,
                                 HttpClient* http, ProbeCallback done)>;

// An HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110) in µs since the
// epoch; nullopt when it does not read.
std::optional<int64_t> ParseHttpDate(const std::string& text);

// Notes the answer's Date and rate-limit headers in `r` (`sent_us`: when
// the request went, by our clock). Headers read: X-RateLimit-Remaining,
// X-RateLimit-Limit or X-RateLimit-Max, X-RateLimit-Daily-Remaining,
// X-RateLimit-Limit-Daily.
void NoteAnswer(const HttpResponse& resp, int64_t sent_us, ProbeResult* r);

// The check for an answer that should be 2xx: kOk with `ok_detail`; a
// transport error says the vendor was not reached (`base_url_key`: the
// setting to look at); 401/403 that `credential_key` was refused; others
// the status and the vendor's words (SafeDetail).
ProbeCheck ExpectOk(const std::string& name, const HttpResponse& resp, const std::string& ok_detail,
                    const std::string& base_url_key, const std::string& credential_key);

}  // namespace dfm
