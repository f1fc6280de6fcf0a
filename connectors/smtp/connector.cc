// The SMTP mailer's descriptor (connectors/connector.h).
#include "connectors/smtp/smtp.h"

namespace dfm {
namespace {

Connector Make() {
  Connector c;
  c.system = "smtp";
  c.name = "Email (SMTP)";
  c.settings = SmtpMailerSettings();
  c.outbound_enabled = [](const SystemSettings& s) { return !s.at("url").empty(); };
  c.client = NewSmtpClient;
  c.credentials = SmtpCredentials;
  // A person is their address there: no contacts, no consent kept; it
  // takes sends only (SyncContext::messages_only).
  c.accepted_fields = {"email"};
  c.holds_contacts = false;
  c.roles = {Role::kMailer};
  c.default_roles = {Role::kMailer};
  return c;
}

}  // namespace

const Connector& SmtpConnector() {
  static const Connector kConnector = Make();
  return kConnector;
}

}  // namespace dfm
