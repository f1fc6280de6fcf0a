#include "connectors/common/outbound.h"

#include <algorithm>
#include <cstdlib>

#include "connectors/common/probe.h"
#include "sync/fact.h"
#include "util/clock.h"
#include "util/crypto.h"

namespace dfm {

std::optional<int64_t> HeaderInt(const HttpResponse& r, const char* name) {
  std::string v = r.Header(name);
  if (v.empty()) return std::nullopt;
  char* end = nullptr;
  long long n = std::strtoll(v.c_str(), &end, 10);
  if (end == v.c_str()) return std::nullopt;
  constexpr long long kLimit = 1000000000000LL;
  return std::clamp(n, -kLimit, kLimit);
}

ContactPage PageFromResponse(const HttpResponse& resp, std::string url, std::string error_detail) {
  ContactPage p;
  p.url = std::move(url);
  p.http_status = resp.status;
  PushResult limits;
  ReadRateHeaders(resp, &limits);
  p.retry_after_us = limits.retry_after_us;
  if (resp.status / 100 != 2) {
    p.auth_rejected = resp.status == 401;
    p.detail = std::move(error_detail);
  }
  return p;
}

std::string CredentialsKey(const std::string& tenant, const std::string& system) {
  return tenant + "/" + system;
}

namespace {

std::string GrantOrigin(const Credentials& configured) {
  std::string from = configured.access_token + "\n" + configured.refresh_token;
  if (!configured.origin.empty()) from += "\n" + configured.origin;  // as before without one
  return HexEncode(Sha256(from));
}

}  // namespace

Credentials ClientCredentials(std::initializer_list<std::string_view> asked_with) {
  std::string all;
  for (std::string_view part : asked_with)
    all.append(std::to_string(part.size())).append(":").append(part);
  Credentials c;
  c.expires_at_us = 1;
  c.origin = HexEncode(Sha256(all));
  return c;
}

std::string EncodeCredentials(const Credentials& grant, const Credentials& configured) {
  return std::to_string(grant.expires_at_us) + "\n" + grant.access_token + "\n" +
         grant.refresh_token + "\n" + GrantOrigin(configured);
}

bool DecodeCredentials(const std::string& s, Credentials* c, std::string* origin) {
  size_t a = s.find('\n');
  if (a == std::string::npos) return false;
  size_t b = s.find('\n', a + 1);
  if (b == std::string::npos) return false;
  char* end = nullptr;
  std::string num = s.substr(0, a);
  long long at = std::strtoll(num.c_str(), &end, 10);
  if (end == num.c_str() || *end != '\0') return false;
  const size_t o = s.find('\n', b + 1);
  c->expires_at_us = at;
  c->access_token = s.substr(a + 1, b - a - 1);
  c->refresh_token = s.substr(b + 1, o == std::string::npos ? std::string::npos : o - b - 1);
  if (origin) *origin = o == std::string::npos ? "" : s.substr(o + 1);
  return true;
}

Credentials NewestGrant(const Credentials& configured, const std::string& stored) {
  Credentials c;
  std::string origin;
  if (stored.empty() || !DecodeCredentials(stored, &c, &origin)) return configured;
  if (!origin.empty() && origin != GrantOrigin(configured)) return configured;  // granted anew
  return c;
}

void ReadRateHeaders(const HttpResponse& resp, PushResult* r, int64_t now_us) {
  if (auto v = HeaderInt(resp, "x-ratelimit-remaining")) r->rate_remaining = static_cast<int>(*v);
  if (auto v = HeaderInt(resp, "x-ratelimit-daily-remaining")) r->daily_remaining = *v;
  if (auto v = HeaderInt(resp, "retry-after")) {
    r->retry_after_us = *v * 1000000;
  } else if (auto when = ParseHttpDate(resp.Header("retry-after"))) {
    const auto sent = ParseHttpDate(resp.Header("date"));
    const int64_t from = sent ? *sent : now_us ? now_us : SystemClock::Instance()->NowMicros();
    r->retry_after_us = std::max<int64_t>(*when - from, 0);
  }
  if (resp.status == 429 && !r->retry_after_us) {
    // GoHighLevel sends no Retry-After: wait for its window to roll over.
    if (auto w = HeaderInt(resp, "x-ratelimit-interval-milliseconds"))
      r->retry_after_us = *w * 1000;
  }
}

void AddDeliverySettings(std::vector<SettingSpec>* settings, const RateDefaults& rate) {
  settings->insert(
      settings->end(),
      {
          {"concurrency", false, "4", "pushes in flight at once", true},
          {"rate_limit", false, rate.limit, "requests per rate window (" + rate.why + ")", true},
          {"rate_window_ms", false, rate.window_ms, "the rate window", true},
          {"daily_limit", false, rate.daily,
           "requests per day; 0: none. Once spent (or the vendor says none remain), "
           "requests wait for the day's end, but opt-outs, opt-ins and read-backs try once an "
           "hour: no vendor says when its day resets",
           true},
          {"request_timeout_ms", false, "10000", "timeout of one HTTP request", true},
          {"retry_base_ms", false, "500", "first retry waits up to this (doubling, full jitter)",
           true},
          {"retry_max_ms", false, "300000", "longest wait between retries", true},
          {"max_attempts", false, "12", "attempts before a push is dead-lettered", true},
          {"breaker_failures", false, "5", "consecutive failures that open the circuit breaker",
           true},
          {"breaker_open_ms", false, "30000", "how long the open breaker holds pushes back", true},
      });
}

std::vector<std::string> ContactFieldNames() {
  return {fields::kFirstName, fields::kLastName,    fields::kEmail, fields::kPhone,
          fields::kAddress1,  fields::kCity,        fields::kState, fields::kPostalCode,
          fields::kCountry,   fields::kCompanyName, fields::kTags};
}

std::string SafeDetail(int status, std::string_view message) {
  std::string out = "HTTP " + std::to_string(status);
  int digits = 0, longest = 0;
  bool at = false;
  for (char c : message) {
    at = at || c == '@';
    digits = (c >= '0' && c <= '9')                                       ? digits + 1
             : (c == ' ' || c == '-' || c == '(' || c == ')' || c == '+') ? digits
                                                                          : 0;
    longest = std::max(longest, digits);
  }
  if (message.empty()) return out;
  if (at || longest >= 7) return out + ": <message withheld: may hold personal data>";
  return out + ": " + std::string(message.substr(0, 200));
}

std::string ApiBaseUrl(const SystemSettings& s) {
  auto it = s.find("api_base_url");
  std::string base = it == s.end() ? "" : it->second;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base;
}

bool HasApiBaseUrl(const SystemSettings& s) { return !ApiBaseUrl(s).empty(); }

}  // namespace dfm
