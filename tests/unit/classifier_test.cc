// The reply classifier (docs/classifier.md): reading chat-completions
// answers and errors, the client's outcomes, and the rules (sync/
// classifier_rules.cc) that ask it about flagged texts and apply a
// confident opt-out with cause "classifier". Pure: no actor, no log.
#include <gtest/gtest.h>

#include <simdjson.h>

#include "config/config.h"
#include "connectors/openai/openai.h"
#include "sync/consent.h"
#include "sync/contact_model.h"
#include "sync/domain_event.h"
#include "tests/support/one_answer_http.h"

namespace dfm {
namespace {

std::string Answer(const std::string& content_json, const std::string& finish = "stop") {
  return R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":)" +
         content_json + R"(,"refusal":null},"finish_reason":")" + finish + R"("}],"usage":{"total_tokens":9}})";
}

TEST(ClassifierAnswer, ReadsTheVerdictAndRefusesAnythingElse) {
  ClassifierVerdict v;
  ASSERT_TRUE(ReadClassifierAnswer(Answer(R"("{\"intent\":\"opt_out\",\"confidence\":0.93}")"), &v).ok());
  EXPECT_EQ(v.intent, "opt_out");
  EXPECT_DOUBLE_EQ(v.confidence, 0.93);
  EXPECT_EQ(v.model, "gpt-4o-mini-2024-07-18");
  ASSERT_TRUE(ReadClassifierAnswer(Answer(R"("{\"intent\":\"other\",\"confidence\":1}")"), &v).ok());
  EXPECT_DOUBLE_EQ(v.confidence, 1.0) << "a whole number";

  ClassifierVerdict r;
  ASSERT_TRUE(ReadClassifierAnswer(
                  R"({"model":"m","choices":[{"message":{"content":null,"refusal":"I can't"},"finish_reason":"stop"}]})", &r)
                  .ok());
  EXPECT_EQ(r.intent, "refused");

  for (const std::string& bad :
       {std::string("not json"), std::string(R"({"choices":[]})"),
        Answer(R"("{\"intent\":\"opt_")", "length"), Answer(R"("The person wants to stop.")"),
        Answer(R"("{\"intent\":\"maybe\",\"confidence\":0.5}")"),
        Answer(R"("{\"intent\":\"opt_out\",\"confidence\":1.5}")"),
        Answer(R"("{\"intent\":\"opt_out\",\"confidence\":\"high\"}")"), Answer("null")}) {
    ClassifierVerdict x;
    EXPECT_EQ(ReadClassifierAnswer(bad, &x).code(), Status::Code::kInvalidArgument) << bad;
  }
}

TEST(ClassifierAnswer, TheRequestAndOpenAisWords) {
  const std::string body = ClassifierRequestBody("gpt-4o-mini", "please \"stop\" texting me");
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  ASSERT_FALSE(p.parse(body).get(doc));
  std::string_view model, user, type;
  ASSERT_FALSE(doc["model"].get(model));
  EXPECT_EQ(model, "gpt-4o-mini");
  ASSERT_FALSE(doc["messages"].at(1)["content"].get(user));
  EXPECT_EQ(user, "please \"stop\" texting me");
  ASSERT_FALSE(doc["response_format"]["type"].get(type));
  EXPECT_EQ(type, "json_schema");

  EXPECT_EQ(OpenAiErrorCode(R"({"error":{"message":"x","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})"),
            "insufficient_quota");
  EXPECT_EQ(OpenAiErrorCode(R"({"error":{"message":"x","type":"requests","code":null}})"), "requests");
  EXPECT_EQ(GoDurationMicros("1s"), 1000000);
  EXPECT_EQ(GoDurationMicros("6m0s"), 360000000);
  EXPECT_EQ(GoDurationMicros("12ms"), 12000);
  EXPECT_EQ(GoDurationMicros("1.5s"), 1500000);
  EXPECT_EQ(GoDurationMicros("soon"), std::nullopt);
  EXPECT_EQ(GoDurationMicros("48h"), std::nullopt) << "more than a day";
}

using testing::OneAnswerHttp;

PushResult Classify(OneAnswerHttp* http) {
  SystemSettings s = {{"api_base_url", "https://llm.example.com/v1/"}, {"api_key", "sk"},
                      {"model", "gpt-4o-mini"}, {"min_confidence", "0.8"}, {"request_timeout_ms", "1000"}};
  auto client = NewOpenAiClient(s, http);
  PushRequest req;
  req.op = "classify";
  req.fields = {{"body", "please stop texting me"}, {"at_us", "5"}};
  Credentials c;
  c.access_token = "sk";
  PushResult out;
  client->Push(req, c, [&](PushResult r) { out = std::move(r); });
  return out;
}

TEST(ClassifierClient, OutcomesOfEachAnswer) {
  OneAnswerHttp http;
  http.answer.status = 200;
  http.answer.body = Answer(R"("{\"intent\":\"opt_out\",\"confidence\":0.951}")");
  PushResult r = Classify(&http);
  EXPECT_EQ(http.sent.url, "https://llm.example.com/v1/chat/completions");
  EXPECT_EQ(r.http_status, 200);
  EXPECT_EQ(r.answered.at("verdict"), "opt_out");
  EXPECT_EQ(r.answered.at("confidence"), "0.95");
  EXPECT_EQ(r.answered.at("prompt_version"), kClassifierPromptVersion);
  EXPECT_EQ(r.answered.at("min_confidence"), "0.8");
  EXPECT_EQ(r.answered.count("body"), 0u);

  http.answer.body = Answer(R"("maybe")");
  r = Classify(&http);
  EXPECT_EQ(r.http_status, 422) << "malformed: final";
  EXPECT_EQ(r.detail, "malformed answer: content is not {\"intent\", \"confidence\"}");

  http.answer.status = 429;
  http.answer.body = R"({"error":{"message":"Rate limit","type":"requests","code":"rate_limit_exceeded"}})";
  http.answer.headers = {{"x-ratelimit-reset-requests", "2s"}};
  r = Classify(&http);
  EXPECT_FALSE(r.permanent);
  EXPECT_EQ(r.retry_after_us, 2000000);
  http.answer.body = R"({"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota"}})";
  r = Classify(&http);
  EXPECT_TRUE(r.permanent) << "a spent quota is not waited out";
  EXPECT_EQ(r.detail, "HTTP 429: insufficient_quota");

  http.answer = {};
  http.answer.status = 401;
  http.answer.body = R"({"error":{"code":"invalid_api_key"}})";
  EXPECT_TRUE(Classify(&http).auth_rejected);
  http.answer = {};
  http.answer.error = "Timeout was reached";
  r = Classify(&http);
  EXPECT_EQ(r.http_status, 0) << "retried";
}

// A campaign's draft request (push op "send" on channel "draft"): only a
// whole answer is a draft.
TEST(DraftClient, OnlyAWholeAnswerIsADraft) {
  OneAnswerHttp http;
  SystemSettings s = {{"api_base_url", "https://llm.example.com/v1"}, {"api_key", "sk"},
                      {"model", "gpt-4o-mini"}, {"min_confidence", "0.8"}, {"request_timeout_ms", "1000"}};
  auto client = NewOpenAiClient(s, &http);
  PushRequest req;
  req.op = "send";
  req.channel = "draft";
  req.message_key = "campaign:spring-1/0/c-1/draft";
  req.fields = {{"body", "Invite Ann to the spring sale"}};
  auto draft = [&]() {
    PushResult out;
    client->Push(req, Credentials{}, [&](PushResult r) { out = std::move(r); });
    return out;
  };
  http.answer.status = 200;
  http.answer.body = Answer(R"("  Hi Ann! Our spring sale starts Friday.\n")");
  PushResult r = draft();
  simdjson::dom::parser parser;
  simdjson::dom::element sent;
  ASSERT_FALSE(parser.parse(http.sent.body).get(sent));
  std::string_view user, model;
  ASSERT_FALSE(sent["messages"].at(1)["content"].get(user));
  EXPECT_EQ(user, "Invite Ann to the spring sale");
  EXPECT_TRUE(sent["response_format"].error()) << "a draft is free text";
  ASSERT_FALSE(sent["model"].get(model));
  EXPECT_EQ(model, "gpt-4o-mini");
  EXPECT_EQ(r.http_status, 200);
  EXPECT_EQ(r.external_id, "chatcmpl-1");
  EXPECT_EQ(r.answered.at("text"), "Hi Ann! Our spring sale starts Friday.");
  EXPECT_EQ(r.answered.at("model"), "gpt-4o-mini-2024-07-18");
  EXPECT_EQ(r.answered.at("prompt_version"), kDraftPromptVersion);
  for (const auto& [body, why] : std::vector<std::pair<std::string, std::string>>{
           {Answer(R"("Hi Ann! Our spring")", "length"), "answer ended by length"},
           {Answer(R"("Hi")", "content_filter"), "answer ended by content_filter"},
           {Answer(R"("   ")"), "answer is empty"},
           {Answer("null"), "answer has no content"},
           {R"({"choices":[{"message":{"content":"Hi"}}]})", "answer has no finish_reason"},
           {R"({"choices":[{"message":{"content":null,"refusal":"I can't"},"finish_reason":"stop"}]})",
            "the model refused"},
           {R"({"choices":[]})", "answer has no choices"}}) {
    http.answer.body = body;
    r = draft();
    EXPECT_EQ(r.http_status, 422) << body;
    EXPECT_EQ(r.detail, "incomplete draft: " + why) << body;
    EXPECT_TRUE(r.answered.empty());
  }
  req.channel = "sms";  // a text is not the model's to send
  EXPECT_EQ(draft().detail, "the classifier has no push op \"send\"");
}

class ClassifierRulesTest : public ::testing::Test {
 protected:
  ClassifierRulesTest() {
    ApplyBuiltinDefaults(&ctx_);
    ctx_.targets["ghl"] = {"first_name", "email", "phone"};
    ctx_.channels["ghl"] = {"sms", "email"};
    ctx_.now_us = 1000000000;
    state_.contact_id = "c-ann";
  }

  std::vector<DomainEvent> Text(const std::string& body, int64_t at) {
    ContactFact f;
    f.tenant = "t";
    f.system = "twilio";
    f.fields = {{"phone", "+12055550142"}};
    f.source_time_us = at;
    f.webhook_seq = ++seq_;
    Activity a;
    a.kind = Activity::Kind::kText;
    a.direction = "inbound";
    a.message_id = "SM" + std::to_string(seq_);
    a.body = body;
    f.activities.push_back(a);
    Consent c;
    if (ConsentFromText(body, &c)) {
      c.message_id = a.message_id;
      c.channels = {"sms"};
      f.consents.push_back(c);
    }
    auto out = Decide(state_, f, ctx_);
    for (const auto& e : out) Apply(&state_, e, ++seq_, ctx_.now_us);
    return out;
  }

  std::vector<DomainEvent> Verdict(const DomainEvent& ask, const std::string& verdict, const std::string& conf) {
    DomainEvent ok;
    ok.type = std::string(ev::kPushSucceeded);
    ok.contact_id = ask.contact_id;
    ok.system = ask.system;
    ok.op = "classify";
    ok.push_id = ask.push_id;
    ok.channel = ask.channel;
    ok.message_key = ask.message_key;
    ok.fields = {{"verdict", verdict}, {"confidence", conf}, {"model", "m"}, {"prompt_version", "optout-v1"},
                 {"min_confidence", "0.8"}};
    for (const auto& [f, v] : ask.fields)
      if (f != "body") ok.fields["asked." + f] = v;
    Apply(&state_, ok, ++seq_, ctx_.now_us);
    auto out = DecideReport(state_, {ok}, ctx_);
    for (const auto& e : out) Apply(&state_, e, ++seq_, ctx_.now_us);
    return out;
  }

  static const DomainEvent* One(const std::vector<DomainEvent>& out, std::string_view type,
                                const std::string& op = "") {
    const DomainEvent* found = nullptr;
    for (const auto& e : out)
      if (e.type == type && (op.empty() || e.op == op)) found = &e;
    return found;
  }

  SyncContext ctx_;
  ContactState state_;
  uint64_t seq_ = 0;
};

TEST_F(ClassifierRulesTest, OffNothingChanges) {
  auto out = Text("please stop texting me", 900);
  EXPECT_TRUE(One(out, ev::kOptOutFlagged));
  EXPECT_FALSE(One(out, ev::kPushRequested, "classify"));
}

TEST_F(ClassifierRulesTest, AConfidentOptOutIsAppliedWithCauseClassifier) {
  ctx_.classifier = "openai";
  auto out = Text("please stop texting me", 900);
  ASSERT_TRUE(One(out, ev::kOptOutFlagged)) << "the flag never waits";
  const DomainEvent* ask = One(out, ev::kPushRequested, "classify");
  ASSERT_TRUE(ask);
  EXPECT_EQ(ask->system, "openai");
  EXPECT_EQ(ask->fields.at("body"), "please stop texting me");
  EXPECT_EQ(ask->channel, "sms");
  EXPECT_FALSE(One(out, ev::kOptedOut));
  EXPECT_FALSE(One(Text("Running late", 905), ev::kPushRequested, "classify")) << "only flagged texts";

  auto decided = Verdict(*ask, "opt_out", "0.95");
  const DomainEvent* c = One(decided, ev::kConsentClassified);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->outcome, "opt_out");
  EXPECT_EQ(c->fields.at("model"), "m");
  EXPECT_EQ(c->fields.at("prompt_version"), "optout-v1");
  EXPECT_EQ(c->fields.count("body"), 0u);
  const DomainEvent* out_ev = One(decided, ev::kOptedOut);
  ASSERT_TRUE(out_ev);
  EXPECT_EQ(out_ev->reason, "classifier");
  EXPECT_EQ(out_ev->source_time_us, 900) << "dated when the person sent it";
  EXPECT_EQ(out_ev->fields.at("phone"), "+12055550142") << "whom the flagged text came from";
  EXPECT_EQ(out_ev->external_id, ask->message_key);
  const DomainEvent* push = One(decided, ev::kPushRequested, "opt_out");
  ASSERT_TRUE(push);
  EXPECT_EQ(push->priority, 10);
}

TEST_F(ClassifierRulesTest, AnythingElseStaysFlagged) {
  ctx_.classifier = "openai";
  for (const auto& [verdict, conf] : std::vector<std::pair<std::string, std::string>>{
           {"opt_out", "0.60"}, {"unclear", "0.99"}, {"other", "0.95"}, {"refused", "0.00"}}) {
    auto out = Text("can we cancel?", 900 + static_cast<int64_t>(seq_));
    const DomainEvent* ask = One(out, ev::kPushRequested, "classify");
    ASSERT_TRUE(ask) << verdict;
    auto decided = Verdict(*ask, verdict, conf);
    ASSERT_TRUE(One(decided, ev::kConsentClassified));
    EXPECT_EQ(One(decided, ev::kConsentClassified)->outcome, "flagged") << verdict << " " << conf;
    EXPECT_FALSE(One(decided, ev::kOptedOut)) << verdict << " " << conf;
  }
}

TEST_F(ClassifierRulesTest, ALaterStartStillWins) {
  ctx_.classifier = "openai";
  auto out = Text("please stop texting me", 900);
  DomainEvent ask = *One(out, ev::kPushRequested, "classify");
  ASSERT_TRUE(One(Text("STOP", 910), ev::kOptedOut));
  ASSERT_TRUE(One(Text("START", 920), ev::kOptedIn));
  auto decided = Verdict(ask, "opt_out", "0.99");
  EXPECT_EQ(One(decided, ev::kConsentClassified)->outcome, "opt_out");
  EXPECT_FALSE(One(decided, ev::kOptedOut)) << "a verdict on an older text never undoes a newer START";
}

// Two opt-outs the classifier decided, a START between them: the second's
// pushes are its own, not duplicates of the first's (the contact actor
// keys a push's events by its id, so the second was dropped and no system
// was told of it).
TEST_F(ClassifierRulesTest, EachVerdictsOptOutHasPushesOfItsOwn) {
  ctx_.classifier = "openai";
  const auto asked = Text("please stop texting me", 900);
  const auto decided = Verdict(*One(asked, ev::kPushRequested, "classify"), "opt_out", "0.95");
  const DomainEvent* first = One(decided, ev::kPushRequested, "opt_out");
  ASSERT_TRUE(first);
  ASSERT_TRUE(One(Text("START", 950), ev::kOptedIn));
  const auto asked_again = Text("i said stop texting me", 990);
  const auto decided_again =
      Verdict(*One(asked_again, ev::kPushRequested, "classify"), "opt_out", "0.95");
  const DomainEvent* second = One(decided_again, ev::kPushRequested, "opt_out");
  ASSERT_TRUE(second);
  EXPECT_NE(second->push_id, first->push_id);
}

}  // namespace
}  // namespace dfm
