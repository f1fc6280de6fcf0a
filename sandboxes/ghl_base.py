"""Constants and helpers shared by the GoHighLevel sandbox's parts (ghl.py and
its mixins ghl_contacts.py, ghl_conversations.py, ghl_messages.py)."""

import os
import secrets
import string
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import json_response, parse_iso_ms  # noqa: E402


# doc §1: accepted Version values (a wrong one is treated like a missing one).
VERSIONS = {"2021-07-28", "2021-04-15", "v3"}

# doc §3.2-3.4 (the OpenAPI DTOs, S1): properties each body may carry. Any
# other property is refused with 422 "property X should not exist" (S1 DTOs;
# the live API does this too, issue #262 quoted in research).
CREATE_FIELDS = {"firstName", "lastName", "name", "email", "locationId", "gender", "phone",
                 "address1", "city", "state", "postalCode", "website", "timezone", "dnd",
                 "dndSettings", "inboundDndSettings", "tags", "customFields", "source",
                 "dateOfBirth", "country", "companyName", "assignedTo"}
UPDATE_FIELDS = CREATE_FIELDS - {"locationId", "gender", "companyName"}
UPSERT_FIELDS = CREATE_FIELDS | {"createNewIfDuplicateAllowed"}
STRING_FIELDS = {"firstName", "lastName", "name", "email", "locationId", "gender", "phone",
                 "address1", "city", "state", "postalCode", "website", "timezone", "source",
                 "dateOfBirth", "country", "companyName", "assignedTo"}
DND_CHANNELS = ("Call", "Email", "SMS", "WhatsApp", "GMB", "FB")
DND_STATUSES = ("active", "inactive", "permanent")

# doc §6.2: the flat fields of contact webhooks (ContactCreate/Update).
WEBHOOK_FIELDS = ("address1", "city", "state", "companyName", "country", "source", "dateAdded",
                  "dateOfBirth", "dnd", "email", "name", "firstName", "lastName", "phone",
                  "postalCode", "tags", "website", "attachments", "assignedTo", "customFields")

# doc §4 (S2 ProcessMessageBodyDto): the `type` enum of the inbound-message
# endpoint; the outbound endpoint (ProcessOutboundMessageBodyDto) takes only Call.
INBOUND_TYPES = ("SMS", "RCS", "Email", "WhatsApp", "GMB", "IG", "FB", "Custom", "WebChat",
                 "Live_Chat", "Call", "IVR_Call", "Campaign_Call", "Campaign_VoiceMail", "TIKTOK",
                 "ALL_IN_ONE_CHAT", "FORM_SUBMISSION")
OUTBOUND_TYPES = ("Call",)
# The channels the sandbox's conversation provider carries (see README choices):
# request type -> (numeric `type`, `messageType` of GetMessageResponseDto,
# `messageType` of the message webhooks).
MESSAGE_KINDS = {"SMS": (2, "TYPE_SMS", "SMS"), "Call": (1, "TYPE_CALL", "CALL")}
CALL_STATUSES = ("pending", "completed", "answered", "busy", "no-answer", "failed", "canceled",
                 "voicemail")                                  # doc §4, CallDataDTO.status
DIRECTIONS = ("outbound", "inbound")
UPDATE_STATUSES = ("delivered", "failed", "pending", "read")   # doc §4.5, UpdateMessageStatusDto
INBOUND_FIELDS = {"type", "attachments", "message", "conversationId", "contactId",
                  "conversationProviderId", "html", "subject", "emailFrom", "emailTo", "emailCc",
                  "emailBcc", "emailMessageId", "altId", "direction", "date", "call"}
# contactId: added to the outbound call by the vendor after S2 (doc §4.2).
OUTBOUND_FIELDS = {"type", "attachments", "conversationId", "contactId", "conversationProviderId",
                   "altId", "date", "call"}
CALL_FIELDS = ("to", "from", "status")
STATUS_FIELDS = {"status", "error", "emailMessageId", "recipients"}
NOTE_FIELDS = {"userId", "body", "title", "color", "pinned"}      # doc §3.10, NotesDTO
MESSAGE_TYPE_FILTERS = {"TYPE_CALL", "TYPE_SMS", "TYPE_RCS", "TYPE_EMAIL", "TYPE_FACEBOOK",
                        "TYPE_GMB", "TYPE_INSTAGRAM", "TYPE_WHATSAPP", "TYPE_ACTIVITY_APPOINTMENT",
                        "TYPE_ACTIVITY_CONTACT", "TYPE_ACTIVITY_INVOICE", "TYPE_ACTIVITY_PAYMENT",
                        "TYPE_ACTIVITY_OPPORTUNITY", "TYPE_LIVE_CHAT", "TYPE_INTERNAL_COMMENTS",
                        "TYPE_ACTIVITY_EMPLOYEE_ACTION_LOG"}

SCOPES = ("contacts.readonly contacts.write conversations.readonly conversations.write "
          "conversations/message.readonly conversations/message.write")
ID_ALPHABET = string.ascii_letters + string.digits


def ghl_error(status, message, error=None, **extra):
    """doc §2: {"statusCode": N, "message": ...} (+ "error" for the DTOs that have it)."""
    body = {"statusCode": status, "message": message}
    if error:
        body["error"] = error
    body.update(extra)
    return json_response(status, body)


def unprocessable(messages):
    """doc §2 UnprocessableDTO: message is an array of strings."""
    return ghl_error(422, list(messages), "Unprocessable Entity")


def new_id():
    """GHL ids look like 20 letters and digits (e.g. nmFmQEsNgz6AVpgLVUJ0)."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(20))


def lower(value):
    return value.lower() if isinstance(value, str) else None


def utc_time(text):
    """Seconds since the epoch of an ISO 8601 date and time in UTC ("Z" or
    "+00:00"), or None (a date alone, no zone, another offset)."""
    if not isinstance(text, str) or "T" not in text or not text.endswith(("Z", "+00:00")):
        return None
    return parse_iso_ms(text)
