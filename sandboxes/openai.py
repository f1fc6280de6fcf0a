#!/usr/bin/env python3
"""OpenAI-compatible chat-completions sandbox: a stand-in model for the reply classifier.

Plays POST /v1/chat/completions as docs/classifier.md writes the contract down
(OpenAI's API reference and SDKs; the same shape llama.cpp's llama-server and
other compatible servers answer): Bearer key, {model, messages, temperature,
max_tokens, response_format: json_schema} -> {id, object: "chat.completion",
created, model, choices: [{index, message: {role, content, refusal},
finish_reason}], usage}; errors {"error": {"message", "type", "param",
"code"}} with 401 invalid_api_key, 400 invalid_request_error, 429
rate_limit_exceeded (x-ratelimit-* headers, Go-style reset durations) and
429 insufficient_quota. The "model" is deterministic: phrases that ask to stop
messages are opt_out (0.95), a few ask to start again (opt_in), questions
about cancelling something are unclear (0.55), the rest other (0.9).
A request without response_format is a campaign's draft request (free text):
the "model" drafts "Hello! <the brief>." Run-time `mode` (admin settings):
normal, refuse (message.refusal), malformed (content that is not the JSON
asked for), cutoff (finish_reason length, the content cut), quota (429
insufficient_quota); latency and status faults come from the common fault
API. GET /_sandbox/settings also names the drafts asked for (`drafted`).

Run: python3 sandboxes/openai.py --port 0 --port-file /tmp/openai.port [--api-key KEY]
"""

import json
import os
import re
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Sandbox, json_response, run  # noqa: E402

OPT_OUT = ("stop texting", "stop messaging", "stop sending", "stop contacting", "stop calling",
           "unsubscribe", "remove me", "take me off", "don't text", "dont text", "do not text",
           "do not contact", "no more texts", "no more messages", "leave me alone", "opt me out",
           "quit texting", "lose my number", "please stop", "stop please", "stop it", "not interested",
           "delete my number", "wrong number", "stop these", "stop all")
OPT_IN = ("start again", "resubscribe", "opt me back", "send them again", "start texting me")
UNCLEAR = ("can we cancel", "cancel?", "how do i stop", "can i stop")


def classify(text):
    t = " ".join(re.sub(r"[^\w\s'?]", " ", text.lower()).split())
    if any(p in t for p in UNCLEAR):
        return "unclear", 0.55
    if any(p in t for p in OPT_IN):
        return "opt_in", 0.9
    if any(p in t for p in OPT_OUT):
        return "opt_out", 0.95
    return "other", 0.9


def openai_error(status, message, type_, code, headers=None):
    return json_response(status, {"error": {"message": message, "type": type_, "param": None, "code": code}},
                         headers)


class OpenAiSandbox(Sandbox):
    """OpenAI-compatible chat completions (a deterministic stand-in model)."""

    vendor = "openai"

    @staticmethod
    def add_arguments(p):
        g = p.add_argument_group("OpenAI-compatible")
        g.add_argument("--api-key", default="sk-sandbox", help="the accepted Bearer key")

    def __init__(self, args):
        self.mode = "normal"
        super().__init__(args)

    def initial_state(self):
        return {"asked": 0}

    def reset_vendor(self):
        self.mode = "normal"

    def fault_response(self, status, fault):
        if status == 429:
            return openai_error(429, "Rate limit reached for requests.", "requests", "rate_limit_exceeded",
                                {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0",
                                 "x-ratelimit-reset-requests": "1s"})
        if status >= 500:
            return openai_error(status, "The server had an error while processing your request.",
                                "server_error", None)
        return openai_error(status, "Injected fault %d." % status, "invalid_request_error", None)

    def handle_api(self, req):
        scheme, _, key = req.header("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or key.strip() != self.args.api_key:
            return openai_error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        if req.path.rstrip("/") != "/v1/chat/completions" or req.method != "POST":
            return openai_error(404, "Unknown request URL: %s %s." % (req.method, req.path),
                                "invalid_request_error", "unknown_url")
        body = req.body
        if req.json_error or not isinstance(body, dict):
            return openai_error(400, "We could not parse the JSON body of your request.",
                                "invalid_request_error", None)
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            return openai_error(400, "you must provide a model parameter", "invalid_request_error", None)
        if (not isinstance(messages, list) or not messages or
                not all(isinstance(m, dict) and m.get("role") in ("system", "user", "assistant") and
                        isinstance(m.get("content"), str) for m in messages)):
            return openai_error(400, "Invalid 'messages'.", "invalid_request_error", None)
        rf = body.get("response_format")
        if rf is not None:
            schema = (rf.get("json_schema") or {}) if isinstance(rf, dict) else {}
            if rf.get("type") != "json_schema" or not schema.get("name") or not isinstance(schema.get("schema"), dict):
                return openai_error(400, "Invalid 'response_format'.", "invalid_request_error", None)
        if self.mode == "quota":
            return openai_error(429, "You exceeded your current quota, please check your plan and billing "
                                "details.", "insufficient_quota", "insufficient_quota")
        text = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        if rf is None:  # a draft: free text
            content, refusal, finish = "Hello! %s." % text.rstrip("."), None, "stop"
            self.state["drafted"] = self.state.get("drafted", 0) + 1
        else:
            intent, confidence = classify(text)
            content, refusal, finish = json.dumps({"intent": intent, "confidence": confidence}), None, "stop"
        if self.mode == "refuse":
            content, refusal = None, "I'm sorry, I can't help with that."
        elif self.mode == "malformed":
            content = "The person probably wants to stop."
        elif self.mode == "cutoff":
            content, finish = content[:len(content) // 2], "length"
        self.state["asked"] += 1
        self.save()
        return json_response(200, {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24], "object": "chat.completion", "created": int(time.time()),
            "model": model + "-sandbox", "system_fingerprint": "fp_sandbox",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": refusal},
                         "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 12, "total_tokens": 132}},
            {"x-request-id": "req_" + uuid.uuid4().hex[:16], "x-ratelimit-remaining-requests": "59"})

    def admin_contacts(self):
        return []

    def settings(self):
        return {"mode": self.mode, "asked": self.state["asked"], "drafted": self.state.get("drafted", 0)}

    def apply_settings(self, values):
        for k, v in values.items():
            if k == "mode" and v in ("normal", "refuse", "malformed", "cutoff", "quota"):
                self.mode = v
            else:
                return "cannot set %s to %r" % (k, v)
        return None


if __name__ == "__main__":
    sys.exit(run(OpenAiSandbox))
