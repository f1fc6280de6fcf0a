// GoHighLevel's client: texts, calls, notes, tags and message statuses, on
// the contact's conversation (the protocol: client.cc).
#include <simdjson.h>

#include <algorithm>
#include <memory>

#include "connectors/common/json_body.h"
#include "connectors/ghl/client_impl.h"
#include "connectors/ghl/dnd.h"
#include "connectors/ghl/every_record.h"
#include "sync/consent.h"
#include "sync/fact.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/strings.h"

namespace dfm {
namespace ghl {

// Message ops, once the contact's id is known.
void GhlClient::OnContact(const StatePtr& st, const std::string& id) {
  st->contact_id = id;
  if (st->looked_anew && id != st->req.external_id) {
    st->result.answered["contact_id"] = id;
    st->result.answered["gone"] = st->req.external_id;
  }
  const std::string& op = st->req.op;
  if (op == "note" && st->req.attempt > 1 && !st->notes_checked) return LookForNote(st, id);
  if (op == "note" || op == "tags") return WriteNoteOrTags(st, id);
  std::string q =
      "/conversations/search?locationId=" + UrlEscape(location_) + "&contactId=" + UrlEscape(id);
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
    CreateConversation(st);
  });
}

void GhlClient::LookForNote(const StatePtr& st, const std::string& id) {
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
}

void GhlClient::WriteNoteOrTags(const StatePtr& st, const std::string& id) {
  const std::string& op = st->req.op;
  HttpRequest r =
      Base(st, "POST", "/contacts/" + UrlEscape(id) + (op == "note" ? "/notes" : "/tags"));
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
}

void GhlClient::CreateConversation(const StatePtr& st) {
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
}

// A retried write first looks for its altId among the conversation's
// latest messages (one page of 100): the earlier attempt may have been
// written. An attempt older than that page is not found and written again.
void GhlClient::OnConversation(const StatePtr& st, const std::string& conversation_id) {
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
    const bool listed = !parser.parse(resp.body).get(doc) && !doc["messages"].get(inner) &&
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

void GhlClient::PostMessage(const StatePtr& st) {
  const PushRequest& req = st->req;
  bool call = req.op == "call";
  std::string direction = req.Field("direction");
  bool outbound_call = call && direction == "outbound";
  HttpRequest r =
      Base(st, "POST",
           outbound_call ? "/conversations/messages/outbound" : "/conversations/messages/inbound",
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

void GhlClient::UpdateStatus(const StatePtr& st) {
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

}  // namespace ghl
}  // namespace dfm
