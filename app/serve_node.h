// `dfm serve` on a single node, the embedded default: the event log and the
// key store in the data directory, the sync on it, the front before them.
#pragma once

#include <string>

#include "config/config.h"

namespace dfm {

// Serves until SIGTERM or SIGINT; returns the process's exit code.
int ServeNode(const Config& config, const std::string& config_path);

}  // namespace dfm
