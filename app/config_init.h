// `dfm config init --out FILE [--force]` (docs/deploy.md, "3. Configure"):
// a production configuration to start from.
//
// FILE gets the package's template (packaging/dfm.toml, built into the
// binary): no secret in it. FILE.env (mode 0600) gets the secrets as the
// DFM_* variables the unit reads (EnvironmentFile=): a fresh random one
// where the service makes its own (the unsubscribe links' secret), and a
// commented placeholder for every vendor secret the connectors declare.
#pragma once

#include <ostream>
#include <string>

#include "util/status.h"

namespace dfm {

// The template, as packaging/dfm.toml holds it.
const std::string& ProductionTemplate();

// The env file's text: fresh secrets and the vendors' placeholders.
std::string ProductionSecrets();

// Writes `out` and `out`.env; AlreadyExists (nothing written) when either
// is there and `force` is false. *said: what to do next, for people.
Status WriteProductionConfig(const std::string& out, bool force, std::string* said);

}  // namespace dfm
