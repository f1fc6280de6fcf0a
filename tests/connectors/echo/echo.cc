#include "tests/connectors/echo/echo.h"

#include "connectors/common/json_body.h"
#include "util/crypto.h"

namespace dfm {

namespace {

class EchoSource : public WebhookSource {
 public:
  explicit EchoSource(std::string token) : token_(std::move(token)) {}
  bool AcceptsContentType(std::string_view mt) const override { return mt == "application/json"; }
  Status Verify(const InboundRequest& req, std::string* scheme) const override {
    if (!req.HasHeader("x-echo-token") || !ConstantTimeEquals(req.Header("x-echo-token"), token_))
      return Status::Unauthenticated("X-Echo-Token does not match");
    *scheme = "token";
    return Status::OK();
  }
  Status Identify(const InboundRequest& req, WebhookIdentity* id) const override {
    simdjson::dom::object obj;
    Status s = ParseJsonObject(req.body, &obj);
    if (!s.ok()) return s;
    bool wrong = false;
    auto rid = StringOrNumberField(obj, "id", &wrong);
    auto version = StringOrNumberField(obj, "version", &wrong);
    if (!rid || !version) return Status::InvalidArgument("missing field id or version");
    id->provider_event_id = *rid + ":" + *version;
    id->id_source = "body.id:body.version";
    return Status::OK();
  }

 private:
  std::string token_;
};

Status MapEcho(const WebhookReceived& w, const MapperSettings& s, std::vector<ContactFact>* out) {
  simdjson::dom::object obj;
  Status st = ParseJsonObject(w.body, &obj);
  if (!st.ok()) return Status::InvalidArgument(st.message());
  ContactFact f;
  f.system = "echo";
  bool wrong = false;
  f.external_id = StringOrNumberField(obj, "id", &wrong).value_or("");
  static constexpr JsonFieldMap kPlain[] = {{"first_name", fields::kFirstName}};
  st = ReadContactFields(obj, kPlain, 1, "email", "phone", s, &f);
  if (!st.ok()) return st;
  f.source_time_us = 1000000LL * std::stoll(StringOrNumberField(obj, "version", &wrong).value_or("0"));
  out->push_back(std::move(f));
  return Status::OK();
}

// Its API: whatever it is asked, it keeps, and answers with its id.
class EchoClient : public VendorClient {
 public:
  void Push(const PushRequest& req, const Credentials&, std::function<void(PushResult)> done) override {
    {
      std::lock_guard<std::mutex> lk(EchoSink().mu);
      EchoSink().got.push_back(req);
    }
    PushResult r;
    r.http_status = 200;
    r.external_id = req.external_id.empty() ? "echo-" + req.contact_id : req.external_id;
    r.requests = 1;
    done(std::move(r));
  }
};

Connector Make() {
  Connector c;
  c.system = "echo";
  c.name = "Echo";
  c.settings = {{"webhook_token", true, "", "X-Echo-Token"},
                {"api_base_url", false, "", "where its API is; empty: no pushes"}};
  AddDeliverySettings(&c.settings, {"10", "1000", "0", "a test's"});
  c.webhook_secret_keys = {"webhook_token"};
  c.webhook_source = [](const SystemSettings& s, std::vector<SettingProblem>* problems) {
    if (s.at("webhook_token").empty()) {
      problems->push_back({"webhook_token", "required"});
      return std::unique_ptr<WebhookSource>();
    }
    return std::unique_ptr<WebhookSource>(new EchoSource(s.at("webhook_token")));
  };
  c.map_webhook = MapEcho;
  c.describe_webhook = [](const WebhookReceived&) { return std::string("contact"); };
  c.outbound_enabled = HasApiBaseUrl;
  c.client = [](const SystemSettings&, HttpClient*) -> std::unique_ptr<VendorClient> {
    return std::make_unique<EchoClient>();
  };
  c.credentials = [](const SystemSettings&) { return Credentials(); };
  c.accepted_fields = {fields::kFirstName, fields::kPhone};
  c.key_field = fields::kPhone;
  return c;
}

// Its one registry line, from its own folder: before anything reads the
// registry, when the test binary starts.
[[maybe_unused]] const bool kRegistered = (RegisterConnector(&EchoConnector()), true);

}  // namespace

EchoPushes& EchoSink() {
  static EchoPushes sink;
  return sink;
}

const Connector& EchoConnector() {
  static const Connector kConnector = Make();
  return kConnector;
}

}  // namespace dfm
