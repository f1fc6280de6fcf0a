// The WhatsApp-Genesys bridge's sync context, as a tenant with roles
// conversations = genesys and sender = whatsapp gets it (config/
// sync_context.cc): both hold only messages; WhatsApp takes receipts.
#pragma once

#include "sync/contact_model.h"

namespace dfm::testing {

inline SyncContext BridgeContext() {
  SyncContext ctx;
  ctx.conversations = "genesys";
  ctx.sender = "whatsapp";
  ctx.targets["genesys"] = {"phone"};
  ctx.targets["whatsapp"] = {"phone"};
  ctx.channels["genesys"] = {};
  ctx.channels["whatsapp"] = {};
  ctx.messages_only = {"genesys", "whatsapp"};
  ctx.takes_receipts = {"whatsapp"};
  ctx.now_us = 1'000'000'000;
  return ctx;
}

}  // namespace dfm::testing
