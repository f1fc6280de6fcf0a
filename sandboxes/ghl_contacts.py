"""GoHighLevel sandbox: contacts, their webhooks, listing and notes (doc §3, §6)."""

import base64
import os
import re
import sys
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import iso_ms, json_bytes, json_response, normalize_phone, parse_iso_ms  # noqa: E402
from ghl_base import CREATE_FIELDS, UPDATE_FIELDS, UPSERT_FIELDS, STRING_FIELDS, DND_CHANNELS, DND_STATUSES, WEBHOOK_FIELDS, NOTE_FIELDS, ghl_error, unprocessable, new_id, lower  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402


class GhlContacts:
    """Mixed into GhlSandbox (ghl.py): uses its state, lock, args and webhooks."""

    # ------------------------------------------------------------ contacts: helpers

    def _find(self, cid):
        return self.state["contacts"].get(cid)

    def _not_found(self, cid):
        """Unknown contact id. Research doc §2 assumed 404; third-party code
        quotes 400 "Contact with id ... not found" from the live API, so 400 is
        the default (--not-found-status 404 gives the doc's assumption)."""
        if self.args.not_found_status == 404:
            return ghl_error(404, "Contact not found")
        return ghl_error(400, "Contact with id %s not found" % cid)

    def _match(self, email=None, phone=None, exclude=None):
        """Contacts matching by email (case-insensitive) / phone (E.164), as
        {"email": contact, "phone": contact} (a field absent when no match)."""
        out = {}
        e = lower(email.strip()) if isinstance(email, str) and email.strip() else None
        p = normalize_phone(phone) if phone else None
        for c in sorted(self.state["contacts"].values(), key=lambda c: c["dateAdded"]):
            if c["id"] == exclude:
                continue
            if e and "email" not in out and lower(c.get("email")) == e:
                out["email"] = c
            if p and "phone" not in out and c.get("phone") == p:
                out["phone"] = c
        return out

    def _first_match(self, matches):
        for field in self.priority:
            if field in matches:
                return field, matches[field]
        return None, None

    def _duplicate_error(self, field, c):
        """Create/update refused because the location does not allow
        duplicates: the live API's 400 (quoted by several third-party clients;
        the research doc §3.2 lists it as NOT FOUND in the vendor docs)."""
        return ghl_error(400, "This location does not allow duplicated contacts.",
                         meta={"contactName": c.get("name") or "", "contactId": c["id"],
                               "matchingField": field},
                         traceId=str(uuid.uuid4()))

    def _validate(self, body, allowed, need_location):
        """class-validator style checks of the DTOs (doc §3.2, §9)."""
        if not isinstance(body, dict):
            return ["body must be an object"]
        errs = ["property %s should not exist" % k for k in body if k not in allowed]
        for k in STRING_FIELDS & set(body):
            if body[k] is not None and not isinstance(body[k], str):
                errs.append("%s must be a string" % k)
        if need_location and not body.get("locationId"):
            errs.append("locationId should not be empty")
        if isinstance(body.get("email"), str) and body["email"].strip() and \
                not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", body["email"].strip()):
            errs.append("email must be an email")
        if "tags" in body and not (isinstance(body["tags"], list) and all(isinstance(t, str) for t in body["tags"])):
            errs.append("tags must be an array of strings" if isinstance(body["tags"], list) else "tags must be an array")
        if "dnd" in body and not isinstance(body["dnd"], bool):
            errs.append("dnd must be a boolean value")
        if "createNewIfDuplicateAllowed" in body and not isinstance(body["createNewIfDuplicateAllowed"], bool):
            errs.append("createNewIfDuplicateAllowed must be a boolean value")
        if "customFields" in body and not isinstance(body["customFields"], list):
            errs.append("customFields must be an array")
        if "dndSettings" in body:
            ds = body["dndSettings"]
            if not isinstance(ds, dict):
                errs.append("dndSettings must be an object")
            else:
                for ch, v in ds.items():
                    if ch not in DND_CHANNELS:
                        errs.append("dndSettings.property %s should not exist" % ch)
                    elif not isinstance(v, dict) or v.get("status") not in DND_STATUSES:
                        errs.append("dndSettings.%s.status must be one of the following values: %s"
                                    % (ch, ", ".join(DND_STATUSES)))
        return errs

    @staticmethod
    def _norm_tags(tags):
        """Tags are stored trimmed and lower-cased, without repeats (see README)."""
        out = []
        for t in tags or []:
            t = t.strip().lower()
            if t and t not in out:
                out.append(t)
        return out

    def _apply(self, c, body):
        """Writes the DTO fields of `body` into stored contact `c`."""
        for k, v in body.items():
            if k in ("locationId", "createNewIfDuplicateAllowed"):
                continue
            if k == "phone":
                c["phone"] = (normalize_phone(v) or v) if v else None
            elif k == "email":
                c["email"] = v.strip() if isinstance(v, str) and v.strip() else None
            elif k == "tags":
                c["tags"] = self._norm_tags(v)
            elif k == "customFields":
                # Request items {id|key, field_value} -> response items {id, value} (doc §3.2).
                fields = {f["id"]: f for f in c.get("customFields", [])}
                for item in v or []:
                    if isinstance(item, dict):
                        fid = item.get("id") or item.get("key")
                        if fid:
                            fields[fid] = {"id": fid, "value": item.get("field_value", item.get("value"))}
                c["customFields"] = list(fields.values())
            elif k == "dndSettings":
                ds = dict(c.get("dndSettings") or {})
                for ch, st in v.items():
                    ds[ch] = {"status": st.get("status"), "message": st.get("message", ""),
                              "code": st.get("code", "")}
                c["dndSettings"] = ds
            else:
                c[k] = v
        if "name" not in body and ("firstName" in body or "lastName" in body) or not c.get("name"):
            c["name"] = " ".join(x for x in (c.get("firstName"), c.get("lastName")) if x) or None

    def _new_contact(self, body, when=None):
        now = iso_ms(when)
        c = {"id": new_id(), "locationId": self.location_id, "firstName": None, "lastName": None,
             "name": None, "email": None, "phone": None, "tags": [], "dnd": False, "dndSettings": {},
             "address1": None, "city": None, "state": None, "postalCode": None, "country": None,
             "companyName": None, "website": None, "source": None, "timezone": None,
             "assignedTo": None, "dateOfBirth": None, "customFields": [], "attachments": [],
             "type": "lead", "dateAdded": now, "dateUpdated": now}
        self._apply(c, body)
        return c

    def view(self, c):
        """The contact as the API returns it (doc §3.1 keys, ISO ms Z dates)."""
        v = dict(c)
        v["emailLowerCase"] = lower(c.get("email"))
        v["firstNameLowerCase"] = lower(c.get("firstName"))
        v["lastNameLowerCase"] = lower(c.get("lastName"))
        v["fullNameLowerCase"] = lower(c.get("name"))
        v["contactName"] = c.get("name")
        return v

    @staticmethod
    def _snapshot(c):
        return {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
                for k, v in c.items()}

    def _changes(self, before, after):
        """The webhook types an edit causes (doc §6.2): ContactUpdate for any
        field, ContactDndUpdate for dnd/dndSettings, ContactTagUpdate for tags.
        No change -> no webhook."""
        keys = set(before) | set(after)
        changed = {k for k in keys if before.get(k) != after.get(k)} - {"dateUpdated"}
        kinds = []
        if changed - {"tags", "dnd", "dndSettings"}:
            kinds.append("ContactUpdate")
        if changed & {"dnd", "dndSettings"}:
            kinds.append("ContactDndUpdate")
        if "tags" in changed:
            kinds.append("ContactTagUpdate")
        return kinds

    # ------------------------------------------------------------ webhooks (doc §6)

    def webhook_body(self, kind, c):
        """A contact webhook shaped like tests/fixtures/ghl/<kind>.json."""
        body = {"type": kind, "webhookId": str(uuid.uuid4()), "timestamp": iso_ms(),
                "locationId": c.get("locationId", self.location_id), "id": c["id"]}
        if kind == "ContactDelete":
            body.update({"email": c.get("email"), "name": c.get("name"), "phone": c.get("phone"),
                         "tags": []})
            return body
        if kind == "ContactTagUpdate":
            body.update({k: c.get(k) for k in ("email", "name", "firstName", "lastName", "phone", "tags")})
        elif kind == "ContactDndUpdate":
            body.update({"phone": c.get("phone"), "email": c.get("email"), "dnd": c.get("dnd", False),
                         "dndSettings": c.get("dndSettings") or {}})
        else:
            body.update({k: c.get(k) for k in WEBHOOK_FIELDS})
        body["dateAdded"] = c["dateAdded"]
        if not self.args.no_webhook_date_updated:
            body["dateUpdated"] = c["dateUpdated"]
        return body

    def sign(self, raw):
        """X-GHL-Signature: base64 Ed25519 over the raw body (doc §6.1, fixtures
        README); X-WH-Signature (legacy RSA PKCS#1 v1.5 SHA-256) when configured."""
        headers = {"X-GHL-Signature": base64.b64encode(self.signing_key.sign(raw)).decode()}
        if self.rsa_key is not None:
            sig = self.rsa_key.sign(raw, padding.PKCS1v15(), hashes.SHA256())
            headers["X-WH-Signature"] = base64.b64encode(sig).decode()
        return headers

    def send_raw_webhook(self, body):
        raw = json_bytes(body)
        label = body.get("type", "?") if isinstance(body, dict) else "?"
        return self.webhooks.send(raw, self.sign(raw), label)

    def _emit(self, kinds, c):
        out = []
        for kind in kinds:
            out.append(self.send_raw_webhook(self.webhook_body(kind, c)))
        return [d for d in out if d is not None]

    # ------------------------------------------------------------ contacts endpoints (doc §3)

    def duplicate_search(self, req):
        """GET /contacts/search/duplicate?locationId=&number=&email= (doc §3.6):
        200 {"contact": {...}} or {"contact": null}."""
        denied = self._query_location(req.query)
        if denied:
            return denied
        matches = self._match(req.query.get("email"), req.query.get("number"))
        if self.allow_duplicates:
            order = ["email", "phone"]  # doc §3.6: email first, then phone
        else:
            order = self.priority       # the location's unique identifier order
        for field in order:
            if field in matches:
                return json_response(200, {"contact": self.view(matches[field])})
        return json_response(200, {"contact": None})

    def create(self, req):
        """POST /contacts/ (doc §3.2): 201 {"contact": {...}}; 422 on DTO errors;
        400 "does not allow duplicated contacts" when the setting is off and the
        email or phone already belongs to a contact."""
        body = req.body if req.body is not None else {}
        errs = self._validate(body, CREATE_FIELDS, need_location=True)
        if errs:
            return unprocessable(errs)
        denied = self._check_location(body["locationId"])
        if denied:
            return denied
        if not self.allow_duplicates:
            field, dup = self._first_match(self._match(body.get("email"), body.get("phone")))
            if dup:
                return self._duplicate_error(field, dup)
        c = self._new_contact(body)
        self.state["contacts"][c["id"]] = c
        self.save()
        self._emit(["ContactCreate"], c)
        return json_response(201, {"contact": self.view(c)})

    def get(self, req, id):
        """GET /contacts/:id (doc §3.1): 200 {"contact": {...}}."""
        c = self._find(id)
        if not c:
            return self._not_found(id)
        return json_response(200, {"contact": self.view(c)})

    def update(self, req, id):
        """PUT /contacts/:id (doc §3.3): 200 {"succeded": true, "contact": {...}}
        (the vendor's spelling). Tags in the body replace all tags."""
        c = self._find(id)
        if not c:
            return self._not_found(id)
        body = req.body if req.body is not None else {}
        errs = self._validate(body, UPDATE_FIELDS, need_location=False)
        if errs:
            return unprocessable(errs)
        if not self.allow_duplicates:
            field, dup = self._first_match(self._match(body.get("email"), body.get("phone"), exclude=id))
            if dup:
                return self._duplicate_error(field, dup)
        before = self._snapshot(c)
        self._apply(c, body)
        kinds = self._changes(before, c)
        if kinds:
            c["dateUpdated"] = iso_ms()
        self.save()
        self._emit(kinds, c)
        return json_response(200, {"succeded": True, "contact": self.view(c)})

    def delete(self, req, id):
        """DELETE /contacts/:id (doc §3.5): 200 {"succeded": true}."""
        c = self.state["contacts"].pop(id, None)
        if not c:
            return self._not_found(id)
        self.save()
        self._emit(["ContactDelete"], c)
        return json_response(200, {"succeded": True})

    def upsert(self, req):
        """POST /contacts/upsert (doc §3.4): 200 {"new", "contact", "traceId"}.
        Matching follows the duplicate setting: the first field of the priority
        order that matches wins; when duplicates are not allowed, the other
        field is not written if it belongs to another contact (issue #37).
        With duplicates allowed and createNewIfDuplicateAllowed true, always new."""
        body = req.body if req.body is not None else {}
        errs = self._validate(body, UPSERT_FIELDS, need_location=True)
        if errs:
            return unprocessable(errs)
        denied = self._check_location(body["locationId"])
        if denied:
            return denied
        trace = str(uuid.uuid4())
        target = None
        if not (self.allow_duplicates and body.get("createNewIfDuplicateAllowed")):
            matches = self._match(body.get("email"), body.get("phone"))
            field, target = self._first_match(matches)
            if target and not self.allow_duplicates:
                other = "phone" if field == "email" else "email"
                if other in matches and matches[other]["id"] != target["id"]:
                    body = {k: v for k, v in body.items() if k != other}
        if target is None:
            c = self._new_contact(body)
            self.state["contacts"][c["id"]] = c
            self.save()
            self._emit(["ContactCreate"], c)
            return json_response(200, {"new": True, "contact": self.view(c), "traceId": trace})
        before = self._snapshot(target)
        self._apply(target, body)
        kinds = self._changes(before, target)
        if kinds:
            target["dateUpdated"] = iso_ms()
        self.save()
        self._emit(kinds, target)
        return json_response(200, {"new": False, "contact": self.view(target), "traceId": trace})

    def _tags_body(self, req):
        body = req.body
        if not isinstance(body, dict) or "tags" not in body:
            return None, unprocessable(["tags must be an array", "tags should not be empty"])
        if not isinstance(body["tags"], list) or not all(isinstance(t, str) for t in body["tags"]):
            return None, unprocessable(["tags must be an array"])
        extra = [k for k in body if k != "tags"]
        if extra:
            return None, unprocessable(["property %s should not exist" % k for k in extra])
        return self._norm_tags(body["tags"]), None

    def add_tags(self, req, id):
        """POST /contacts/:id/tags {"tags": [...]} (doc §3.9): 201 {"tags": full set}."""
        return self._change_tags(req, id, 201, lambda before, tags: self._norm_tags(before + tags))

    def remove_tags(self, req, id):
        """DELETE /contacts/:id/tags {"tags": [...]} (doc §3.9): 200 {"tags": full set}."""
        return self._change_tags(req, id, 200, lambda before, tags: [t for t in before if t not in tags])

    def _change_tags(self, req, id, status, combine):
        """Applies `combine(old tags, request tags)`; a real change is saved and
        sends ContactTagUpdate."""
        c = self._find(id)
        if not c:
            return self._not_found(id)
        tags, err = self._tags_body(req)
        if err:
            return err
        before = list(c["tags"])
        c["tags"] = combine(before, tags)
        if c["tags"] != before:
            c["dateUpdated"] = iso_ms()
            self.save()
            self._emit(["ContactTagUpdate"], c)
        return json_response(status, {"tags": list(c["tags"])})

    # ------------------------------------------------------------ listing (doc §3.7, §3.8)

    def _sorted(self, sort):
        """Contacts in dateAdded, id order, then stably by each `sort` item
        ({field, direction}), the last item applied first."""
        contacts = sorted(self.state["contacts"].values(), key=lambda c: (c["dateAdded"], c["id"]))
        for s in reversed(sort or []):
            field, desc = s.get("field"), s.get("direction", "asc") == "desc"
            contacts.sort(key=lambda c, f=field: (c.get(f) is None, str(c.get(f) or "").lower()),
                          reverse=desc)
        return contacts

    @staticmethod
    def _cursor(c):
        """searchAfter of a contact: [dateAdded epoch ms, id] (doc §3.7)."""
        return [int(round(parse_iso_ms(c["dateAdded"]) * 1000)), c["id"]]

    def _filter_ok(self, c, f):
        if "group" in f:
            subs = f.get("filters") or []
            results = [self._filter_ok(c, s) for s in subs]
            return any(results) if str(f["group"]).upper() == "OR" else all(results)
        field, op, value = f.get("field"), f.get("operator"), f.get("value")
        v = self.view(c).get(field)
        if field == "phone" and isinstance(value, str):
            value = normalize_phone(value) or value
        if op == "eq":
            return (v in value) if isinstance(v, list) else (lower(v) == lower(value) if isinstance(v, str) else v == value)
        if op == "not_eq":
            return not self._filter_ok(c, dict(f, operator="eq"))
        if op == "contains":
            return isinstance(v, str) and isinstance(value, str) and value.lower() in v.lower()
        if op == "not_contains":
            return not self._filter_ok(c, dict(f, operator="contains"))
        if op == "exists":
            return v not in (None, "", [], {})
        if op == "not_exists":
            return v in (None, "", [], {})
        if op == "range" and isinstance(value, dict):
            x = parse_iso_ms(v) if isinstance(v, str) and parse_iso_ms(v) is not None else v
            for k, bound in value.items():
                b = parse_iso_ms(bound) if isinstance(bound, str) and parse_iso_ms(bound) is not None else bound
                if x is None or b is None:
                    return False
                if (k == "gt" and not x > b) or (k == "gte" and not x >= b) or \
                        (k == "lt" and not x < b) or (k == "lte" and not x <= b):
                    return False
            return True
        return False

    @staticmethod
    def _query_ok(c, q):
        if not q:
            return True
        q = q.lower()
        hay = " ".join(str(c.get(k) or "") for k in ("name", "firstName", "lastName", "email",
                                                     "phone", "companyName")).lower()
        return q in hay

    def search(self, req):
        """POST /contacts/search (doc §3.7): body locationId + pageLimit (<=500)
        required (else 422, S10); `page` (1-based, <=10,000 records) or
        `searchAfter` (cursor from the previous page's last contact);
        filters/sort/query. Answer {"contacts": [... each with searchAfter], "total"}.
        Default order: dateAdded then id, ascending (cursor [epoch ms, id])."""
        body = req.body if isinstance(req.body, dict) else {}
        errs = []
        if not body.get("locationId"):
            errs.append("locationId should not be empty")
        limit = body.get("pageLimit")
        if not isinstance(limit, int) or isinstance(limit, bool):
            errs.append("pageLimit must be a number conforming to the specified constraints")
        elif not 1 <= limit <= 500:
            errs.append("pageLimit must not be greater than 500" if limit > 500 else "pageLimit must not be less than 1")
        if "searchAfter" in body and "page" in body:
            errs.append("page should not exist when searchAfter is used")
        if "searchAfter" in body and not isinstance(body["searchAfter"], list):
            errs.append("searchAfter must be an array")
        if isinstance(body.get("query"), str) and len(body["query"]) > 75:
            errs.append("query must be shorter than or equal to 75 characters")
        if errs:
            return unprocessable(errs)
        denied = self._check_location(body["locationId"])
        if denied:
            return denied
        sort = body.get("sort") or []
        contacts = [c for c in self._sorted(sort)
                    if all(self._filter_ok(c, f) for f in (body.get("filters") or []))
                    and self._query_ok(c, body.get("query"))]
        total = len(contacts)
        if "searchAfter" in body:
            after = body["searchAfter"]
            if sort:
                ids = [c["id"] for c in contacts]
                start = ids.index(after[-1]) + 1 if after and after[-1] in ids else 0
                page = contacts[start:start + limit]
            else:
                key = (after[0], str(after[1])) if len(after) >= 2 else (after[0] if after else 0, "")
                page = [c for c in contacts if tuple(self._cursor(c)) > key][:limit]
        else:
            page_no = body.get("page", 1)
            if not isinstance(page_no, int) or page_no < 1:
                return unprocessable(["page must not be less than 1"])
            if page_no * limit > 10000:
                return ghl_error(400, "Standard pagination is limited to 10,000 records; use searchAfter")
            page = contacts[(page_no - 1) * limit: page_no * limit]
        out = []
        for c in page:
            v = self.view(c)
            v["searchAfter"] = self._cursor(c)
            out.append(v)
        return json_response(200, {"contacts": out, "total": total})

    def list_contacts(self, req):
        """GET /contacts/?locationId=&limit=&startAfterId=&startAfter=&query=
        (doc §3.8, DEPRECATED by the vendor): {"contacts", "count", "meta"}.
        Order dateAdded then id; startAfter is epoch ms of the last dateAdded."""
        denied = self._query_location(req.query)
        if denied:
            return denied
        limit, bad = self._int_query(req.query, "limit", "20")
        if bad:
            return bad
        if not 1 <= limit <= 100:
            return unprocessable(["limit must not be greater than 100" if limit > 100 else "limit must not be less than 1"])
        contacts = [c for c in self._sorted([]) if self._query_ok(c, req.query.get("query"))]
        total = len(contacts)
        after_id = req.query.get("startAfterId")
        after_ms = req.query.get("startAfter")
        if after_id or after_ms:
            key = (int(float(after_ms)) if after_ms else 0, after_id or "")
            if after_id and not after_ms and after_id in self.state["contacts"]:
                key = tuple(self._cursor(self.state["contacts"][after_id]))
            contacts = [c for c in contacts if tuple(self._cursor(c)) > key]
        page = contacts[:limit]
        more = len(contacts) > limit
        last = self._cursor(page[-1]) if page and more else None
        meta = {"total": total, "currentPage": None, "nextPage": None, "prevPage": None,
                "startAfterId": last[1] if last else None,
                "startAfter": last[0] if last else None,
                "nextPageUrl": None}
        if last:
            q = {"locationId": self.location_id, "limit": limit, "startAfterId": last[1], "startAfter": last[0]}
            meta["nextPageUrl"] = "/contacts/?" + urllib.parse.urlencode(q)
        return json_response(200, {"contacts": [self.view(c) for c in page], "count": total, "meta": meta})

    # ------------------------------------------------------------ notes (doc §3.10)

    def _not_found_kind(self, kind, ident):
        """An unknown conversation / message / note id: like an unknown contact
        (400 "<Kind> with id X not found" by default, 404 with
        --not-found-status 404; see README choices)."""
        if self.args.not_found_status == 404:
            return ghl_error(404, "%s not found" % kind)
        return ghl_error(400, "%s with id %s not found" % (kind, ident))

    @staticmethod
    def _string_errors(body, names, prefix=""):
        return ["%s%s must be a string" % (prefix, k) for k in names
                if k in body and body[k] is not None and not isinstance(body[k], str)]

    @staticmethod
    def _note_view(n):
        """GetNoteSchema (S1): id, body, userId, dateAdded, contactId, title, color, pinned."""
        return {k: n.get(k) for k in ("id", "body", "userId", "dateAdded", "contactId", "title",
                                      "color", "pinned")}

    def create_note(self, req, id):
        """POST /contacts/:contactId/notes (doc §3.10, S1 NotesDTO): body required;
        userId, title, color, pinned optional. 201 {"note": {...}}; 422 on DTO
        errors; unknown contact as for GET /contacts/:id. Sends NoteCreate (S7)."""
        body = req.body if req.body is not None else {}
        if not isinstance(body, dict):
            return unprocessable(["body must be an object"])
        errs = ["property %s should not exist" % k for k in body if k not in NOTE_FIELDS]
        text = body.get("body")
        if text is None or text == "":
            errs.append("body should not be empty")
        if not isinstance(text, str):
            errs.append("body must be a string")
        errs += self._string_errors(body, ("userId", "title", "color"))
        if "pinned" in body and not isinstance(body["pinned"], bool):
            errs.append("pinned must be a boolean value")
        if errs:
            return unprocessable(errs)
        c = self._find(id)
        if not c:
            return self._not_found(id)
        note = {"id": new_id(), "body": body["body"], "userId": body.get("userId"),
                "dateAdded": iso_ms(), "contactId": id, "title": body.get("title"),
                "color": body.get("color"), "pinned": bool(body.get("pinned", False))}
        self.state["notes"][note["id"]] = note
        self.save()
        if not self.args.no_message_webhooks:
            self.send_raw_webhook({"type": "NoteCreate", "webhookId": str(uuid.uuid4()),
                                   "timestamp": iso_ms(), "locationId": self.location_id,
                                   "id": note["id"], "body": note["body"], "contactId": id,
                                   "dateAdded": note["dateAdded"]})
        return json_response(201, {"note": self._note_view(note)})

    def _contact_notes(self, contact_id):
        """A contact's notes, newest first."""
        return sorted((n for n in self.state["notes"].values() if n["contactId"] == contact_id),
                      key=lambda n: (n["dateAdded"], n["id"]), reverse=True)

    def list_notes(self, req, id):
        """GET /contacts/:contactId/notes (doc §3.10): 200 {"notes": [...]}, newest first."""
        if not self._find(id):
            return self._not_found(id)
        return json_response(200, {"notes": [self._note_view(n) for n in self._contact_notes(id)]})

    def get_note(self, req, id, note_id):
        """GET /contacts/:contactId/notes/:id (doc §3.10): 200 {"note": {...}}."""
        if not self._find(id):
            return self._not_found(id)
        n = self.state["notes"].get(note_id)
        if not n or n["contactId"] != id:
            return self._not_found_kind("Note", note_id)
        return json_response(200, {"note": self._note_view(n)})
