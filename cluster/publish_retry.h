// Publishing a webhook to the ingest stream again when the first attempt
// got no answer (docs/scale-out.md, "What is replicated where").
//
// A publish that times out, or finds no stream leader while NATS elects
// one, may or may not have been stored. Answering the sender 503 then is
// ambiguous: it may send the webhook again (the stream de-duplicates it by
// its message id) or, as a person clicking "send" again would, make a new
// one, which is then synced twice. Publishing the same message id again
// until the stream answers turns most such failures into a definite
// answer: stored (perhaps `duplicate`: the first attempt had landed) or
// refused.
//
// Contract: only for messages with a message id the stream
// de-duplicates; a message without one is published once.
#pragma once

#include <cstdint>
#include <functional>

#include "util/status.h"

namespace dfm {

struct PublishRetryPolicy {
  int64_t budget_ms = 6000;  // from the first attempt's start to the last's
  int64_t attempt_ms = 2000;  // the wait for one attempt's acknowledgement
  int64_t pause_ms = 250;     // between attempts
};

// One attempt, waiting at most `wait_ms`. Sets `*final` when the stream
// answered with an error (a JetStream error code: too large, fenced):
// publishing again would get the same answer.
using PublishAttempt = std::function<Status(int64_t wait_ms, bool* final)>;

// Runs `attempt` until it succeeds, fails finally, or the budget leaves no
// room for another; returns the last attempt's status and sets `*attempts`
// (may be null). `now_ms` and `sleep_ms` are the clock (tests simulate it).
Status PublishWithRetry(const PublishAttempt& attempt, const PublishRetryPolicy& policy,
                        const std::function<int64_t()>& now_ms,
                        const std::function<void(int64_t)>& sleep_ms, int* attempts);

}  // namespace dfm
