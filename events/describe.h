// Renders events for people and scripts (`dfm log dump`, replay tools).
// Payload bodies are personal data: they are left out unless asked for.
#pragma once

#include <string>

#include "events/event.h"

namespace dfm {

// One JSON object (no newline): the envelope, and for known types the
// decoded payload. `with_body` includes webhook bodies verbatim and the
// JSON payloads of domain events (both hold personal data).
std::string DescribeEventJson(const Event& e, bool with_body);

}  // namespace dfm
