#include "connectors/common/webhook_source.h"

namespace dfm {

// Each system's folder defines its factory.
WebhookSourceFactory GhlWebhookSourceFactory();
WebhookSourceFactory AlowareWebhookSourceFactory();
WebhookSourceFactory VerityWebhookSourceFactory();
WebhookSourceFactory TwilioWebhookSourceFactory();

const std::vector<WebhookSourceFactory>& BuiltinWebhookSources() {
  static const std::vector<WebhookSourceFactory> kSources = {
      GhlWebhookSourceFactory(), AlowareWebhookSourceFactory(), VerityWebhookSourceFactory(),
      TwilioWebhookSourceFactory()};
  return kSources;
}

std::string WebhookSystemNames() {
  std::string out;
  for (const auto& f : BuiltinWebhookSources()) out += (out.empty() ? "" : ", ") + f.system;
  return out;
}

const WebhookSourceFactory* FindWebhookSource(std::string_view system) {
  for (const auto& f : BuiltinWebhookSources())
    if (f.system == system) return &f;
  return nullptr;
}

}  // namespace dfm
