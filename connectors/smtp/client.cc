// The mailer's client (docs/vendors/smtp.md): one SMTP transaction per send
// push, each on a worker thread of its own (SendMail blocks), over the
// settings' server with STARTTLS and AUTH as the alerts' mail
// (alerts/smtp.h).
//
// A push handed over is begun at once: a worker is started whenever every
// one is busy. The connector hands over at most `concurrency` pushes at a
// time, and it can withdraw only a push it still holds (an opt-out refuses
// them); one waiting here behind a mail being sent could not be withdrawn,
// and would go to a person who had just opted out.
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "connectors/smtp/smtp.h"
#include "util/clock.h"
#include "util/crypto.h"

namespace dfm {
namespace {

class SmtpClient final : public VendorClient {
 public:
  explicit SmtpClient(const SystemSettings& s) {
    settings_.url = s.at("url");
    settings_.starttls = s.at("starttls") != "false";
    settings_.username = s.at("username");
    settings_.from = s.at("from");
    settings_.ca_file = s.at("ca_file");
    settings_.timeout_ms = std::stoll(s.at("request_timeout_ms"));
  }

  // Jobs not begun are answered not_sent (each `done` runs once); those
  // being sent end first.
  ~SmtpClient() override {
    std::deque<Job> left;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      left.swap(jobs_);
    }
    cv_.notify_all();
    for (std::thread& w : workers_) w.join();
    for (Job& job : left) {
      PushResult r;
      r.not_sent = true;
      r.detail = "the mailer stopped before sending it";
      job.done(std::move(r));
    }
  }

  void Push(const PushRequest& req, const Credentials& creds,
            std::function<void(PushResult)> done) override {
    PushResult r;
    if (req.op != "send" || req.channel != "email") {
      r.http_status = 422;
      r.detail = "the mailer sends emails only (op \"send\", channel \"email\")";
      return done(std::move(r));
    }
    if (req.Field("email").empty()) {
      r.http_status = 422;
      r.detail = "the person has no email address";
      return done(std::move(r));
    }
    Job job{req, creds.access_token, std::move(done)};
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(std::move(job));
      if (jobs_.size() > idle_) workers_.emplace_back([this] { Run(); });
    }
    cv_.notify_one();
  }

  // A mail may be taken by a server that never answered the end of DATA.
  bool MayApplyTwice(const PushRequest&) const override { return true; }

 private:
  struct Job {
    PushRequest req;
    std::string password;
    std::function<void(PushResult)> done;
  };

  void Run() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        idle_++;
        cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        idle_--;
        if (stopping_) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      SmtpSettings s = settings_;
      s.password = job.password;
      s.to = {job.req.Field("email")};
      const AlertMail mail = SmtpMail(job.req, s.from);
      SmtpOutcome outcome;
      const Status sent =
          SendMailWithOutcome(s, mail, SystemClock::Instance()->NowMicros(), &outcome);
      PushResult r = SmtpResult(sent, outcome, mail.message_id);
      r.requests = 1;
      job.done(std::move(r));
    }
  }

  SmtpSettings settings_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;  // handed over, not yet taken by a worker
  size_t idle_ = 0;       // workers waiting for a job
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace

PushResult SmtpResult(const Status& sent, const SmtpOutcome& outcome,
                      const std::string& message_id) {
  PushResult r;
  if (sent.ok()) {
    r.http_status = 200;
    r.external_id = message_id;
    return r;
  }
  r.detail = "SMTP " + (outcome.code ? std::to_string(outcome.code) + ": " : "") + sent.message();
  if (outcome.code == 535) {
    r.http_status = 401;  // the credentials were refused (RFC 4954)
    r.auth_rejected = true;
  } else if (outcome.code >= 400 && outcome.code < 500) {
    r.http_status = 503;  // "try again later": the server did not take it (RFC 5321 4.2.1)
    r.not_done = true;
  } else if (outcome.code >= 500) {
    r.http_status = 422;
    r.permanent = true;
  } else if (!outcome.reached) {
    r.not_sent = true;  // status 0: retried, it cannot have gone
  }
  return r;
}

std::string SmtpMessageId(const PushRequest& req, const std::string& from) {
  const size_t at = from.find('@');
  const std::string host = at == std::string::npos ? "dfm" : from.substr(at + 1);
  return HexEncode(Sha256(req.push_id)).substr(0, 32) + "@" + host;
}

AlertMail SmtpMail(const PushRequest& req, const std::string& from) {
  AlertMail m;
  m.subject = req.Field("subject");
  m.body = req.Field("body");
  m.message_id = SmtpMessageId(req, from);
  m.auto_submitted = false;  // a message to a person, not an automatic reply
  const std::string link = req.Field("list_unsubscribe");
  if (!link.empty())
    m.headers = {{"List-Unsubscribe", "<" + link + ">"},
                 {"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"}};
  return m;
}

std::vector<SettingSpec> SmtpMailerSettings() {
  std::vector<SettingSpec> s = {
      {"url", false, "", "`smtp://host:587` (STARTTLS) or `smtps://host:465`; empty: no mailer"},
      {"starttls", false, "true", "STARTTLS on `smtp://`; a password is never sent without TLS"},
      {"username", false, "", "the SMTP user"},
      {"password", true, "", "that user's password"},
      {"from", false, "", "the address the emails come from"},
      {"ca_file", false, "", "CA bundle for the server; empty: the system's"},
  };
  AddDeliverySettings(&s, {"10", "1000", "0", "a polite default for one relay"});
  for (auto& spec : s) {
    if (spec.key == "request_timeout_ms") spec.default_value = "20000";
    // One mail at a time by default: a crash leaves at most `concurrency`
    // mails whose fate is unknown (each push in flight is being sent).
    if (spec.key == "concurrency") spec.default_value = "1";
  }
  return s;
}

std::unique_ptr<VendorClient> NewSmtpClient(const SystemSettings& s, HttpClient*) {
  return std::make_unique<SmtpClient>(s);
}

Credentials SmtpCredentials(const SystemSettings& s) {
  Credentials c;
  c.access_token = s.at("password");
  return c;
}

}  // namespace dfm
