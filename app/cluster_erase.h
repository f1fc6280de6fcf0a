// POST /v1/admin/erase in cluster mode (docs/privacy.md, docs/scale-out.md):
// asked of any node, run by the node that runs the tenant's partition,
// which holds its log and the keys that seal it (DFM_SEAL). The request
// and its answer travel as a read does (cluster/reads.h; kEraseRoute,
// console/remote_read.h).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "cluster/node.h"
#include "config/config.h"
#include "console/console.h"
#include "util/status.h"
#include "util/worker.h"

namespace dfm {

// How long the asking node waits: an erasure reads the tenant's webhooks.
inline constexpr int64_t kEraseTimeoutMs = 60000;

// The front's erase handler on a cluster node: asks the partition's node
// and waits for its answer. Unavailable when no node runs the partition
// or it did not answer in time (the erasure may still be carried out:
// asking again answers with it).
EraseHandler AskClusterErase(ClusterNode* node);

// Runs `request` when it is an erasure (true; `reply` called once from
// `worker`), over `at`, with the configuration `live` holds when it runs
// (what a reload put in place); false for any other request.
bool AnswerClusterErase(const std::atomic<const Config*>& live, Worker* worker, const ServedLog& at,
                        const std::string& request, std::function<void(std::string)>* reply);

}  // namespace dfm
