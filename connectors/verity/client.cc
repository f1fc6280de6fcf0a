// Verity outbound client (docs/verity.md, "API DF-Middleware calls").
// Every request carries Authorization: Bearer <api_key>.
//
// send:     POST /api/integrations/df-middleware/send-message
//           {to, body, from?, correlationId = message key}, the route the
//           Verity platform exposes to DF-Middleware; 200 {success: true,
//           messageId, chatId, status}. 409 {"success": false, "error":
//           "recipient opted out"} fails for good and is the carrier's
//           opt-out (PushResult::recipient_opted_out). It takes text only:
//           a send with media fails for good, saying so.
// upsert:   POST /v1/contacts {phone, email, firstName, lastName, externalRef}
//           (an upsert by phone: a retried write cannot duplicate);
// opt_out / opt_in / mark_dnc: the same with smsOptOut true / false. Only
//           when `contacts_api` says the deployment's Verity offers that API
//           (the descriptor's contacts_enabled: otherwise the engine asks
//           for none of them, and the client refuses them).
// A contact without a phone cannot be written to Verity (texts need one):
// the push fails for good with a reason.
#include <simdjson.h>

#include <memory>

#include "connectors/common/json_body.h"
#include "connectors/verity/verity.h"
#include "sync/fact.h"
#include "util/json.h"

namespace dfm {
namespace {

// Verity's error code ({"error":{"code"}}), or empty.
std::string ErrorCode(const HttpResponse& r) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view code;
  if (parser.parse(r.body).get(doc) || doc["error"]["code"].get(code)) return {};
  return std::string(code);
}

// Whether the answer is in Verity's own error shape ({"success": false,
// "error": ...} or {"error": {...}}), not a gateway's.
bool HasErrorBody(const HttpResponse& r) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::element error;
  return !parser.parse(r.body).get(doc) && !doc["error"].get(error);
}

// "HTTP <status>: <code>: <message>" from Verity's {"error":{"code","message"}}
// (contacts) or {"success": false, "error": "<message>"} (sends).
std::string ErrorDetail(const HttpResponse& r) {
  if (r.status == 0) return r.error;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string msg;
  std::string_view code, text;
  if (!parser.parse(r.body).get(doc)) {
    if (!doc["error"].get(text)) return SafeDetail(r.status, std::string(text));
    if (!doc["error"]["code"].get(code)) msg = std::string(code);
    if (!doc["error"]["message"].get(text)) msg += (msg.empty() ? "" : ": ") + std::string(text);
  }
  return SafeDetail(r.status, msg);
}

// A send's answer {"success", "messageId", "chatId", "status"} into `res`.
void ReadSendAnswer(const HttpResponse& resp, PushResult* res) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  bool success = false;
  std::string_view id;
  if (parser.parse(resp.body).get(doc) || doc["success"].get(success)) {
    res->http_status = 0;  // unreadable answer: retried
    res->detail = "answer is not {\"success\": ...}";
    return;
  }
  if (!success) {
    res->http_status = 422;  // refused in a 2xx: final
    res->detail = ErrorDetail(resp);
    return;
  }
  if (doc["messageId"].get(id) || id.empty()) {
    res->http_status = 0;
    res->detail = "answer has no messageId";
    return;
  }
  res->external_id = std::string(id);
}

class VerityClient final : public VendorClient {
 public:
  VerityClient(const SystemSettings& s, HttpClient* http)
      : http_(http),
        base_(ApiBaseUrl(s)),
        from_(s.at("from_number")),
        contacts_api_(s.at("contacts_api") == "true"),
        timeout_ms_(std::stoll(s.at("request_timeout_ms"))) {}

  // Its send-message route promises no idempotency (docs/verity.md): a
  // send repeated after a lost answer may text twice.
  bool MayApplyTwice(const PushRequest& req) const override { return req.op == "send"; }

  void Push(const PushRequest& req, const Credentials& creds,
            std::function<void(PushResult)> done) override {
    std::string phone = req.Field(fields::kPhone);
    if (phone.empty()) {
      PushResult r;
      r.http_status = 422;  // settled without a request
      r.detail = "Verity needs a phone number; the contact has none";
      return done(std::move(r));
    }
    HttpRequest r;
    r.method = "POST";
    r.timeout_ms = timeout_ms_;
    r.headers = {{"Authorization", "Bearer " + creds.access_token},
                 {"Accept", "application/json"},
                 {"Content-Type", "application/json"}};
    JsonObject body;
    const char* obj = "contact";
    if (req.op == "send") {
      if (!req.Field("media").empty()) {
        PushResult res;
        res.http_status = 422;
        res.detail = "Verity's send-message takes text only: media not sent";
        return done(std::move(res));
      }
      obj = nullptr;
      r.url = base_ + "/api/integrations/df-middleware/send-message";
      body.Str("to", phone).Str("body", req.Field("body"));
      if (!from_.empty()) body.Str("from", from_);
      body.Str("correlationId", req.message_key);
    } else if (!contacts_api_ && (req.op == "upsert" || req.op == "opt_out" ||
                                  req.op == "opt_in" || req.op == "mark_dnc")) {
      PushResult res;
      res.http_status = 422;
      res.detail = "this Verity offers no contacts API (verity.contacts_api is off)";
      return done(std::move(res));
    } else if (req.op == "upsert" || req.op == "opt_out" || req.op == "opt_in" ||
               req.op == "mark_dnc") {
      r.url = base_ + "/v1/contacts";
      body.Str("phone", phone);
      if (req.op == "upsert") {
        for (const auto& [ours, theirs] : {std::pair{fields::kEmail, "email"},
                                           std::pair{fields::kFirstName, "firstName"},
                                           std::pair{fields::kLastName, "lastName"}}) {
          auto it = req.fields.find(ours);
          if (it != req.fields.end()) body.Str(theirs, it->second);
        }
        body.Str("externalRef", req.contact_id);
      } else {
        body.Bool("smsOptOut", req.op != "opt_in");
      }
    } else {
      PushResult res;
      res.http_status = 422;
      res.detail = "Verity has no push op \"" + req.op + "\"";
      return done(std::move(res));
    }
    r.body = body.Finish();
    http_->Send(std::move(r), [obj, done = std::move(done)](HttpResponse resp) {
      PushResult res;
      res.requests = 1;
      res.http_status = resp.status;
      res.not_sent = resp.not_sent;
      ReadRateHeaders(resp, &res);
      if (resp.status / 100 != 2) {
        res.auth_rejected = resp.status == 401;
        res.detail = ErrorDetail(resp);
        // Verity's own 5xx (its error body) says the send was not done
        // (docs/verity.md); a gateway's bare one does not.
        res.not_done = resp.status / 100 == 5 && HasErrorBody(resp);
        res.recipient_opted_out = obj ? resp.status == 422 && ErrorCode(resp) == "recipient_opted_out"
                                      : resp.status == 409;
        return done(std::move(res));
      }
      if (!obj) {
        ReadSendAnswer(resp, &res);
        return done(std::move(res));
      }
      res.external_id = JsonStringAt(resp.body, obj, "id");
      if (res.external_id.empty()) {
        res.http_status = 0;  // unreadable answer: retry (both writes are idempotent)
        res.detail = std::string("answer has no ") + obj + ".id";
      }
      done(std::move(res));
    });
  }

 private:
  HttpClient* http_;
  std::string base_;
  std::string from_;
  bool contacts_api_;
  int64_t timeout_ms_;
};

}  // namespace

std::vector<SettingSpec> VerityApiSettings() {
  std::vector<SettingSpec> settings = {
      {"api_base_url", false, "", "Verity API base URL (docs/verity.md); empty: no pushes"},
      {"api_key", true, "", "Verity API key (Authorization: Bearer)"},
      {"from_number", false, "", "the number texts go from (E.164); empty: Verity's default"},
      {"contacts_api", false, "false",
       "true when this deployment's Verity offers /v1/contacts: contacts and opt-outs are then "
       "written to it; false: it only sends"},
  };
  AddDeliverySettings(&settings, {"50", "1000", "0", "Verity states no limit: 50 a second is polite"});
  return settings;
}

std::unique_ptr<VendorClient> NewVerityClient(const SystemSettings& s, HttpClient* http) {
  return std::make_unique<VerityClient>(s, http);
}

Credentials VerityCredentials(const SystemSettings& s) {
  Credentials c;
  c.access_token = s.at("api_key");
  return c;
}

}  // namespace dfm
