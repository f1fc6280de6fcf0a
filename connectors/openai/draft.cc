// The campaigns' drafting request and its answer (docs/classifier.md,
// "Drafting a campaign's text").
#include <simdjson.h>

#include "connectors/openai/openai.h"
#include "util/json.h"

namespace dfm {
namespace {

// Version kDraftPromptVersion of the prompt: a change of its words is a
// new version.
constexpr char kDraftPrompt[] =
    "You write one message a business sends to one of its customers, as the brief below asks. "
    "Write only the message itself, in the brief's language, with no quotes, no placeholders "
    "and no notes to the sender. Keep a text message under 300 characters. Do not invent "
    "prices, dates, links or promises the brief does not give.";

constexpr int kDraftMaxTokens = 300;

}  // namespace

std::string DraftRequestBody(const std::string& model, std::string_view brief) {
  std::string messages =
      "[" + JsonObject().Str("role", "system").Str("content", kDraftPrompt).Finish() + "," +
      JsonObject().Str("role", "user").Str("content", brief).Finish() + "]";
  return JsonObject()
      .Str("model", model)
      .Raw("messages", messages)
      .Int("max_tokens", kDraftMaxTokens)
      .Finish();
}

Status ReadDraftAnswer(std::string_view body, DraftAnswer* out) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc, choice;
  if (parser.parse(body.data(), body.size()).get(doc))
    return Status::InvalidArgument("answer is not JSON");
  simdjson::dom::array choices;
  if (doc["choices"].get(choices) || choices.at(0).get(choice))
    return Status::InvalidArgument("answer has no choices");
  std::string_view refusal, content, finish, model;
  if (!choice["message"]["refusal"].get(refusal) && !refusal.empty())
    return Status::InvalidArgument("the model refused");
  // Only a whole answer is a draft: "length" (cut at max_tokens),
  // "content_filter" (cut by a filter), a tool call, or no reason at all
  // is not.
  if (choice["finish_reason"].get(finish))
    return Status::InvalidArgument("answer has no finish_reason");
  if (finish != "stop") return Status::InvalidArgument("answer ended by " + std::string(finish));
  if (choice["message"]["content"].get(content))
    return Status::InvalidArgument("answer has no content");
  const size_t first = content.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return Status::InvalidArgument("answer is empty");
  const size_t last = content.find_last_not_of(" \t\r\n");
  out->text = std::string(content.substr(first, last - first + 1));
  out->model = doc["model"].get(model) ? "" : std::string(model);
  return Status::OK();
}

}  // namespace dfm
