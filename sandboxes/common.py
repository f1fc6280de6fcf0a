"""Shared machinery of the vendor sandboxes (ghl.py, aloware.py, verity.py, twilio.py).

A sandbox is a small HTTP server on loopback that plays one vendor's API for
end-to-end tests and for a local run. This module holds everything that is
not vendor behaviour:

  * `run()`            -- command line, bind (port 0 = a free port), port file,
                          "listening on HOST:PORT" line, clean exit on SIGTERM.
  * `Sandbox`          -- the base class: request dispatch, the admin API under
                          /_sandbox/, the request journal, the fault queue, the
                          outage switch and the persisted state.
  * `StateStore`       -- JSON state in `--state FILE`, loaded at start and
                          saved atomically (temp file + os.replace) after every
                          mutation, so a test may kill -9 the process and start
                          it again on the same port with the same state.
  * `WebhookSender`    -- one background thread that POSTs webhooks in order,
                          retries by a per-vendor policy and keeps a log.

Contracts of the admin API are in sandboxes/README.md ("Admin API").
Python 3 standard library only (the GHL sandbox also uses `cryptography`).
"""

import argparse
import base64
import collections
import datetime
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import signal
import socket
import socketserver
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A sentinel response: close the connection without answering (a dropped
# request, or a vendor outage).
DROP = object()


# ---------------------------------------------------------------- helpers

def iso_ms(ts=None):
    """ISO 8601 UTC with milliseconds and Z, e.g. 2021-07-02T05:18:26.704Z."""
    if ts is None:
        ts = time.time()
    d = datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (d.microsecond // 1000)


def parse_iso_ms(text):
    """Seconds since the epoch of an ISO 8601 UTC string, or None."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def normalize_phone(raw, default_country="1"):
    """E.164 form of a phone number, or None when it cannot be one.

    Strips punctuation; a leading + keeps the country code; 10 digits get the
    default country code (NANP); 11 digits starting with the country code get
    a +. Anything with fewer than 8 or more than 15 digits is not a number.
    """
    if raw is None:
        return None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        raw = str(int(raw))
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("+") or text.startswith("00"):
        if text.startswith("00"):
            digits = digits[2:]
        e164 = "+" + digits
    elif len(digits) == 10:
        e164 = "+" + default_country + digits
    elif len(digits) == 10 + len(default_country) and digits.startswith(default_country):
        e164 = "+" + digits
    else:
        e164 = "+" + digits
    if not 8 <= len(e164) - 1 <= 15:
        return None
    return e164


def truthy(value):
    """Booleans as vendors send them: true/false, 1/0, "1"/"0", "true"/"false", "yes"/"no"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return False


def json_bytes(obj):
    """Compact JSON, the way the vendors send it (signatures are over these bytes)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def form_bytes(pairs):
    """application/x-www-form-urlencoded bytes of `pairs` (a dict or a list of
    (name, value)), in the given order, spaces as '+' (what Twilio sends)."""
    items = pairs.items() if isinstance(pairs, dict) else pairs
    return urllib.parse.urlencode([(str(k), "" if v is None else str(v)) for k, v in items]).encode("utf-8")


def hmac_sha256_hex(secret, raw):
    """Lower-case hex HMAC-SHA256 of `raw` (bytes) keyed with `secret` (str)."""
    return hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).hexdigest()


def twilio_signature(auth_token, url, params):
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 keyed with the auth token
    over the full URL followed by every POST parameter as name+value, sorted by
    name (a repeated name: its values in sorted order). `params`: a dict or a
    list of (name, value); None or empty for a request without parameters."""
    items = list(params.items() if isinstance(params, dict) else (params or []))
    pairs = sorted((str(k), "" if v is None else str(v)) for k, v in items)
    data = url + "".join(k + v for k, v in pairs)
    mac = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(mac).decode("ascii")


class Request:
    """One received HTTP request, decoded once.

    `query`: name -> value (the last one when repeated); `headers`: lower-case
    name -> value; `body`: parsed JSON, a form dict, text, or None when empty.
    `json_error` is set when the body claims JSON but does not parse.
    """

    def __init__(self, method, target, headers, raw):
        self.method = method
        parts = urllib.parse.urlsplit(target)
        self.path = parts.path or "/"
        self.query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.raw = raw
        self.json_error = None
        self.body = self._decode()

    def _decode(self):
        if not self.raw:
            return None
        ctype = self.headers.get("content-type", "").split(";")[0].strip().lower()
        text = self.raw.decode("utf-8", errors="replace")
        if ctype == "application/x-www-form-urlencoded":
            return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
        if ctype.endswith("json") or (not ctype and text.lstrip()[:1] in ("{", "[")):
            try:
                return json.loads(text)
            except ValueError as e:
                self.json_error = str(e)
                return text
        return text

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)


class Response:
    """What a handler answers: status, a JSON-able body (or bytes/str), headers."""

    def __init__(self, status, body=None, headers=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    def payload(self):
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json_bytes(self.body)


def json_response(status, body, headers=None):
    return Response(status, body, headers)


# ---------------------------------------------------------------- state

class StateStore:
    """The sandbox's persistent state: one JSON document.

    Loaded from `path` at start when the file exists (else `initial()`), saved
    with `save()` by writing a temporary file in the same folder and renaming
    it over the old one, so a reader (or a restart after kill -9) sees either
    the old or the new document, never half of one. `path` None = in memory.
    """

    def __init__(self, path, initial):
        self.path = os.path.abspath(path) if path else None
        self.initial = initial
        self.data = None
        if self.path and os.path.exists(self.path):
            with open(self.path, "r", encoding="utf-8") as f:
                self.data = json.load(f)
        if self.data is None:
            self.data = initial()
            self.save()

    def reset(self):
        self.data = self.initial()
        self.save()

    def save(self):
        if not self.path:
            return
        folder = os.path.dirname(self.path) or "."
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.data, f, separators=(",", ":"))
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


# ---------------------------------------------------------------- journal

class Journal:
    """The received API requests (admin requests are not journaled), newest last.

    Entry: {"seq","at","method","path","query","headers","body","status"} and,
    when a fault answered instead of the vendor logic, "fault".
    Bounded: the oldest entries are forgotten past `cap`.
    """

    def __init__(self, cap=20000):
        self.lock = threading.Lock()
        self.entries = collections.deque(maxlen=cap)
        self.seq = 0

    def add(self, req, status, fault=None):
        with self.lock:
            self.seq += 1
            entry = {
                "seq": self.seq,
                "at": iso_ms(),
                "method": req.method,
                "path": req.path,
                "query": req.query,
                "headers": req.headers,
                "body": req.body,
                "status": status,
            }
            if fault is not None:
                entry["fault"] = fault
            self.entries.append(entry)
            return entry

    def list(self, path_prefix=None, since=0):
        with self.lock:
            return [e for e in self.entries
                    if e["seq"] > since and (not path_prefix or e["path"].startswith(path_prefix))]

    def clear(self):
        with self.lock:
            self.entries.clear()


# ---------------------------------------------------------------- faults

class FaultQueue:
    """Faults applied, in order, to the next API (non-admin) requests.

    A fault is a dict with "count" (default 1) and any of:
      "status": N          answer N with the vendor's error body instead of the
                           vendor logic ("retry_after": S adds Retry-After: S,
                           "body": {...} overrides the body);
      "latency_ms": N      wait N ms first (then the status fault, or the real
                           answer when there is no status);
      "drop": true         close the connection without answering;
    and optional matchers "method" and "path_prefix": a fault only applies to
    requests it matches; the first matching fault in the queue is used.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    @staticmethod
    def validate(fault):
        if not isinstance(fault, dict):
            return "a fault must be an object"
        if not any(k in fault for k in ("status", "latency_ms", "drop")):
            return "a fault needs one of status, latency_ms, drop"
        if "status" in fault and not (isinstance(fault["status"], int) and 100 <= fault["status"] <= 599):
            return "status must be an HTTP status code"
        if "count" in fault and not (isinstance(fault["count"], int) and fault["count"] >= 1):
            return "count must be a positive integer"
        return None

    def add(self, faults):
        with self.lock:
            for f in faults:
                item = dict(f)
                item.setdefault("count", 1)
                self.items.append(item)

    def take(self, req):
        """The fault for this request (a copy), consuming one of its count."""
        with self.lock:
            for i, f in enumerate(self.items):
                if f.get("method") and f["method"].upper() != req.method:
                    continue
                if f.get("path_prefix") and not req.path.startswith(f["path_prefix"]):
                    continue
                f["count"] -= 1
                if f["count"] <= 0:
                    del self.items[i]
                return dict(f)
        return None

    def list(self):
        with self.lock:
            return [dict(f) for f in self.items]

    def clear(self):
        with self.lock:
            self.items = []


# ---------------------------------------------------------------- webhooks

class Delivery:
    """One webhook to send: its bytes, headers, attempts and outcome."""

    def __init__(self, seq, label, url, body, headers, not_before):
        self.seq = seq
        self.label = label
        self.url = url
        self.body = body
        self.headers = headers
        self.not_before = not_before
        self.created = iso_ms()
        self.attempts = []
        self.status = None       # HTTP status of the last attempt (None: no answer)
        self.delivered = False   # a 2xx was received
        self.done = threading.Event()

    def to_json(self):
        ctype = next((v for k, v in self.headers.items() if k.lower() == "content-type"), "")
        if ctype.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            body = dict(urllib.parse.parse_qsl(self.body.decode("utf-8", errors="replace"),
                                               keep_blank_values=True))
        else:
            try:
                body = json.loads(self.body)
            except ValueError:
                body = self.body.decode("utf-8", errors="replace")
        return {
            "seq": self.seq,
            "event": self.label,
            "url": self.url,
            "created": self.created,
            "headers": self.headers,
            "body": body,
            "attempts": list(self.attempts),
            "status": self.status,
            "delivered": self.delivered,
            "done": self.done.is_set(),
        }


class WebhookSender:
    """Sends webhooks in order from one background thread.

    Retry policy (`retry_on`, a set of "conn", "429", "5xx", "4xx"): an
    attempt whose outcome is in the set is retried up to `retries` times, the
    k-th retry after backoff_ms[min(k, len-1)]. `delay_s` delays each first
    attempt (Aloware's per-webhook delay setting). The log keeps the last
    `cap` deliveries. `url` may be changed at run time (None = send nothing).
    """

    def __init__(self, url, retry_on, retries, backoff_ms, timeout_s, delay_s=0.0,
                 user_agent=None, cap=5000):
        self.url = url or None
        self.retry_on = set(retry_on)
        self.retries = retries
        self.backoff_ms = backoff_ms or [200]
        self.timeout_s = timeout_s
        self.delay_s = delay_s
        self.user_agent = user_agent
        self.lock = threading.Lock()
        self.log = collections.deque(maxlen=cap)
        self.seq = 0
        self.queue = collections.deque()
        self.cond = threading.Condition(self.lock)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self.thread.start()

    def send(self, body, headers, label, url=None, not_before=None):
        """Queues `body` (bytes) with `headers` (a Content-Type there replaces
        the JSON default); returns the Delivery, or None when no webhook URL is
        configured. `url` sends this one delivery elsewhere (e.g. a per-request
        status callback URL); `not_before` (epoch seconds) holds its first
        attempt until then instead of now + the delay setting. Deliveries go
        out in queue order, so a held one also holds those queued after it."""
        with self.lock:
            target = url or self.url
            if not target:
                return None
            self.seq += 1
            hdrs = {"Content-Type": "application/json"}
            if self.user_agent:
                hdrs["User-Agent"] = self.user_agent
            for k, v in headers.items():
                for old in [h for h in hdrs if h.lower() == k.lower()]:
                    del hdrs[old]
                hdrs[k] = v
            when = not_before if not_before is not None else time.time() + self.delay_s
            d = Delivery(self.seq, label, target, body, hdrs, when)
            self.log.append(d)
            self.queue.append(d)
            self.cond.notify()
            return d

    def list(self):
        with self.lock:
            return [d.to_json() for d in self.log]

    def clear(self):
        with self.lock:
            self.log.clear()

    def stop(self):
        with self.lock:
            self.stopping = True
            self.cond.notify()

    def _run(self):
        while True:
            with self.lock:
                while not self.queue and not self.stopping:
                    self.cond.wait()
                if self.stopping:
                    return
                d = self.queue.popleft()
            wait = d.not_before - time.time()
            if wait > 0:
                time.sleep(wait)
            try:
                self._deliver(d)
            finally:
                d.done.set()

    def _outcome_class(self, status):
        if status is None:
            return "conn"
        if status == 429:
            return "429"
        if status >= 500:
            return "5xx"
        if status >= 400:
            return "4xx"
        return "ok"

    def _deliver(self, d):
        for attempt in range(self.retries + 1):
            result = self._post(d)
            d.attempts.append(result)
            d.status = result.get("status")
            d.delivered = d.status is not None and 200 <= d.status < 300
            if d.delivered or self._outcome_class(d.status) not in self.retry_on:
                return
            if attempt < self.retries:
                ms = self.backoff_ms[min(attempt, len(self.backoff_ms) - 1)]
                time.sleep(ms / 1000.0)

    def _post(self, d):
        started = time.time()
        result = {"at": iso_ms(started)}
        try:
            u = urllib.parse.urlsplit(d.url)
            cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
            conn = cls(u.hostname, u.port, timeout=self.timeout_s)
            try:
                path = (u.path or "/") + ("?" + u.query if u.query else "")
                conn.request("POST", path, body=d.body, headers=d.headers)
                r = conn.getresponse()
                data = r.read()
                result["status"] = r.status
                result["content_type"] = r.getheader("Content-Type") or ""
                result["response"] = data[:2000].decode("utf-8", errors="replace")
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as e:
            result["status"] = None
            result["error"] = "%s: %s" % (type(e).__name__, e)
        result["ms"] = int((time.time() - started) * 1000)
        return result


# ---------------------------------------------------------------- sandbox

class Sandbox:
    """Base of a vendor sandbox. Subclasses implement the vendor hooks:

      add_arguments(parser)        (static) vendor flags
      initial_state() -> dict      a fresh state document (from the flags)
      handle_api(req) -> Response  the vendor API (journal/faults are done here)
      fault_response(status, fault) -> Response   the vendor's error for a fault
      decorate(req, resp)          headers every API response carries
      admin_contacts() -> list
      admin_save_contact(fields) -> (status, contact or error, [Delivery])
      admin_delete_contact(id) -> (status, body, [Delivery])
      admin_extra(req) -> Response, None, or a callable returning a Response
                                   (called outside the lock: for waiting)
      settings() / apply_settings(dict) -> error or None   run-time settings
      reset_vendor()               drop run-time vendor state (rate windows...)

    All vendor logic runs under `self.lock` (handlers are short), so requests
    are serialised against the state; latency faults sleep outside the lock.
    """

    vendor = "base"
    webhook_user_agent = None
    default_retry_on = "conn"
    default_retries = 3

    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()
        self.journal = Journal()
        self.faults = FaultQueue()
        self.down_until = 0.0
        self.started = iso_ms()
        self.retries = args.webhook_retries if args.webhook_retries is not None else self.default_retries
        retry_on = args.webhook_retry_on if args.webhook_retry_on is not None else self.default_retry_on
        self.webhooks = WebhookSender(
            url=args.webhook_url,
            retry_on=[x.strip() for x in retry_on.split(",") if x.strip() and x.strip() != "none"],
            retries=self.retries,
            backoff_ms=[int(x) for x in args.webhook_backoff_ms.split(",") if x.strip()],
            timeout_s=args.webhook_timeout,
            delay_s=getattr(args, "webhook_delay_seconds", 0.0) or 0.0,
            user_agent=self.webhook_user_agent)
        self.store = StateStore(args.state, self.initial_state)

    # -- hooks with defaults
    @property
    def state(self):
        return self.store.data

    def save(self):
        self.store.save()

    def decorate(self, req, resp):
        pass

    def admin_extra(self, req):
        return None

    def settings(self):
        return {}

    def apply_settings(self, values):
        return None

    def reset_vendor(self):
        pass

    def close(self):
        self.webhooks.stop()
        with self.lock:
            self.save()

    # -- dispatch
    def dispatch(self, req):
        if req.path == "/_sandbox" or req.path.startswith("/_sandbox/"):
            try:
                return self.handle_admin(req)
            except Exception:
                traceback.print_exc()
                return json_response(500, {"error": "sandbox admin error",
                                           "trace": traceback.format_exc()})
        return self.dispatch_api(req)

    def dispatch_api(self, req):
        if time.time() < self.down_until:
            self.journal.add(req, None, fault={"down": True})
            return DROP
        fault = self.faults.take(req)
        if fault:
            if fault.get("latency_ms"):
                time.sleep(fault["latency_ms"] / 1000.0)
            if fault.get("drop"):
                self.journal.add(req, None, fault=fault)
                return DROP
            if fault.get("status"):
                with self.lock:
                    resp = self.fault_response(fault["status"], fault)
                    if "body" in fault:
                        resp.body = fault["body"]
                    if fault.get("retry_after") is not None:
                        resp.headers["Retry-After"] = str(fault["retry_after"])
                    self.decorate(req, resp)
                self.journal.add(req, resp.status, fault=fault)
                return resp
        try:
            with self.lock:
                resp = self.handle_api(req)
                self.decorate(req, resp)
        except Exception:
            traceback.print_exc()
            with self.lock:
                resp = self.fault_response(500, {})
        self.journal.add(req, resp.status, fault=fault)
        return resp

    # -- admin API (contracts: sandboxes/README.md)
    def handle_admin(self, req):
        path = req.path.rstrip("/") or "/"
        m, body = req.method, req.body if isinstance(req.body, (dict, list)) else {}
        if req.json_error:
            return json_response(400, {"error": "body is not JSON: " + req.json_error})

        if path == "/_sandbox/health" and m == "GET":
            return json_response(200, {"ok": True, "vendor": self.vendor, "started": self.started,
                                       "down": time.time() < self.down_until})

        if path == "/_sandbox/requests":
            if m == "GET":
                since = int(req.query.get("since", "0") or 0)
                return json_response(200, self.journal.list(req.query.get("path_prefix"), since))
            if m == "DELETE":
                self.journal.clear()
                return json_response(200, {"ok": True})

        if path == "/_sandbox/contacts":
            if m == "GET":
                with self.lock:
                    return json_response(200, self.admin_contacts())
            if m == "POST":
                if not isinstance(body, dict):
                    return json_response(400, {"error": "body must be a JSON object"})
                with self.lock:
                    status, result, deliveries = self.admin_save_contact(dict(body))
                if status >= 400:
                    return json_response(status, {"error": result})
                return json_response(status, self._with_deliveries({"contact": result}, deliveries))

        mm = re.fullmatch(r"/_sandbox/contacts/([^/]+)", path)
        if mm:
            cid = urllib.parse.unquote(mm.group(1))
            if m == "GET":
                with self.lock:
                    for c in self.admin_contacts():
                        if str(c.get("id")) == cid:
                            return json_response(200, c)
                return json_response(404, {"error": "no contact " + cid})
            if m == "DELETE":
                with self.lock:
                    status, result, deliveries = self.admin_delete_contact(cid)
                if status >= 400:
                    return json_response(status, {"error": result})
                return json_response(status, self._with_deliveries({"deleted": result}, deliveries))

        if path == "/_sandbox/faults":
            if m == "GET":
                return json_response(200, {"faults": self.faults.list()})
            if m == "POST":
                faults = body.get("faults") if isinstance(body, dict) else body
                if not isinstance(faults, list):
                    return json_response(400, {"error": 'expected {"faults": [...]}'})
                for f in faults:
                    err = FaultQueue.validate(f)
                    if err:
                        return json_response(400, {"error": err, "fault": f})
                self.faults.add(faults)
                return json_response(200, {"faults": self.faults.list()})
            if m == "DELETE":
                self.faults.clear()
                return json_response(200, {"faults": []})

        if path == "/_sandbox/down" and m == "POST":
            seconds = body.get("seconds", 0) if isinstance(body, dict) else 0
            if not isinstance(seconds, (int, float)) or seconds < 0:
                return json_response(400, {"error": "seconds must be a number >= 0"})
            self.down_until = time.time() + seconds
            return json_response(200, {"down_until": iso_ms(self.down_until) if seconds else None})

        if path == "/_sandbox/webhooks":
            if m == "GET":
                return json_response(200, self.webhooks.list())
            if m == "DELETE":
                self.webhooks.clear()
                return json_response(200, {"ok": True})

        if path == "/_sandbox/webhooks/send" and m == "POST":
            # Send an arbitrary vendor body (e.g. a fixture) as the vendor would:
            # {"body": {...}, "wait": true}. The vendor signs/authenticates it.
            if not isinstance(body, dict) or not isinstance(body.get("body"), (dict, list)):
                return json_response(400, {"error": 'expected {"body": {...}}'})
            with self.lock:
                d = self.send_raw_webhook(body["body"])
            if d is None:
                return json_response(409, {"error": "no webhook URL configured"})
            return json_response(200, self._with_deliveries({}, [d], wait=body.get("wait", True)))

        if path == "/_sandbox/settings":
            if m == "GET":
                with self.lock:
                    return json_response(200, self._all_settings())
            if m == "POST":
                if not isinstance(body, dict):
                    return json_response(400, {"error": "body must be a JSON object"})
                with self.lock:
                    if "webhook_url" in body:
                        self.webhooks.url = body.pop("webhook_url") or None
                    err = self.apply_settings(body)
                    if err:
                        return json_response(400, {"error": err})
                    return json_response(200, self._all_settings())

        if path == "/_sandbox/reset" and m == "POST":
            with self.lock:
                self.store.reset()
                self.journal.clear()
                self.faults.clear()
                self.webhooks.clear()
                self.down_until = 0.0
                self.webhooks.url = self.args.webhook_url or None
                self.reset_vendor()
            return json_response(200, {"ok": True})

        with self.lock:
            extra = self.admin_extra(req)
        if callable(extra):
            # A vendor admin call that waits (for webhook deliveries) does the
            # waiting here, outside the lock, so the API stays served meanwhile.
            extra = extra()
        if extra is not None:
            return extra
        return json_response(404, {"error": "no admin endpoint %s %s" % (m, req.path)})

    def _all_settings(self):
        s = {"webhook_url": self.webhooks.url}
        s.update(self.settings())
        return s

    def _with_deliveries(self, doc, deliveries, wait=True):
        """Adds the outcome of `deliveries` to `doc`, waiting for them first.

        "webhook" is the first delivery ({"status": N} or {"status": null,
        "pending": true} when it did not finish in time), "webhooks" all of them.
        """
        deliveries = [d for d in deliveries if d is not None]
        if not deliveries:
            return doc
        outcomes = []
        backoff = sum(self.webhooks.backoff_ms) / 1000.0 * max(1, self.retries)
        deadline = time.time() + self.args.webhook_timeout * (self.retries + 1) + backoff + 5
        for d in deliveries:
            if wait:
                d.done.wait(max(0.0, deadline - time.time()))
            o = {"seq": d.seq, "event": d.label, "status": d.status, "attempts": len(d.attempts)}
            if not d.done.is_set():
                o["pending"] = True
            outcomes.append(o)
        doc["webhook"] = outcomes[0]
        doc["webhooks"] = outcomes
        return doc


# ---------------------------------------------------------------- HTTP

class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def version_string(self):
        return "dfm-sandbox/" + self.server.sandbox.vendor

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("%s %s\n" % (self.server.sandbox.vendor, fmt % args))

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self):
        raw = self._read_body()
        req = Request(self.command, self.path, dict(self.headers.items()), raw)
        resp = self.server.sandbox.dispatch(req)
        if resp is DROP:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        payload = resp.payload()
        self.send_response(resp.status)
        if resp.body is not None and "Content-Type" not in resp.headers:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        # Skip HTTPServer's getfqdn() (a reverse DNS lookup on some hosts).
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port


def add_common_arguments(p, default_retry_on, default_retries):
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind; 0 = a free port (default)")
    p.add_argument("--port-file", help="write the bound port number to this file")
    p.add_argument("--state", help="JSON state file: loaded at start, saved after every change")
    p.add_argument("--webhook-url", help="where to POST webhooks (none when absent)")
    p.add_argument("--webhook-retries", type=int, default=None,
                   help="retries of a failed webhook delivery (default %d)" % default_retries)
    p.add_argument("--webhook-retry-on", default=None,
                   help="outcomes retried, comma list of conn,429,5xx,4xx or none "
                        "(default %s)" % default_retry_on)
    p.add_argument("--webhook-backoff-ms", default="200,500,1000",
                   help="waits before retry 1,2,3... in ms (default 200,500,1000)")
    p.add_argument("--webhook-timeout", type=float, default=10.0,
                   help="seconds to wait for the receiver's answer (default 10)")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")


def run(sandbox_cls, argv=None):
    """Runs a sandbox until SIGTERM/SIGINT; returns the exit code."""
    p = argparse.ArgumentParser(prog=os.path.basename(sys.argv[0]),
                                description=(sandbox_cls.__doc__ or "").strip().splitlines()[0])
    add_common_arguments(p, sandbox_cls.default_retry_on, sandbox_cls.default_retries)
    sandbox_cls.add_arguments(p)
    args = p.parse_args(argv)
    try:
        sandbox = sandbox_cls(args)
    except (OSError, ValueError) as e:
        print("%s: %s" % (p.prog, e), file=sys.stderr)
        return 2
    server = _Server((args.host, args.port), _Handler)
    server.sandbox = sandbox
    server.verbose = args.verbose
    port = server.server_address[1]
    if args.port_file:
        folder = os.path.dirname(os.path.abspath(args.port_file))
        fd, tmp = tempfile.mkstemp(prefix=".port-", dir=folder)
        with os.fdopen(fd, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print("listening on %s:%d" % (args.host, port), flush=True)

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        sandbox.close()
    return 0
