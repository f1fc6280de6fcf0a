// The classifier's request and answers (docs/classifier.md).
#include <simdjson.h>

#include <cmath>
#include <cstdlib>

#include "connectors/openai/openai.h"
#include "util/json.h"

namespace dfm {
namespace {

constexpr char kPrompt[] =
    "You read one text message a person sent to a business that texts them. Decide what the "
    "person asks for: opt_out if they ask to stop receiving messages from the business (in any "
    "words or language), opt_in if they ask to receive messages again, other if it is neither "
    "(a question, a reply, words like stop or cancel about something else), unclear if you "
    "cannot tell. Answer only with JSON {\"intent\": one of those four, \"confidence\": a number "
    "from 0 to 1}.";

constexpr char kSchema[] =
    R"({"type":"json_schema","json_schema":{"name":"optout","strict":true,"schema":{"type":"object",)"
    R"("properties":{"intent":{"type":"string","enum":["opt_out","opt_in","other","unclear"]},)"
    R"("confidence":{"type":"number"}},"required":["intent","confidence"],"additionalProperties":false}}})";

}  // namespace

std::string ClassifierRequestBody(const std::string& model, std::string_view text) {
  std::string messages = "[" + JsonObject().Str("role", "system").Str("content", kPrompt).Finish() +
                         "," + JsonObject().Str("role", "user").Str("content", text).Finish() + "]";
  return JsonObject()
      .Str("model", model)
      .Raw("messages", messages)
      .Int("temperature", 0)
      .Int("max_tokens", 40)
      .Raw("response_format", kSchema)
      .Finish();
}

Status ReadClassifierAnswer(std::string_view body, ClassifierVerdict* out) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc, choice;
  if (parser.parse(body.data(), body.size()).get(doc)) return Status::InvalidArgument("answer is not JSON");
  std::string_view model;
  if (!doc["model"].get(model)) out->model = std::string(model);
  simdjson::dom::array choices;
  if (doc["choices"].get(choices) || choices.at(0).get(choice))
    return Status::InvalidArgument("answer has no choices");
  std::string_view refusal, content, finish;
  if (!choice["message"]["refusal"].get(refusal) && !refusal.empty()) {
    out->intent = "refused";
    return Status::OK();
  }
  if (!choice["finish_reason"].get(finish) && finish != "stop")
    return Status::InvalidArgument("answer ended by " + std::string(finish));
  if (choice["message"]["content"].get(content)) return Status::InvalidArgument("answer has no content");
  simdjson::dom::parser inner;
  simdjson::dom::element verdict;
  std::string_view intent;
  double confidence = -1;
  int64_t whole = -1;
  if (inner.parse(content.data(), content.size()).get(verdict) || verdict["intent"].get(intent))
    return Status::InvalidArgument("content is not {\"intent\", \"confidence\"}");
  if (verdict["confidence"].get(confidence)) {
    if (verdict["confidence"].get(whole)) return Status::InvalidArgument("confidence is not a number");
    confidence = static_cast<double>(whole);
  }
  if (intent != "opt_out" && intent != "opt_in" && intent != "other" && intent != "unclear")
    return Status::InvalidArgument("unknown intent");
  if (!(confidence >= 0 && confidence <= 1)) return Status::InvalidArgument("confidence outside 0..1");
  out->intent = std::string(intent);
  out->confidence = confidence;
  return Status::OK();
}

std::string OpenAiErrorCode(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view code;
  if (parser.parse(body.data(), body.size()).get(doc)) return "";
  if (!doc["error"]["code"].get(code) && !code.empty()) return std::string(code);
  if (!doc["error"]["type"].get(code)) return std::string(code);
  return "";
}

std::optional<int64_t> GoDurationMicros(std::string_view text) {
  if (text.empty()) return std::nullopt;
  double total = 0;
  size_t i = 0;
  while (i < text.size()) {
    const std::string rest(text.substr(i));
    char* end = nullptr;
    const double n = std::strtod(rest.c_str(), &end);
    const size_t used = static_cast<size_t>(end - rest.c_str());
    if (used == 0 || !std::isfinite(n) || n < 0) return std::nullopt;
    i += used;
    std::string_view unit = text.substr(i, 2);
    double scale = 0;
    if (unit == "ms") scale = 1e3, i += 2;
    else if (unit == "us") scale = 1, i += 2;
    else if (unit.substr(0, 1) == "s") scale = 1e6, i += 1;
    else if (unit.substr(0, 1) == "m") scale = 60e6, i += 1;
    else if (unit.substr(0, 1) == "h") scale = 3600e6, i += 1;
    else return std::nullopt;
    total += n * scale;
    if (total > 86400e6) return std::nullopt;  // more than a day: not a reset time
  }
  return static_cast<int64_t>(total);
}

}  // namespace dfm
