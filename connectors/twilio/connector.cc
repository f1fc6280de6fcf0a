// Twilio's descriptor (connectors/connector.h). It takes no pushes.
#include "connectors/common/json_body.h"
#include "connectors/twilio/twilio.h"

namespace dfm {

namespace {

// A form post is an inbound text (it has a Body) or a status callback.
std::string Describe(const WebhookReceived& w) {
  if (!w.body.empty() && w.body.front() == '{') return JsonWebhookKind(w.body);
  const bool status = w.body.find("MessageStatus=") != std::string::npos ||
                      w.body.find("SmsStatus=") != std::string::npos;
  if (status && w.body.find("Body=") == std::string::npos) return "status callback";
  if (w.body.find("Body=") != std::string::npos) return "inbound message";
  return "";
}

Connector Make() {
  Connector c;
  c.system = "twilio";
  c.name = "Twilio";
  c.settings = TwilioWebhookSettings();
  c.webhook_secret_keys = {"auth_token"};
  c.webhook_source = NewTwilioWebhookSource;
  c.map_webhook = MapTwilioWebhook;
  c.describe_webhook = Describe;
  // Only `dfm diagnose` calls its API: the account the auth token is.
  c.settings.push_back({"account_sid", false, "",
                        "the account the auth token belongs to (AC...): `dfm diagnose` checks the "
                        "token with it"});
  c.settings.push_back({"api_base_url", false, "https://api.twilio.com", "Twilio's REST API"});
  c.settings.push_back({"request_timeout_ms", false, "10000", "one request to the API", true});
  c.probe = ProbeTwilio;
  return c;
}

}  // namespace

const Connector& TwilioConnector() {
  static const Connector kConnector = Make();
  return kConnector;
}

}  // namespace dfm
