// The SMTP mailer (connectors/smtp, docs/vendors/smtp.md): how a push ends
// from what the server answered, and the mail it sends.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "connectors/smtp/smtp.h"
#include "tests/support/holding_server.h"

namespace dfm {
namespace {

TEST(SmtpMailer, EndsAPushAsTheServerAnswered) {
  auto end = [](Status s, int code, bool reached) {
    SmtpOutcome o;
    o.code = code;
    o.reached = reached;
    const PushResult r = SmtpResult(s, o, "id@x");
    return std::to_string(r.http_status) + (r.not_sent ? " not_sent" : "") +
           (r.permanent ? " permanent" : "") + (r.auth_rejected ? " auth" : "") +
           (r.not_done ? " not_done" : "") + (r.external_id.empty() ? "" : " " + r.external_id);
  };
  const Status no = Status::Unavailable("x");
  EXPECT_EQ(end(Status::OK(), 250, true), "200 id@x");
  EXPECT_EQ(end(no, 0, false), "0 not_sent") << "never connected: it cannot have gone";
  EXPECT_EQ(end(no, 451, true), "503 not_done") << "try again later: the server did not take it";
  EXPECT_EQ(end(no, 450, false), "503 not_done") << "refused before DATA: it cannot have gone";
  EXPECT_EQ(end(no, 535, true), "401 auth");
  EXPECT_EQ(end(no, 550, true), "422 permanent");
  EXPECT_EQ(end(no, 0, true), "0") << "connected, no final answer: it may have gone";
}

TEST(SmtpMailer, TheMailCarriesTheOneClickHeadersAndOneIdPerPush) {
  PushRequest req;
  req.push_id = "c1:smtp:send:campaign:spring/1/c1";
  req.op = "send";
  req.channel = "email";
  req.fields = {{"email", "ann@example.com"},
                {"subject", "Spring"},
                {"body", "Hello Ann\nBye"},
                {"list_unsubscribe", "https://dfm.example.com/webhooks/unsubscribe?u=t"}};
  const AlertMail m = SmtpMail(req, "news@acme.example");
  EXPECT_EQ(m.message_id, SmtpMail(req, "news@acme.example").message_id) << "a retry: the same";
  EXPECT_NE(m.message_id.find("@acme.example"), std::string::npos) << m.message_id;
  SmtpSettings s;
  s.from = "news@acme.example";
  s.to = {"ann@example.com"};
  const std::string text = FormatMail(s, m, 0, m.message_id);
  EXPECT_NE(text.find("List-Unsubscribe: <https://dfm.example.com/webhooks/unsubscribe?u=t>\r\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"), std::string::npos);
  EXPECT_NE(text.find("Subject: Spring\r\n"), std::string::npos);
  EXPECT_EQ(text.find("Auto-Submitted"), std::string::npos) << "a message to a person";
  EXPECT_NE(text.find("\r\n\r\nHello Ann\r\nBye"), std::string::npos);
  req.fields.erase("list_unsubscribe");
  EXPECT_TRUE(SmtpMail(req, "news@acme.example").headers.empty());
}

TEST(SmtpMailer, EveryPushHandedOverIsBegunAtOnce) {
  // The connector can withdraw a push it holds (an opt-out refuses it),
  // never one handed over: with concurrency 3, three mails are on the
  // wire at once, not one sent while two wait inside the client.
  testing::HoldingServer server("220 holding.test ESMTP\r\n");
  SystemSettings s;
  for (const auto& spec : SmtpMailerSettings()) s[spec.key] = spec.default_value;
  s["url"] = "smtp://127.0.0.1:" + std::to_string(server.port());
  s["starttls"] = "false";
  s["from"] = "news@acme.example";
  s["request_timeout_ms"] = "15000";
  auto client = NewSmtpClient(s, nullptr);
  std::atomic<int> ended{0}, not_sent{0};
  for (int i = 0; i < 3; ++i) {
    PushRequest req;
    req.push_id = "c" + std::to_string(i) + ":smtp:send:campaign:spring/1/c" + std::to_string(i);
    req.op = "send";
    req.channel = "email";
    req.fields = {{"email", "p" + std::to_string(i) + "@example.com"}, {"subject", "S"}};
    client->Push(req, SmtpCredentials(s), [&](PushResult r) {
      if (r.not_sent) not_sent++;
      ended++;
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (server.held() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(server.held(), 3) << "each push handed over has its own connection";
  EXPECT_EQ(ended.load(), 0);
  server.Close();  // before EHLO was answered: none of them can have gone
  const auto end_by = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (ended.load() < 3 && std::chrono::steady_clock::now() < end_by)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(ended.load(), 3);
  EXPECT_EQ(not_sent.load(), 3) << "ended before DATA: retried, not dead-lettered";
  client.reset();
}

}  // namespace
}  // namespace dfm
