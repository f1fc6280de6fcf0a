// `dfm serve` with [cluster] enabled (docs/scale-out.md): webhooks go to
// the replicated ingest stream; the partitions this node holds run here;
// its front answers for the whole cluster.
#pragma once

#include <string>

#include "config/config.h"

namespace dfm {

// Serves until SIGTERM or SIGINT; returns the process's exit code.
int ServeCluster(const dfm::Config& config, const std::string& config_path);

}  // namespace dfm
