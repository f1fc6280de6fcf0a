// An OpenAI-compatible chat-completions endpoint as the classifier of
// ambiguous replies (docs/classifier.md): a second opinion on texts the
// keyword rule flags as near misses. It holds no contacts and sends no
// webhooks; it answers push op "classify", and drafts a campaign's text:
// push op "send" on channel "draft" (campaigns/agent.h), the brief as its
// body. Internal to this folder and its tests.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/connector.h"

namespace dfm {

// The prompt's version, recorded with every verdict; a change of the
// prompt's words is a new version.
inline constexpr char kClassifierPromptVersion[] = "optout-v1";

// What a chat-completions answer said (answer.cc).
struct ClassifierVerdict {
  std::string intent;  // "opt_out", "opt_in", "other", "unclear"; "refused" for a refusal
  double confidence = 0;
  std::string model;   // the model that answered, as the answer names it
};
// Reads a 200 answer: choices[0].message.content as {"intent",
// "confidence"} (or message.refusal). InvalidArgument saying what is wrong
// for anything else (no choices, a cut-off answer, content that is not that
// JSON, an unknown intent, a confidence outside 0..1).
Status ReadClassifierAnswer(std::string_view body, ClassifierVerdict* out);
// The request body for one text (model, the prompt, the JSON schema).
std::string ClassifierRequestBody(const std::string& model, std::string_view text);
// Drafting (draft.cc): the prompt's version, recorded with every draft.
inline constexpr char kDraftPromptVersion[] = "campaign-draft-v1";
struct DraftAnswer {
  std::string text;   // whole, trimmed of surrounding white space
  std::string model;  // as the answer names it ("" when it does not)
};
// The request body for one brief (model, the drafting prompt, the brief).
std::string DraftRequestBody(const std::string& model, std::string_view brief);
// Reads a 200 answer to a draft request: choices[0].message.content, only
// when the model returned it in full (finish_reason "stop") and it is not
// empty or a refusal; InvalidArgument saying what is wrong otherwise.
Status ReadDraftAnswer(std::string_view body, DraftAnswer* out);

// OpenAI's error {"error": {"code", "type", "message"}}: its code (or type).
std::string OpenAiErrorCode(std::string_view body);
// A Go-style duration of x-ratelimit-reset-* ("1s", "6m0s", "12ms",
// "1.5s") in µs; nullopt when it is not one.
std::optional<int64_t> GoDurationMicros(std::string_view text);

// client.cc
std::vector<SettingSpec> OpenAiSettings();
std::unique_ptr<VendorClient> NewOpenAiClient(const SystemSettings& s, HttpClient* http);
Credentials OpenAiCredentials(const SystemSettings& s);

const Connector& OpenAiConnector();

}  // namespace dfm
