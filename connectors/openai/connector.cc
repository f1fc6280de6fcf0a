// The OpenAI-compatible classifier's descriptor (connectors/connector.h).
#include "connectors/openai/openai.h"

namespace dfm {
namespace {

bool Enabled(const SystemSettings& s) {
  return !s.at("api_base_url").empty() && s.at("send_message_body") == "true";
}

Connector Make() {
  Connector c;
  c.system = "openai";
  c.name = "Reply classifier (OpenAI-compatible)";
  c.settings = OpenAiSettings();
  c.outbound_enabled = Enabled;
  c.client = NewOpenAiClient;
  c.credentials = OpenAiCredentials;
  // No accepted_fields: it holds no contacts, so it is never a sync target.
  c.roles = {Role::kClassifier};
  c.default_roles = {Role::kClassifier};
  c.role_unavailable = [](Role, const SystemSettings& s) -> std::string {
    if (!s.at("api_base_url").empty() && s.at("send_message_body") != "true")
      return "openai.send_message_body is false: no text may be sent to it";
    return "";
  };
  return c;
}

}  // namespace

const Connector& OpenAiConnector() {
  static const Connector kConnector = Make();
  return kConnector;
}

}  // namespace dfm
