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
//           record first; a record gone is skipped. No record at all: POST
//           /contacts/upsert with the phone, email and DND, so a contact
//           GoHighLevel does not know yet is created with its DND set.
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
#include "connectors/ghl/dnd.h"
#include "connectors/ghl/every_record.h"
#include "connectors/ghl/ghl.h"
#include "sync/consent.h"
#include "sync/fact.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/strings.h"

namespace dfm {
namespace {

constexpr char kContactsVersion[] = "2021-07-28";
constexpr char kConversationsVersion[] = "2021-04-15";

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

class GhlClient final : public VendorClient {
 public:
  GhlClient(const SystemSettings& s, HttpClient* http)
      : http_(http),
        base_(ApiBaseUrl(s)),
        location_(s.at("location_id")),
        client_id_(s.at("client_id")),
        client_secret_(s.at("client_secret")),
        provider_(s.at("conversation_provider_id")),
        timeout_ms_(std::stoll(s.at("request_timeout_ms"))) {}

  bool UsesOAuth() const override { return !client_id_.empty(); }

  bool CanList() const override { return true; }

  void ListContacts(const std::string& cursor, int page_size, const Credentials& creds,
                    std::function<void(ContactPage)> done) override {
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

  void Push(const PushRequest& req, const Credentials& creds,
            std::function<void(PushResult)> done) override {
    auto st = std::make_shared<State>();
    st->req = req;
    st->token = creds.access_token;
    st->done = std::move(done);
    const std::string& op = req.op;
    if (op == "message" || op == "call" || op == "message_status" || op == "note" ||
        op == "tags") {
      if ((op == "message" || op == "call" || op == "message_status") && provider_.empty()) {
        st->result.http_status = 422;  // settled without a request: nothing would accept it
        st->result.detail = "ghl.conversation_provider_id is not set: texts and calls cannot be recorded";
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

  void RefreshToken(const Credentials& creds, std::function<void(TokenGrant)> done) override {
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

 private:
  struct State {
    PushRequest req;
    std::string token;
    std::function<void(PushResult)> done;
    PushResult result;
    bool message = false;  // a message op: the contact is only looked up (or created)
    bool searched_again = false;
    bool notes_checked = false;
    bool looked_anew = false;  // the linked record was gone: the person's looked for once
    std::string contact_id, conversation_id;
  };
  using StatePtr = std::shared_ptr<State>;

  HttpRequest Base(const StatePtr& st, const char* method, std::string path,
                   const char* version = kContactsVersion) const {
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
  static bool Settle(const StatePtr& st, const HttpResponse& resp) {
    st->result.requests++;
    st->result.http_status = resp.status;
    ReadRateHeaders(resp, &st->result);
    if (resp.status / 100 == 2) return false;
    st->result.auth_rejected = resp.status == 401;
    st->result.detail = ErrorMessage(resp);
    st->done(std::move(st->result));
    return true;
  }

  void Search(const StatePtr& st) {
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
  bool LookForAnew(const StatePtr& st, const HttpResponse& resp) {
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

  // Message ops, once the contact's id is known.
  void OnContact(const StatePtr& st, const std::string& id) {
    st->contact_id = id;
    if (st->looked_anew && id != st->req.external_id) {
      st->result.answered["contact_id"] = id;
      st->result.answered["gone"] = st->req.external_id;
    }
    const std::string& op = st->req.op;
    if (op == "note" && st->req.attempt > 1 && !st->notes_checked) {
      // A retried note: the earlier attempt may have written it.
      st->notes_checked = true;
      HttpRequest look = Base(st, "GET", "/contacts/" + UrlEscape(id) + "/notes");
      http_->Send(std::move(look), [this, st, id](HttpResponse resp) {
        if (LookForAnew(st, resp)) return;
        if (Settle(st, resp)) return;
        simdjson::dom::parser parser;
        simdjson::dom::element doc;
        simdjson::dom::array notes;
        if (!parser.parse(resp.body).get(doc) && !doc["notes"].get(notes)) {
          for (auto n : notes) {
            std::string_view body, nid;
            if (!n["body"].get(body) && body == st->req.Field("body") && !n["id"].get(nid)) {
              st->result.external_id = std::string(nid);
              return st->done(std::move(st->result));
            }
          }
        }
        OnContact(st, id);
      });
      return;
    }
    if (op == "note" || op == "tags") {
      HttpRequest r = Base(st, "POST", "/contacts/" + UrlEscape(id) + (op == "note" ? "/notes" : "/tags"));
      if (op == "note") {
        r.body = "{\"body\":";
        AppendJsonString(&r.body, st->req.Field("body"));
        r.body += "}";
      } else {
        r.body = "{\"tags\":[";
        bool first = true;
        for (const auto& t : SplitChannels(st->req.Field("tags_add"), '\n')) {
          if (!first) r.body += ",";
          first = false;
          AppendJsonString(&r.body, t);
        }
        r.body += "]}";
      }
      http_->Send(std::move(r), [this, st, op](HttpResponse resp) {
        if (LookForAnew(st, resp)) return;
        if (Settle(st, resp)) return;
        st->result.external_id = op == "note" ? JsonStringAt(resp.body, "note", "id") : st->contact_id;
        st->done(std::move(st->result));
      });
      return;
    }
    std::string q = "/conversations/search?locationId=" + UrlEscape(location_) +
                    "&contactId=" + UrlEscape(id);
    http_->Send(Base(st, "GET", q, kConversationsVersion), [this, st](HttpResponse resp) {
      if (Settle(st, resp)) return;
      simdjson::dom::parser parser;
      simdjson::dom::element doc;
      simdjson::dom::array list;
      std::string_view cid;
      if (!parser.parse(resp.body).get(doc) && !doc["conversations"].get(list)) {
        for (auto c : list) {
          if (!c["id"].get(cid) && !cid.empty()) break;
        }
      }
      if (!cid.empty()) return OnConversation(st, std::string(cid));
      HttpRequest r = Base(st, "POST", "/conversations/", kConversationsVersion);
      r.body = "{\"locationId\":";
      AppendJsonString(&r.body, location_);
      r.body += ",\"contactId\":";
      AppendJsonString(&r.body, st->contact_id);
      r.body += "}";
      http_->Send(std::move(r), [this, st](HttpResponse created) {
        if (LookForAnew(st, created)) return;
        if (created.status == 400 && !st->searched_again) {
          // "Conversation with the contact id ... already exists" (made since
          // the search, or the search lags): search once more.
          std::string m = RawMessage(created);
          if (m.find("already exists") != std::string::npos) {
            st->result.requests++;
            st->searched_again = true;
            return OnContact(st, st->contact_id);
          }
        }
        // Still "already exists": the search lags; try the push again later.
        st->result.transient = created.status == 400 && st->searched_again;
        if (Settle(st, created)) return;
        std::string conv = JsonStringAt(created.body, "conversation", "id");
        if (conv.empty()) {
          st->result.http_status = 0;  // unreadable: retry (the search finds it then)
          st->result.detail = "conversation answer has no conversation.id";
          return st->done(std::move(st->result));
        }
        OnConversation(st, conv);
      });
    });
  }

  // A retried write first looks for its altId among the conversation's
  // latest messages (one page of 100): the earlier attempt may have been
  // written. An attempt older than that page is not found and written again.
  void OnConversation(const StatePtr& st, const std::string& conversation_id) {
    st->conversation_id = conversation_id;
    if (st->req.attempt <= 1) return PostMessage(st);
    std::string q = "/conversations/" + UrlEscape(conversation_id) + "/messages?limit=100";
    http_->Send(Base(st, "GET", q, kConversationsVersion), [this, st](HttpResponse resp) {
      if (Settle(st, resp)) return;
      simdjson::dom::parser parser;
      simdjson::dom::element doc, inner, nested;
      simdjson::dom::array list;
      // {"messages": [...]} or {"messages": {"messages": [...]}}; anything
      // else holds none (a default array has no document: never iterated).
      const bool listed =
          !parser.parse(resp.body).get(doc) && !doc["messages"].get(inner) &&
          (!inner.get(list) || (!inner["messages"].get(nested) && !nested.get(list)));
      if (listed) {
        for (auto m : list) {
          std::string_view alt, id;
          if (!m["altId"].get(alt) && alt == st->req.message_key && !m["id"].get(id)) {
            st->result.external_id = std::string(id);
            return st->done(std::move(st->result));
          }
        }
      }
      PostMessage(st);
    });
  }

  void PostMessage(const StatePtr& st) {
    const PushRequest& req = st->req;
    bool call = req.op == "call";
    std::string direction = req.Field("direction");
    bool outbound_call = call && direction == "outbound";
    HttpRequest r = Base(st, "POST",
                         outbound_call ? "/conversations/messages/outbound"
                                       : "/conversations/messages/inbound",
                         kConversationsVersion);
    std::string& b = r.body;
    b = "{\"type\":";
    AppendJsonString(&b, call ? "Call" : "SMS");
    b += ",\"conversationId\":";
    AppendJsonString(&b, st->conversation_id);
    if (!outbound_call) {
      b += ",\"contactId\":";
      AppendJsonString(&b, st->contact_id);
    }
    b += ",\"conversationProviderId\":";
    AppendJsonString(&b, provider_);
    if (!outbound_call) {
      b += ",\"direction\":";
      AppendJsonString(&b, direction.empty() ? "inbound" : direction);
    }
    b += ",\"altId\":";
    AppendJsonString(&b, req.message_key);
    std::string date_us = req.Field("date_us");
    if (!date_us.empty()) {
      b += ",\"date\":";
      AppendJsonString(&b, FormatIso8601Micros(std::stoll(date_us)));
    }
    if (!call) {
      b += ",\"message\":";
      AppendJsonString(&b, req.Field("body"));
    } else {
      std::string lead = req.Field(fields::kPhone), ours = req.Field("our_number");
      bool out = direction == "outbound";
      b += ",\"call\":{";
      for (const auto& [k, v] : {std::pair<const char*, std::string>{"to", out ? lead : ours},
                                 std::pair<const char*, std::string>{"from", out ? ours : lead}}) {
        if (v.empty()) continue;  // a side the call's system did not state
        AppendJsonString(&b, k);
        b += ":";
        AppendJsonString(&b, v);
        b += ",";
      }
      b += "\"status\":";
      AppendJsonString(&b, CallStatus(req.Field("status")));
      b += "}";
      std::string rec = req.Field("recording_url");
      if (!rec.empty()) {
        b += ",\"attachments\":";
        b += JsonArray().Str(rec).Finish();
      }
    }
    b += "}";
    http_->Send(std::move(r), [this, st](HttpResponse resp) {
      if (LookForAnew(st, resp)) return;
      if (Settle(st, resp)) return;
      std::string id = JsonStringAt(resp.body, nullptr, "messageId");
      if (id.empty()) {
        st->result.http_status = 0;  // unreadable: retry (the altId lookup finds it)
        st->result.detail = "message answer has no messageId";
      } else {
        st->result.external_id = id;
      }
      st->done(std::move(st->result));
    });
  }

  void UpdateStatus(const StatePtr& st) {
    std::string id = st->req.Field("message_id");
    HttpRequest r = Base(st, "PUT", "/conversations/messages/" + UrlEscape(id) + "/status",
                         kConversationsVersion);
    r.body = "{\"status\":";
    AppendJsonString(&r.body, st->req.Field("status"));
    std::string err = st->req.Field("error");
    if (!err.empty()) {
      r.body += ",\"error\":{\"code\":\"1\",\"type\":\"saas\",\"message\":";
      AppendJsonString(&r.body, err);
      r.body += "}";
    }
    r.body += "}";
    http_->Send(std::move(r), [st, id](HttpResponse resp) {
      // GoHighLevel answers 403 "No conversation provider found" for a few
      // seconds after a delivery: try again later.
      st->result.transient = resp.status == 403;
      if (Settle(st, resp)) return;
      st->result.external_id = id;
      st->done(std::move(st->result));
    });
  }

  // A consent push: every record of the person (every_record.h).
  void SetEveryRecord(const StatePtr& st) {
    const std::string query = ghl::EveryRecordQuery(st->req, location_);
    if (query.empty()) return SetEach(st, ghl::RecordsToSet(st->req.external_id, {}), 0, {});
    HttpRequest r = Base(st, "POST", "/contacts/search");
    r.body = query;
    http_->Send(std::move(r), [this, st](HttpResponse resp) {
      if (resp.status / 100 != 2 && !st->req.external_id.empty()) {
        // The search failed: the push's own record gets it now, and the
        // push fails as the search did (tried again for the others).
        auto failed = std::make_shared<const HttpResponse>(std::move(resp));
        return SetEach(st, {st->req.external_id}, 0, {}, std::move(failed));
      }
      if (Settle(st, resp)) return;
      SetEach(st, ghl::RecordsToSet(st->req.external_id, ghl::ContactIds(resp.body)), 0, {});
    });
  }

  // read_consent: what every record of the person holds (every_record.h):
  // the search's records (their dndSettings come with them), and its own by
  // GET /contacts/{id} when the search did not list it. A read that follows
  // a consent push of ours (field "after") reads its own record and those
  // the push set (field "ids") by id, whatever the search lists: the search
  // is eventually consistent (docs/vendors/ghl-api.md 3.7) and would show
  // them as they were before the push wrote them (none of them read by id,
  // it answers nothing). After an opt-in it reads
  // each channel's dndSettings alone (the global `dnd`, which the opt-in
  // leaves, is no setting made since).
  void ReadConsent(const StatePtr& st) {
    const std::string query = ghl::EveryRecordQuery(st->req, location_);
    if (query.empty()) return ReadByIds(st, {});
    HttpRequest r = Base(st, "POST", "/contacts/search");
    r.body = query;
    http_->Send(std::move(r), [this, st](HttpResponse resp) {
      if (Settle(st, resp)) return;
      ReadByIds(st, ghl::RecordsDnd(resp.body));
    });
  }

  // The records `records` (the search's) lacks or may hold stale, read by id.
  void ReadByIds(const StatePtr& st, std::vector<ghl::RecordDnd> records) {
    const std::string& own = st->req.external_id;
    std::vector<std::string> ids;
    if (!st->req.Field("after").empty()) {
      if (!own.empty()) ids.push_back(own);
      for (const auto& id : SplitChannels(st->req.Field("ids")))
        if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
      auto fresh = [&ids](const ghl::RecordDnd& r) {
        return std::find(ids.begin(), ids.end(), r.id) != ids.end();
      };
      records.erase(std::remove_if(records.begin(), records.end(), fresh), records.end());
    } else if (!own.empty() &&
               std::none_of(records.begin(), records.end(),
                            [&own](const ghl::RecordDnd& r) { return r.id == own; })) {
      ids.push_back(own);
    }
    ReadEach(st, std::move(records), std::move(ids), 0, 0);
  }

  // GETs ids[i..] into `records` (`got` of them read so far), then
  // answers. One gone is skipped (the others tell), except after a push of
  // ours: none of its records read by id, or any unreadable, answers
  // nothing (the search's copies may be as old as the push).
  void ReadEach(const StatePtr& st, std::vector<ghl::RecordDnd> records,
                std::vector<std::string> ids, size_t i, size_t got) {
    const bool after = !st->req.Field("after").empty();
    if (i == ids.size()) {
      if (after && got == 0) records.clear();
      return AnswerHeld(st, records);
    }
    const std::string path = "/contacts/" + UrlEscape(ids[i]);
    http_->Send(Base(st, "GET", path),
                [this, st, records, ids, i, got, after](HttpResponse resp) mutable {
                  if (IsNotFound(resp)) {
                    st->result.requests++;
                  } else {
                    if (Settle(st, resp)) return;
                    auto one = ghl::ContactDnd(resp.body);
                    if (!one && after) return AnswerHeld(st, {});
                    if (one) {
                      records.push_back(std::move(*one));
                      got++;
                    }
                  }
                  ReadEach(st, std::move(records), std::move(ids), i + 1, got);
                });
  }

  static void AnswerHeld(const StatePtr& st, const std::vector<ghl::RecordDnd>& records) {
    const bool settings_only = st->req.Field("after") == "opt_in";
    st->result.answered = ghl::HeldConsent(records, SplitChannels(st->req.channel), settings_only);
    st->result.http_status = 200;
    st->result.detail = "read " + std::to_string(records.size()) + " GoHighLevel contact" +
                        (records.size() == 1 ? "" : "s");
    st->done(std::move(st->result));
  }

  // Sets ids[i..] with a body of only the consent fields; `set`: those done.
  // `then_fail`: the answer the push ends with once they are set.
  void SetEach(const StatePtr& st, std::vector<std::string> ids, size_t i, std::vector<std::string> set,
               std::shared_ptr<const HttpResponse> then_fail = nullptr) {
    if (i == ids.size()) {
      if (then_fail) {
        if (!Settle(st, *then_fail)) st->done(std::move(st->result));
        return;
      }
      if (set.empty()) return Upsert(st);  // no record yet: made with its DND set
      std::string all;
      for (const auto& id : set) all += (all.empty() ? "" : ",") + id;
      // The contact's own record, only when it is the push's own: a record
      // the search found may be another contact's (a phone or email two
      // people share), and the contact is not linked to it here
      // (answer.ids names every record set; sync_projections.cc maps the
      // ones nobody holds).
      if (set[0] == st->req.external_id) st->result.external_id = set[0];
      st->result.answered["ids"] = all;
      st->result.detail = "set on " + std::to_string(set.size()) + " GoHighLevel contact" +
                          (set.size() == 1 ? "" : "s") + ": " + all;
      return st->done(std::move(st->result));
    }
    HttpRequest r = Base(st, "PUT", "/contacts/" + UrlEscape(ids[i]));
    PushRequest only = st->req;
    only.fields.clear();  // never the phone, email or name: duplicate rules cannot refuse it
    r.body = ContactBody(only, location_, false);
    http_->Send(std::move(r), [this, st, ids, i, set, then_fail](HttpResponse resp) mutable {
      if (IsNotFound(resp)) {  // deleted or merged away: the others still count
        st->result.requests++;
        return SetEach(st, std::move(ids), i + 1, std::move(set), std::move(then_fail));
      }
      if (Settle(st, resp)) return;
      set.push_back(ids[i]);
      SetEach(st, std::move(ids), i + 1, std::move(set), std::move(then_fail));
    });
  }

  void Update(const StatePtr& st, const std::string& id, bool fallback) {
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

  void Upsert(const StatePtr& st) {
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

  HttpClient* http_;
  std::string base_, location_, client_id_, client_secret_, provider_;
  int64_t timeout_ms_;
};

}  // namespace

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
  return std::make_unique<GhlClient>(s, http);
}

Credentials GhlCredentials(const SystemSettings& s) {
  Credentials c;
  c.access_token = s.at("access_token");
  c.refresh_token = s.at("refresh_token");
  c.expires_at_us = std::stoll(s.at("token_expires_at")) * 1000000;
  return c;
}

}  // namespace dfm
