"""GoHighLevel sandbox: conversations, the custom provider's delivery and their
admin endpoints (doc §4, §6.3)."""

import os
import re
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Delivery, iso_ms, json_bytes, json_response, parse_iso_ms  # noqa: E402
from ghl_base import ghl_error, unprocessable, new_id  # noqa: E402


class GhlConversations:
    """Mixed into GhlSandbox (ghl.py) with GhlContacts and GhlMessages."""

    # ------------------------------------------------------------ conversations (doc §4)

    def _providers(self):
        """request type -> the provider id that type must name."""
        return {"SMS": self.args.conversation_provider_id,
                "Call": self.args.call_provider_id or self.args.conversation_provider_id}

    def _conversation_of(self, contact_id):
        for conv in self.state["conversations"].values():
            if conv["contactId"] == contact_id:
                return conv
        return None

    def _new_conversation(self, contact_id):
        """One conversation per contact (ConversationProviders.md, "One
        conversationId is maintained per contact")."""
        now = iso_ms()
        conv = {"id": new_id(), "contactId": contact_id, "locationId": self.location_id,
                "dateAdded": now, "dateUpdated": now, "deleted": False, "inbox": True,
                "starred": False, "assignedTo": None, "unreadCount": 0, "lastMessageDate": None,
                "lastMessageBody": "", "lastMessageType": None, "lastMessageDirection": None}
        self.state["conversations"][conv["id"]] = conv
        return conv

    def _conversation_search_view(self, conv):
        """ConversationSchema (S2; required keys), plus the dates and the last
        message's direction."""
        c = self._find(conv["contactId"]) or {}
        return {"id": conv["id"], "contactId": conv["contactId"], "locationId": conv["locationId"],
                "lastMessageBody": conv["lastMessageBody"], "lastMessageType": conv["lastMessageType"],
                "lastMessageDirection": conv["lastMessageDirection"],
                "lastMessageDate": self._epoch_ms(conv["lastMessageDate"]),
                "type": "TYPE_PHONE", "unreadCount": conv["unreadCount"],
                "fullName": c.get("name") or "", "contactName": c.get("name") or "",
                "email": c.get("email") or "", "phone": c.get("phone") or "",
                "dateAdded": self._epoch_ms(conv["dateAdded"]),
                "dateUpdated": self._epoch_ms(conv["dateUpdated"])}

    @staticmethod
    def _epoch_ms(text):
        t = parse_iso_ms(text)
        return int(round(t * 1000)) if t is not None else None

    @staticmethod
    def _conversation_view(conv):
        """GetConversationByIdResponse (S2): type 1 = Phone."""
        v = {"id": conv["id"], "contactId": conv["contactId"], "locationId": conv["locationId"],
             "deleted": conv["deleted"], "inbox": conv["inbox"], "type": 1,
             "unreadCount": conv["unreadCount"], "starred": conv["starred"],
             "dateAdded": conv["dateAdded"], "dateUpdated": conv["dateUpdated"],
             "lastMessageDate": conv["lastMessageDate"]}
        if conv.get("assignedTo"):
            v["assignedTo"] = conv["assignedTo"]
        return v

    def create_conversation(self, req):
        """POST /conversations/ {locationId, contactId} (doc §4.3, S2
        CreateConversationDto): 201 {"success": true, "conversation":
        ConversationCreateResponseDto}. A contact that already has one: 400
        "Conversation with the contact id:X already exists!" (live answer, S22;
        the vendor declined to add the id to it, so search for it)."""
        body = req.body if req.body is not None else {}
        if not isinstance(body, dict):
            return unprocessable(["body must be an object"])
        errs = ["property %s should not exist" % k for k in body if k not in ("locationId", "contactId")]
        for k in ("locationId", "contactId"):
            if not isinstance(body.get(k), str) or not body[k]:
                errs.append("%s should not be empty" % k)
                if k in body and not isinstance(body[k], str):
                    errs.append("%s must be a string" % k)
        if errs:
            return unprocessable(errs)
        denied = self._check_location(body["locationId"])
        if denied:
            return denied
        cid = body["contactId"]
        if not self._find(cid):
            return self._not_found(cid)
        if self._conversation_of(cid):
            return ghl_error(400, "Conversation with the contact id:%s already exists!" % cid,
                             traceId=str(uuid.uuid4()))
        conv = self._new_conversation(cid)
        self.save()
        out = {k: conv[k] for k in ("id", "dateUpdated", "dateAdded", "deleted", "contactId",
                                    "locationId", "lastMessageDate")}
        return json_response(201, {"success": True, "conversation": out})

    def get_location(self, req, id):
        """GET /locations/{locationId} (doc §10; scope locations.readonly): 200
        {"location": {...}} for the sandbox's location; another id is not this
        token's: 403 as the other location-bound endpoints answer."""
        denied = self._check_location(id)
        if denied:
            return denied
        return json_response(200, {"location": {
            "id": self.location_id, "companyId": "company_sandbox", "name": "Sandbox Location",
            "timezone": "America/Chicago", "country": "US"}})

    def search_conversations(self, req):
        """GET /conversations/search?locationId=&contactId=&id=&query=&limit=&sort=
        &lastMessageType=&lastMessageDirection= (doc §4.3): 200 {"conversations":
        [ConversationSchema], "total"}, by last message date (then creation),
        newest first unless sort=asc. Immediate (no indexing lag, see README)."""
        q = req.query
        denied = self._query_location(q)
        if denied:
            return denied
        limit, bad = self._int_query(q, "limit", "20")
        if bad:
            return bad
        if q.get("sort") and q["sort"] not in ("asc", "desc"):
            return unprocessable(["sort must be one of the following values: asc, desc"])
        convs = list(self.state["conversations"].values())
        if q.get("contactId"):
            convs = [c for c in convs if c["contactId"] == q["contactId"]]
        if q.get("id"):
            convs = [c for c in convs if c["id"] == q["id"]]
        if q.get("lastMessageType"):
            convs = [c for c in convs if c["lastMessageType"] == q["lastMessageType"]]
        if q.get("lastMessageDirection"):
            convs = [c for c in convs if c["lastMessageDirection"] == q["lastMessageDirection"]]
        if q.get("query"):
            needle = q["query"].lower()
            digits = re.sub(r"\D", "", needle)
            kept = []
            for conv in convs:
                c = self._find(conv["contactId"]) or {}
                hay = " ".join(str(c.get(k) or "") for k in ("name", "email", "phone")).lower()
                if needle in hay or (digits and digits in re.sub(r"\D", "", c.get("phone") or "")) \
                        or needle in (conv["lastMessageBody"] or "").lower():
                    kept.append(conv)
            convs = kept
        convs.sort(key=lambda c: (c["lastMessageDate"] or c["dateAdded"], c["dateAdded"], c["id"]),
                   reverse=q.get("sort", "desc") == "desc")
        page = convs[:max(0, min(limit, 100))]
        return json_response(200, {"conversations": [self._conversation_search_view(c) for c in page],
                                   "total": len(convs)})

    def get_conversation(self, req, id):
        """GET /conversations/:conversationId (doc §4.3): 200 GetConversationByIdResponse (flat)."""
        conv = self.state["conversations"].get(id)
        if not conv:
            return self._not_found_kind("Conversation", id)
        return json_response(200, self._conversation_view(conv))

    # ------------------------------------------------------------ provider delivery

    def provider_body(self, msg, contact):
        """ProviderOutboundMessage, SMS (doc §6.3, S7 ProviderOutboundMessage.md;
        fixture ProviderOutboundMessage.json): no webhookId, timestamp or
        conversationId - the vendor's page lists only these keys."""
        return {"contactId": msg["contactId"], "locationId": msg["locationId"],
                "messageId": msg["id"], "type": msg["type"], "phone": contact.get("phone"),
                "message": msg["body"] or "", "attachments": list(msg["attachments"]),
                "userId": msg["userId"]}

    def _send_to(self, url, body, label):
        """Queues a signed delivery to `url` on the webhook sender (same queue,
        order, retry policy and log as the webhooks). None when url is None."""
        if not url:
            return None
        raw = json_bytes(body)
        w = self.webhooks
        with w.lock:
            w.seq += 1
            hdrs = {"Content-Type": "application/json"}
            if w.user_agent:
                hdrs["User-Agent"] = w.user_agent
            hdrs.update(self.sign(raw))
            d = Delivery(w.seq, label, url, raw, hdrs, time.time() + w.delay_s)
            w.log.append(d)
            w.queue.append(d)
            w.cond.notify()
            return d

    def admin_provider_outbound(self, body):
        """An agent sending a text in GHL through the custom provider: stores an
        outbound message (status pending, source app) in the contact's
        conversation (created if needed), POSTs ProviderOutboundMessage to the
        provider URL and OutboundMessage to the webhook URL. Returns (status,
        doc or error, deliveries)."""
        cid = body.get("contactId")
        contact = self._find(cid) if isinstance(cid, str) else None
        if not contact:
            return 404, "no contact %s" % cid, []
        kind = body.get("type", "SMS")
        if kind != "SMS":
            return 400, "the sandbox's provider delivers type SMS only", []
        if not contact.get("phone"):
            return 400, "contact %s has no phone" % cid, []
        text = body.get("message", "")
        attachments = body.get("attachments", [])
        if not isinstance(text, str) or not isinstance(attachments, list):
            return 400, "message must be a string and attachments a list", []
        conv = self._conversation_of(cid) or self._new_conversation(cid)
        msg = self._store_message(conv, kind="SMS", direction="outbound", status="pending", body=text,
                                  attachments=list(attachments), alt_id=None,
                                  provider=self._providers()["SMS"], source="app",
                                  user_id=body.get("userId", "usr_sandbox"), call=None,
                                  call_status=None, endpoint="provider")
        self.save()
        deliveries = [self._send_to(self.provider_url or self.webhooks.url,
                                    self.provider_body(msg, contact), "ProviderOutboundMessage")]
        if body.get("webhook", True) is not False and not self.args.no_message_webhooks:
            deliveries.append(self.send_raw_webhook(self._message_webhook(msg)))
        return 200, {"message": self.admin_message(msg), "conversationId": conv["id"]}, deliveries

    @staticmethod
    def admin_message(msg):
        return {k: v for k, v in msg.items() if k != "seq"}

    def _conversation_admin(self, req):
        path = req.path.rstrip("/")
        m, q = req.method, req.query
        if path == "/_sandbox/conversations" and m == "GET":
            with self.lock:
                convs = sorted(self.state["conversations"].values(), key=lambda c: (c["dateAdded"], c["id"]))
                out = []
                for conv in convs:
                    if q.get("contactId") and conv["contactId"] != q["contactId"]:
                        continue
                    v = dict(conv)
                    v["messageCount"] = sum(1 for x in self.state["messages"].values()
                                            if x["conversationId"] == conv["id"])
                    out.append(v)
            return json_response(200, out)
        if path == "/_sandbox/messages" and m == "GET":
            with self.lock:
                msgs = sorted(self.state["messages"].values(), key=lambda x: x["seq"])
                out = [self.admin_message(x) for x in msgs
                       if (not q.get("contactId") or x["contactId"] == q["contactId"])
                       and (not q.get("conversationId") or x["conversationId"] == q["conversationId"])]
            return json_response(200, out)
        if path == "/_sandbox/notes" and m == "GET":
            with self.lock:
                notes = sorted(self.state["notes"].values(), key=lambda n: (n["dateAdded"], n["id"]))
                out = [dict(n) for n in notes if not q.get("contactId") or n["contactId"] == q["contactId"]]
            return json_response(200, out)
        if path == "/_sandbox/provider-outbound" and m == "POST":
            if req.json_error or not isinstance(req.body, dict):
                return json_response(400, {"error": "body must be a JSON object"})
            with self.lock:
                status, result, deliveries = self.admin_provider_outbound(dict(req.body))
            if status >= 400:
                return json_response(status, {"error": result})
            provider = deliveries[0]
            doc = self._with_deliveries(result, deliveries, wait=req.body.get("wait", True))
            doc["delivery"] = None
            if provider is not None:
                doc["delivery"] = next(o for o in doc["webhooks"] if o["seq"] == provider.seq)
            else:
                doc["error"] = "no provider URL or webhook URL configured: nothing was delivered"
            return json_response(200, doc)
        return None
