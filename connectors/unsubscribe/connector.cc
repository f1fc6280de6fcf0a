// The descriptor of "unsubscribe" (connectors/connector.h): the one-click
// unsubscribe links of a tenant's mail. It holds no contacts and takes no
// pushes; its opt-outs go to every system that keeps email consent.
#include "connectors/unsubscribe/unsubscribe.h"

namespace dfm {
namespace {

Connector Make() {
  Connector c;
  c.system = "unsubscribe";
  c.name = "One-click unsubscribe";
  c.settings = UnsubscribeSettings();
  c.webhook_secret_keys = {"secret"};
  c.webhook_source = NewUnsubscribeWebhookSource;
  c.map_webhook = MapUnsubscribeWebhook;
  c.describe_webhook = [](const WebhookReceived&) { return std::string("one-click unsubscribe"); };
  c.make_link = [](const SystemSettings& s, std::string_view address, std::string_view campaign,
                   int64_t now_s, std::string* token) {
    const std::string& secret = s.at("secret");
    if (secret.size() < 32) return Status::InvalidArgument("unsubscribe.secret is not set");
    return MintUnsubscribeToken(secret, {std::string(address), std::string(campaign), now_s}, token);
  };
  c.holds_contacts = false;
  return c;
}

}  // namespace

const Connector& UnsubscribeConnector() {
  static const Connector kConnector = Make();
  return kConnector;
}

}  // namespace dfm
