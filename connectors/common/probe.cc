#include "connectors/common/probe.h"

#include <ctime>

namespace dfm {

std::optional<int64_t> ParseHttpDate(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return static_cast<int64_t>(timegm(&tm)) * 1000000;
}

void NoteAnswer(const HttpResponse& resp, int64_t sent_us, ProbeResult* r) {
  if (resp.status == 0) return;
  if (auto when = ParseHttpDate(resp.Header("date"))) {
    r->vendor_time_us = *when;
    r->round_trip_us = resp.elapsed_us;
    r->local_time_us = sent_us + resp.elapsed_us;
  }
  if (auto v = HeaderInt(resp, "x-ratelimit-remaining")) r->rate_remaining = v;
  if (auto v = HeaderInt(resp, "x-ratelimit-limit")) r->rate_limit = v;
  if (auto v = HeaderInt(resp, "x-ratelimit-max")) r->rate_limit = v;
  if (auto v = HeaderInt(resp, "x-ratelimit-daily-remaining")) r->daily_remaining = v;
  if (auto v = HeaderInt(resp, "x-ratelimit-limit-daily")) r->daily_limit = v;
}

ProbeCheck ExpectOk(const std::string& name, const HttpResponse& resp, const std::string& ok_detail,
                    const std::string& base_url_key, const std::string& credential_key) {
  ProbeCheck c;
  c.name = name;
  if (resp.status >= 200 && resp.status < 300) {
    c.detail = ok_detail;
    return c;
  }
  c.state = ProbeCheck::State::kFail;
  if (resp.status == 0) {
    c.detail = "not reached: " + resp.error;
    c.hint = "check " + base_url_key + " and that this machine reaches it (DNS, firewall, proxy)";
  } else if (resp.status == 401 || resp.status == 403) {
    c.detail = "refused our credentials: " + SafeDetail(resp.status, resp.body);
    c.hint = "renew " + credential_key + " (the vendor's console issues a new one)";
  } else if (resp.status == 429) {
    c.detail = "rate limited now: " + SafeDetail(resp.status, resp.body);
    c.hint = "wait and run dfm diagnose again; the service backs off by itself";
  } else {
    c.detail = "answered " + SafeDetail(resp.status, resp.body);
    c.hint = resp.status >= 500 ? "the vendor has trouble; try again later" : "see the vendor's answer";
  }
  return c;
}

}  // namespace dfm
