#!/usr/bin/env python3
"""Genesys Cloud Open Messaging sandbox: client-credentials tokens, inbound messages and receipts, signed agent replies.

Plays docs/vendors/genesys.md on loopback for one org and one Open Messaging
integration: POST /oauth/token (Basic client id:secret, form
grant_type=client_credentials -> {access_token, token_type, expires_in};
a wrong client {"error":"invalid_client",...} 401); with a Bearer token,
POST /api/v2/conversations/messages/{integrationId}/inbound/open/message
(-> 200 the normalized message with its id and, with
?prefetchConversationId=true, conversationId) and .../inbound/open/receipt
(Delivered | Failed only; -> 200 the normalized receipt). Errors are
ErrorBody {message, code, status, contextId, details, errors}: 401
bad.credentials for a missing, unknown or expired token, 400
bad.request for a malformed body, 404 for another integration, 429
too.many.requests.retry.after with Retry-After past --rate-limit a minute
(and inin-ratelimit-* headers on every answer). The admin API plays the
agent: POST /_sandbox/agent_reply sends an Outbound Text (or attachment)
to the webhook signed X-Hub-Signature-256: sha256=<base64 HMAC-SHA256
(secret, body)>, /_sandbox/receipt sends a Receipt; GET
/_sandbox/conversations shows what reached the agents;
POST /_sandbox/expire_tokens ends every token at once.

Run: python3 sandboxes/genesys.py --port 0 --port-file /tmp/genesys.port --webhook-url URL
"""

import base64
import datetime
import hashlib
import hmac
import os
import re
import secrets
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Response, Sandbox, json_bytes, json_response, parse_iso_ms, run  # noqa: E402

ID_TYPES = ("Email", "Phone", "Opaque")
MEDIA_TYPES = ("Image", "Video", "Audio", "File", "Link")
RECEIPT_STATUSES = ("Delivered", "Failed")
# The documented form of every time in Open Messaging: yyyy-MM-ddTHH:mm:ss.SSSZ.
GENESYS_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
REASON_CODES = ("MessageExpired", "RateLimited", "MessageNotAllowed", "GeneralError", "UnsupportedMessage",
                "UnknownMessage", "InvalidMessageStructure", "InvalidDestination", "ServerError",
                "MediaTypeNotAllowed", "InvalidMediaContentLength", "RecipientOptedOut", "DataFiltered")


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def error_body(status, code, message, headers=None):
    return json_response(status, {"message": message, "code": code, "status": status,
                                  "contextId": str(uuid.uuid4()), "details": [], "errors": []}, headers)


class GenesysSandbox(Sandbox):
    """Genesys Cloud Open Messaging sandbox (OAuth, inbound messages and receipts, signed agent replies)."""

    vendor = "genesys"
    default_retry_on = "conn,429,5xx"
    default_retries = 5

    @staticmethod
    def add_arguments(p):
        g = p.add_argument_group("Genesys")
        g.add_argument("--client-id", default="sandbox-genesys-client", help="OAuth client id")
        g.add_argument("--client-secret", default="sandbox-genesys-secret", help="its secret")
        g.add_argument("--integration-id", default="7b3e1f6a-0d5c-4f4e-9b52-3c8a2b1d9e00",
                       help="the Open Messaging integration's id")
        g.add_argument("--webhook-secret", default="sandbox-genesys-webhook-secret",
                       help="outboundNotificationWebhookSignatureSecretToken")
        g.add_argument("--token-ttl", type=int, default=86400, help="expires_in of tokens, seconds (86400)")
        g.add_argument("--rate-limit", type=int, default=300, help="requests a minute per client (300)")

    def __init__(self, args):
        super().__init__(args)
        self._flag_settings(args)

    def _flag_settings(self, args):
        self.rate_limit = args.rate_limit
        self.calls = []

    def initial_state(self):
        """tokens -> expiry; conversations: person id -> {id, messages: [...]};
        agent_messages: id -> the outbound message and its receipts."""
        return {"tokens": {}, "conversations": {}, "agent_messages": {}, "token_requests": 0}

    def reset_vendor(self):
        self._flag_settings(self.args)

    def fault_response(self, status, fault):
        if status == 401:
            return error_body(401, "bad.credentials", "Invalid login credentials.")
        if status == 429:
            return error_body(429, "too.many.requests.retry.after",
                              "Rate limit exceeded the maximum. Retry the request in [1] seconds",
                              {"Retry-After": "1"})
        if status >= 500:
            return error_body(status, "internal.server.error", "The server encountered an unexpected error.")
        return error_body(status, "bad.request", "Injected fault %d." % status)

    def decorate(self, req, resp):
        if req.path.startswith("/api/"):
            resp.headers.setdefault("inin-ratelimit-allowed", str(self.rate_limit))
            resp.headers.setdefault("inin-ratelimit-count", str(len(self.calls)))
            resp.headers.setdefault("inin-ratelimit-reset", "60")
            resp.headers.setdefault("inin-correlation-id", str(uuid.uuid4()))

    # ------------------------------------------------------------ API

    def handle_api(self, req):
        if req.path == "/oauth/token":
            return self.token(req)
        auth = req.header("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        if not token or self.state["tokens"].get(token, 0) < time.time():
            return error_body(401, "bad.credentials", "Invalid login credentials.")
        now = time.monotonic()
        self.calls = [t for t in self.calls if now - t < 60]
        if len(self.calls) >= self.rate_limit:
            wait = int(60 - (now - self.calls[0])) + 1
            return error_body(429, "too.many.requests.retry.after",
                              "Rate limit exceeded the maximum. Retry the request in [%d] seconds" % wait,
                              {"Retry-After": str(wait)})
        self.calls.append(now)
        prefix = "/api/v2/conversations/messages/"
        if not req.path.startswith(prefix) or req.method != "POST":
            return error_body(404, "not.found", "The requested resource was not found.")
        rest = req.path[len(prefix):].split("/")
        if len(rest) != 4 or rest[1:3] != ["inbound", "open"] or rest[3] not in ("message", "receipt"):
            return error_body(404, "not.found", "The requested resource was not found.")
        if rest[0] != self.args.integration_id:
            return error_body(404, "not.found", "Integration %s was not found." % rest[0])
        if req.json_error or not isinstance(req.body, dict):
            return error_body(400, "bad.request", "The request could not be understood by the server due to malformed syntax.")
        if rest[3] == "message":
            return self.inbound_message(req.body, req.query.get("prefetchConversationId") == "true")
        return self.inbound_receipt(req.body)

    def token(self, req):
        if req.method != "POST":
            return error_body(405, "method.not.allowed", "Method not allowed")
        self.state["token_requests"] += 1
        form = req.body if isinstance(req.body, dict) else {}
        if form.get("grant_type") != "client_credentials":
            return json_response(400, {"error": "unsupported_grant_type", "description": "grant type not supported",
                                       "error_description": "grant type not supported"})
        auth = req.header("authorization", "")
        try:
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":") if auth.startswith("Basic ") else ("", "", "")
        except ValueError:
            cid, secret = "", ""
        if cid != self.args.client_id:
            return json_response(401, {"error": "invalid_client", "description": "client not found",
                                       "error_description": "client not found"})
        if secret != self.args.client_secret:
            return json_response(401, {"error": "invalid_client", "description": "authentication failed",
                                       "error_description": "authentication failed"})
        token = secrets.token_urlsafe(32)
        self.state["tokens"] = {t: e for t, e in self.state["tokens"].items() if e > time.time()}
        self.state["tokens"][token] = time.time() + self.args.token_ttl
        self.save()
        return json_response(200, {"access_token": token, "token_type": "bearer", "expires_in": self.args.token_ttl})

    def inbound_message(self, body, prefetch):
        ch = body.get("channel")
        if not isinstance(ch, dict) or not isinstance(ch.get("from"), dict):
            return error_body(400, "bad.request", "channel.from is required")
        who = ch["from"]
        if not who.get("id") or who.get("idType") not in ID_TYPES:
            return error_body(400, "bad.request", "channel.from.id and channel.from.idType are required")
        if not GENESYS_TIME.match(str(ch.get("time") or "")) or parse_iso_ms(ch.get("time")) is None:
            return error_body(400, "bad.request", "channel.time is required as yyyy-MM-ddTHH:mm:ss.SSSZ")
        content = body.get("content") or []
        if not body.get("text") and not content:
            return error_body(400, "bad.request", "The message must contain text or content")
        for c in content:
            a = (c or {}).get("attachment") or {}
            if a.get("mediaType") not in MEDIA_TYPES or not a.get("url") or not a.get("mime"):
                return error_body(400, "bad.request", "attachment mediaType, url and mime are required")
        conv = self.state["conversations"].setdefault(who["id"], {"id": str(uuid.uuid4()), "messages": []})
        mid = secrets.token_hex(16)
        msg = {"id": mid, "channel": {"id": self.args.integration_id, "platform": "Open", "type": "Private",
                                      "messageId": ch.get("messageId"), "to": {"id": self.args.integration_id},
                                      "from": who, "time": ch["time"]},
               "type": "Text", "direction": "Inbound"}
        if body.get("text"):
            msg["text"] = body["text"]
        if content:
            msg["content"] = content
        conv["messages"].append(dict(msg, received=now_iso()))
        self.save()
        if prefetch:
            msg["conversationId"] = conv["id"]
        return json_response(200, msg)

    def inbound_receipt(self, body):
        if not body.get("id") or not isinstance(body.get("channel"), dict) or \
                not isinstance(body["channel"].get("to"), dict) or not body["channel"]["to"].get("id"):
            return error_body(400, "bad.request", "id and channel.to.id are required")
        when = body["channel"].get("time")
        if when is not None and not GENESYS_TIME.match(str(when)):
            return error_body(400, "bad.request", "channel.time must be yyyy-MM-ddTHH:mm:ss.SSSZ")
        if body.get("status") not in RECEIPT_STATUSES:
            return error_body(400, "bad.request", "status must be Delivered or Failed")
        for r in body.get("reasons") or []:
            if r.get("code") not in REASON_CODES:
                return error_body(400, "bad.request", "unknown reason code %r" % r.get("code"))
        m = self.state["agent_messages"].get(body["id"])
        if m is None:
            return error_body(400, "bad.request", "message %s was not found" % body["id"])
        m["receipts"].append({"status": body["status"], "reasons": body.get("reasons") or [],
                              "isFinalReceipt": body.get("isFinalReceipt", False)})
        self.save()
        return json_response(200, {"id": body["id"], "channel": body["channel"], "type": "Receipt",
                                   "status": body["status"], "reasons": body.get("reasons") or [],
                                   "isFinalReceipt": body.get("isFinalReceipt", False), "direction": "Outbound"})

    # ------------------------------------------------------------ webhooks

    def send_raw_webhook(self, body):
        raw = json_bytes(body)
        mac = hmac.new(self.args.webhook_secret.encode(), raw, hashlib.sha256).digest()
        sig = "sha256=" + base64.b64encode(mac).decode()
        return self.webhooks.send(raw, {"X-Hub-Signature-256": sig}, body.get("type", "?"))

    def agent_reply(self, spec):
        to = str(spec.get("to") or "")
        conv = self.state["conversations"].get(to)
        if conv is None and not spec.get("agentless"):
            return 404, "no conversation with %s" % to, None
        mid = secrets.token_hex(16)
        msg = {"id": mid, "channel": {"id": spec.get("integration_id", self.args.integration_id),
                                      "platform": "Open", "type": "Private",
                                      "to": {"id": to, "idType": "Phone"},
                                      "from": {"nickname": "Sandbox integration", "id": self.args.integration_id,
                                               "idType": "Opaque"},
                                      "metadata": {"subType": "None"}, "time": now_iso(), "messageId": mid},
               "type": "Text", "originatingEntity": "Human", "direction": "Outbound"}
        if conv:
            msg["conversationId"] = conv["id"]
        if spec.get("text"):
            msg["text"] = spec["text"]
        if spec.get("attachment"):
            a = dict(spec["attachment"])
            a.setdefault("id", secrets.token_hex(8))
            msg["content"] = [{"contentType": "Attachment", "attachment": a}]
        self.state["agent_messages"][mid] = {"message": msg, "receipts": []}
        if conv:
            conv["messages"].append(dict(msg, received=now_iso()))
        self.save()
        return 200, {"id": mid}, self.send_raw_webhook(msg)

    # ------------------------------------------------------------ admin

    def admin_contacts(self):
        return [{"id": k, "conversation": v["id"]} for k, v in sorted(self.state["conversations"].items())]

    def admin_save_contact(self, fields):
        return 400, "people come through inbound messages", []

    def admin_delete_contact(self, cid):
        return 400, "nothing to delete", []

    def settings(self):
        return {"rate_limit": self.rate_limit}

    def apply_settings(self, values):
        for k, v in values.items():
            if k == "rate_limit" and isinstance(v, int) and v >= 0:
                self.rate_limit = v
            else:
                return "cannot set %s to %r" % (k, v)
        return None

    def admin_extra(self, req):
        path, m = req.path.rstrip("/"), req.method
        body = req.body if isinstance(req.body, dict) else {}
        if path == "/_sandbox/conversations" and m == "GET":
            return json_response(200, self.state["conversations"])
        if path == "/_sandbox/agent_messages" and m == "GET":
            return json_response(200, self.state["agent_messages"])
        if path == "/_sandbox/tokens" and m == "GET":
            return json_response(200, {"live": sum(1 for e in self.state["tokens"].values() if e > time.time()),
                                       "requests": self.state["token_requests"]})
        if path == "/_sandbox/expire_tokens" and m == "POST":
            self.state["tokens"] = {}
            self.save()
            return json_response(200, {"ok": True})
        if path == "/_sandbox/agent_reply" and m == "POST":
            status, result, d = self.agent_reply(body)
            if status != 200:
                return json_response(status, {"error": result})
            return lambda: json_response(200, self._with_deliveries(dict(result), [d], body.get("wait", True)))
        if path == "/_sandbox/receipt" and m == "POST":
            # A receipt Genesys posts about a message the person sent.
            msg = {"id": body.get("id"), "channel": {"id": self.args.integration_id, "platform": "Open",
                                                     "type": "Private", "time": now_iso(),
                                                     "to": {"id": body.get("to"), "idType": "Phone"}},
                   "type": "Receipt", "status": body.get("status", "Delivered"), "direction": "Inbound",
                   "isFinalReceipt": True}
            d = self.send_raw_webhook(msg)
            return lambda: json_response(200, self._with_deliveries({}, [d]))
        return None


if __name__ == "__main__":
    sys.exit(run(GenesysSandbox))
