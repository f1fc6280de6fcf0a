#include "cluster/publish_retry.h"

#include <algorithm>

namespace dfm {

Status PublishWithRetry(const PublishAttempt& attempt, const PublishRetryPolicy& policy,
                        const std::function<int64_t()>& now_ms,
                        const std::function<void(int64_t)>& sleep_ms, int* attempts) {
  const int64_t deadline = now_ms() + policy.budget_ms;
  int n = 0;
  Status s;
  for (;;) {
    const int64_t left = deadline - now_ms();
    bool final = false;
    s = attempt(std::max<int64_t>(1, std::min(policy.attempt_ms, left)), &final);
    ++n;
    if (s.ok() || final) break;
    // Another attempt needs its pause and a useful wait (a tenth of one).
    if (deadline - now_ms() < policy.pause_ms + policy.attempt_ms / 10) break;
    sleep_ms(policy.pause_ms);
  }
  if (attempts) *attempts = n;
  return s;
}

}  // namespace dfm
