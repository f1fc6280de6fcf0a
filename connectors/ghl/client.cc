// GoHighLevel API v2 outbound client (docs/vendors/ghl-api.md).
//
// upsert:   known id     -> PUT /contacts/{id}      (404 / "not found" -> as unknown)
//           unknown id   -> GET /contacts/search/duplicate?locationId&number&email
//                           -> PUT /contacts/{id} when found
//                           -> POST /contacts/upsert otherwise (matches by phone/email
//                              itself, so a retried create cannot duplicate)
// mark_dnc, opt_out, opt_in (consent pushes, connectors/ghl/every_record.h):
//           every record of the person: POST /contacts/search (phone OR
//           email), then PUT /contacts/{id} with only {"dnd": true}
//           (mark_dnc) or dndSettings {<channel>: {status: "active" |
//           "inactive", message}} for the push's channels, the push's own
//           record first; a record gone is skipped. No record at all: an
//           opt_out POSTs /contacts/upsert with the phone, email and DND, so
//           a contact GoHighLevel does not know yet is created with its DND
//           set; an opt_in or mark_dnc makes none (nothing to lift or mark).
// backfill: POST /contacts/search {locationId, pageLimit, searchAfter}: the
//           cursor is the last contact's `searchAfter` array, as GHL sent it.
// Message ops need the contact's id: the push's, else the duplicate search,
// else POST /contacts/upsert (so a call for a contact GoHighLevel does not
// know yet creates it first); the push's own answered "Contact with id ...
// not found" (merged away) is looked for so once, by phone or email. Then:
// message:  the conversation (GET /conversations/search?locationId&contactId,
//           else POST /conversations/), then POST /conversations/messages/inbound
//           {type SMS, conversationId, contactId, conversationProviderId,
//           message, direction, altId = message key, date}.
// call:     the conversation, then an outbound call POST
//           /conversations/messages/outbound {type Call, ..., call{to, from,
//           status}, attachments [recording]}; an inbound one the inbound
//           endpoint with type Call and direction inbound.
//           A retried message or call (attempt after a timeout or 5xx, or a
//           push re-sent after a restart) first looks for its altId in GET
//           /conversations/{id}/messages (the latest page, up to 100), so
//           one written is not written twice unless 100 messages came after
//           it on that conversation.
// message_status: PUT /conversations/messages/{id}/status {status, error};
//           a 403 (GoHighLevel's answer for a while after a delivery) is retried.
//           A 400 "already exists" when creating a conversation searches again.
// note:     POST /contacts/{id}/notes {body}; a retried one first looks for
//           its text in GET /contacts/{id}/notes.
// tags:     POST /contacts/{id}/tags {tags: [tags_add]} (one tag per line).
// Contacts, notes and tags carry Version 2021-07-28, conversations 2021-04-15;
// every request Authorization: Bearer.
#include <simdjson.h>

#include <algorithm>
#include <memory>

#include "connectors/common/json_body.h"
#include "connectors/ghl/client_impl.h"
#include "connectors/ghl/dnd.h"
#include "connectors/ghl/every_record.h"
#include "connectors/ghl/ghl.h"
#include "sync/consent.h"
#include "sync/fact.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/strings.h"
namespace dfm {
namespace ghl {

// Aloware's (and others') call outcomes -> GoHighLevel's call.status enum.
std::string CallStatus(const std::string& s) {
  if (s == "busy" || s == "voicemail" || s == "failed" || s == "answered" || s == "pending")
    return s;
  if (s == "missed" || s == "no-answer" || s == "no answer" || s == "unanswered") return "no-answer";
  if (s == "canceled" || s == "cancelled" || s == "abandoned") return "canceled";
  return "completed";
}

const std::pair<const char*, const char*> kFieldNames[] = {
    {fields::kFirstName, "firstName"}, {fields::kLastName, "lastName"},
    {fields::kEmail, "email"},         {fields::kPhone, "phone"},
    {fields::kAddress1, "address1"},   {fields::kCity, "city"},
    {fields::kState, "state"},         {fields::kPostalCode, "postalCode"},
    {fields::kCountry, "country"},     {fields::kCompanyName, "companyName"},
};

std::string ContactBody(const PushRequest& req, const std::string& location_id,
                        bool with_location) {
  std::string out = "{";
  bool first = true;
  auto key = [&](const char* k) {
    if (!first) out += ",";
    first = false;
    AppendJsonString(&out, k);
    out += ":";
  };
  if (with_location) {
    key("locationId");
    AppendJsonString(&out, location_id);
  }
  for (const auto& [ours, theirs] : kFieldNames) {
    // UpdateContactDto has no companyName (docs/vendors/ghl-api.md 3.3).
    if (!with_location && std::string_view(ours) == fields::kCompanyName) continue;
    auto it = req.fields.find(ours);
    if (it == req.fields.end()) continue;
    key(theirs);
    AppendJsonString(&out, it->second);
  }
  auto tags = req.fields.find(fields::kTags);
  if (tags != req.fields.end()) {
    key("tags");
    JsonArray list;  // one tag per line; empty lines are no tags
    for (const std::string& one : SplitChannels(tags->second, '\n')) list.Str(one);
    out += list.Finish();
  }
  if (req.op == "mark_dnc") {
    key("dnd");
    out += "true";
  }
  if (req.op == "opt_out" || req.op == "opt_in") {
    // dndSettings: only the channels named; the others keep their state.
    key("dndSettings");
    out += "{";
    bool first_ch = true;
    const std::vector<std::string> named = SplitChannels(req.channel);
    for (const auto& [theirs, ours] : ghl::kDndChannels) {
      if (std::find(named.begin(), named.end(), ours) == named.end()) continue;
      if (!first_ch) out += ",";
      first_ch = false;
      AppendJsonString(&out, theirs);
      out += ":{\"status\":";
      AppendJsonString(&out, req.op == "opt_out" ? "active" : "inactive");
      out += ",\"message\":";
      AppendJsonString(&out, "DF-Middleware: " + req.reason);
      out += "}";
    }
    out += "}";
  }
  return out + "}";
}

// The "contact" object's id in a response body, or empty.
std::string ContactIdIn(const std::string& body, bool* has_null_contact) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc)) return {};
  simdjson::dom::element c;
  if (doc["contact"].get(c)) return {};
  if (c.is_null()) {
    if (has_null_contact) *has_null_contact = true;
    return {};
  }
  std::string_view id;
  if (c["id"].get(id)) return {};
  return std::string(id);
}

// The vendor's error message (string or first of an array), for details.
// The vendor's "message" (a string, or the first of an array); may hold
// personal data: only for decisions, never recorded as is.
std::string RawMessage(const HttpResponse& r) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string msg;
  if (!parser.parse(r.body).get(doc)) {
    std::string_view s;
    simdjson::dom::array arr;
    if (!doc["message"].get(s)) {
      msg = std::string(s);
    } else if (!doc["message"].get(arr)) {
      for (auto el : arr) {
        if (!el.get(s)) {
          msg = std::string(s);
          break;
        }
      }
    }
  }
  return msg;
}

// What is recorded of a failed request.
std::string ErrorMessage(const HttpResponse& r) {
  return r.status == 0 ? r.error : SafeDetail(r.status, RawMessage(r));
}

bool IsNotFound(const HttpResponse& r) {
  if (r.status == 404) return true;
  if (r.status != 400) return false;
  return AsciiLower(RawMessage(r)).find("not found") != std::string::npos;
}

void GhlClient::ListContacts(const std::string& cursor, int page_size, const Credentials& creds,
                             std::function<void(ContactPage)> done) {
  auto st = std::make_shared<State>();
  st->token = creds.access_token;
  HttpRequest r = Base(st, "POST", "/contacts/search");
  r.body = "{\"locationId\":";
  AppendJsonString(&r.body, location_);
  r.body += ",\"pageLimit\":" + std::to_string(page_size);
  // The cursor is the JSON array GoHighLevel wrote (a resumed run reads
  // it back from the data directory: checked before it is sent).
  if (!cursor.empty()) {
    simdjson::dom::parser check;
    simdjson::dom::array arr;
    if (check.parse(cursor).get(arr) != simdjson::SUCCESS) {
      ContactPage p;
      p.http_status = 400;  // ours, not GoHighLevel's: the run stops with the reason
      p.detail = "the stored searchAfter position is not a JSON array; run with --restart";
      return done(std::move(p));
    }
    r.body += ",\"searchAfter\":" + cursor;
  }
  r.body += "}";
  std::string url = r.url;
  http_->Send(std::move(r), [url, page_size, cursor, done = std::move(done)](HttpResponse resp) {
    ContactPage p = PageFromResponse(resp, url, ErrorMessage(resp));
    if (resp.status / 100 != 2) return done(std::move(p));
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    simdjson::dom::array contacts;
    if (parser.parse(resp.body).get(doc) || doc["contacts"].get(contacts)) {
      p.http_status = 0;  // unreadable: try again
      p.detail = "search answer has no \"contacts\" array";
      done(std::move(p));
      return;
    }
    int64_t total = 0;
    if (!doc["total"].get(total)) p.total = total;
    simdjson::dom::element last_cursor;
    bool has_cursor = false;
    for (auto c : contacts) {
      std::string_view id;
      if (c["id"].get(id) || id.empty()) continue;
      ListedContact lc;
      lc.external_id = std::string(id);
      std::string_view updated;
      if (!c["dateUpdated"].get(updated)) lc.version = std::string(updated);
      lc.body = simdjson::minify(c);
      p.contacts.push_back(std::move(lc));
      has_cursor = !c["searchAfter"].get(last_cursor);
    }
    if (contacts.size() == static_cast<size_t>(page_size)) {
      // A full page may have more after it: without a cursor, or with the
      // one just asked for, paging cannot go on (and must not loop).
      if (has_cursor) p.next_cursor = simdjson::minify(last_cursor);
      if (!has_cursor || p.next_cursor == cursor) {
        p.next_cursor.clear();
        p.http_status = 502;
        p.detail = "search page without a new searchAfter cursor";
        p.contacts.clear();
      }
    }
    done(std::move(p));
  });
}

void GhlClient::Push(const PushRequest& req, const Credentials& creds,
                     std::function<void(PushResult)> done) {
  auto st = std::make_shared<State>();
  st->req = req;
  st->token = creds.access_token;
  st->done = std::move(done);
  const std::string& op = req.op;
  if (op == "message" || op == "call" || op == "message_status" || op == "note" || op == "tags") {
    if ((op == "message" || op == "call" || op == "message_status") && provider_.empty()) {
      st->result.http_status = 422;  // settled without a request: nothing would accept it
      st->result.detail =
          "ghl.conversation_provider_id is not set: texts and calls cannot be recorded";
      return st->done(std::move(st->result));
    }
    if (op == "message_status") return UpdateStatus(st);
    st->message = true;
    if (!req.external_id.empty()) return OnContact(st, req.external_id);
    return Search(st);
  }
  if (op == "read_consent") return ReadConsent(st);
  if (op != "upsert" && op != "mark_dnc" && op != "opt_out" && op != "opt_in") {
    st->result.http_status = 422;
    st->result.detail = "GoHighLevel has no push op \"" + op + "\"";
    return st->done(std::move(st->result));
  }
  if (ghl::IsConsentPush(op)) return SetEveryRecord(st);
  if (!req.external_id.empty()) {
    Update(st, req.external_id, /*fallback=*/true);
  } else {
    Search(st);
  }
}

void GhlClient::RefreshToken(const Credentials& creds, std::function<void(TokenGrant)> done) {
  HttpRequest r;
  r.method = "POST";
  r.url = base_ + "/oauth/token";
  r.timeout_ms = timeout_ms_;
  r.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
               {"Accept", "application/json"}};
  r.body = FormEncode({{"client_id", client_id_},
                       {"client_secret", client_secret_},
                       {"grant_type", "refresh_token"},
                       {"refresh_token", creds.refresh_token},
                       {"user_type", "Location"}});
  http_->Send(std::move(r), [done = std::move(done)](HttpResponse resp) {
    TokenGrant g;
    g.http_status = resp.status;
    if (resp.status / 100 == 2) {
      simdjson::dom::parser parser;
      simdjson::dom::element doc;
      std::string_view at, rt;
      int64_t exp = 0;
      if (!parser.parse(resp.body).get(doc) && !doc["access_token"].get(at) &&
          !doc["refresh_token"].get(rt) && !doc["expires_in"].get(exp)) {
        g.ok = true;
        g.access_token = std::string(at);
        g.refresh_token = std::string(rt);
        g.expires_in_s = exp;
      } else {
        g.detail = "token response without access_token, refresh_token and expires_in";
      }
    } else {
      g.detail = ErrorMessage(resp);
    }
    done(std::move(g));
  });
}

HttpRequest GhlClient::Base(const StatePtr& st, const char* method, std::string path,
                            const char* version) const {
  HttpRequest r;
  r.method = method;
  r.url = base_ + path;
  r.timeout_ms = timeout_ms_;
  r.headers = {{"Authorization", "Bearer " + st->token},
               {"Version", version},
               {"Accept", "application/json"}};
  if (std::string(method) != "GET") r.headers.emplace_back("Content-Type", "application/json");
  return r;
}

// Records the response's signals; true when the push is settled by it
// (failure of any kind), in which case `done` has been called.
bool GhlClient::Settle(const StatePtr& st, const HttpResponse& resp) {
  st->result.requests++;
  st->result.http_status = resp.status;
  ReadRateHeaders(resp, &st->result);
  if (resp.status / 100 == 2) return false;
  st->result.auth_rejected = resp.status == 401;
  st->result.detail = ErrorMessage(resp);
  st->done(std::move(st->result));
  return true;
}

void GhlClient::Search(const StatePtr& st) {
  std::string q = "/contacts/search/duplicate?locationId=" + UrlEscape(location_);
  auto ph = st->req.fields.find(fields::kPhone);
  auto em = st->req.fields.find(fields::kEmail);
  if (ph != st->req.fields.end() && !ph->second.empty()) q += "&number=" + UrlEscape(ph->second);
  if (em != st->req.fields.end() && !em->second.empty()) q += "&email=" + UrlEscape(em->second);
  http_->Send(Base(st, "GET", q), [this, st](HttpResponse resp) {
    if (Settle(st, resp)) return;
    std::string id = ContactIdIn(resp.body, nullptr);
    if (!id.empty()) {
      if (st->message) return OnContact(st, id);
      Update(st, id, /*fallback=*/false);
    } else {
      Upsert(st);
    }
  });
}

// A message op's linked record answered "not found" (deleted, or merged
// into another since it was linked: "Contact with id ... not found", at
// the conversation's creation, the message's write or a note's): the
// person's record is looked for by phone or email, as an upsert's is
// (Search), once; true when it is. Not without a phone or an email (the
// search would match nothing and the upsert make a blank record). The
// record found is answered (answer.contact_id, beside answer.gone, the
// link that failed): the contact links to it (model::DecideFoundAnew), so
// its next message goes there at once.
bool GhlClient::LookForAnew(const StatePtr& st, const HttpResponse& resp) {
  if (st->looked_anew || st->req.external_id.empty() || st->contact_id != st->req.external_id ||
      !IsNotFound(resp) ||
      (st->req.Field(fields::kPhone).empty() && st->req.Field(fields::kEmail).empty()))
    return false;
  if (AsciiLower(RawMessage(resp)).find("contact") == std::string::npos)
    return false;  // a conversation's, a message's
  st->looked_anew = true;
  st->notes_checked = false;  // the record found is looked at for an earlier attempt's note
  st->result.requests++;
  Search(st);
  return true;
}

void GhlClient::Update(const StatePtr& st, const std::string& id, bool fallback) {
  HttpRequest r = Base(st, "PUT", "/contacts/" + UrlEscape(id));
  r.body = ContactBody(st->req, location_, false);
  http_->Send(std::move(r), [this, st, id, fallback](HttpResponse resp) {
    if (fallback && IsNotFound(resp)) {  // deleted or merged away: find it again
      st->result.requests++;
      Search(st);
      return;
    }
    if (Settle(st, resp)) return;
    st->result.external_id = id;
    st->done(std::move(st->result));
  });
}

void GhlClient::Upsert(const StatePtr& st) {
  HttpRequest r = Base(st, "POST", "/contacts/upsert");
  r.body = ContactBody(st->req, location_, true);
  http_->Send(std::move(r), [this, st](HttpResponse resp) {
    if (Settle(st, resp)) return;
    std::string id = ContactIdIn(resp.body, nullptr);
    if (id.empty()) {
      st->result.http_status = 0;  // unreadable answer: retry (the upsert is idempotent)
      st->result.detail = "upsert answer has no contact.id";
    } else if (st->message) {
      return OnContact(st, id);
    } else {
      st->result.external_id = id;
      // A consent push's record made with its DND: the one it set.
      if (st->req.op != "upsert") st->result.answered["ids"] = id;
    }
    st->done(std::move(st->result));
  });
}

}  // namespace ghl

std::vector<SettingSpec> GhlApiSettings() {
  std::vector<SettingSpec> settings = {
      {"api_base_url", false, "",
       "GoHighLevel API base URL (https://services.leadconnectorhq.com); empty: no pushes"},
      {"location_id", false, "", "the sub-account (location) contacts are written to"},
      {"access_token", true, "", "OAuth access token or Private Integration Token"},
      {"refresh_token", true, "",
       "OAuth refresh token (single use; the newest is kept in the data dir; a reload or restart "
       "that leaves this and `access_token` as they were keeps the newest, and a new one given "
       "here replaces it)"},
      {"client_id", false, "", "OAuth client id (with client_secret: tokens are refreshed)"},
      {"client_secret", true, "", "OAuth client secret"},
      {"token_expires_at", false, "0", "Unix seconds when access_token expires; 0: unknown", true},
      {"conversation_provider_id", false, "",
       "the custom conversation provider texts and calls are recorded under (Marketplace app); "
       "empty: texts and calls are not recorded"},
  };
  AddDeliverySettings(&settings,
                      {"100", "10000", "200000", "GoHighLevel: 100 per 10 s, 200,000 a day"});
  return settings;
}

std::unique_ptr<VendorClient> NewGhlClient(const SystemSettings& s, HttpClient* http) {
  return std::make_unique<ghl::GhlClient>(s, http);
}

Credentials GhlCredentials(const SystemSettings& s) {
  Credentials c;
  c.access_token = s.at("access_token");
  c.refresh_token = s.at("refresh_token");
  c.expires_at_us = std::stoll(s.at("token_expires_at")) * 1000000;
  return c;
}

}  // namespace dfm
