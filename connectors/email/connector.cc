// The descriptor of "email" (connectors/connector.h): the one-click
// unsubscribe links of a tenant's mail. It holds no contacts and takes no
// pushes; its opt-outs go to every system that keeps email consent.
#include "connectors/email/email.h"

namespace dfm {
namespace {

Connector Make() {
  Connector c;
  c.system = "email";
  c.name = "Email unsubscribe";
  c.settings = EmailSettings();
  c.webhook_secret_keys = {"unsubscribe_secret"};
  c.webhook_source = NewEmailWebhookSource;
  c.map_webhook = MapEmailWebhook;
  c.describe_webhook = [](const WebhookReceived&) { return std::string("one-click unsubscribe"); };
  c.holds_contacts = false;
  return c;
}

}  // namespace

const Connector& EmailConnector() {
  static const Connector kConnector = Make();
  return kConnector;
}

}  // namespace dfm
