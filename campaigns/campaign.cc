#include "campaigns/campaign.h"

#include <simdjson.h>

#include "campaigns/message_template.h"
#include "campaigns/names.h"
#include "campaigns/request_fields.h"
#include "util/clock.h"
#include "util/json.h"

namespace dfm {

namespace {

constexpr std::pair<Channel, std::string_view> kChannels[] = {
    {Channel::kSms, "sms"}, {Channel::kEmail, "email"}, {Channel::kCall, "call"}};
constexpr std::pair<CampaignState, std::string_view> kStates[] = {
    {CampaignState::kDraft, "draft"},         {CampaignState::kScheduled, "scheduled"},
    {CampaignState::kRunning, "running"},     {CampaignState::kPaused, "paused"},
    {CampaignState::kCompleted, "completed"}, {CampaignState::kCancelled, "cancelled"}};
constexpr std::pair<CampaignAction, std::string_view> kActions[] = {
    {CampaignAction::kStart, "start"},       {CampaignAction::kBegin, "begin"},
    {CampaignAction::kPause, "pause"},       {CampaignAction::kResume, "resume"},
    {CampaignAction::kComplete, "complete"}, {CampaignAction::kCancel, "cancel"},
    {CampaignAction::kResetTasks, "reset_tasks"}};

constexpr size_t kMaxSteps = 20;
constexpr size_t kMaxMembers = 100000;
constexpr int64_t kMaxDelayS = 366LL * 86400;

void DecodeStep(simdjson::dom::element e, size_t i, CampaignStep* s, Details* d) {
  const std::string at = "steps[" + std::to_string(i) + "]";
  simdjson::dom::object o;
  if (e.get(o) != simdjson::SUCCESS) {
    d->push_back({at, "must be an object"});
    return;
  }
  const std::string channel = TextField(o, "channel", at + ".channel", true, 16, d);
  if (!channel.empty() && !ParseChannel(channel, &s->channel))
    d->push_back({at + ".channel", "must be sms, email or call"});
  s->template_text =
      TextField(o, "template", at + ".template", s->channel != Channel::kCall, 4096, d);
  s->subject = TextField(o, "subject", at + ".subject", s->channel == Channel::kEmail, 200, d);
  for (const auto& [text, name] :
       {std::pair{&s->template_text, ".template"}, {&s->subject, ".subject"}}) {
    Status t = CheckTemplate(*text);
    if (!t.ok()) d->push_back({at + name, t.message()});
  }
  s->delay_s = NumberField(o, "delay_s", 0, 0, kMaxDelayS, at + ".delay_s", d);
  s->window_s = NumberField(o, "window_s", 86400, 60, 30LL * 86400, at + ".window_s", d);
  s->stop_on_reply = FlagField(o, "stop_on_reply", true, at + ".stop_on_reply", d);
  s->stop_on_payment = FlagField(o, "stop_on_payment", true, at + ".stop_on_payment", d);
  const std::string draft = TextField(o, "draft", at + ".draft", false, 16, d);
  s->ai_draft = draft == "ai";
  if (!draft.empty() && !s->ai_draft) d->push_back({at + ".draft", "must be \"ai\""});
  if (s->ai_draft && s->channel == Channel::kCall)
    d->push_back({at + ".draft", "a call step is not drafted (sms and email only)"});
}

void DecodeAudience(simdjson::dom::object root, Audience* a, Details* d) {
  simdjson::dom::object o;
  auto v = root["audience"];
  if (v.error() == simdjson::NO_SUCH_FIELD) {
    d->push_back({"audience", "is required"});
    return;
  }
  if (v.get(o) != simdjson::SUCCESS) {
    d->push_back({"audience", "must be an object"});
    return;
  }
  a->tags = StringsField(o, "tags", "audience.tags", d);
  a->list = TextField(o, "list", "audience.list", false, 200, d);
  a->members = StringsField(o, "members", "audience.members", d);
  if (a->members.size() > kMaxMembers)
    d->push_back(
        {"audience.members", "at most " + std::to_string(kMaxMembers) + " (use a tag or a list)"});
  if (a->tags.empty() && a->list.empty() && a->members.empty())
    d->push_back({"audience", "names nobody: give tags, a list or members"});
}

}  // namespace

std::string_view ChannelName(Channel c) { return NameIn(kChannels, c); }
bool ParseChannel(std::string_view name, Channel* out) { return ValueIn(kChannels, name, out); }

void DecodeCampaignSpec(std::string_view json, CampaignSpec* out,
                        std::vector<ValidationDetail>* d) {
  *out = CampaignSpec{};
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  if (!BodyObject(parser, json, &o, d)) return;
  int64_t v = 1;
  if (o["v"].error() != simdjson::NO_SUCH_FIELD && (o["v"].get(v) != simdjson::SUCCESS || v != 1))
    d->push_back({"v", "must be 1"});
  out->id = TextField(o, "id", "id", true, 64, d);
  if (!out->id.empty() && !GoodId(out->id)) d->push_back({"id", kGoodIdProblem});
  out->customer = TextField(o, "customer", "customer", true, 64, d);
  if (!out->customer.empty() && !GoodId(out->customer)) d->push_back({"customer", kGoodIdProblem});
  out->name = TextField(o, "name", "name", false, 200, d);
  out->sender = TextField(o, "sender", "sender", false, 320, d);
  const std::string start = TextField(o, "start_at", "start_at", false, 64, d);
  if (!start.empty()) {
    auto t = ParseIso8601Micros(start);
    // A time without its zone would be read as UTC: hours off for anyone
    // not there, maybe inside quiet hours. RFC 3339 requires the zone.
    const bool zoned =
        start.back() == 'Z' || start.back() == 'z' ||
        (start.size() > 6 && (start[start.size() - 6] == '+' || start[start.size() - 6] == '-'));
    if (!t || !zoned) {
      d->push_back({"start_at", "must be an RFC 3339 time with its zone"});
      t.reset();
    }
    out->start_at_us = t.value_or(0);
  }
  DecodeAudience(o, &out->audience, d);
  simdjson::dom::array steps;
  if (o["steps"].get(steps) != simdjson::SUCCESS || steps.size() == 0) {
    d->push_back({"steps", "must be a list of 1 to " + std::to_string(kMaxSteps) + " steps"});
    return;
  }
  if (steps.size() > kMaxSteps) d->push_back({"steps", "at most " + std::to_string(kMaxSteps)});
  size_t i = 0;
  for (auto e : steps) {
    if (i == kMaxSteps) break;
    out->steps.emplace_back();
    DecodeStep(e, i++, &out->steps.back(), d);
  }
}

std::string EncodeCampaignSpec(const CampaignSpec& s) {
  auto list = [](const std::vector<std::string>& v) {
    JsonArray a;
    for (const auto& x : v) a.Str(x);
    return a.Finish();
  };
  JsonArray steps;
  for (const auto& st : s.steps) {
    JsonObject step;
    step.Str("channel", ChannelName(st.channel))
        .Str("template", st.template_text)
        .Str("subject", st.subject)
        .Int("delay_s", st.delay_s)
        .Int("window_s", st.window_s)
        .Bool("stop_on_reply", st.stop_on_reply)
        .Bool("stop_on_payment", st.stop_on_payment);
    if (st.ai_draft) step.Str("draft", "ai");
    steps.Raw(step.Finish());
  }
  JsonObject audience;
  audience.Raw("tags", list(s.audience.tags))
      .Str("list", s.audience.list)
      .Raw("members", list(s.audience.members));
  JsonObject o;
  o.Int("v", 1).Str("id", s.id).Str("customer", s.customer).Str("name", s.name);
  o.Raw("audience", audience.Finish()).Raw("steps", steps.Finish());
  if (s.start_at_us != 0) o.Str("start_at", FormatIso8601Millis(s.start_at_us));
  if (!s.sender.empty()) o.Str("sender", s.sender);
  return o.Finish();
}

std::string ValidationDetailsJson(const std::vector<ValidationDetail>& details) {
  JsonArray a;
  for (const auto& x : details)
    a.Raw(JsonObject().Str("field", x.field).Str("problem", x.problem).Finish());
  return a.Finish();
}

std::string_view CampaignStateName(CampaignState s) { return NameIn(kStates, s); }
bool ParseCampaignState(std::string_view name, CampaignState* out) {
  return ValueIn(kStates, name, out);
}
std::string_view CampaignActionName(CampaignAction a) { return NameIn(kActions, a); }
bool ParseCampaignAction(std::string_view name, CampaignAction* out) {
  return ValueIn(kActions, name, out);
}

Status NextState(CampaignState from, CampaignAction a, int64_t start_at_us, int64_t now_us,
                 CampaignState* to) {
  using S = CampaignState;
  using A = CampaignAction;
  bool ok = false;
  switch (a) {
    case A::kStart:
      ok = from == S::kDraft;
      *to = start_at_us > now_us ? S::kScheduled : S::kRunning;
      break;
    case A::kBegin:
      ok = from == S::kScheduled;
      *to = S::kRunning;
      break;
    case A::kPause:
      ok = from == S::kRunning;
      *to = S::kPaused;
      break;
    case A::kResume:
      ok = from == S::kPaused;
      *to = S::kRunning;
      break;
    case A::kComplete:
      ok = from == S::kRunning;
      *to = S::kCompleted;
      break;
    case A::kCancel:
      ok = from != S::kCompleted && from != S::kCancelled;
      *to = S::kCancelled;
      break;
    case A::kResetTasks:
      ok = from == S::kRunning || from == S::kPaused;
      *to = from;
      break;
  }
  if (ok) return Status::OK();
  return Status::InvalidArgument("cannot " + std::string(CampaignActionName(a)) +
                                 " a campaign that is " + std::string(CampaignStateName(from)));
}

}  // namespace dfm
