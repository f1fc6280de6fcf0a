// The classifier's client (docs/classifier.md): one POST
// {api_base_url}/chat/completions per flagged text, Bearer key.
//
// classify: fields body (the text) and at_us (when it was sent); answered
// with verdict, confidence, model, prompt_version and min_confidence.
// send on channel "draft" (a campaign's draft request): field body (the
// brief); answered with text, model and prompt_version, only when the
// model returned the text in full (a cut, empty or refused answer fails
// for good, "incomplete draft").
// Outcomes: 200 with a readable verdict succeeds (a refusal too: verdict
// "refused"); 200 that cannot be read fails for good ("malformed"), since
// asking again costs and rarely reads better; 401 is a refused key; 429
// `insufficient_quota` fails for good, 429 `rate_limit_exceeded` waits
// Retry-After or x-ratelimit-reset-requests and retries; 5xx, timeouts and
// connection errors are retried (max_attempts, 3 by default); other 4xx
// fail for good. Nothing here logs the text.
#include <cstdio>

#include "connectors/common/json_body.h"
#include "connectors/openai/openai.h"
#include "sync/consent.h"

namespace dfm {
namespace {

class OpenAiClient final : public VendorClient {
 public:
  OpenAiClient(const SystemSettings& s, HttpClient* http)
      : http_(http),
        url_(TrimmedBase(s.at("api_base_url")) + "/chat/completions"),
        model_(s.at("model")),
        min_confidence_(s.at("min_confidence")),
        timeout_ms_(std::stoll(s.at("request_timeout_ms"))) {}

  void Push(const PushRequest& req, const Credentials& creds,
            std::function<void(PushResult)> done) override {
    const bool draft = req.op == "send" && req.channel == channels::kDraft;
    if (req.op != "classify" && !draft) {
      PushResult r;
      r.http_status = 422;
      r.detail = "the classifier has no push op \"" + req.op + "\"";
      return done(std::move(r));
    }
    HttpRequest r;
    r.method = "POST";
    r.url = url_;
    r.timeout_ms = timeout_ms_;
    r.headers = {{"Authorization", "Bearer " + creds.access_token},
                 {"Content-Type", "application/json"},
                 {"Accept", "application/json"}};
    r.body = draft ? DraftRequestBody(model_, req.Field("body"))
                   : ClassifierRequestBody(model_, req.Field("body"));
    http_->Send(std::move(r), [this, draft, done = std::move(done)](HttpResponse resp) {
      PushResult res;
      res.requests = 1;
      res.http_status = resp.status;
      ReadRateHeaders(resp, &res);
      if (resp.status == 0) {
        res.detail = resp.error;
        return done(std::move(res));
      }
      if (resp.status / 100 != 2) {
        const std::string code = OpenAiErrorCode(resp.body);
        res.auth_rejected = resp.status == 401;
        res.detail = SafeDetail(resp.status, code);
        if (resp.status == 429 && code == "insufficient_quota") res.permanent = true;
        if (resp.status == 429 && !res.retry_after_us)
          res.retry_after_us = GoDurationMicros(resp.Header("x-ratelimit-reset-requests"));
        return done(std::move(res));
      }
      if (draft) return done(Drafted(resp, std::move(res)));
      ClassifierVerdict v;
      Status st = ReadClassifierAnswer(resp.body, &v);
      if (!st.ok()) {
        res.http_status = 422;  // final: recorded, the text stays flagged
        res.detail = "malformed answer: " + st.message();
        return done(std::move(res));
      }
      char conf[16];
      std::snprintf(conf, sizeof conf, "%.2f", v.confidence);
      res.answered = {{"verdict", v.intent},
                      {"confidence", conf},
                      {"model", v.model.empty() ? model_ : v.model},
                      {"prompt_version", kClassifierPromptVersion},
                      {"min_confidence", min_confidence_}};
      done(std::move(res));
    });
  }

 private:
  // A draft request's 200: its text, or a final failure when it is not
  // whole (never retried: asking again costs and may cut again).
  PushResult Drafted(const HttpResponse& resp, PushResult res) const {
    DraftAnswer a;
    Status st = ReadDraftAnswer(resp.body, &a);
    if (!st.ok()) {
      res.http_status = 422;
      res.detail = "incomplete draft: " + st.message();
      return res;
    }
    res.external_id = JsonStringAt(resp.body, nullptr, "id");
    res.answered = {{"text", a.text},
                    {"model", a.model.empty() ? model_ : a.model},
                    {"prompt_version", kDraftPromptVersion}};
    return res;
  }

  static std::string TrimmedBase(std::string base) {
    while (!base.empty() && base.back() == '/') base.pop_back();
    return base;
  }

  HttpClient* http_;
  std::string url_;
  std::string model_;
  std::string min_confidence_;
  int64_t timeout_ms_;
};

}  // namespace

std::vector<SettingSpec> OpenAiSettings() {
  std::vector<SettingSpec> s = {
      {"api_base_url", false, "",
       "an OpenAI-compatible API, up to /v1 (https://api.openai.com/v1); empty: no classifier"},
      {"api_key", true, "", "its key (Authorization: Bearer)"},
      {"model", false, "gpt-4o-mini", "the model asked"},
      {"min_confidence", false, "0.8",
       "an opt_out verdict at least this confident is applied (cause `classifier`); below it the "
       "text stays flagged for a person"},
      {"send_message_body", false, "false",
       "true: flagged texts are sent to it. Nothing is asked of it while this is false"},
  };
  AddDeliverySettings(&s, {"60", "60000", "0", "a polite default; its 429s are honoured"});
  for (auto& spec : s) {
    if (spec.key == "max_attempts") spec.default_value = "3";
    if (spec.key == "request_timeout_ms") spec.default_value = "8000";
  }
  return s;
}

std::unique_ptr<VendorClient> NewOpenAiClient(const SystemSettings& s, HttpClient* http) {
  return std::make_unique<OpenAiClient>(s, http);
}

Credentials OpenAiCredentials(const SystemSettings& s) {
  Credentials c;
  c.access_token = s.at("api_key");
  return c;
}

}  // namespace dfm
