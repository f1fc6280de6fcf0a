// The check a campaign's task goes through at the moment it would send
// (campaigns/README.md, issue 49's "Rules checked at the moment of
// sending, not when scheduling"), in this order:
//   1. the person opted out of the step's channel      -> skip "opted_out"
//   2. the step stops on a reply and they replied       -> skip "replied"
//   3. the step stops on a payment and they paid        -> skip "paid"
//   4. no address for the channel (phone, email)        -> skip "no_address"
//   5. past the step's window (due + window_s)          -> skip "window_passed"
//   6. outside quiet hours in any zone of the person    -> wait until every
//      zone is inside, or skip "quiet_hours" when that is past the window
//   7. the person's frequency caps (sends in any 24 h, any 7 days, across
//      campaigns) are reached                           -> wait until one
//      leaves the window, or skip "frequency_cap" past the step's window
//   8. else                                             -> send now
// A call is a task for a person at the dialer: quiet hours apply to it
// too; the caps count texts and emails only.
//
// SenderPacer spaces a sender number's texts (texts per second).
//
// Pure. Times are Unix microseconds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "campaigns/campaign.h"
#include "campaigns/quiet_hours.h"

namespace dfm {

struct FrequencyCaps {
  int per_day = 2;   // sends in any 24 hours; 0: no cap
  int per_week = 5;  // sends in any 7 days; 0: no cap
};

// What is known of the person when their task is due.
struct Recipient {
  bool opted_out = false;                // of the step's channel (the opt-out registry)
  bool replied = false;                  // since the campaign reached them first
  bool paid = false;                     // a payment recorded for them since the campaign started
  bool has_address = true;               // a phone for sms and call, an email for email
  std::vector<const ZoneRules*> zones;   // recipient_zones.h
  std::vector<int64_t> recent_sends_us;  // their texts and emails of the last 7 days, any campaign
};

struct SendDecision {
  enum class Verdict { kSend, kWait, kSkip };
  Verdict verdict = Verdict::kSend;
  int64_t until_us = 0;  // kWait: when to look again
  std::string reason;    // kSkip: the reason's name above; kWait: "quiet_hours" or "frequency_cap"
};

// `due_us`: when the task became due (its window runs from there).
SendDecision CheckSend(const CampaignStep& step, const Recipient& who, const QuietHours& hours,
                       const FrequencyCaps& caps, int64_t due_us, int64_t now_us);

// At most `per_second` texts a second from one sender (a token bucket of
// one second's worth; below 0.001 a second counts as 0.001). Not
// thread-safe: one owner (the campaign actor).
class SenderPacer {
 public:
  explicit SenderPacer(double per_second);
  // When the next text may go (>= now); Take it then.
  int64_t NextAt(int64_t now_us) const;
  void Take(int64_t now_us);

 private:
  double per_us_;
  double burst_;
  double tokens_;
  int64_t at_us_ = 0;
};

}  // namespace dfm
