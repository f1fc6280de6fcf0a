// `dfm config init --out FILE [--force]` (docs/deploy.md, "3. Configure"):
// a production configuration to start from.
//
// FILE gets the production template the schema makes (config/schema.h;
// packaging/dfm.toml holds the same): no secret in it. FILE.env (mode 0600) gets the secrets as the
// DFM_* variables the unit reads (EnvironmentFile=): a fresh random one
// where the service makes its own (the unsubscribe links' secret), and a
// commented placeholder for every vendor secret the connectors declare.
#pragma once

#include <ostream>
#include <string>

#include "util/status.h"

namespace dfm {

// The env file's text: fresh secrets and the vendors' placeholders.
std::string ProductionSecrets();

// Writes `out` and `out`.env; AlreadyExists (nothing written) when either
// is there and `force` is false. *said: what to do next, for people.
Status WriteProductionConfig(const std::string& out, bool force, std::string* said);

// `dfm config reference [--update FILE]`: prints the reference the schema
// makes, or rewrites the generated part of FILE (docs/configuration.md)
// with it. 0, or 1 with a reason on `err`.
int RunConfigReference(const std::string& update, std::ostream& out, std::ostream& err);

}  // namespace dfm
