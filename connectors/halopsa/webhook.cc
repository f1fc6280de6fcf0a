// HaloPSA webhooks (docs/vendors/halopsa.md section 7): a JSON envelope
// {id, webhook_id, notification_id, escmsg_id, event, object_id,
// timestamp, <object>}, never signed. HaloPSA offers Basic authentication
// (username and password set in the webhook) or none; none is refused
// unless `allow_unauthenticated` says the operator means it.
//
// Provider event id: the envelope's `id` (one per event HaloPSA sends; a
// re-send from its Deliveries log carries the same). Source time:
// `timestamp`.
//
// Batched deliveries (HaloPSA v2.164 and later, the webhook's batching set
// by time or count): a JSON array of such envelopes, every one checked as
// above. Provider event id: "ids:<id>,<id>,..." in the array's order (a
// re-send of the batch carries the same), past 200 bytes
// "ids-sha256:<hex>" of that list; one element alone is its own id, as
// unbatched. Source time: the newest timestamp. Each element is its own
// fact (the mapper reads them in order).
#include <algorithm>
#include <vector>

#include "connectors/common/json_body.h"
#include "connectors/halopsa/halopsa.h"
#include "util/clock.h"
#include "util/crypto.h"

namespace dfm {
namespace {

class HaloSource : public WebhookSource {
 public:
  explicit HaloSource(std::string expected) : expected_(std::move(expected)) {}

  bool AcceptsContentType(std::string_view mt) const override { return mt == "application/json"; }

  Status Verify(const InboundRequest& req, std::string* scheme) const override {
    if (expected_.empty()) {
      *scheme = "none";
      return Status::OK();
    }
    if (!req.HasHeader("authorization")) return Status::Unauthenticated("missing Authorization header");
    if (!ConstantTimeEquals(req.Header("authorization"), expected_))
      return Status::Unauthenticated("Authorization header does not match the configured credentials");
    *scheme = "basic";
    return Status::OK();
  }

  Status Identify(const InboundRequest& req, WebhookIdentity* id) const override {
    std::vector<simdjson::dom::object> envelopes;
    bool batched = false;
    Status s = ParseJsonObjects(req.body, &envelopes, &batched);
    if (!s.ok()) return s;
    std::string ids;
    for (size_t i = 0; i < envelopes.size(); ++i) {
      const std::string where = batched ? " in element " + std::to_string(i) + " of the batch" : "";
      bool wrong = false;
      auto eid = StringOrNumberField(envelopes[i], "id", &wrong);
      if (!eid || eid->empty()) return Status::InvalidArgument("missing field id" + where);
      std::string_view event;
      if (envelopes[i].at_key("event").get(event) || event.empty())
        return Status::InvalidArgument("missing string field event" + where);
      ids += (i ? "," : "") + *eid;
      if (auto ts = StringOrNumberField(envelopes[i], "timestamp", &wrong))
        if (auto t = ParseIso8601Micros(*ts))
          id->source_time_us = std::max(id->source_time_us.value_or(0), *t);
    }
    if (envelopes.size() == 1) {
      id->provider_event_id = ids;
      id->id_source = batched ? "body[0].id" : "body.id";
    } else if (ids.size() > 200) {
      id->provider_event_id = "ids-sha256:" + HexEncode(Sha256(ids));
      id->id_source = "sha256(body[].id)";
    } else {
      id->provider_event_id = "ids:" + ids;
      id->id_source = "body[].id";
    }
    return Status::OK();
  }

 private:
  std::string expected_;  // "Basic <base64>", or empty for none
};

}  // namespace

std::vector<SettingSpec> HaloWebhookSettings() {
  return {
      {"auth", false, "basic", "basic | none: what HaloPSA's webhook is set to send"},
      {"allow_unauthenticated", false, "false",
       "true: take auth = none (anyone who knows the URL may post webhooks)"},
      {"username", false, "", "Basic auth user name set in HaloPSA's webhook"},
      {"password", true, "", "Basic auth password set in HaloPSA's webhook"},
      {"user_events", false, "new user created, user updated",
       "HaloPSA webhook event names that carry a user (the full object, under \"user\")"},
  };
}

std::unique_ptr<WebhookSource> NewHaloWebhookSource(const SystemSettings& s,
                                                    std::vector<SettingProblem>* problems) {
  const size_t before = problems->size();
  const std::string& mode = s.at("auth");
  std::string expected;
  if (mode == "basic") {
    if (s.at("username").empty()) problems->push_back({"username", "required when auth = basic"});
    if (s.at("password").empty()) problems->push_back({"password", "required when auth = basic"});
    expected = "Basic " + Base64Encode(s.at("username") + ":" + s.at("password"));
  } else if (mode == "none") {
    if (s.at("allow_unauthenticated") != "true")
      problems->push_back({"auth", "none takes webhooks from anyone who knows the URL; use basic, or set "
                                   "allow_unauthenticated = true"});
  } else {
    problems->push_back({"auth", "must be basic or none (what HaloPSA offers)"});
  }
  if (SplitCommaList(s.at("user_events")).empty())
    problems->push_back({"user_events", "must name at least one event"});
  std::string custom;
  if (!ParseHaloCustomFields(s.at("custom_fields"), &custom)) problems->push_back({"custom_fields", custom});
  if (problems->size() != before) return nullptr;
  return std::make_unique<HaloSource>(expected);
}

}  // namespace dfm
