// Aloware outbound client (docs/vendors/aloware-api.md). The api_token goes
// in the JSON body of POSTs and the query of GETs; there is no auth header.
//
// upsert:   POST /api/v1/webhook/forms {phone_number, ..., force_update: 1}
//           (the phone number is Aloware's match key, so a retried write
//           updates rather than duplicates), then, since the answer carries
//           no id, GET /api/v1/webhook/contact/phone-number for it.
// mark_dnc, opt_out: the same write with is_dnc: 1 (Aloware's one flag
//           stops calls and texts alike). opt_in: is_dnc: 0. A consent
//           write carries only the phone (Aloware's record key) and
//           is_dnc, never a name or email its validation could refuse.
// backfill: Aloware has no list API; contacts are looked up by phone
//           (GET /api/v1/webhook/contact/phone-number), 404 when unknown.
// lists:    tags -> lists (sync rules). Only additions: the write above with
//           list_ids = lists_add. With removals: Aloware can only take a
//           contact out of all its Power Dialer lists (POST
//           /api/v1/webhook/powerdialer-remove-contact-from-lists
//           {api_token, contact_id}; 404 when Aloware has no such contact),
//           so the contact is looked up, taken out of all, and written back
//           with list_ids = lists_keep (every mapped list it still belongs
//           to). Lists that no tag maps to are lost by a removal: see
//           docs/sync-rules.md.
// send (channel "call", the dialer role): a campaign's call step puts the
//           person on the Power Dialer of the user Aloware assigns them to:
//           the write above with add_to_powerdialer: 1 and
//           powerdialer_position "bottom" (Aloware has no call to add to a
//           named list, docs/vendors/aloware-api.md §4); the call's
//           disposition comes back in its call webhooks.
// A contact without a phone cannot be written to Aloware: the push fails for
// good with a reason.
#include <simdjson.h>

#include <memory>

#include "connectors/aloware/aloware.h"
#include "sync/consent.h"
#include "sync/fact.h"
#include "util/json.h"

namespace dfm {
namespace {

const std::pair<const char*, const char*> kFieldNames[] = {
    {fields::kFirstName, "first_name"}, {fields::kLastName, "last_name"},
    {fields::kEmail, "email"},          {fields::kCompanyName, "company_name"},
    {fields::kAddress1, "address"},     {fields::kCity, "city"},
    {fields::kState, "state"},          {fields::kPostalCode, "zipcode"},
    {fields::kCountry, "country"},
};

std::string Message(const HttpResponse& r) {
  if (r.status == 0) return r.error;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string msg;
  std::string_view s;
  if (!parser.parse(r.body).get(doc) && (!doc["message"].get(s) || !doc["error"].get(s)))
    msg = std::string(s);
  return SafeDetail(r.status, msg);
}

class AlowareClient final : public VendorClient {
 public:
  AlowareClient(const SystemSettings& s, HttpClient* http)
      : http_(http),
        base_(ApiBaseUrl(s)),
        timeout_ms_(std::stoll(s.at("request_timeout_ms"))) {}

  // A dialer request (a campaign's call step) queues the person anew each
  // time it is written: one whose answer was lost is not written again.
  bool MayApplyTwice(const PushRequest& req) const override {
    return req.op == "send" && req.channel == channels::kCall;
  }

  void Push(const PushRequest& req, const Credentials& creds,
            std::function<void(PushResult)> done) override {
    auto phone = req.fields.find(fields::kPhone);
    if (phone == req.fields.end() || phone->second.empty()) {
      PushResult r;
      r.http_status = 422;  // settled without a request: Aloware matches by phone only
      r.detail = "Aloware needs a phone number; the contact has none";
      done(std::move(r));
      return;
    }
    if (req.op == "lists") return Lists(req, creds, phone->second, std::move(done));
    if (req.op == "read_consent") return ReadConsent(req, creds, phone->second, std::move(done));
    if (req.op == "send" && req.channel == channels::kCall) {
      std::string body = "{\"api_token\":";
      AppendJsonString(&body, creds.access_token);
      body += ",\"phone_number\":";
      AppendJsonString(&body, phone->second);
      body += ",\"add_to_powerdialer\":1,\"powerdialer_position\":\"bottom\",\"force_update\":1}";
      // Settled by the write: a retry would queue the person again (a
      // second call), so the id's lookup after it may fail without one.
      return WriteForm(creds.access_token, phone->second, std::move(body),
                       std::make_shared<PushResult>(), std::move(done), /*write_settles=*/true);
    }
    if (req.op != "upsert" && req.op != "mark_dnc" && req.op != "opt_out" && req.op != "opt_in") {
      PushResult r;
      r.http_status = 422;
      r.detail = "Aloware has no push op \"" + req.op + "\"";
      return done(std::move(r));
    }
    std::string body = "{";
    auto add = [&](const char* k, const std::string& v) {
      if (body.size() > 1) body += ",";
      AppendJsonString(&body, k);
      body += ":";
      AppendJsonString(&body, v);
    };
    add("api_token", creds.access_token);
    add("phone_number", phone->second);
    const bool consent = req.op != "upsert";
    for (const auto& [ours, theirs] : kFieldNames) {
      auto it = req.fields.find(ours);
      if (it != req.fields.end() && !consent) add(theirs, it->second);
    }
    auto tags = req.fields.find(fields::kTags);
    if (tags != req.fields.end() && !consent) {
      std::string csv = tags->second;
      for (auto& ch : csv)
        if (ch == '\n') ch = ',';
      add("tags", csv);
    }
    body += ",\"force_update\":1";
    if (req.op == "mark_dnc" || req.op == "opt_out") body += ",\"is_dnc\":1";
    if (req.op == "opt_in") body += ",\"is_dnc\":0";
    body += "}";
    WriteForm(creds.access_token, phone->second, std::move(body), std::make_shared<PushResult>(),
              std::move(done));
  }

  // POST /api/v1/webhook/forms, then the lookup for the contact's id.
  void WriteForm(const std::string& token, const std::string& number, std::string body,
                 std::shared_ptr<PushResult> result, std::function<void(PushResult)> done,
                 bool write_settles = false) {
    HttpRequest r;
    r.method = "POST";
    r.url = base_ + "/api/v1/webhook/forms";
    r.timeout_ms = timeout_ms_;
    r.headers = {{"Accept", "application/json"}, {"Content-Type", "application/json"}};
    r.body = std::move(body);
    http_->Send(std::move(r), [this, token, number, result, write_settles,
                               done = std::move(done)](HttpResponse resp) {
      result->requests++;
      result->http_status = resp.status;
      result->not_sent = resp.not_sent;  // never left: a retry cannot queue twice
      ReadRateHeaders(resp, result.get());
      if (resp.status / 100 != 2) {
        result->auth_rejected = resp.status == 401;
        result->detail = resp.status == 0 ? resp.error : Message(resp);
        done(std::move(*result));
        return;
      }
      Lookup(token, number, result, done, /*missing_ok=*/false, write_settles);
    });
  }

  static std::string ListsBody(const std::string& token, const std::string& number,
                               const std::string& list_ids) {
    std::string b = "{\"api_token\":";
    AppendJsonString(&b, token);
    b += ",\"phone_number\":";
    AppendJsonString(&b, number);
    b += ",\"list_ids\":";
    AppendJsonString(&b, list_ids);
    return b + ",\"force_update\":1}";
  }

  void Lists(const PushRequest& req, const Credentials& creds, const std::string& number,
             std::function<void(PushResult)> done) {
    std::string token = creds.access_token, keep = req.Field("lists_keep");
    auto result = std::make_shared<PushResult>();
    if (req.Field("lists_remove").empty())
      return WriteForm(token, number, ListsBody(token, number, req.Field("lists_add")), result, std::move(done));
    // Removal: find the contact, take it out of every list, write back the kept ones.
    auto after_lookup = [this, token, number, keep, result, done](PushResult found) mutable {
      result->requests += found.requests;
      if (found.http_status / 100 != 2) return done(std::move(found));
      if (found.external_id.empty()) {  // Aloware has no such contact: nothing to take out
        if (keep.empty()) {
          result->http_status = 200;
          return done(std::move(*result));
        }
        return WriteForm(token, number, ListsBody(token, number, keep), result, std::move(done));
      }
      HttpRequest r;
      r.method = "POST";
      r.url = base_ + "/api/v1/webhook/powerdialer-remove-contact-from-lists";
      r.timeout_ms = timeout_ms_;
      r.headers = {{"Accept", "application/json"}, {"Content-Type", "application/json"}};
      r.body = "{\"api_token\":";
      AppendJsonString(&r.body, token);
      r.body += ",\"contact_id\":";
      AppendJsonString(&r.body, found.external_id);
      r.body += "}";
      std::string id = found.external_id;
      http_->Send(std::move(r), [this, token, number, keep, id, result, done](HttpResponse resp) mutable {
        result->requests++;
        result->http_status = resp.status;
        ReadRateHeaders(resp, result.get());
        if (resp.status / 100 != 2 && resp.status != 404) {
          result->auth_rejected = resp.status == 401;
          result->detail = Message(resp);
          return done(std::move(*result));
        }
        if (keep.empty()) {
          result->http_status = 200;
          result->external_id = id;
          return done(std::move(*result));
        }
        WriteForm(token, number, ListsBody(token, number, keep), result, std::move(done));
      });
    };
    Lookup(token, number, std::make_shared<PushResult>(), after_lookup, /*missing_ok=*/true);
  }

  bool CanLookupByPhone() const override { return true; }

  void LookupByPhone(const std::string& e164, const Credentials& creds,
                     std::function<void(ContactPage)> done) override {
    HttpRequest r;
    std::string path = base_ + "/api/v1/webhook/contact/phone-number";
    r.url =
        path + "?api_token=" + UrlEscape(creds.access_token) + "&phone_number=" + UrlEscape(e164);
    r.timeout_ms = timeout_ms_;
    r.headers = {{"Accept", "application/json"}};
    http_->Send(std::move(r), [path, done = std::move(done)](HttpResponse resp) {
      // The url kept has neither the token nor the phone.
      ContactPage p = PageFromResponse(resp, path, Message(resp));
      if (resp.status / 100 != 2) return done(std::move(p));
      simdjson::dom::parser parser;
      simdjson::dom::element doc, contact, id;
      if (parser.parse(resp.body).get(doc)) {
        p.http_status = 0;  // unreadable: ask again
        p.detail = "contact lookup answer is not JSON";
        return done(std::move(p));
      }
      if (doc["contact"].get(contact) != simdjson::SUCCESS || !contact.is_object()) contact = doc;
      ListedContact lc;
      std::string_view sv;
      int64_t n = 0;
      if (!contact["id"].get(id)) {
        if (!id.get(sv))
          lc.external_id = std::string(sv);
        else if (!id.get(n))
          lc.external_id = std::to_string(n);
      }
      if (lc.external_id.empty()) {  // no contact in the answer: as unknown
        p.http_status = 404;
        return done(std::move(p));
      }
      if (!contact["updated_at"].get(sv)) lc.version = std::string(sv);
      lc.body = simdjson::minify(contact);
      p.contacts.push_back(std::move(lc));
      done(std::move(p));
    });
  }

 private:
  // read_consent: the lookup's is_dnc, for each channel asked (one flag).
  void ReadConsent(const PushRequest& req, const Credentials& creds, const std::string& number,
                   std::function<void(PushResult)> done) {
    LookupByPhone(number, creds, [channels = req.channel, done = std::move(done)](ContactPage p) {
      PushResult r;
      r.requests = 1;
      r.http_status = p.http_status;
      r.detail = p.detail;
      r.auth_rejected = p.auth_rejected;
      r.retry_after_us = p.retry_after_us;
      if (p.http_status == 404) {  // no record: nothing it could hold
        r.http_status = 200;
        r.detail = "no Aloware contact";
        return done(std::move(r));
      }
      if (p.http_status / 100 != 2 || p.contacts.empty()) return done(std::move(r));
      simdjson::dom::parser parser;
      simdjson::dom::element c, flag;
      bool dnc = false;
      if (!parser.parse(p.contacts[0].body).get(c) && !c["is_dnc"].get(flag)) {
        bool b = false;
        int64_t n = 0;
        std::string_view s;
        dnc = (!flag.get(b) && b) || (!flag.get(n) && n != 0) || (!flag.get(s) && s == "1");
      }
      for (const auto& ch : SplitChannels(channels)) r.answered["held." + ch] = dnc ? "out" : "in";
      r.external_id = p.contacts[0].external_id;
      r.detail = "read the Aloware contact";
      done(std::move(r));
    });
  }

  // `missing_ok`: a 404 answers 200 with no id (else 503: written but not
  // found yet, so the whole idempotent push is retried). `write_settles`:
  // the write was not idempotent (a dialer request): any failure of the
  // lookup answers the write's 2xx, with no id.
  void Lookup(const std::string& token, const std::string& number,
              std::shared_ptr<PushResult> result, std::function<void(PushResult)> done,
              bool missing_ok = false, bool write_settles = false) {
    HttpRequest r;
    r.url = base_ + "/api/v1/webhook/contact/phone-number?api_token=" + UrlEscape(token) +
            "&phone_number=" + UrlEscape(number);
    r.timeout_ms = timeout_ms_;
    r.headers = {{"Accept", "application/json"}};
    const int written = result->http_status;
    http_->Send(std::move(r), [result, missing_ok, write_settles, written,
                               done = std::move(done)](HttpResponse resp) {
      result->requests++;
      result->http_status = resp.status;
      ReadRateHeaders(resp, result.get());
      if (write_settles && resp.status / 100 != 2) {
        result->http_status = written;
        result->detail =
            "queued on the dialer; the contact's id not read back (" + Message(resp) + ")";
        done(std::move(*result));
        return;
      }
      if (resp.status == 404 && missing_ok) {
        result->http_status = 200;
        done(std::move(*result));
        return;
      }
      if (resp.status / 100 != 2) {
        // Written but not found at once: retry the whole (idempotent) push.
        if (resp.status == 404) result->http_status = 503;
        result->detail = Message(resp);
        done(std::move(*result));
        return;
      }
      simdjson::dom::parser parser;
      simdjson::dom::element doc;
      if (!parser.parse(resp.body).get(doc)) {
        simdjson::dom::element id;
        if (!doc["id"].get(id) || !doc["contact"]["id"].get(id)) {
          std::string_view s;
          int64_t n = 0;
          if (!id.get(s))
            result->external_id = std::string(s);
          else if (!id.get(n))
            result->external_id = std::to_string(n);
        }
      }
      if (result->external_id.empty() && write_settles) {
        result->http_status = written;
        result->detail = "queued on the dialer; the contact lookup answer has no id";
      } else if (result->external_id.empty()) {
        result->http_status = 0;
        result->detail = "contact lookup answer has no id";
      }
      done(std::move(*result));
    });
  }

  HttpClient* http_;
  std::string base_;
  int64_t timeout_ms_;
};

}  // namespace

std::vector<SettingSpec> AlowareApiSettings() {
  std::vector<SettingSpec> settings = {
      {"api_base_url", false, "",
       "Aloware API base URL (https://app.aloware.com); empty: no pushes"},
      {"api_token", true, "", "Aloware API token (Lead API / Contact Lookup)"},
  };
  AddDeliverySettings(&settings, {"60", "60000", "0", "Aloware publishes none: be polite"});
  return settings;
}

std::unique_ptr<VendorClient> NewAlowareClient(const SystemSettings& s, HttpClient* http) {
  return std::make_unique<AlowareClient>(s, http);
}

Credentials AlowareCredentials(const SystemSettings& s) {
  Credentials c;
  c.access_token = s.at("api_token");
  return c;
}

}  // namespace dfm
