#include "campaigns/send_check.h"

#include <algorithm>

namespace dfm {

namespace {

constexpr int64_t kUs = 1000000;
constexpr int64_t kDayUs = 86400 * kUs;

SendDecision Skip(const char* why) { return {SendDecision::Verdict::kSkip, 0, why}; }

// When a send may go again under `cap` sends per `span_us` (now when
// under it): the moment the oldest send that counts leaves the span.
int64_t CapFreesAt(const std::vector<int64_t>& sorted, int cap, int64_t span_us, int64_t now_us) {
  if (cap <= 0) return now_us;
  const auto from = std::lower_bound(sorted.begin(), sorted.end(), now_us - span_us + 1);
  const auto in_span = static_cast<int>(sorted.end() - from);
  if (in_span < cap) return now_us;
  // The (in_span - cap + 1)-th oldest send of the span must leave it.
  return *(from + (in_span - cap)) + span_us;
}

}  // namespace

SendDecision CheckSend(const CampaignStep& step, const Recipient& who, const QuietHours& hours,
                       const FrequencyCaps& caps, int64_t due_us, int64_t now_us) {
  if (who.opted_out) return Skip("opted_out");
  if (step.stop_on_reply && who.replied) return Skip("replied");
  if (step.stop_on_payment && who.paid) return Skip("paid");
  if (!who.has_address) return Skip("no_address");
  const int64_t last_us = due_us + step.window_s * kUs;
  if (now_us > last_us) return Skip("window_passed");  // e.g. looked at only after an outage
  int64_t at = now_us;
  // Each rule may move the time on; the other is then looked at again.
  for (int round = 0; round < 8; ++round) {
    const int64_t secs = at / kUs;
    if (!AllowedAt(hours, who.zones, secs)) {
      const auto next = NextAllowed(hours, who.zones, secs);
      if (!next || *next * kUs > last_us) return Skip("quiet_hours");
      at = *next * kUs;
      continue;
    }
    if (step.channel != Channel::kCall) {
      std::vector<int64_t> sorted = who.recent_sends_us;
      std::sort(sorted.begin(), sorted.end());
      const int64_t frees = std::max(CapFreesAt(sorted, caps.per_day, kDayUs, at),
                                     CapFreesAt(sorted, caps.per_week, 7 * kDayUs, at));
      if (frees > at) {
        if (frees > last_us) return Skip("frequency_cap");
        at = frees;
        continue;
      }
    }
    if (at == now_us) return {};
    const bool quiet = !AllowedAt(hours, who.zones, now_us / kUs);
    return {SendDecision::Verdict::kWait, at, quiet ? "quiet_hours" : "frequency_cap"};
  }
  return {SendDecision::Verdict::kWait, at, "quiet_hours"};
}

SenderPacer::SenderPacer(double per_second)
    : per_us_(std::max(per_second, 0.001) / 1e6), burst_(std::max(1.0, per_second)), tokens_(burst_) {}

int64_t SenderPacer::NextAt(int64_t now_us) const {
  const double have = std::min(burst_, tokens_ + (now_us - at_us_) * per_us_);
  if (have >= 1.0) return now_us;
  return now_us + static_cast<int64_t>((1.0 - have) / per_us_) + 1;
}

void SenderPacer::Take(int64_t now_us) {
  tokens_ = std::min(burst_, tokens_ + (now_us - at_us_) * per_us_) - 1.0;
  at_us_ = now_us;
}

}  // namespace dfm
