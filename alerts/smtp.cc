#include "alerts/smtp.h"

#include <curl/curl.h>

#include <cstring>
#include <ctime>

#include "util/crypto.h"

namespace dfm {
namespace {

std::string HeaderValue(std::string v) {
  std::string out;
  for (char c : v)
    if (c != '\r' && c != '\n') out.push_back(c);
  return out;
}

struct Reader {
  const std::string* text;
  size_t at = 0;
};

size_t Read(char* buf, size_t size, size_t n, void* p) {
  auto* r = static_cast<Reader*>(p);
  const size_t left = r->text->size() - r->at;
  const size_t take = std::min(left, size * n);
  std::memcpy(buf, r->text->data() + r->at, take);
  r->at += take;
  return take;
}

std::string Why(CURLcode c) {
  switch (c) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
      return "cannot connect";
    case CURLE_LOGIN_DENIED:
      return "authentication refused";
    case CURLE_USE_SSL_FAILED:
      return "STARTTLS refused";
    case CURLE_PEER_FAILED_VERIFICATION:
      return "certificate not trusted";
    case CURLE_OPERATION_TIMEDOUT:
      return "timed out";
    default:
      return curl_easy_strerror(c);
  }
}

}  // namespace

std::string FormatMail(const SmtpSettings& s, const AlertMail& mail, int64_t now_us,
                       const std::string& message_id) {
  char date[64];
  const std::time_t t = static_cast<std::time_t>(now_us / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  std::string to;
  for (const auto& r : s.to) to += (to.empty() ? "" : ", ") + HeaderValue(r);
  std::string m = "Date: " + std::string(date) + "\r\n" + "From: " + HeaderValue(s.from) + "\r\n" +
                  "To: " + to + "\r\n" + "Subject: " + HeaderValue(mail.subject) + "\r\n" +
                  "Message-ID: <" + message_id + ">\r\n" +
                  "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: 8bit\r\n";
  if (mail.auto_submitted) m += "Auto-Submitted: auto-generated\r\n";
  for (const auto& [name, value] : mail.headers)
    m += HeaderValue(name) + ": " + HeaderValue(value) + "\r\n";
  m += "\r\n";
  for (size_t i = 0; i < mail.body.size(); ++i) {
    if (mail.body[i] == '\n' && (i == 0 || mail.body[i - 1] != '\r')) m += '\r';
    m += mail.body[i];
  }
  return m;
}

Status SendMail(const SmtpSettings& s, const AlertMail& mail, int64_t now_us) {
  SmtpOutcome ignored;
  return SendMailWithOutcome(s, mail, now_us, &ignored);
}

Status SendMailWithOutcome(const SmtpSettings& s, const AlertMail& mail, int64_t now_us,
                           SmtpOutcome* outcome) {
  uint8_t rnd[8];
  RandomBytes(rnd, sizeof rnd);
  const std::string host = s.from.substr(s.from.find('@') == std::string::npos ? s.from.size()
                                                                              : s.from.find('@') + 1);
  const std::string id =
      !mail.message_id.empty()
          ? mail.message_id
          : HexEncode(std::string_view(reinterpret_cast<const char*>(rnd), sizeof rnd)) + "@" +
                (host.empty() ? "dfm" : host);
  const std::string text = FormatMail(s, mail, now_us, id);
  CURL* c = curl_easy_init();
  if (!c) return Status::Unavailable("libcurl could not start");
  curl_slist* rcpt = nullptr;
  for (const auto& r : s.to) rcpt = curl_slist_append(rcpt, ("<" + r + ">").c_str());
  Reader reader{&text};
  const std::string from = "<" + s.from + ">";
  curl_easy_setopt(c, CURLOPT_URL, s.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(c, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, Read);
  curl_easy_setopt(c, CURLOPT_READDATA, &reader);
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(s.timeout_ms));
  if (s.starttls) curl_easy_setopt(c, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
  if (!s.username.empty()) {
    curl_easy_setopt(c, CURLOPT_USERNAME, s.username.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, s.password.c_str());
  }
  if (!s.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, s.ca_file.c_str());
  const CURLcode rc = curl_easy_perform(c);
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  outcome->code = static_cast<int>(code);
  // Only a message whose bytes began to go (DATA) may have been taken.
  outcome->reached = reader.at > 0;
  curl_slist_free_all(rcpt);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK) return Status::Unavailable(Why(rc));
  return Status::OK();
}

}  // namespace dfm
