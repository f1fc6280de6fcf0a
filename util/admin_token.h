// The admin token: what `dfm` tools present to a running service's admin
// endpoints (POST /v1/admin/replay). `dfm serve` writes a new random one to
// <data dir>/admin.token (mode 0600) at every start, so whoever may read the
// data directory may ask the service to re-drive pushes, and nobody else.
#pragma once

#include <string>

#include "util/status.h"

namespace dfm {

inline constexpr char kAdminTokenFile[] = "admin.token";

// Writes a fresh token (64 hex characters) and returns it.
Status WriteAdminToken(const std::string& data_dir, std::string* token);
// NotFound when the service has never written one.
Status ReadAdminToken(const std::string& data_dir, std::string* token);

// The status page's session secret (console/session.h): made once, kept.
inline constexpr char kSessionSecretFile[] = "session.key";
// Reads <data dir>/<name> (64 hex characters), making it (mode 0600) with a
// fresh random secret when it does not exist.
Status LoadOrCreateSecret(const std::string& data_dir, const std::string& name,
                          std::string* secret);

}  // namespace dfm
