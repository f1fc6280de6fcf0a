// GET /v1/openapi.json: the API described as OpenAPI 3.1. Every route of
// console.cc's table is here and nothing else is (tests/unit/
// console_test.cc checks both ways; tests/integration/console_test.py
// validates it against the OpenAPI 3.1 schema).
#include "console/console.h"

namespace dfm {

namespace {

// Reusable pieces, spliced into the document below.
#define DFM_ERR(code, what) \
  "\"" #code "\":{\"description\":\"" what "\",\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/Error\"}}}}"
#define DFM_LIMITED \
  "\"429\":{\"description\":\"Over the key's or the tenant's limit\",\"headers\":{\"Retry-After\":{\"$ref\":\"#/components/headers/RetryAfter\"}},\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/Error\"}}}}"
#define DFM_AUTH_ERRORS DFM_ERR(401, "No valid credential") "," DFM_ERR(403, "The key's role or tenant does not allow it") "," DFM_LIMITED
#define DFM_OK(what, schema)                                                               \
  "\"200\":{\"description\":\"" what                                                       \
  "\",\"headers\":{\"X-RateLimit-Limit\":{\"$ref\":\"#/components/headers/Limit\"},"       \
  "\"X-RateLimit-Remaining\":{\"$ref\":\"#/components/headers/"                            \
  "Remaining\"},\"X-RateLimit-Reset\":{\"$ref\":\"#/components/headers/Reset\"}},"         \
  "\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/" schema \
  "\"}}}}"
#define DFM_ITEMS(what) DFM_OK(what, "Items")
#define DFM_PAGE(what) DFM_OK(what, "Page")
#define DFM_PARAM(name, where, req, desc) \
  "{\"name\":\"" name "\",\"in\":\"" where "\",\"required\":" req ",\"description\":\"" desc "\",\"schema\":{\"type\":\"string\"}}"
#define DFM_TENANT DFM_PARAM("tenant", "query", "false", "The tenant (the key's own by default, else default)")
#define DFM_CONTACT(req) DFM_PARAM("contact", "query", req, "A phone (any spelling), an email, <system>:<id> or contact:<id>")
#define DFM_TIME(name, desc) DFM_PARAM(name, "query", "false", desc " (RFC 3339, a date, now, or -2h)")
#define DFM_SECURED "\"security\":[{\"bearer\":[]}]"
// The campaign API's pieces: the path's id, its 400 with details, a JSON
// answer, a write's durable answer.
#define DFM_ID "{\"name\":\"id\",\"in\":\"path\",\"required\":true,\"schema\":{\"type\":\"string\"}}"
#define DFM_INVALID(code, what) \
  "\"" #code "\":{\"description\":\"" what "\",\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/ValidationError\"}}}}"
#define DFM_JSON(code, what) "\"" #code "\":{\"description\":\"" what "\",\"content\":{\"application/json\":{\"schema\":{\"type\":\"object\"}}}}"
#define DFM_BODY "\"requestBody\":{\"required\":true,\"content\":{\"application/json\":{\"schema\":{\"type\":\"object\"}}}}"
#define DFM_WRITTEN(code, what) "\"" #code "\":{\"description\":\"" what "\",\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/Appended\"}}}}"
#define DFM_CHANGE(action, op, what)                                                                              \
  "\"/v1/campaigns/{id}/" action "\":{\"post\":{\"summary\":\"" what "; operator\",\"operationId\":\"" op "\"," DFM_SECURED "," \
  "\"parameters\":[" DFM_ID "," DFM_TENANT "],\"requestBody\":{\"required\":false,\"content\":{\"application/json\":{\"schema\":{\"type\":\"object\",\"properties\":{\"reason\":{\"type\":\"string\"}}}}}}," \
  "\"responses\":{" DFM_WRITTEN(200, "Recorded") "," DFM_INVALID(400, "A malformed body") "," DFM_ERR(404, "No such campaign or tenant") "," \
  DFM_ERR(409, "Not from the campaign's state") "," DFM_ERR(503, "The log cannot write") "," DFM_AUTH_ERRORS

constexpr char kDocument[] =
    "{\"openapi\":\"3.1.0\","
    "\"info\":{\"title\":\"DF-Middleware API\",\"version\":\"0.1.0\","
    "\"description\":\"Read the sync's log and act on it with an API key (dfm keys create). "
    "Roles: viewer reads; operator also re-drives and settles; admin also manages keys. "
    "The /v1/admin/ paths are served on server.admin_listen when it is set.\"},"
    "\"components\":{"
    "\"securitySchemes\":{\"bearer\":{\"type\":\"http\",\"scheme\":\"bearer\","
    "\"description\":\"An API key (dfm_<id>_<secret>), or on the admin listener the data directory's admin.token\"}},"
    "\"headers\":{"
    "\"Limit\":{\"description\":\"Requests allowed per minute (the tighter of the key's and the tenant's)\",\"schema\":{\"type\":\"integer\"}},"
    "\"Remaining\":{\"description\":\"Requests left this minute\",\"schema\":{\"type\":\"integer\"}},"
    "\"Reset\":{\"description\":\"Seconds until the minute turns\",\"schema\":{\"type\":\"integer\"}},"
    "\"RetryAfter\":{\"description\":\"Seconds to wait\",\"schema\":{\"type\":\"integer\"}}},"
    "\"schemas\":{"
    "\"Error\":{\"type\":\"object\",\"required\":[\"error\",\"detail\"],\"properties\":{"
    "\"error\":{\"type\":\"string\"},\"detail\":{\"type\":\"string\"}}},"
    "\"ValidationError\":{\"type\":\"object\",\"required\":[\"error\",\"details\"],\"properties\":{"
    "\"error\":{\"const\":\"Validation error\"},\"details\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"field\",\"problem\"],"
    "\"properties\":{\"field\":{\"type\":\"string\"},\"problem\":{\"type\":\"string\"}}}}}},"
    "\"Items\":{\"type\":\"object\",\"required\":[\"items\"],\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}}}},"
    "\"Page\":{\"type\":\"object\",\"required\":[\"items\",\"next_after\"],\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}},"
    "\"next_after\":{\"type\":\"integer\",\"minimum\":0}},\"additionalProperties\":false},"
    "\"Appended\":{\"type\":\"object\",\"required\":[\"status\",\"event_id\",\"seq\"],\"properties\":{"
    "\"status\":{\"enum\":[\"accepted\",\"duplicate\"]},\"event_id\":{\"type\":\"string\"},\"seq\":{\"type\":\"integer\"},"
    "\"items\":{\"type\":\"integer\"}}},"
    "\"SyncScope\":{\"type\":\"object\",\"properties\":{\"tenant\":{\"type\":\"string\",\"description\":\"One tenant; absent: every one (a key of one tenant: its own)\"},"
    "\"system\":{\"type\":\"string\",\"description\":\"One system (ghl, aloware, ...); absent: every one\"},"
    "\"reason\":{\"type\":\"string\",\"maxLength\":200,\"description\":\"pause: why, recorded\"},"
    "\"concurrency\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000,\"description\":\"resume: at most this many requests at once\"}}},"
    "\"SyncState\":{\"type\":\"object\",\"required\":[\"paused\",\"pauses\",\"limits\"],\"properties\":{"
    "\"paused\":{\"type\":\"boolean\"},\"pauses\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}},"
    "\"limits\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}},\"status\":{\"enum\":[\"recorded\",\"duplicate\"]},\"seq\":{\"type\":\"integer\"}}},"
    "\"Key\":{\"type\":\"object\",\"required\":[\"id\",\"name\",\"tenant\",\"role\",\"revoked\"],\"properties\":{"
    "\"id\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},\"tenant\":{\"type\":\"string\"},"
    "\"role\":{\"enum\":[\"viewer\",\"operator\",\"admin\"]},\"created_at\":{\"type\":\"string\"},"
    "\"created_by\":{\"type\":\"string\"},\"revoked\":{\"type\":\"boolean\"},\"revoked_at\":{\"type\":\"string\"},"
    "\"revoked_by\":{\"type\":\"string\"},\"token\":{\"type\":\"string\",\"description\":\"Only in the answer that creates it\"}}}}},"
    "\"paths\":{"
    // The status page.
    "\"/docs/visual\":{"
    "\"get\":{\"summary\":\"The status page (HTML)\",\"operationId\":\"statusPage\",\"responses\":{\"200\":{\"description\":\"The page\",\"content\":{\"text/html\":{}}}}},"
    "\"post\":{\"summary\":\"Search for a contact on the status page (form field q)\",\"operationId\":\"statusSearch\","
    "\"requestBody\":{\"content\":{\"application/x-www-form-urlencoded\":{\"schema\":{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\"}}}}}},"
    "\"responses\":{\"200\":{\"description\":\"The page with the contact's story\",\"content\":{\"text/html\":{}}},\"429\":{\"description\":\"Too many searches\",\"content\":{\"text/html\":{}}}}}},"
    "\"/docs/visual/sign-in\":{\"post\":{\"summary\":\"Sign in with an API key (form field key); sets the session cookie\",\"operationId\":\"signIn\","
    "\"requestBody\":{\"content\":{\"application/x-www-form-urlencoded\":{\"schema\":{\"type\":\"object\",\"properties\":{\"key\":{\"type\":\"string\"}}}}}},"
    "\"responses\":{\"303\":{\"description\":\"Back to the page\"}}}},"
    "\"/docs/visual/sign-out\":{\"post\":{\"summary\":\"End the session\",\"operationId\":\"signOut\",\"responses\":{\"303\":{\"description\":\"Back to the page\"}}}},"
    "\"/v1/openapi.json\":{\"get\":{\"summary\":\"This document\",\"operationId\":\"openapi\",\"responses\":{\"200\":{\"description\":\"OpenAPI 3.1\",\"content\":{\"application/json\":{}}}}}},"
    // Reads.
    "\"/v1/contacts/trace\":{\"get\":{\"summary\":\"A contact's story across every system (dfm trace)\",\"operationId\":\"trace\"," DFM_SECURED ","
    "\"parameters\":[" DFM_CONTACT("true") "," DFM_TENANT "," DFM_TIME("since", "Events from") "," DFM_TIME("until", "Events before") ","
    DFM_PARAM("scan", "query", "false", "true: also read the window's webhooks that changed nothing") "],"
    "\"responses\":{" DFM_ITEMS("Events (kind event), systems and findings") "," DFM_ERR(400, "A bad parameter") "," DFM_ERR(404, "No such contact or tenant") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/contacts/as-of\":{\"get\":{\"summary\":\"A contact's state at a time (dfm as-of)\",\"operationId\":\"asOf\"," DFM_SECURED ","
    "\"parameters\":[" DFM_CONTACT("true") "," DFM_TENANT "," DFM_PARAM("at", "query", "true", "The time (RFC 3339, a date, now, -2h)") "],"
    "\"responses\":{" DFM_ITEMS("The contact's fields, ids, consent and unsettled pushes") "," DFM_ERR(400, "A bad parameter") "," DFM_ERR(404, "No such contact or tenant") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/events\":{\"get\":{\"summary\":\"Events of the log (dfm events)\",\"operationId\":\"events\"," DFM_SECURED ","
    "\"parameters\":[" DFM_TENANT "," DFM_CONTACT("false") "," DFM_PARAM("system", "query", "false", "About one system") ","
    DFM_PARAM("type", "query", "false", "One type, or a prefix ending in *") "," DFM_PARAM("stream", "query", "false", "One stream") ","
    DFM_TIME("from", "Recorded at or after") "," DFM_TIME("to", "Recorded before") "," DFM_PARAM("limit", "query", "false", "At most this many (1000; up to 10000); with contact one more, an event with its cause") ","
    DFM_PARAM("after", "query", "false", "Only events with a greater seq: the next_after of the page before") "],"
    "\"responses\":{" DFM_PAGE("Events, oldest first; next_after: the after of the next page") "," DFM_ERR(400, "A bad parameter") "," DFM_ERR(404, "No such contact or tenant") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/audit/opt-outs\":{\"get\":{\"summary\":\"Every opt-out and opt-in, who was told when (dfm audit opt-outs)\",\"operationId\":\"auditOptOuts\"," DFM_SECURED ","
    "\"parameters\":[" DFM_TENANT "," DFM_PARAM("phone", "query", "false", "One phone") "," DFM_PARAM("email", "query", "false", "One email") ","
    DFM_TIME("since", "Happened from") "," DFM_TIME("until", "Happened before") "," DFM_PARAM("format", "query", "false", "json (default) or csv") "],"
    "\"responses\":{\"200\":{\"description\":\"The records\",\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/Items\"}},\"text/csv\":{}}},"
    DFM_ERR(400, "A bad parameter") "," DFM_ERR(404, "No such tenant") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/audit/violations\":{\"get\":{\"summary\":\"Texts and calls to opted-out numbers, and slow opt-outs (dfm audit violations)\",\"operationId\":\"auditViolations\"," DFM_SECURED ","
    "\"parameters\":[" DFM_TENANT "," DFM_PARAM("threshold_days", "query", "false", "Business days an opt-out may take (10)") "],"
    "\"responses\":{" DFM_ITEMS("The violations") "," DFM_ERR(400, "A bad parameter") "," DFM_ERR(404, "No such tenant") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/audit/consent-conflicts\":{\"get\":{\"summary\":\"Staff opt-ins refused over a person's opt-out (dfm audit consent-conflicts)\",\"operationId\":\"auditConsentConflicts\"," DFM_SECURED ","
    "\"parameters\":[" DFM_TENANT "],\"responses\":{" DFM_ITEMS("The conflicts") "," DFM_ERR(404, "No such tenant") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/dead-letters\":{\"get\":{\"summary\":\"Pushes that were given up and not re-driven (dfm replay dead-letters)\",\"operationId\":\"deadLetters\"," DFM_SECURED ","
    "\"parameters\":[" DFM_TENANT "," DFM_CONTACT("false") "," DFM_PARAM("system", "query", "false", "One system") "," DFM_PARAM("push", "query", "false", "One push id") ","
    DFM_TIME("from", "Dead-lettered from") "," DFM_TIME("to", "Dead-lettered before") "],"
    "\"responses\":{" DFM_ITEMS("The dead letters") "," DFM_ERR(400, "A bad parameter") "," DFM_ERR(404, "No such contact or tenant") "," DFM_AUTH_ERRORS "}}},"
    // Acts.
    "\"/v1/admin/replay\":{\"post\":{\"summary\":\"Re-drive pushes (dfm replay --execute); operator\",\"operationId\":\"replay\"," DFM_SECURED ","
    "\"parameters\":[" DFM_TENANT "],\"requestBody\":{\"required\":true,\"content\":{\"application/json\":{\"schema\":{\"type\":\"object\",\"required\":[\"items\"]}}}},"
    "\"responses\":{\"200\":{\"description\":\"Durable\",\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/Appended\"}}}},"
    DFM_ERR(400, "A malformed body") "," DFM_ERR(404, "No such tenant") "," DFM_ERR(422, "An item that is not re-drivable") "," DFM_ERR(503, "The log cannot write") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/admin/erase\":{\"post\":{\"summary\":\"Erase a person: destroy the keys of their data (dfm erase, docs/privacy.md); admin\",\"operationId\":\"erase\"," DFM_SECURED ","
    "\"parameters\":[" DFM_TENANT "],\"requestBody\":{\"required\":true,\"content\":{\"application/json\":{\"schema\":{\"type\":\"object\",\"required\":[\"contact\",\"reason\"],"
    "\"properties\":{\"contact\":{\"type\":\"string\"},\"reason\":{\"type\":\"string\"}}}}}},"
    "\"responses\":{\"200\":{\"description\":\"Erased (or erased before)\",\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/Appended\"}}}},"
    DFM_ERR(400, "A malformed body") "," DFM_ERR(404, "No such contact or tenant") "," DFM_ERR(503, "The log or the key store cannot write, or this process does not seal") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/admin/settle\":{\"post\":{\"summary\":\"Settle an identity conflict (dfm conflicts settle); operator\",\"operationId\":\"settle\"," DFM_SECURED ","
    "\"parameters\":[" DFM_TENANT "],\"requestBody\":{\"required\":true,\"content\":{\"application/json\":{\"schema\":{\"type\":\"object\",\"required\":[\"conflict\"],"
    "\"properties\":{\"conflict\":{\"type\":\"integer\"},\"contact\":{\"type\":\"string\"},\"dismiss\":{\"type\":\"boolean\"},\"reason\":{\"type\":\"string\"}}}}}},"
    "\"responses\":{\"200\":{\"description\":\"Durable\",\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/Appended\"}}}},"
    DFM_ERR(400, "A malformed body") "," DFM_ERR(404, "No such conflict or tenant") "," DFM_ERR(422, "Not a candidate") "," DFM_ERR(503, "The log cannot write") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/admin/keys\":{"
    "\"get\":{\"summary\":\"The API keys (dfm keys list); admin\",\"operationId\":\"listKeys\"," DFM_SECURED ","
    "\"responses\":{\"200\":{\"description\":\"The keys\",\"content\":{\"application/json\":{\"schema\":{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Key\"}}}}}}}," DFM_AUTH_ERRORS "}},"
    "\"post\":{\"summary\":\"Create a key (dfm keys create); admin. The token is in this answer only\",\"operationId\":\"createKey\"," DFM_SECURED ","
    "\"requestBody\":{\"required\":true,\"content\":{\"application/json\":{\"schema\":{\"type\":\"object\",\"required\":[\"name\",\"role\"],"
    "\"properties\":{\"name\":{\"type\":\"string\"},\"role\":{\"enum\":[\"viewer\",\"operator\",\"admin\"]},\"tenant\":{\"type\":\"string\",\"description\":\"A tenant, or * for all\"}}}}}},"
    "\"responses\":{\"201\":{\"description\":\"Created\",\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/Key\"}}}},"
    DFM_ERR(400, "A malformed body") "," DFM_ERR(503, "The log cannot write") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/admin/keys/{id}\":{\"delete\":{\"summary\":\"Revoke a key (dfm keys revoke); admin\",\"operationId\":\"revokeKey\"," DFM_SECURED ","
    "\"parameters\":[{\"name\":\"id\",\"in\":\"path\",\"required\":true,\"schema\":{\"type\":\"string\"}}],"
    "\"responses\":{\"200\":{\"description\":\"Revoked\",\"content\":{\"application/json\":{}}}," DFM_ERR(404, "No such key") "," DFM_ERR(503, "The log cannot write") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/admin/reload\":{\"post\":{\"summary\":\"Read the configuration file again, as SIGHUP does; admin of every tenant\",\"operationId\":\"reload\"," DFM_SECURED ","
    "\"responses\":{\"200\":{\"description\":\"Reloaded\",\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/Appended\"}}}},"
    DFM_ERR(422, "Refused whole: the old configuration stays") "," DFM_ERR(503, "The log cannot write") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/admin/backup\":{\"post\":{\"summary\":\"Back up the data directory (dfm backup, docs/backup.md); admin of every tenant\",\"operationId\":\"backup\"," DFM_SECURED ","
    "\"requestBody\":{\"required\":true,\"content\":{\"application/json\":{\"schema\":{\"type\":\"object\",\"required\":[\"into\"],"
    "\"properties\":{\"into\":{\"type\":\"string\",\"description\":\"An absolute directory the service may write\"},\"keep\":{\"type\":\"integer\",\"description\":\"Backups to keep, 0: all\"}}}}}},"
    "\"responses\":{\"200\":{\"description\":\"Backed up: the manifest under backup\",\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/Appended\"}}}},"
    DFM_ERR(400, "A malformed body") "," DFM_ERR(503, "The backup failed, or this process takes none") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/admin/backfill\":{\"get\":{\"summary\":\"The tenant's backfills: the one running, or each system's last (dfm backfill follows it); operator\",\"operationId\":\"backfills\"," DFM_SECURED ","
    "\"parameters\":[" DFM_TENANT "],"
    "\"responses\":{\"200\":{\"description\":\"backfills: each run's state, counts and progress in words\",\"content\":{\"application/json\":{\"schema\":{\"type\":\"object\"}}}},"
    DFM_ERR(404, "No such tenant") "," DFM_ERR(503, "This process runs no sync, or (cluster) the tenant's node does not answer") "," DFM_AUTH_ERRORS "}},"
    "\"post\":{\"summary\":\"Import the contacts a system already holds, through its connector (dfm backfill); operator\",\"operationId\":\"backfill\"," DFM_SECURED ","
    "\"parameters\":[" DFM_TENANT "],\"requestBody\":{\"required\":true,\"content\":{\"application/json\":{\"schema\":{\"type\":\"object\",\"required\":[\"system\"],"
    "\"properties\":{\"system\":{\"type\":\"string\"},\"page_size\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000},\"restart\":{\"type\":\"boolean\"}}}}}},"
    "\"responses\":{\"200\":{\"description\":\"Started: the run under backfill\",\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/Appended\"}}}},"
    DFM_ERR(400, "A malformed body") "," DFM_ERR(404, "No such tenant") "," DFM_ERR(409, "A backfill of that system runs: under backfill") ","
    DFM_ERR(422, "The system has no backfill, or takes no requests for the tenant") "," DFM_ERR(503, "This process runs no sync, or (cluster) the tenant's node does not answer") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/admin/sync\":{\"get\":{\"summary\":\"The operator's pauses and concurrency limits in force (dfm sync status); operator\",\"operationId\":\"syncState\"," DFM_SECURED ","
    "\"responses\":{\"200\":{\"description\":\"The state\",\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/SyncState\"}}}},"
    DFM_ERR(503, "This process runs no sync") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/admin/sync/pause\":{\"post\":{\"summary\":\"Stop the pushes to vendors; webhooks are still recorded (dfm sync pause); operator\",\"operationId\":\"syncPause\"," DFM_SECURED ","
    "\"requestBody\":{\"required\":false,\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/SyncScope\"}}}},"
    "\"responses\":{\"200\":{\"description\":\"Recorded: the state after\",\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/SyncState\"}}}},"
    DFM_ERR(400, "A malformed body, an unknown tenant or system") "," DFM_ERR(503, "The log cannot be written, or this process runs no sync") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/admin/sync/resume\":{\"post\":{\"summary\":\"Push again, optionally at most concurrency requests at once (dfm sync resume); operator\",\"operationId\":\"syncResume\"," DFM_SECURED ","
    "\"requestBody\":{\"required\":false,\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/SyncScope\"}}}},"
    "\"responses\":{\"200\":{\"description\":\"Recorded: the state after\",\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/SyncState\"}}}},"
    DFM_ERR(400, "A malformed body, an unknown tenant or system") "," DFM_ERR(503, "The log cannot be written, or this process runs no sync") "," DFM_AUTH_ERRORS "}}},"
    // Campaigns (docs/campaigns.md).
    "\"/v1/customers\":{\"post\":{\"summary\":\"Create a customer {id, name, active}; operator\",\"operationId\":\"createCustomer\"," DFM_SECURED ","
    "\"parameters\":[" DFM_TENANT "]," DFM_BODY ",\"responses\":{" DFM_WRITTEN(201, "Created") "," DFM_INVALID(400, "Not a valid customer") ","
    DFM_ERR(409, "It exists") "," DFM_ERR(503, "The log cannot write") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/customers/{id}\":{\"get\":{\"summary\":\"A customer and its latest payments\",\"operationId\":\"customer\"," DFM_SECURED ","
    "\"parameters\":[" DFM_ID "," DFM_TENANT "],\"responses\":{" DFM_JSON(200, "customer") "," DFM_ERR(404, "No such customer or tenant") "," DFM_AUTH_ERRORS "}},"
    "\"put\":{\"summary\":\"Change a customer's name or active; operator\",\"operationId\":\"updateCustomer\"," DFM_SECURED ","
    "\"parameters\":[" DFM_ID "," DFM_TENANT "]," DFM_BODY ",\"responses\":{" DFM_WRITTEN(200, "Recorded") "," DFM_INVALID(400, "Not a valid customer") ","
    DFM_ERR(404, "No such customer or tenant") "," DFM_ERR(503, "The log cannot write") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/customers/{id}/payments\":{\"post\":{\"summary\":\"Record a payment {amount, currency, reference, contact?}, once per reference; operator\",\"operationId\":\"recordPayment\"," DFM_SECURED ","
    "\"parameters\":[" DFM_ID "," DFM_TENANT "]," DFM_BODY ",\"responses\":{" DFM_WRITTEN(201, "Recorded (200: recorded before)") "," DFM_INVALID(400, "Not a valid payment") ","
    DFM_ERR(404, "No such customer or tenant") "," DFM_ERR(503, "The log cannot write") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/campaigns\":{\"get\":{\"summary\":\"The tenant's campaigns\",\"operationId\":\"campaigns\"," DFM_SECURED ","
    "\"parameters\":[" DFM_TENANT "],\"responses\":{" DFM_JSON(200, "campaigns") "," DFM_ERR(404, "No such tenant") "," DFM_AUTH_ERRORS "}},"
    "\"post\":{\"summary\":\"Create a campaign (a draft; docs/campaigns.md has the spec); operator\",\"operationId\":\"createCampaign\"," DFM_SECURED ","
    "\"parameters\":[" DFM_TENANT "]," DFM_BODY ",\"responses\":{" DFM_WRITTEN(201, "Created") "," DFM_INVALID(400, "Not a valid campaign") ","
    DFM_ERR(409, "It exists") "," DFM_ERR(503, "The log cannot write") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/campaigns/{id}\":{\"get\":{\"summary\":\"A campaign, its tasks by state and its skips by reason\",\"operationId\":\"campaign\"," DFM_SECURED ","
    "\"parameters\":[" DFM_ID "," DFM_TENANT "],\"responses\":{" DFM_JSON(200, "campaign, tasks, skipped") "," DFM_ERR(404, "No such campaign or tenant") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/campaigns/{id}/validate\":{\"post\":{\"summary\":\"Why it would not start: customer, payment, steps, start, sender, audience (dfm campaigns check)\",\"operationId\":\"validateCampaign\"," DFM_SECURED ","
    "\"parameters\":[" DFM_ID "," DFM_TENANT "],\"responses\":{" DFM_JSON(200, "ok and checks") "," DFM_ERR(404, "No such campaign or tenant") "," DFM_AUTH_ERRORS "}}},"
    "\"/v1/campaigns/{id}/tasks\":{\"get\":{\"summary\":\"Its tasks by step and contact (dfm campaigns tasks)\",\"operationId\":\"campaignTasks\"," DFM_SECURED ","
    "\"parameters\":[" DFM_ID "," DFM_TENANT "," DFM_PARAM("state", "query", "false", "One state: pending, in_progress, done, failed, skipped") ","
    DFM_PARAM("stuck", "query", "false", "true: in progress with the lease run out, or claimed an hour ago or more") ","
    DFM_PARAM("limit", "query", "false", "At most this many (1000; up to 10000)") "],"
    "\"responses\":{" DFM_JSON(200, "tasks, truncated") "," DFM_ERR(400, "A bad parameter") "," DFM_ERR(404, "No such tenant") "," DFM_AUTH_ERRORS "}}},"
    DFM_CHANGE("start", "startCampaign", "Start a draft: now, or scheduled for its start_at; refused with the failing checks (422)") ","
    DFM_INVALID(422, "A check fails: details name them") "}}},"
    DFM_CHANGE("pause", "pauseCampaign", "Pause a running campaign") "}}},"
    DFM_CHANGE("resume", "resumeCampaign", "Resume a paused campaign") "}}},"
    DFM_CHANGE("cancel", "cancelCampaign", "Cancel a campaign that has not ended") "}}},"
    DFM_CHANGE("tasks/reset", "resetCampaignTasks", "Give back the tasks stuck now: their runner releases them (dfm campaigns tasks --reset)") "}}}"
    "}}";

}  // namespace

const std::string& OpenApiDocument() {
  static const std::string doc(kDocument);
  return doc;
}

}  // namespace dfm
