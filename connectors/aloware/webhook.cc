// Aloware webhooks: `{"event": NAME, "body": {...}}`, no signature. The
// sender is authenticated by the `Authorization` header configured in
// Aloware's webhook settings: Basic (username/password) or Bearer. None
// (anyone may post) is refused unless `allow_unauthenticated` says the
// operator means it.
//
// Provider event id: Aloware sends none. The derived id is
// "<event>:<body.id>:<body.updated_at>": one state of one record, as named by
// the event. A re-delivery of that state is the same fact; a later change of
// the record has a new updated_at and is a new fact. Without updated_at the
// id is "<event>:<body.id>". `{"test_payload": true}` is Aloware's test ping:
// acknowledged and not recorded.
#include "connectors/aloware/aloware.h"

#include <cstdio>
#include <cstdlib>

#include "connectors/common/json_body.h"
#include "util/clock.h"
#include "util/crypto.h"

namespace dfm {
namespace {

class AlowareSource : public WebhookSource {
 public:
  AlowareSource(std::string mode, std::string expected_header, int64_t utc_offset_us)
      : mode_(std::move(mode)), expected_(std::move(expected_header)), offset_us_(utc_offset_us) {}

  bool AcceptsContentType(std::string_view mt) const override { return mt == "application/json"; }

  Status Verify(const InboundRequest& req, std::string* scheme) const override {
    if (mode_ == "none") {
      *scheme = "none";
      return Status::OK();
    }
    if (!req.HasHeader("authorization")) return Status::Unauthenticated("missing Authorization header");
    std::string_view got = req.Header("authorization");
    if (!ConstantTimeEquals(got, expected_)) {
      return Status::Unauthenticated("Authorization header does not match the configured credentials");
    }
    *scheme = mode_;
    return Status::OK();
  }

  Status Identify(const InboundRequest& req, WebhookIdentity* id) const override {
    simdjson::dom::object obj;
    Status s = ParseJsonObject(req.body, &obj);
    if (!s.ok()) return s;
    bool ping = false;
    if (!obj.at_key("test_payload").get(ping) && ping) {
      id->is_test_ping = true;
      id->provider_event_id = "test_payload";
      id->id_source = "test ping";
      return Status::OK();
    }
    std::string_view event;
    if (obj.at_key("event").get(event)) return Status::InvalidArgument("missing string field event");
    if (event.empty()) return Status::InvalidArgument("field event is empty");
    simdjson::dom::object body;
    if (obj.at_key("body").get(body)) return Status::InvalidArgument("missing object field body");
    bool wrong = false;
    auto rid = StringOrNumberField(body, "id", &wrong);
    if (!rid || rid->empty()) return Status::InvalidArgument("missing field body.id");
    auto updated = StringOrNumberField(body, "updated_at", &wrong);
    id->provider_event_id = std::string(event) + ":" + *rid;
    id->id_source = "event:body.id";
    if (updated && !updated->empty()) {
      id->provider_event_id += ":" + *updated;
      id->id_source = "event:body.id:body.updated_at";
      if (auto t = ParseIso8601Micros(*updated)) id->source_time_us = *t - offset_us_;
    }
    return Status::OK();
  }

 private:
  std::string mode_;
  std::string expected_;
  int64_t offset_us_;
};

}  // namespace

std::optional<int64_t> AlowareUtcOffsetUs(std::string_view offset) {
  auto probe = ParseIso8601Micros("1970-01-01T00:00:00" + std::string(offset));
  if (!probe) return std::nullopt;
  return -*probe;
}

std::vector<SettingSpec> AlowareWebhookSettings() {
  return {
      {"auth", false, "", "none | basic | bearer: what Aloware is set to send"},
      {"allow_unauthenticated", false, "false",
       "true: take auth = none (anyone who knows the URL may post webhooks)"},
      {"username", false, "", "Basic auth user name"},
      {"password", true, "", "Basic auth password"},
      {"token", true, "", "Bearer token"},
      // Its times are zone-less: read in this zone, for the webhook's
      // source time and for the facts' (was sync.aloware_utc_offset_minutes).
      {"utc_offset", false, "+00:00", "zone of Aloware's zone-less times, e.g. -05:00", false,
       "sync.aloware_utc_offset_minutes",
       [](const std::string& minutes) {
         int m = 0;
         try {
           m = std::stoi(minutes);
         } catch (...) {
           return minutes;  // refused below as it is
         }
         char text[24];
         std::snprintf(text, sizeof(text), "%c%02d:%02d", m < 0 ? '-' : '+', std::abs(m) / 60,
                       std::abs(m) % 60);
         return std::string(text);
       }},
      // Aloware does not publish its contact event names.
      {"contact_events", false, kAlowareContactEvents,
       "Aloware webhook event names that carry a contact", false, "sync.aloware_contact_events"},
  };
}

std::unique_ptr<WebhookSource> NewAlowareWebhookSource(const SystemSettings& s,
                                                       std::vector<SettingProblem>* problems) {
  size_t before = problems->size();
  std::string mode = s.at("auth");
  std::string expected;
  if (mode == "basic") {
    if (s.at("username").empty()) problems->push_back({"username", "required when auth = basic"});
    if (s.at("password").empty()) problems->push_back({"password", "required when auth = basic"});
    expected = "Basic " + Base64Encode(s.at("username") + ":" + s.at("password"));
  } else if (mode == "bearer") {
    if (s.at("token").empty()) problems->push_back({"token", "required when auth = bearer"});
    expected = "Bearer " + s.at("token");
  } else if (mode == "none") {
    if (s.at("allow_unauthenticated") != "true") {
      problems->push_back({"auth", "none takes webhooks from anyone who knows the URL; use "
                                   "basic or bearer, or set allow_unauthenticated = true"});
    }
  } else {
    problems->push_back({"auth", "must be none, basic or bearer"});
  }
  if (s.at("allow_unauthenticated") != "true" && s.at("allow_unauthenticated") != "false") {
    problems->push_back({"allow_unauthenticated", "must be true or false"});
  }
  auto offset = AlowareUtcOffsetUs(s.at("utc_offset"));
  if (!offset) problems->push_back({"utc_offset", "must look like +00:00 or -05:00"});
  if (SplitCommaList(s.at("contact_events")).empty())
    problems->push_back({"contact_events", "must name at least one event"});
  if (problems->size() != before) return nullptr;
  return std::make_unique<AlowareSource>(mode, expected, *offset);
}

}  // namespace dfm
