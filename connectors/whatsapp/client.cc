// WhatsApp Cloud API outbound client: the Graph API messages endpoint
// (docs/vendors/whatsapp.md). Every request carries
// Authorization: Bearer <access_token> (a system user's token; it does not
// expire by itself, so a 401 is a dead letter until the operator gives a
// new one).
//
// send:           POST {graph}/{version}/{phone_number_id}/messages
//                 {messaging_product, recipient_type, to, type: text |
//                 image | video | audio | document, ..., biz_opaque_callback_data:
//                 the message key} -> 200 {messages:[{id: wamid}]}. Media go
//                 by reference ({link, caption}); one medium per message:
//                 the first is sent with the text as its caption, more are
//                 refused (422, named in the detail) rather than dropped.
// message_status: "read" -> POST .../messages {messaging_product, status:
//                 "read", message_id} (a read receipt); other statuses
//                 have nothing to tell WhatsApp and settle at once.
// Errors ({"error":{"code","message","error_data":{"details"}}}) are read
// by code, never by text (WhatsAppErrorClass): a throughput or pair limit
// is a 429 with Retry-After (the pair limit 4^attempt s, as Meta advises),
// a service error a 503, 190 a 401, 130403 (the business blocked the
// person) a refusal recorded as their opt-out of whatsapp, the rest dead letters with
// "HTTP <status>: <code>: <message>" (131047: outside the 24-hour window,
// only templates may go).
// Not idempotent: the Graph API takes no idempotency key, so a send whose
// answer was lost (a timeout) and is retried can reach the person twice.
#include <simdjson.h>

#include <cmath>
#include <memory>

#include "connectors/common/json_body.h"
#include "connectors/whatsapp/whatsapp.h"
#include "sync/consent.h"
#include "sync/fact.h"
#include "util/json.h"

namespace dfm {

int WhatsAppErrorClass(int64_t code) {
  switch (code) {
    case 4: case 80007: case 130429: case 131056: case 131048: case 131057: case 613:
      return 0;  // throughput, pair and spam rate limits, upgrade in progress
    case 1: case 2: case 131000: case 131016: case 133004:
      return 1;  // unknown / service unavailable
    case 190: case 0:
      return 3;  // token expired or invalid
    default:
      return 2;
  }
}

namespace {

struct GraphError {
  bool has_code = false;  // a body of Meta's with error.code (0 is a code: AuthException)
  int64_t code = 0;
  std::string message;
};

GraphError ReadError(const HttpResponse& r) {
  GraphError e;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(r.body).get(doc)) return e;
  e.has_code = !doc["error"]["code"].get(e.code);
  std::string_view msg;
  if (!doc["error"]["message"].get(msg)) e.message = std::string(msg);
  return e;
}

// A medium's line, "<kind> <mime> <url>", in its parts.
void SplitMedia(const std::string& line, std::string* kind, std::string* mime, std::string* ref) {
  size_t a = line.find(' ');
  size_t b = a == std::string::npos ? a : line.find(' ', a + 1);
  *kind = line.substr(0, a);
  *mime = a == std::string::npos ? "" : line.substr(a + 1, b - a - 1);
  *ref = b == std::string::npos ? "" : line.substr(b + 1);
}

// A send's body (`body` holds messaging_product): the recipient, then the
// text, or its one medium by link with the text as its caption. Empty, or
// why the send cannot go (a 422's detail).
std::string SendBody(const PushRequest& req, JsonObject* body) {
  std::string phone = req.Field(fields::kPhone);
  if (phone.empty()) return "WhatsApp needs the person's number; the contact has none";
  if (req.channel != channels::kWhatsApp && !req.channel.empty())
    return "WhatsApp sends only on channel whatsapp, not " + req.channel;
  body->Str("recipient_type", "individual").Str("to", phone.substr(phone[0] == '+' ? 1 : 0));
  std::vector<std::string> media = SplitChannels(req.Field("media"), '\n');
  if (media.size() > 1)
    return "WhatsApp takes one medium per message; this one has " + std::to_string(media.size());
  if (media.empty()) {
    body->Str("type", "text")
        .Raw("text",
             JsonObject().Bool("preview_url", false).Str("body", req.Field("body")).Finish());
  } else {
    std::string kind, mime, link;
    SplitMedia(media[0], &kind, &mime, &link);
    if (link.rfind("http", 0) != 0) return "WhatsApp sends media by link; " + kind + " has no URL";
    if (kind == "file") kind = "document";
    if (kind != "image" && kind != "video" && kind != "audio" && kind != "document")
      return "WhatsApp has no media type " + kind;
    JsonObject m;
    m.Str("link", link);
    if (!req.Field("body").empty() && kind != "audio") m.Str("caption", req.Field("body"));
    body->Str("type", kind).Raw(kind, m.Finish());
  }
  if (!req.message_key.empty()) body->Str("biz_opaque_callback_data", req.message_key);
  return "";
}

// A refusal (not 2xx) read by Meta's error code (WhatsAppErrorClass) into
// `res`: rate limits, unavailability, a dead token, a blocked person.
void ReadRefusal(const HttpResponse& resp, bool send, int attempt, PushResult* res) {
  ReadRateHeaders(resp, res);  // Retry-After, in seconds or as a date, on any refusal
  GraphError e = ReadError(resp);
  res->detail = SafeDetail(resp.status, std::to_string(e.code) + ": " + e.message);
  // No code of Meta's (a proxy's or a bare answer): its status says.
  const int error_class = !e.has_code                         ? (resp.status >= 500   ? 1
                                                                 : resp.status == 401 ? 3
                                                                                      : 2)
                          : e.code == 0 && resp.status >= 500 ? 1
                                                              : WhatsAppErrorClass(e.code);
  switch (error_class) {
    case 0: {
      // The pair limit is one person's: only this message waits (a
      // passing refusal, RetryLater), the others go; the throughput
      // and spam limits are the number's (429: the connector waits).
      const bool pair = e.code == 131056;
      res->http_status = pair ? 400 : 429;
      res->transient = pair;
      // Pair limit: 4^attempt seconds, as Meta advises; else a second.
      const double s = pair ? std::pow(4.0, std::min(attempt, 6)) : 1.0;
      if (!res->retry_after_us) res->retry_after_us = static_cast<int64_t>(s * 1e6);
      break;
    }
    case 1:
      res->http_status = 503;
      // Meta said it is unavailable: not taken. Its "unknown error"
      // (1, 131000) or no code (a gateway's 502 or 504) may hide a
      // message it sent.
      res->not_done = e.has_code && (e.code == 2 || e.code == 131016 || e.code == 133004);
      break;
    case 3:
      res->http_status = 401;
      res->auth_rejected = true;
      break;
    default:
      if (resp.status / 100 == 5 || resp.status == 429 || resp.status == 408)
        break;  // as the status says
      if (res->http_status / 100 != 4) res->http_status = 400;
      // The business blocked this person (130403, "do not retry"):
      // a block is an opt-out of the channel, recorded as such.
      res->recipient_opted_out = send && e.code == 130403;
  }
}

// The Graph API's answer to a send (`send`) or a read receipt.
PushResult ReadAnswer(const HttpResponse& resp, bool send, int attempt) {
  PushResult res;
  res.requests = 1;
  res.http_status = resp.status;
  res.not_sent = resp.not_sent;
  if (resp.status == 0) {
    res.detail = resp.error;
    return res;
  }
  if (resp.status / 100 != 2) {
    ReadRefusal(resp, send, attempt, &res);
    return res;
  }
  if (!send) {
    res.external_id = "read";
    return res;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view id;
  if (!parser.parse(resp.body).get(doc) && !doc["messages"].at(0)["id"].get(id))
    res.external_id = std::string(id);
  if (res.external_id.empty()) {
    res.http_status = 0;
    res.detail = "answer has no messages[0].id";
  }
  return res;
}

class WhatsAppClient final : public VendorClient {
 public:
  WhatsAppClient(const SystemSettings& s, HttpClient* http)
      : http_(http),
        url_(ApiBaseUrl(s) + "/" + s.at("api_version") + "/" + s.at("phone_number_id") + "/messages"),
        timeout_ms_(std::stoll(s.at("request_timeout_ms"))) {}

  // The Cloud API's messages route takes no idempotency key
  // (docs/vendors/whatsapp.md): a send repeated after a lost answer may
  // reach the person twice.
  bool MayApplyTwice(const PushRequest& req) const override { return req.op == "send"; }

  void Push(const PushRequest& req, const Credentials& creds,
            std::function<void(PushResult)> done) override {
    JsonObject body;
    body.Str("messaging_product", "whatsapp");
    std::string refused;  // why it cannot go, or what settles it at once
    int status = 422;
    if (req.op == "send") {
      refused = SendBody(req, &body);
    } else if (req.op == "message_status") {
      if (req.Field("status") == "read") {
        body.Str("status", "read").Str("message_id", req.Field("message_id"));
      } else {
        status = 200;
        refused = "nothing to tell WhatsApp";
      }
    } else {
      refused = "WhatsApp has no push op \"" + req.op + "\"";
    }
    if (!refused.empty()) {
      PushResult r;
      r.http_status = status;
      r.detail = std::move(refused);
      return done(std::move(r));
    }
    HttpRequest r;
    r.method = "POST";
    r.url = url_;
    r.timeout_ms = timeout_ms_;
    r.headers = {{"Authorization", "Bearer " + creds.access_token},
                 {"Content-Type", "application/json"}};
    r.body = body.Finish();
    const bool send = req.op == "send";
    const int attempt = req.attempt;
    http_->Send(std::move(r), [send, attempt, done = std::move(done)](HttpResponse resp) {
      done(ReadAnswer(resp, send, attempt));
    });
  }

 private:
  HttpClient* http_;
  std::string url_;
  int64_t timeout_ms_;
};

}  // namespace

std::vector<SettingSpec> WhatsAppApiSettings() {
  std::vector<SettingSpec> settings = {
      {"api_base_url", false, "https://graph.facebook.com", "Graph API base URL"},
      {"api_version", false, "v21.0", "Graph API version in the path"},
      {"access_token", true, "", "system user access token (Authorization: Bearer); empty: no sends"},
      {"pair_burst", false, "10", "messages one person may get at once before pacing (the pair rate limit)", true},
      {"pair_interval_ms", false, "6000", "then one message to the same person per this many ms", true},
  };
  AddDeliverySettings(&settings, {"80", "1000", "0", "WhatsApp: 80 messages a second per business number"});
  return settings;
}

std::unique_ptr<VendorClient> NewWhatsAppClient(const SystemSettings& s, HttpClient* http) {
  return std::make_unique<WhatsAppClient>(s, http);
}

Credentials WhatsAppCredentials(const SystemSettings& s) {
  Credentials c;
  c.access_token = s.at("access_token");
  return c;
}

}  // namespace dfm
