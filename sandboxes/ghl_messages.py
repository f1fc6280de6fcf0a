"""GoHighLevel sandbox: conversation messages (doc §4)."""

import datetime
import os
import re
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import iso_ms, json_response, normalize_phone  # noqa: E402
from ghl_base import INBOUND_TYPES, OUTBOUND_TYPES, MESSAGE_KINDS, CALL_STATUSES, DIRECTIONS, UPDATE_STATUSES, INBOUND_FIELDS, OUTBOUND_FIELDS, CALL_FIELDS, STATUS_FIELDS, MESSAGE_TYPE_FILTERS, ghl_error, unprocessable, new_id  # noqa: E402


class GhlMessages:
    """Mixed into GhlSandbox (ghl.py) with GhlContacts and GhlConversations."""

    # ------------------------------------------------------------ messages (doc §4)

    def _message_dto_errors(self, body, allowed, types):
        """class-validator style checks of ProcessMessageBodyDto /
        ProcessOutboundMessageBodyDto (doc §4.1, §4.2): 422 messages."""
        errs = ["property %s should not exist" % k for k in body if k not in allowed]
        t = body.get("type")
        if t is None or t == "":
            errs.append("type should not be empty")
        if t not in types:
            errs.append("type must be one of the following values: " + ", ".join(types))
        p = body.get("conversationProviderId")
        if not isinstance(p, str) or not p:
            errs.append("conversationProviderId should not be empty")
            if p is not None and not isinstance(p, str):
                errs.append("conversationProviderId must be a string")
        errs += self._string_errors(body, ("message", "conversationId", "contactId", "altId", "html",
                                           "subject", "emailFrom", "emailTo", "emailMessageId"))
        for k in ("attachments", "emailCc", "emailBcc"):
            if k in body:
                if not isinstance(body[k], list):
                    errs.append("%s must be an array" % k)
                elif not all(isinstance(x, str) for x in body[k]):
                    errs.append("each value in %s must be a string" % k)
        if "direction" in body and body["direction"] not in DIRECTIONS:
            errs.append("direction must be one of the following values: " + ", ".join(DIRECTIONS))
        if "date" in body and self._parse_date(body["date"]) is None:
            errs.append("date must be a valid ISO 8601 date string")
        if "call" in body:
            call = body["call"]
            if not isinstance(call, dict):
                errs.append("call must be an object")
            else:
                errs += ["call.property %s should not exist" % k for k in call if k not in CALL_FIELDS]
                errs += self._string_errors(call, ("to", "from"), "call.")
                if "status" in call and call["status"] not in CALL_STATUSES:
                    errs.append("call.status must be one of the following values: " + ", ".join(CALL_STATUSES))
        return errs

    @staticmethod
    def _parse_date(value):
        """Epoch seconds of an ISO 8601 date-time (a zone-less one is UTC), or None."""
        if not isinstance(value, str) or not re.match(r"\d{4}-\d\d-\d\d", value):
            return None
        try:
            d = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if d.tzinfo is None:
            d = d.replace(tzinfo=datetime.timezone.utc)
        return d.timestamp()

    @staticmethod
    def _call_outcome(direction, call_status):
        """(message status, callStatus) of a call (S7 InboundMessage/OutboundMessage
        "Call Status Details"): answered -> completed/completed; voicemail ->
        voicemail/voicemail inbound, completed/voicemail outbound; other values
        as given; no status -> completed (README choice)."""
        cs = call_status or "completed"
        if cs in ("answered", "completed"):
            return "completed", "completed"
        if cs == "voicemail":
            return ("voicemail" if direction == "inbound" else "completed"), "voicemail"
        return cs, cs

    def _resolve_conversation(self, body):
        """The conversation a message names: conversationId, or contactId alone
        (resolved or created, vendor's reference pages, doc §4.1/§4.2), or both
        (they must agree). Returns (conversation, contact, error response)."""
        conv_id, contact_id = body.get("conversationId"), body.get("contactId")
        if not conv_id and not contact_id:
            return None, None, ghl_error(400, "Either conversationId or contactId is required")
        conv = None
        if conv_id:
            conv = self.state["conversations"].get(conv_id)
            if not conv:
                return None, None, self._not_found_kind("Conversation", conv_id)
        if contact_id:
            contact = self._find(contact_id)
            if not contact:
                return None, None, self._not_found(contact_id)
            if conv and conv["contactId"] != contact_id:
                return None, None, ghl_error(400, "Conversation %s does not belong to contact %s"
                                             % (conv_id, contact_id))
            if conv is None:
                conv = self._conversation_of(contact_id) or self._new_conversation(contact_id)
        contact = self._find(conv["contactId"])
        if not contact:
            return None, None, self._not_found(conv["contactId"])
        return conv, contact, None

    def _add_message(self, req, endpoint):
        body = req.body if req.body is not None else {}
        if not isinstance(body, dict):
            return unprocessable(["body must be an object"])
        inbound_ep = endpoint == "inbound"
        errs = self._message_dto_errors(body, INBOUND_FIELDS if inbound_ep else OUTBOUND_FIELDS,
                                        INBOUND_TYPES if inbound_ep else OUTBOUND_TYPES)
        if errs:
            return unprocessable(errs)
        kind = body["type"]
        providers = self._providers()
        if kind not in providers:
            # A valid channel the sandbox's providers do not carry (README choice).
            return ghl_error(400, "The conversation provider %s does not support messages of type %s"
                             % (body["conversationProviderId"], kind), "Bad Request")
        if body["conversationProviderId"] != providers[kind]:
            # Live answer to a provider id that is not the app's (S21).
            return ghl_error(400, "Invalid conversationProviderId", "Bad Request")
        conv, contact, err = self._resolve_conversation(body)
        if err:
            return err
        # doc §4.1: "default is outbound" (ProcessMessageBodyDto.direction).
        direction = body.get("direction", "outbound") if inbound_ep else "outbound"
        call = None
        status, call_status = "delivered", None
        if kind == "Call":
            call = body.get("call")
            if not isinstance(call, dict):
                return ghl_error(400, "call is required for messages of type Call")
            call = {k: call.get(k) for k in CALL_FIELDS if k in call}
            side = "from" if direction == "inbound" else "to"
            # ConversationProviders.md: inbound calls' "from", outbound calls' "to"
            # must match an existing contact (here: the conversation's contact).
            if not self.args.no_call_number_check:
                number = normalize_phone(call.get(side)) if call.get(side) else None
                if not number or number != contact.get("phone"):
                    return ghl_error(400, "The call's %s number %s does not match the contact %s"
                                     % (side, call.get(side), contact["id"]))
            status, call_status = self._call_outcome(direction, call.get("status"))
        when = self._parse_date(body["date"]) if "date" in body else None
        msg = self._store_message(conv, kind=kind, direction=direction, status=status,
                                  body=body.get("message") if kind == "SMS" else None,
                                  attachments=list(body.get("attachments") or []),
                                  alt_id=body.get("altId"), provider=body["conversationProviderId"],
                                  source="api", user_id=None, call=call, call_status=call_status,
                                  endpoint=endpoint, when=when)
        self.save()
        if not self.args.no_message_webhooks:
            self.send_raw_webhook(self._message_webhook(msg))
        return json_response(200, {"success": True, "conversationId": conv["id"],
                                   "messageId": msg["id"], "message": "Message added successfully.",
                                   "contactId": msg["contactId"], "dateAdded": msg["dateAdded"]})

    def _store_message(self, conv, kind, direction, status, body, attachments, alt_id, provider,
                       source, user_id, call, call_status, endpoint, when=None):
        """Stores a message (every post: no de-duplication by altId, README) and
        updates its conversation."""
        self.state["message_seq"] += 1
        now = iso_ms()
        msg = {"id": new_id(), "seq": self.state["message_seq"], "altId": alt_id, "type": kind,
               "messageType": MESSAGE_KINDS[kind][1], "locationId": self.location_id,
               "contactId": conv["contactId"], "conversationId": conv["id"],
               "dateAdded": iso_ms(when) if when is not None else now, "dateUpdated": now,
               "body": body, "direction": direction, "status": status, "contentType": "text/plain",
               "attachments": attachments, "source": source, "userId": user_id,
               "conversationProviderId": provider, "call": call, "callStatus": call_status,
               "callDuration": None, "error": None, "endpoint": endpoint}
        self.state["messages"][msg["id"]] = msg
        if conv["lastMessageDate"] is None or msg["dateAdded"] >= conv["lastMessageDate"]:
            conv.update({"lastMessageDate": msg["dateAdded"], "lastMessageBody": body or "",
                         "lastMessageType": msg["messageType"], "lastMessageDirection": direction})
        if direction == "inbound":
            conv["unreadCount"] += 1
        conv["dateUpdated"] = now
        return msg

    def _message_view(self, msg):
        """GetMessageResponseDto (S2) with altId (vendor's reference page and
        issue #38, S23); meta.callStatus/callDuration for calls, or the live
        meta.call {status, duration} with --message-shapes live."""
        v = {"id": msg["id"]}
        if msg.get("altId") is not None:
            v["altId"] = msg["altId"]
        v.update({"type": MESSAGE_KINDS[msg["type"]][0], "messageType": msg["messageType"],
                  "locationId": msg["locationId"], "contactId": msg["contactId"],
                  "conversationId": msg["conversationId"], "dateAdded": msg["dateAdded"]})
        if msg.get("body") is not None:
            v["body"] = msg["body"]
        v.update({"direction": msg["direction"], "status": msg["status"],
                  "contentType": msg["contentType"], "attachments": list(msg["attachments"])})
        if msg["type"] == "Call":
            if self.args.message_shapes == "live":
                meta = {"call": {"status": msg["callStatus"]}}
                if msg.get("callDuration") is not None:
                    meta["call"]["duration"] = msg["callDuration"]
            else:
                meta = {"callStatus": msg["callStatus"]}
                if msg.get("callDuration") is not None:
                    meta["callDuration"] = msg["callDuration"]
            v["meta"] = meta
        v["source"] = msg["source"]
        if msg.get("userId"):
            v["userId"] = msg["userId"]
        v["conversationProviderId"] = msg["conversationProviderId"]
        return v

    def _message_webhook(self, msg):
        """InboundMessage / OutboundMessage (doc §6.3, S7; key order of the
        fixtures InboundMessage.json and OutboundMessage-call.json)."""
        inbound = msg["direction"] == "inbound"
        b = {"type": "InboundMessage" if inbound else "OutboundMessage",
             "webhookId": str(uuid.uuid4()), "timestamp": iso_ms(), "locationId": msg["locationId"],
             "attachments": list(msg["attachments"])}
        if msg["type"] == "SMS":
            b["body"] = msg["body"] or ""
        b["contactId"] = msg["contactId"]
        if msg["type"] == "SMS":
            b["contentType"] = msg["contentType"]
        b.update({"conversationId": msg["conversationId"], "dateAdded": msg["dateAdded"],
                  "direction": msg["direction"], "messageType": MESSAGE_KINDS[msg["type"]][2]})
        if msg.get("userId"):
            b["userId"] = msg["userId"]
        b.update({"messageId": msg["id"], "status": msg["status"]})
        if not inbound:
            b["source"] = msg["source"]
        b["conversationProviderId"] = msg["conversationProviderId"]
        if msg["type"] == "Call":
            if msg.get("callDuration") is not None:
                b["callDuration"] = msg["callDuration"]
            b["callStatus"] = msg["callStatus"]
        return b

    def add_inbound_message(self, req):
        """POST /conversations/messages/inbound (doc §4.1): type (enum),
        conversationProviderId, conversationId and/or contactId; message,
        attachments, altId, direction (default outbound), date, call{to, from,
        status}. 200 ProcessMessageResponseDto. Sends InboundMessage or
        OutboundMessage by direction."""
        return self._add_message(req, "inbound")

    def add_outbound_call(self, req):
        """POST /conversations/messages/outbound (doc §4.2): an external outbound
        call, type Call only; 200 ProcessMessageResponseDto; sends OutboundMessage."""
        return self._add_message(req, "outbound")

    def _conversation_messages(self, conv_id):
        """A conversation's messages, newest first (then the latest added first)."""
        return sorted((m for m in self.state["messages"].values() if m["conversationId"] == conv_id),
                      key=lambda m: (m["dateAdded"], m["seq"]), reverse=True)

    def list_messages(self, req, id):
        """GET /conversations/:conversationId/messages?lastMessageId=&limit=&type=
        (doc §4.4): newest first; `limit` default 20 (at most 100 are answered);
        `lastMessageId` continues after that message; `type` a comma list of
        TYPE_*. Shape by --message-shapes (docs/live: {"messages": {"lastMessageId",
        "nextPage", "messages"}}; openapi: the three keys at the top)."""
        conv = self.state["conversations"].get(id)
        if not conv:
            return self._not_found_kind("Conversation", id)
        q = req.query
        limit, bad = self._int_query(q, "limit", "20")
        if bad:
            return bad
        msgs = self._conversation_messages(id)
        if q.get("type"):
            wanted = {t.strip() for t in q["type"].split(",") if t.strip()}
            bad = sorted(wanted - MESSAGE_TYPE_FILTERS)
            if bad:
                return unprocessable(["type must be one of the following values: "
                                      + ", ".join(sorted(MESSAGE_TYPE_FILTERS))])
            msgs = [m for m in msgs if m["messageType"] in wanted]
        if q.get("lastMessageId"):
            ids = [m["id"] for m in msgs]
            if q["lastMessageId"] not in ids:
                return self._not_found_kind("Message", q["lastMessageId"])
            msgs = msgs[ids.index(q["lastMessageId"]) + 1:]
        limit = max(1, min(limit, 100))
        page = msgs[:limit]
        inner = {"lastMessageId": page[-1]["id"] if page else None,
                 "nextPage": len(msgs) > limit,
                 "messages": [self._message_view(m) for m in page]}
        if self.args.message_shapes == "openapi":
            return json_response(200, inner)
        return json_response(200, {"messages": inner})

    def get_message(self, req, id):
        """GET /conversations/messages/:id (doc §4.4): GetMessageResponseDto; with
        --message-shapes live wrapped as {"message": {...}, "traceId"}."""
        msg = self.state["messages"].get(id)
        if not msg:
            return self._not_found_kind("Message", id)
        if self.args.message_shapes == "live":
            return json_response(200, {"message": self._message_view(msg), "traceId": str(uuid.uuid4())})
        return json_response(200, self._message_view(msg))

    def update_message_status(self, req, id):
        """PUT /conversations/messages/:messageId/status (doc §4.5, S2
        UpdateMessageStatusDto): status (delivered|failed|pending|read), error
        {code, type, message}, emailMessageId, recipients. Only the conversation
        provider may update its messages (ConversationProviders.md): another
        message gets 403 "No conversation provider found for this message"
        (S24). 200 {"conversationId", "messageId", "status"}."""
        body = req.body if req.body is not None else {}
        if not isinstance(body, dict):
            return unprocessable(["body must be an object"])
        errs = ["property %s should not exist" % k for k in body if k not in STATUS_FIELDS]
        if body.get("status") in (None, ""):
            errs.append("status should not be empty")
        if body.get("status") not in UPDATE_STATUSES:
            errs.append("status must be one of the following values: " + ", ".join(UPDATE_STATUSES))
        if "error" in body:
            e = body["error"]
            if not isinstance(e, dict):
                errs.append("error must be an object")
            else:
                errs += ["error.property %s should not exist" % k for k in e
                         if k not in ("code", "type", "message")]
                for k in ("code", "type", "message"):
                    if not isinstance(e.get(k), str):
                        errs.append("error.%s must be a string" % k)
        errs += self._string_errors(body, ("emailMessageId",))
        if "recipients" in body and not (isinstance(body["recipients"], list)
                                         and all(isinstance(r, str) for r in body["recipients"])):
            errs.append("recipients must be an array of strings")
        if errs:
            return unprocessable(errs)
        msg = self.state["messages"].get(id)
        if not msg:
            return self._not_found_kind("Message", id)
        if msg.get("conversationProviderId") not in set(self._providers().values()):
            return ghl_error(403, "No conversation provider found for this message")
        msg["status"] = body["status"]
        msg["error"] = body.get("error")
        msg["dateUpdated"] = iso_ms()
        self.save()
        out = {"conversationId": msg["conversationId"], "messageId": msg["id"], "status": msg["status"]}
        if body.get("emailMessageId"):
            out["emailMessageId"] = body["emailMessageId"]
        return json_response(200, out)
