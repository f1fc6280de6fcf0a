// Genesys Cloud Open Messaging outbound client (docs/vendors/genesys.md).
//
// Token: OAuth client credentials per tenant and region: POST
// {login}/oauth/token, Authorization: Basic base64(client_id:client_secret),
// grant_type=client_credentials -> {access_token, expires_in}. The
// connector actor asks for one before the first push, again
// refresh_margin before it expires, and once after a 401.
//
// message (a person's message, to an agent):
//   POST {api}/api/v2/conversations/messages/{integration_id}/inbound/open/message
//   {channel: {messageId: the message key, from: {id: the number without
//   '+', idType: Phone}, time}, text, content: [attachments by URL]}
//   -> 200 {id, conversationId}. The message key as messageId lets the
//   agent's side tell a retried message from a new one. Media WhatsApp
//   holds by id (no public link) cannot be attached: the text says what
//   came (kind, type, media id) so the agent is told, never left blind.
// message_status (delivered, read, failed of an agent's message):
//   POST .../inbound/open/receipt {id: Genesys's id of the message,
//   channel: {to: {id, idType: Phone}, time}, status: Delivered | Failed
//   (the only two it takes: a read is not told), direction: Outbound,
//   isFinalReceipt, reasons: [{code, message}]} -> 200.
// 401: auth_rejected (the actor refreshes once); 429: Retry-After.
#include <simdjson.h>

#include <memory>

#include "connectors/common/json_body.h"
#include "connectors/genesys/genesys.h"
#include "sync/consent.h"
#include "sync/fact.h"
#include "util/clock.h"
#include "util/crypto.h"
#include "util/json.h"

namespace dfm {
namespace {

std::string Trim(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

// ErrorBody {message, code, status}: "HTTP <status>: <code>: <message>".
std::string ErrorDetail(const HttpResponse& r) {
  if (r.status == 0) return r.error;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string msg;
  std::string_view code, text;
  if (!parser.parse(r.body).get(doc)) {
    if (!doc["code"].get(code)) msg = std::string(code);
    if (!doc["message"].get(text)) msg += (msg.empty() ? "" : ": ") + std::string(text);
  }
  return SafeDetail(r.status, msg);
}

// Open Messaging's reason code for why a message failed.
// The error names the vendor's code anywhere ("131047: Re-engagement
// message", "whatsapp did not send it: HTTP 400: 131047: ...").
std::string ReasonCode(const std::string& error) {
  auto has = [&error](const char* code) { return error.find(code) != std::string::npos; };
  if (has("131047")) return "MessageExpired";
  if (has("131056") || has("130429")) return "RateLimited";
  if (has("131051") || has("131052")) return "UnsupportedMessage";
  // WhatsApp's 130403: the business blocked the person, which this engine
  // takes as their opt-out of the channel (connectors/whatsapp/client.cc).
  if (has("opted out") || has("130403")) return "RecipientOptedOut";
  return "GeneralError";
}

std::string Capitalized(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

std::string WithoutPlus(const std::string& phone) {
  return !phone.empty() && phone[0] == '+' ? phone.substr(1) : phone;
}

// A WhatsApp message's text and media in an Open Messaging inbound
// message's body: each medium with a link as an attachment; one without
// (kept on WhatsApp) named in the text instead.
void AddTextAndMedia(const PushRequest& req, JsonObject* body) {
  std::string text = req.Field("body");
  JsonArray content;
  bool any = false;
  for (const auto& line : SplitChannels(req.Field("media"), '\n')) {
    size_t a = line.find(' '), b = a == std::string::npos ? a : line.find(' ', a + 1);
    std::string kind = line.substr(0, a);
    std::string mime = a == std::string::npos ? "" : line.substr(a + 1, b - a - 1);
    std::string ref = b == std::string::npos ? "" : line.substr(b + 1);
    if (ref.rfind("http", 0) == 0) {
      std::string media_type = kind == "image"   ? "Image"
                               : kind == "video" ? "Video"
                               : kind == "audio" ? "Audio"
                                                 : "File";
      content.Raw(JsonObject()
                      .Str("contentType", "Attachment")
                      .Raw("attachment", JsonObject()
                                             .Str("mediaType", media_type)
                                             .Str("url", ref)
                                             .Str("mime", mime)
                                             .Finish())
                      .Finish());
      any = true;
    } else {
      text += std::string(text.empty() ? "" : "\n") + "[" + kind + " (" + mime +
              ") received on WhatsApp, kept there as " + ref + ": it has no link to pass on]";
    }
  }
  body->Str("text", text);
  if (any) body->Raw("content", content.Finish());
}

class GenesysClient final : public VendorClient {
 public:
  GenesysClient(const SystemSettings& s, HttpClient* http)
      : http_(http),
        base_(GenesysApiBase(s) + "/api/v2/conversations/messages/" + s.at("integration_id") +
              "/inbound/open/"),
        timeout_ms_(std::stoll(s.at("request_timeout_ms"))) {
    token_.method = "POST";
    token_.url = GenesysLoginBase(s) + "/oauth/token";
    token_.timeout_ms = timeout_ms_;
    token_.headers = {
        {"Authorization", "Basic " + Base64Encode(s.at("client_id") + ":" + s.at("client_secret"))},
        {"Content-Type", "application/x-www-form-urlencoded"},
        {"Accept", "application/json"}};
    token_.body = "grant_type=client_credentials";
  }

  bool UsesOAuth() const override { return true; }

  void RefreshToken(const Credentials&, std::function<void(TokenGrant)> done) override {
    http_->Send(HttpRequest(token_), [done = std::move(done)](HttpResponse resp) {
      TokenGrant g;
      g.http_status = resp.status;
      if (resp.status / 100 != 2) {
        std::string err = JsonStringAt(resp.body, nullptr, "error");
        g.detail = resp.status == 0 ? resp.error : SafeDetail(resp.status, err);
        return done(g);
      }
      simdjson::dom::parser parser;
      simdjson::dom::element doc;
      std::string_view token;
      int64_t expires = 0;
      if (parser.parse(resp.body).get(doc) || doc["access_token"].get(token) || token.empty()) {
        g.detail = "token answer has no access_token";
        return done(g);
      }
      if (doc["expires_in"].get(expires)) {}
      g.ok = true;
      g.access_token = std::string(token);
      g.expires_in_s = expires > 0 ? expires : 86400;
      done(g);
    });
  }

  void Push(const PushRequest& req, const Credentials& creds,
            std::function<void(PushResult)> done) override {
    const std::string who = WithoutPlus(req.Field(fields::kPhone));
    auto settle = [&done](int status, std::string detail) {
      PushResult r;
      r.http_status = status;
      r.detail = std::move(detail);
      done(std::move(r));
    };
    if (who.empty()) return settle(422, "Genesys needs the person's number; the contact has none");
    const int64_t now = SystemClock::Instance()->NowMicros();
    JsonObject body;
    std::string url;
    if (req.op == "message") {
      url = base_ + "message?prefetchConversationId=true";
      auto date = req.fields.find("date_us");
      const int64_t at = date == req.fields.end() ? now : std::strtoll(date->second.c_str(), nullptr, 10);
      body.Raw("channel", JsonObject()
                              .Str("messageId", req.message_key)
                              .Raw("from", JsonObject().Str("id", who).Str("idType", "Phone").Finish())
                              .Str("time", FormatIso8601Millis(at > 0 ? at : now))
                              .Finish());
      AddTextAndMedia(req, &body);
    } else if (req.op == "message_status") {
      url = base_ + "receipt";
      const std::string status = Capitalized(req.Field("status"));
      // Its inbound receipt takes Delivered and Failed only (no Read).
      if (status != "Delivered" && status != "Failed")
        return settle(200, "Genesys Open Messaging takes no " + req.Field("status") + " receipt");
      body.Str("id", req.Field("message_id"))
          .Raw("channel", JsonObject()
                              .Raw("to", JsonObject().Str("id", who).Str("idType", "Phone").Finish())
                              .Str("time", FormatIso8601Millis(now))
                              .Finish())
          .Str("status", status)
          .Str("direction", "Outbound")
          .Bool("isFinalReceipt", status != "Delivered");
      if (status == "Failed") {
        const std::string error = req.Field("error").empty() ? "delivery failed" : req.Field("error");
        body.Raw("reasons", JsonArray()
                                .Raw(JsonObject().Str("code", ReasonCode(error)).Str("message", error).Finish())
                                .Finish());
      }
    } else {
      return settle(422, "Genesys Open Messaging has no push op \"" + req.op + "\"");
    }
    HttpRequest r;
    r.method = "POST";
    r.url = url;
    r.timeout_ms = timeout_ms_;
    r.headers = {{"Authorization", "Bearer " + creds.access_token},
                 {"Content-Type", "application/json"},
                 {"Accept", "application/json"}};
    r.body = body.Finish();
    const bool message = req.op == "message";
    http_->Send(std::move(r), [message, done = std::move(done)](HttpResponse resp) {
      PushResult res;
      res.requests = 1;
      res.http_status = resp.status;
      ReadRateHeaders(resp, &res);  // Retry-After in seconds or as a date
      if (resp.status / 100 != 2) {
        res.auth_rejected = resp.status == 401;
        res.detail = ErrorDetail(resp);
        return done(std::move(res));
      }
      res.external_id = JsonStringAt(resp.body, nullptr, "id");
      std::string conversation = JsonStringAt(resp.body, nullptr, "conversationId");
      if (!conversation.empty()) res.answered["conversation_id"] = conversation;
      if (message && res.external_id.empty()) {
        res.http_status = 0;  // unreadable answer: retried (messageId names it)
        res.detail = "answer has no id";
      }
      if (!message && res.external_id.empty()) res.external_id = "receipt";
      done(std::move(res));
    });
  }

 private:


  HttpClient* http_;
  std::string base_;
  int64_t timeout_ms_;
  HttpRequest token_;
};

}  // namespace

std::string GenesysLoginBase(const SystemSettings& s) {
  const std::string& over = s.at("login_base_url");
  return over.empty() ? "https://login." + s.at("region") : Trim(over);
}

std::string GenesysApiBase(const SystemSettings& s) {
  const std::string& over = s.at("api_base_url");
  return over.empty() ? "https://api." + s.at("region") : Trim(over);
}

std::vector<SettingSpec> GenesysApiSettings() {
  std::vector<SettingSpec> settings = {
      {"region", false, "mypurecloud.com",
       "the org's region domain: mypurecloud.com, mypurecloud.ie, usw2.pure.cloud, ..."},
      {"login_base_url", false, "", "OAuth base URL; empty: https://login.<region>"},
      {"api_base_url", false, "", "API base URL; empty: https://api.<region>"},
      {"client_id", false, "", "OAuth client (client credentials grant); empty: nothing sent"},
      {"client_secret", true, "", "its secret"},
      {"channel", false, "whatsapp", "the channel agents' replies go out on (sync/consent.h)"},
  };
  AddDeliverySettings(&settings, {"300", "60000", "0",
                                  "Genesys: 300 requests a minute per client-credentials client"});
  return settings;
}

std::unique_ptr<VendorClient> NewGenesysClient(const SystemSettings& s, HttpClient* http) {
  return std::make_unique<GenesysClient>(s, http);
}

Credentials GenesysCredentials(const SystemSettings& s) {
  return ClientCredentials({GenesysLoginBase(s), s.at("client_id"), s.at("client_secret")});
}

}  // namespace dfm
