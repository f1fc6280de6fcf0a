// An SMTP server as the mailer (docs/vendors/smtp.md): it delivers the
// emails the engine sends (a campaign's email steps), push op "send" on
// channel "email". It holds no contacts and sends no webhooks: a person's
// unsubscribe comes back through the one-click links (connectors/
// unsubscribe). Internal to this folder and its tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "alerts/smtp.h"
#include "connectors/connector.h"

namespace dfm {

// client.cc
std::vector<SettingSpec> SmtpMailerSettings();
std::unique_ptr<VendorClient> NewSmtpClient(const SystemSettings& s, HttpClient* http);
Credentials SmtpCredentials(const SystemSettings& s);

// How a push ends, from SendMail's status and outcome (pure):
//   taken (2xx)                  -> 200, external_id the Message-ID
//   failed before DATA (no connection, TLS, AUTH refused but 535, a 4yz/5yz
//   to MAIL or RCPT)             -> as below by the reply; no reply: 0,
//                                   not_sent (retried: it cannot go twice)
//   535 (credentials refused)    -> 401, auth_rejected (a dead letter; the
//                                   system's card shows it failing auth)
//   a 4xx reply (try later)      -> 503 (retried)
//   a 5xx reply (refused)        -> 422, permanent (a dead letter)
//   DATA begun, no final reply   -> 0 (the mail may have been taken: never
//                                   sent again, MayApplyTwice)
PushResult SmtpResult(const Status& sent, const SmtpOutcome& outcome,
                      const std::string& message_id);

// The mail of a send push: To the push's email, its subject and body, and
// when it names one the one-click unsubscribe link (RFC 8058:
// List-Unsubscribe and List-Unsubscribe-Post). `message_id` is made from
// the push id, so a retry is the same message.
AlertMail SmtpMail(const PushRequest& req, const std::string& from);
std::string SmtpMessageId(const PushRequest& req, const std::string& from);

const Connector& SmtpConnector();

}  // namespace dfm
