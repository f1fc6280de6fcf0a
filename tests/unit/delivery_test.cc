// Identity resolution and the connectors' delivery policy (pure, clock-driven).
#include <gtest/gtest.h>

#include <map>

#include "connectors/common/delivery.h"
#include "connectors/common/outbound.h"
#include "sync/identity.h"

namespace dfm {
namespace {

constexpr int64_t kSec = 1'000'000;

struct Index {
  std::map<std::string, std::string> kv;
  IdentityLookup Lookup() const {
    return [this](const std::string& k) -> std::optional<std::string> {
      auto it = kv.find(k);
      if (it == kv.end()) return std::nullopt;
      return it->second;
    };
  }
};

ContactFact Fact(std::map<std::string, std::string> fields, const std::string& ext = "") {
  ContactFact f;
  f.tenant = "t";
  f.system = "aloware";
  f.external_id = ext;
  f.fields = std::move(fields);
  f.webhook_id = *EventId::Parse("01JD0000000000000000000000");
  return f;
}

TEST(Resolve, ExternalIdThenPhoneThenEmail) {
  Index idx;
  idx.kv = {{"x/t/aloware/7", "cA"}, {"p/t/+12055550142", "cB"}, {"e/t/b@x.io", "cB"}};
  auto r = Resolve(Fact({{"phone", "+12055550142"}}, "7"), idx.Lookup());
  EXPECT_EQ(r.kind, Resolution::Kind::kMatched);
  EXPECT_EQ(r.contact_id, "cA");
  EXPECT_EQ(r.matched_by, "external_id");
  r = Resolve(Fact({{"phone", "+12055550142"}}, "8"), idx.Lookup());
  EXPECT_EQ(r.contact_id, "cB");
  EXPECT_EQ(r.matched_by, "phone");
  r = Resolve(Fact({{"email", "b@x.io"}}), idx.Lookup());
  EXPECT_EQ(r.contact_id, "cB");
  EXPECT_EQ(r.matched_by, "email");
}

TEST(Resolve, PhoneAndEmailDisagreeIsAConflictNotAMerge) {
  Index idx;
  idx.kv = {{"p/t/+12055550142", "cA"}, {"e/t/b@x.io", "cB"}};
  auto r = Resolve(Fact({{"phone", "+12055550142"}, {"email", "b@x.io"}}), idx.Lookup());
  EXPECT_EQ(r.kind, Resolution::Kind::kAmbiguous);
  ASSERT_EQ(r.candidates.size(), 2u);
  EXPECT_EQ(r.candidates[0].first, "cA");
  EXPECT_EQ(r.candidates[1].first, "cB");
}

// An ambiguous fact's opt-outs land at once, each on the candidate holding
// the address its channel reaches; its opt-in waits for the settlement.
TEST(Resolve, AConflictsOptOutsGoEachToTheContactItsChannelReaches) {
  Index idx;
  idx.kv = {{"p/t/+12055550142", "cA"}, {"e/t/b@x.io", "cB"}};
  ContactFact f = Fact({{"phone", "+12055550142"}, {"email", "b@x.io"}, {"first_name", "X"}}, "9");
  f.webhook_seq = 42;
  f.fact_index = 1;
  Consent out;
  out.channels = {"sms", "call", "email", "gmb"};
  out.actor = Consent::Actor::kStaff;
  Consent in;
  in.change = Consent::Change::kOptIn;
  in.channels = {"whatsapp"};
  f.consents = {out, in};
  Activity text;
  f.activities = {text};
  auto r = Resolve(f, idx.Lookup());
  ASSERT_EQ(r.kind, Resolution::Kind::kAmbiguous);
  auto opt_outs = ConflictOptOuts(f, r.candidates);
  ASSERT_EQ(opt_outs.size(), 2u);
  std::map<std::string, ContactFact> by_contact(opt_outs.begin(), opt_outs.end());
  const ContactFact& a = by_contact.at("cA");
  const ContactFact& b = by_contact.at("cB");
  EXPECT_EQ(a.fields, (std::map<std::string, std::string>{{"phone", "+12055550142"}}));
  EXPECT_EQ(b.fields, (std::map<std::string, std::string>{{"email", "b@x.io"}}));
  ASSERT_EQ(a.consents.size(), 1u) << "the opt-in waits";
  ASSERT_EQ(b.consents.size(), 1u);
  EXPECT_EQ(a.consents[0].channels, (std::vector<std::string>{"sms", "call", "gmb"}));
  EXPECT_EQ(b.consents[0].channels, (std::vector<std::string>{"email", "gmb"}));
  EXPECT_EQ(a.consents[0].actor, Consent::Actor::kStaff);
  for (const ContactFact* x : {&a, &b}) {
    EXPECT_TRUE(x->consents_only);
    EXPECT_TRUE(x->external_id.empty()) << "the record is neither's";
    EXPECT_TRUE(x->activities.empty());
    EXPECT_EQ(x->system, "aloware");
    EXPECT_EQ(x->webhook_seq, 42u);
    EXPECT_EQ(x->fact_index, 1u);
  }
  f.consents = {in};
  EXPECT_TRUE(ConflictOptOuts(f, r.candidates).empty()) << "nothing to hand on";
}

TEST(Resolve, NewContactNeedsPhoneOrEmailAndHasADeterministicId) {
  Index idx;
  auto r = Resolve(Fact({{"first_name", "X"}}), idx.Lookup());
  EXPECT_EQ(r.kind, Resolution::Kind::kRejected);
  r = Resolve(Fact({{"email", "n@x.io"}}), idx.Lookup());
  EXPECT_EQ(r.kind, Resolution::Kind::kNew);
  EXPECT_EQ(r.contact_id, Resolve(Fact({{"email", "n@x.io"}}), idx.Lookup()).contact_id);
  ContactFact del = Fact({{"email", "n@x.io"}});
  del.kind = ContactFact::Kind::kDelete;
  EXPECT_EQ(Resolve(del, idx.Lookup()).kind, Resolution::Kind::kRejected);
}

TEST(Delivery, ClassifiesStatuses) {
  EXPECT_EQ(ClassifyAttempt(200), AttemptOutcome::kOk);
  EXPECT_EQ(ClassifyAttempt(201), AttemptOutcome::kOk);
  EXPECT_EQ(ClassifyAttempt(0), AttemptOutcome::kRetry);
  EXPECT_EQ(ClassifyAttempt(429), AttemptOutcome::kRetry);
  EXPECT_EQ(ClassifyAttempt(500), AttemptOutcome::kRetry);
  EXPECT_EQ(ClassifyAttempt(503), AttemptOutcome::kRetry);
  EXPECT_EQ(ClassifyAttempt(400), AttemptOutcome::kFail);
  EXPECT_EQ(ClassifyAttempt(401), AttemptOutcome::kFail);
  EXPECT_EQ(ClassifyAttempt(422), AttemptOutcome::kFail);
}

TEST(Delivery, BackoffGrowsExponentiallyWithJitterAndACap) {
  Backoff b;
  b.base_us = kSec;
  b.max_us = 60 * kSec;
  EXPECT_EQ(b.Delay(1, 0.999999), static_cast<int64_t>(kSec * 0.999999));
  EXPECT_EQ(b.Delay(3, 0.5), 2 * kSec);
  EXPECT_EQ(b.Delay(30, 0.5), 30 * kSec);  // capped at max
  EXPECT_EQ(b.Delay(5, 0.0), 0);
}

TEST(Delivery, RateLimiterSlidingWindowAndVendorSignals) {
  RateLimiter rl(100, 10 * kSec, 200000);
  int64_t now = 1000 * kSec;
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(rl.NextAllowed(now), now);
    rl.OnSent(now);
  }
  EXPECT_EQ(rl.NextAllowed(now), now + 10 * kSec);  // the 101st waits for the window
  RateLimiter h(100, 10 * kSec, 200000);
  h.OnHeaders(now, 0, std::nullopt);  // X-RateLimit-Remaining: 0
  EXPECT_EQ(h.NextAllowed(now), now + 10 * kSec);
  RateLimiter t(100, 10 * kSec, 200000);
  t.OnThrottled(now, 3 * kSec);  // 429 with Retry-After: 3
  EXPECT_EQ(t.NextAllowed(now), now + 3 * kSec);
  RateLimiter d(100, 10 * kSec, 200000);
  d.OnSent(now);
  d.OnHeaders(now, 50, 0);  // daily budget spent
  EXPECT_GE(d.NextAllowed(now + kSec), now + 24 * 3600 * kSec);
}

// Requests about to go (their push.sending being recorded) count as sent
// now, in the window and in the day's count.
TEST(Delivery, PendingRequestsCountAsSentNow) {
  RateLimiter rl(3, 10 * kSec, 5);
  int64_t now = 1000 * kSec;
  rl.OnSent(now - 4 * kSec);
  EXPECT_EQ(rl.NextAllowed(now, false, 1), now) << "one sent, one pending: room for a third";
  EXPECT_EQ(rl.NextAllowed(now, false, 2), now + 6 * kSec) << "full until the sent one ages out";
  EXPECT_EQ(rl.NextAllowed(now, false, 3), now + 10 * kSec) << "full of pending ones";
  rl.OnSent(now);
  rl.OnSent(now + 7 * kSec);
  rl.OnSent(now + 8 * kSec);
  EXPECT_EQ(rl.NextAllowed(now + 20 * kSec, false, 0), now + 20 * kSec);
  EXPECT_GE(rl.NextAllowed(now + 20 * kSec, false, 1), now + 24 * 3600 * kSec - 4 * kSec)
      << "four sent today and one pending: the day's five";
}

// A reload's new limits keep what was counted and what the vendor said.
TEST(Delivery, NewLimitsKeepARetryAfterAndTheDaysCount) {
  RateLimiter rl(100, 10 * kSec, 0);
  int64_t now = 1000 * kSec;
  rl.OnSent(now);
  rl.OnThrottled(now, 30 * kSec);
  rl.SetLimits(1, 10 * kSec, 1, now + kSec);
  EXPECT_EQ(rl.NextAllowed(now + kSec), now + 24 * 3600 * kSec) << "one sent: the new cap of one";
  EXPECT_EQ(rl.NextAllowed(now + kSec, true), now + kSec + 3600 * kSec) << "an opt-out's probe";
  RateLimiter t(100, 10 * kSec, 0);
  t.OnThrottled(now, 30 * kSec);
  t.SetLimits(50, 5 * kSec, 0, now);
  EXPECT_EQ(t.NextAllowed(now + kSec), now + 30 * kSec) << "the Retry-After stays";
}

// The vendor says no request remains today: other requests wait for the
// day's end, an opt-out only an hour (no vendor says when its day resets,
// and it may reset before ours). The probe's answer tells: none remaining
// still, the next waits another hour; some remaining (the vendor's reset),
// every request goes again.
TEST(Delivery, ADailyCapHoldsAnOptOutAnHourNotADay) {
  constexpr int64_t kHour = 3600 * kSec;
  RateLimiter d(100, 10 * kSec, 200000);
  const int64_t now = 1000 * kSec;
  d.OnSent(now);
  d.OnHeaders(now, 50, 0);
  EXPECT_GE(d.NextAllowed(now + kSec), now + 24 * kHour);
  EXPECT_EQ(d.NextAllowed(now + kSec, /*consent=*/true), now + kHour);
  int64_t probe = now + kHour;
  d.OnSent(probe);
  d.OnHeaders(probe, 99, 0);  // still none today
  EXPECT_EQ(d.NextAllowed(probe + kSec, true), probe + kHour);
  EXPECT_GE(d.NextAllowed(probe + kSec), now + 24 * kHour);
  probe += kHour;
  d.OnSent(probe);
  d.OnHeaders(probe, 99, 199999);  // the vendor's day began again
  EXPECT_EQ(d.NextAllowed(probe + kSec), probe + kSec);
  EXPECT_EQ(d.NextAllowed(probe + kSec, true), probe + kSec);

  // A cap set lower than the vendor's holds though the vendor says many
  // remain; answers out of order are no new day.
  RateLimiter low(100, 10 * kSec, 3);
  for (int i = 0; i < 3; ++i) {
    low.OnSent(now + i * kSec);
    low.OnHeaders(now + i * kSec, 99, 199990 - i);
  }
  low.OnHeaders(now + 3 * kSec, 99, 199991);
  EXPECT_GE(low.NextAllowed(now + 4 * kSec), now + 24 * kHour);

  // The answer to a request sent before the cap was reached (another
  // counter of the vendor's, as Apollo counts each endpoint apart) is no
  // new day; a probe's answer is.
  RateLimiter two(100, 10 * kSec, 1000);
  two.OnSent(now);
  two.OnSent(now + kSec);
  two.OnHeaders(now + 2 * kSec, 99, 0, now + kSec);  // counter A: spent
  two.OnHeaders(now + 3 * kSec, 99, 900, now);       // counter B, asked before
  EXPECT_TRUE(two.DailyCapReached(now + 4 * kSec));
  EXPECT_GE(two.NextAllowed(now + 4 * kSec), now + 24 * kHour);
  two.OnSent(now + 2 * kSec + kHour);  // the hourly probe
  two.OnHeaders(now + 3 * kSec + kHour, 99, 999, now + 2 * kSec + kHour);
  EXPECT_FALSE(two.DailyCapReached(now + 4 * kSec + kHour));

  // Counted here alone (no header), the cap holds the same way.
  RateLimiter c(100, 10 * kSec, 2);
  c.OnSent(now);
  c.OnSent(now + 20 * kSec);
  EXPECT_GE(c.NextAllowed(now + 30 * kSec), now + 24 * kHour);
  EXPECT_EQ(c.NextAllowed(now + 30 * kSec, true), now + 20 * kSec + kHour);
}

TEST(Delivery, CircuitBreakerOpensHalfOpensAndCloses) {
  CircuitBreaker cb(3, 30 * kSec);
  int64_t now = 0;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(cb.Allow(now));
    cb.OnFailure(now);
  }
  EXPECT_EQ(cb.state(now), CircuitBreaker::State::kOpen);
  EXPECT_FALSE(cb.Allow(now + 29 * kSec));
  EXPECT_TRUE(cb.Allow(now + 30 * kSec));   // one trial
  EXPECT_FALSE(cb.Allow(now + 30 * kSec));  // and only one
  cb.OnFailure(now + 31 * kSec);            // trial failed: open again
  EXPECT_FALSE(cb.Allow(now + 60 * kSec));
  EXPECT_TRUE(cb.Allow(now + 61 * kSec));
  cb.OnSuccess();
  EXPECT_EQ(cb.state(now + 61 * kSec), CircuitBreaker::State::kClosed);
  EXPECT_TRUE(cb.Allow(now + 61 * kSec));
}

// A half-open trial answered with neither an outage nor a success (a 429)
// lets the next trial go; it had held the breaker half-open for ever (the
// simulation's seed 455, tests/sim).
TEST(Delivery, ATrialThatEndsNeutrallyLetsTheNextGo) {
  CircuitBreaker cb(1, 30 * kSec);
  cb.OnFailure(0);
  EXPECT_TRUE(cb.Allow(30 * kSec));   // the trial
  EXPECT_FALSE(cb.Allow(31 * kSec));  // waits for it
  cb.OnNeutral();                     // it was throttled
  EXPECT_TRUE(cb.Allow(32 * kSec));   // another trial
  cb.OnSuccess();
  EXPECT_EQ(cb.state(33 * kSec), CircuitBreaker::State::kClosed);
}

}  // namespace
}  // namespace dfm

namespace dfm {
namespace {
TEST(SafeDetail, VendorMessagesThatEchoPersonalDataAreWithheld) {
  EXPECT_EQ(SafeDetail(400, "Bad Request"), "HTTP 400: Bad Request");
  EXPECT_EQ(SafeDetail(500, ""), "HTTP 500");
  EXPECT_EQ(SafeDetail(422, "email a@x.io is invalid"),
            "HTTP 422: <message withheld: may hold personal data>");
  EXPECT_EQ(SafeDetail(422, "phone (205) 555-0142 is invalid"),
            "HTTP 422: <message withheld: may hold personal data>");
  EXPECT_EQ(SafeDetail(400, "Contact with id x5vgqf4JaRFITV not found"),
            "HTTP 400: Contact with id x5vgqf4JaRFITV not found");
}

TEST(HeaderInt, ReadsLeadingNumberAndClampsSoMicrosCannotOverflow) {
  HttpResponse r;
  r.headers["retry-after"] = "42 s";
  EXPECT_EQ(HeaderInt(r, "retry-after"), 42);
  EXPECT_EQ(HeaderInt(r, "x-missing"), std::nullopt);
  r.headers["retry-after"] = "soon";
  EXPECT_EQ(HeaderInt(r, "retry-after"), std::nullopt);
  r.headers["retry-after"] = "99999999999999999999";
  PushResult p;
  ReadRateHeaders(r, &p);
  EXPECT_EQ(p.retry_after_us, 1000000000000LL * 1000000);
}

// Retry-After may be a date (RFC 9110 §10.2.3): a vendor throttling for an
// hour so is waited for an hour, counted from its answer's Date (or from
// now without one), not one rate window per attempt until the push dies.
TEST(ReadRateHeaders, ARetryAfterDateIsWaitedFor) {
  HttpResponse r;
  r.status = 429;
  r.headers["retry-after"] = "Sun, 06 Nov 1994 09:49:37 GMT";
  r.headers["date"] = "Sun, 06 Nov 1994 08:49:37 GMT";
  PushResult p;
  ReadRateHeaders(r, &p);
  EXPECT_EQ(p.retry_after_us, 3600LL * 1000000);
  r.headers.erase("date");
  p = PushResult{};
  ReadRateHeaders(r, &p, 784111777LL * 1000000 + 60 * 1000000);
  EXPECT_EQ(p.retry_after_us, 3540LL * 1000000);
  p = PushResult{};
  ReadRateHeaders(r, &p, 784111777LL * 1000000 + 7200LL * 1000000);
  EXPECT_EQ(p.retry_after_us, 0) << "a date passed: at once";
}
}  // namespace
}  // namespace dfm
