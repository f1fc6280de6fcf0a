// Whether a NATS server's certificate verifies against a CA store, asked
// the way a client meets it (docs/scale-out.md, "Securing the NATS link"):
// the server's INFO line in the clear, then the TLS handshake. For
// `dfm config check`: a tls:// URL with no nats_ca_file is refused when the
// system's store does not verify the server.
#pragma once

#include <string>

#include "util/status.h"

namespace dfm {

// `url` is tls://host:port (or nats://). OK: the certificate verifies
// against `ca_file` for `host`; InvalidArgument saying why it does not;
// Unavailable when the server could not be reached or spoke no NATS
// (nothing was checked).
Status ProbeNatsTls(const std::string& url, const std::string& ca_file, int timeout_ms);

}  // namespace dfm
