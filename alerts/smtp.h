// Sending one mail over SMTP with libcurl (docs/alerts.md): STARTTLS on
// smtp:// (required unless `starttls` is false and no password is sent),
// implicit TLS on smtps://, AUTH with the username and password. Blocking:
// call it from the caller's own thread (the alerter's; connectors/smtp's
// worker). Never logs the password. The engine's one SMTP client.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "alerts/notifier.h"
#include "util/status.h"

namespace dfm {

struct SmtpSettings {
  std::string url;  // smtp://host:587 or smtps://host:465
  bool starttls = true;
  std::string username, password;
  std::string from;             // the envelope and From: address
  std::vector<std::string> to;  // the recipients
  std::string ca_file;          // PEM bundle to trust instead of the system's; empty: the system's
  int64_t timeout_ms = 20000;
};

// The RFC 5322 message (CRLF line ends; CR and LF removed from header
// values).
std::string FormatMail(const SmtpSettings& s, const AlertMail& mail, int64_t now_us,
                       const std::string& message_id);

// How a send ended, beyond its Status.
struct SmtpOutcome {
  int code = 0;          // the server's last reply code (250, 450, 550...); 0: none
  bool reached = false;  // the message began to go (DATA): it may have been taken
};

// OK once the server took the mail for every recipient; else Unavailable
// saying what went wrong ("cannot connect", "authentication refused",
// "STARTTLS refused", "certificate not trusted", libcurl's words otherwise).
Status SendMail(const SmtpSettings& s, const AlertMail& mail, int64_t now_us);
// The same, saying how it ended (`outcome` not null).
Status SendMailWithOutcome(const SmtpSettings& s, const AlertMail& mail, int64_t now_us,
                           SmtpOutcome* outcome);

}  // namespace dfm
