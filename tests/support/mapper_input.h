// Inputs for inbound-mapper tests: settings with a US normalizer, and a
// stored webhook of a system with a body.
#pragma once

#include <string>

#include "connectors/aloware/aloware.h"
#include "connectors/common/mapper.h"
#include "connectors/ghl/ghl.h"
#include "connectors/twilio/twilio.h"
#include "connectors/verity/verity.h"
#include "sync/normalize.h"

namespace dfm::testing {

inline MapperSettings UsSettings() {
  static const Normalizer kUs("US");
  MapperSettings s;
  s.normalizer = &kUs;
  return s;
}

inline WebhookReceived Webhook(const std::string& system, const std::string& body) {
  WebhookReceived w;
  w.system = system;
  w.body = body;
  return w;
}

}  // namespace dfm::testing
