// The one-click unsubscribe endpoint (RFC 8058), as the webhooks of the
// system "unsubscribe": `POST {public base}[/t/{tenant}]/webhooks/unsubscribe?u=<token>`
// with the body `List-Unsubscribe=One-Click` (form-urlencoded or
// multipart/form-data), no login and no cookie.
//
// Authenticity: the token (unsubscribe.h) was made with this tenant's
// `unsubscribe_secret`, so it names one address, chosen by whoever holds
// the secret; a forged or altered token, or another tenant's, is refused
// (401). Provider event id: "unsubscribe:<token id>": a second POST of the
// same link is a duplicate, answered 2xx and not recorded again. Source
// time: when it was posted. A GET shows a page that posts the same form (a
// link in the mail's body), and records nothing.
#include "connectors/unsubscribe/unsubscribe.h"

#include "util/strings.h"

namespace dfm {
namespace {

class UnsubscribeSource : public WebhookSource {
 public:
  UnsubscribeSource(std::string secret, int64_t link_days) : secret_(std::move(secret)), days_(link_days) {}

  bool AcceptsContentType(std::string_view mt) const override {
    return mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data";
  }

  // The token travels in the URL; the event records that URL for the mapper.
  bool SignsUrl() const override { return true; }
  // But it names no tenant: a link of one tenant's would open another's
  // that shared the secret.
  bool UrlBindsTenant() const override { return false; }

  Status Verify(const InboundRequest& req, std::string* scheme) const override {
    UnsubscribeLink link;
    Status s = Read(req, &link);
    if (!s.ok()) return s;
    *scheme = "unsubscribe-token";
    return Status::OK();
  }

  Status Identify(const InboundRequest& req, WebhookIdentity* id) const override {
    // RFC 8058 §3.1: the POST's body is the key/value "List-Unsubscribe=One-Click".
    bool one_click = false;
    if (req.content_type == "application/x-www-form-urlencoded") {
      auto form = ParseForm(req.body);
      if (form)
        for (const auto& [k, v] : *form) one_click |= k == "List-Unsubscribe" && v == "One-Click";
    } else {
      one_click = req.body.find("name=\"List-Unsubscribe\"") != std::string_view::npos &&
                  req.body.find("One-Click") != std::string_view::npos;
    }
    if (!one_click) return Status::InvalidArgument("body is not List-Unsubscribe=One-Click (RFC 8058)");
    id->provider_event_id = "unsubscribe:" + UnsubscribeTokenId(TokenInTarget(req.target));
    id->id_source = "sha256(query.u)";
    id->source_time_us = req.now_us;
    return Status::OK();
  }

  std::optional<HandshakeAnswer> Handshake(const InboundRequest& req) const override {
    UnsubscribeLink link;
    Status s = Read(req, &link);
    HandshakeAnswer a;
    a.content_type = "text/html; charset=utf-8";
    // No script, no outside resource, no framing (a button a page of
    // someone else's could overlay), and the link's token never leaves as
    // a Referer.
    a.headers = {{"Content-Security-Policy",
                  "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                  "frame-ancestors 'none'; base-uri 'none'"},
                 {"Referrer-Policy", "no-referrer"},
                 {"X-Frame-Options", "DENY"}};
    if (!s.ok()) {
      a.status = 400;
      a.body = Page("This unsubscribe link is not valid", "<p>" + HtmlEscape(s.message()) + ".</p>");
      return a;
    }
    a.body = Page("Unsubscribe",
                  "<p>Stop all email to <b>" + HtmlEscape(MaskAddress(link.address)) +
                      "</b>?</p><form method=\"post\" enctype=\"application/x-www-form-urlencoded\">"
                      "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
                      "<button type=\"submit\">Unsubscribe</button></form>");
    return a;
  }

 private:
  Status Read(const InboundRequest& req, UnsubscribeLink* link) const {
    const std::string token = TokenInTarget(req.target);
    if (token.empty()) return Status::Unauthenticated("missing unsubscribe token (?u=)");
    Status s = ReadUnsubscribeToken(secret_, token, link);
    if (!s.ok()) return s;
    if (days_ > 0 && req.now_us / 1000000 > link->issued_s + days_ * 86400)
      return Status::Unauthenticated("this unsubscribe link has expired");
    return Status::OK();
  }

  static std::string Page(const std::string& title, const std::string& body) {
    return "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width\"><title>" + title +
           "</title></head><body><h1>" + title + "</h1>" + body + "</body></html>";
  }

  std::string secret_;
  int64_t days_;
};

}  // namespace

std::vector<SettingSpec> UnsubscribeSettings() {
  return {
      {"secret", true, "",
       "the key of this tenant's unsubscribe links (at least 32 characters; `dfm unsubscribe-link` "
       "makes links with it)"},
      {"link_days", false, "0",
       "days an unsubscribe link keeps working after it was made; 0: always (CAN-SPAM asks for "
       "at least 30)",
       true},
  };
}

std::unique_ptr<WebhookSource> NewUnsubscribeWebhookSource(const SystemSettings& s,
                                                     std::vector<SettingProblem>* problems) {
  const std::string& secret = s.at("secret");
  if (secret.size() < 32) {
    problems->push_back({"secret", secret.empty() ? "required" : "must be at least 32 characters"});
    return nullptr;
  }
  const int64_t days = std::strtoll(s.at("link_days").c_str(), nullptr, 10);
  return std::make_unique<UnsubscribeSource>(secret, days < 0 ? 0 : days);
}

}  // namespace dfm
