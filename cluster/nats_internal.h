// Helpers shared by NatsClient's files (nats_client.cc, nats_core_kv.cc);
// not for other users.
#pragma once

#include <nats/nats.h>

#include <cstdint>

#include "util/status.h"

namespace dfm::nats_internal {

// A NATS call's status as ours: NotFound for NATS_NOT_FOUND, else
// Unavailable, naming `what` and JetStream's error code when one came.
Status FromNats(natsStatus s, const char* what, jsErrCode jerr = static_cast<jsErrCode>(0));

inline constexpr int64_t kNanos = 1000000000;

}  // namespace dfm::nats_internal
