// Outbound connectors: what a connector actor asks of its vendor's API.
//
// A VendorClient turns one push (a contact's values for that system) into the
// vendor's requests: look the contact up first, then update or create, so a
// create that timed out and is retried never leaves a duplicate. It holds no
// policy: the connector actor decides when to call it (rate limits, backoff,
// circuit breaker, token refresh) from what it reports.
//
// Threading: Push and RefreshToken return at once; `done` runs exactly once,
// on any thread (usually the HTTP client's; the caller's when the push is
// settled without a request), and must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/common/http_client.h"
#include "connectors/common/webhook_source.h"

namespace dfm {

class VendorRecords;  // connectors/common/vendor_records.h

struct PushRequest {
  std::string push_id;
  std::string contact_id;
  // "upsert" | "mark_dnc" | "opt_out" | "opt_in", or a message op
  // (sync/domain_event.h: "send", "message", "call", "note", "tags",
  // "message_status", "lists"); a client settles an op it does not have at
  // once with http_status 422 and a detail (a dead letter, not a retry).
  std::string op;
  std::string external_id;  // the vendor's id of the contact when known, else empty
  // Message ops: the engine's key of the message (an idempotency key the
  // vendor can be given, e.g. GoHighLevel's altId, Verity's externalId).
  std::string message_key;
  // 1 for the first try; more for a retry or a push re-sent after a restart,
  // which may find it written already (message ops look before writing).
  int attempt = 1;
  // opt_out / opt_in: the channels (sync/consent.h names, joined by ',')
  // and why (e.g. "keyword STOP"); fields then carry only phone and email.
  std::string channel;
  std::string reason;
  std::map<std::string, std::string> fields;  // sync/fact.h names, normalized values
  // Under a daily credit budget: the most credits it may spend (what the
  // connector reserved for it; fewer than MaxCredits when the budget has
  // less left: the client then asks only what fits). -1: no cap.
  int max_credits = -1;
  // The records this tenant's connectors of the system share, wherever
  // they run (connectors/common/vendor_records.h): a client that creates a
  // vendor record under a real-world key claims it there first. Null:
  // none (tests, tools); the client's own single-flight only.
  std::shared_ptr<VendorRecords> records;

  // fields[key], or empty.
  std::string Field(const std::string& key) const {
    auto it = fields.find(key);
    return it == fields.end() ? std::string() : it->second;
  }
};

struct PushResult {
  int http_status = 0;      // status of the request that settled it; 0: transport error
  // The vendor's id of the contact (on success); for message ops the id of
  // the message, call or status it wrote.
  std::string external_id;
  std::string detail;       // why it failed; never personal data
  int requests = 0;         // HTTP requests it took
  bool auth_rejected = false;  // 401: the access token was refused
  // A 4xx the vendor is known to answer for a while before it succeeds
  // (GoHighLevel's 403 on a status update right after a delivery): retried.
  bool transient = false;
  // A send the vendor refused because the recipient opted out at its end
  // (Verity's 422 recipient_opted_out): a carrier-level opt-out, recorded as
  // a consent statement (sync/contact_model.h, kRecipientOptedOut) and never
  // retried.
  bool recipient_opted_out = false;
  // No answer, and the request never reached the vendor
  // (HttpResponse::not_sent): a retry cannot do it twice.
  bool not_sent = false;
  // The vendor itself said, in its own words, that it did not carry the
  // request out and it may be tried again (Verity's 5xx with its error
  // body, WhatsApp's "service unavailable" codes, an SMTP 4xx reply); a
  // bare 5xx, which a gateway may give for a request the vendor took, is
  // not. A send recorded before its request is held on it (push.held).
  bool not_done = false;
  // A refusal the vendor says will not pass on a retry (OpenAI's 429
  // insufficient_quota): a dead letter at once, whatever its status.
  bool permanent = false;
  // An enrichment's answer (op "enrich"): the values the vendor knows of
  // the person and their company (sync/fact.h names); empty: no match.
  std::map<std::string, std::string> answered;
  // What the push cost in the vendor's credits, when it says or the client
  // knows (an enrichment's people and company calls).
  int credits = 0;
  // What the vendor said about its limits (from the last response).
  std::optional<int> rate_remaining;
  std::optional<int64_t> daily_remaining;
  std::optional<int64_t> retry_after_us;
};

struct TokenGrant {
  bool ok = false;
  int http_status = 0;
  std::string access_token;
  std::string refresh_token;  // single use: the next refresh needs this one
  int64_t expires_in_s = 0;
  std::string detail;
};

// Credentials a connector holds, as its actor tracks them.
struct Credentials {
  std::string access_token;
  std::string refresh_token;
  int64_t expires_at_us = 0;  // 0: does not expire (static token)
  // A client-credentials vendor's configured side (ClientCredentials): what
  // its grants are asked with, digested. A grant stored under another
  // (a new client id or secret, scope, login host) is not used.
  std::string origin = {};
};

// The configured credentials of a vendor whose grants are asked for with
// client credentials (Genesys Cloud, HaloPSA): none yet (the connector asks
// before the first push), from the settings `asked_with` (the token
// request's URL, client id, secret, scope...).
Credentials ClientCredentials(std::initializer_list<std::string_view> asked_with);

// One contact as a vendor's API returned it, for `dfm backfill`.
struct ListedContact {
  std::string external_id;
  std::string version;  // changes whenever the contact does (e.g. dateUpdated); may be empty
  std::string body;     // the contact object's JSON as the vendor sent it
};

// One answer of a list, search or lookup request.
struct ContactPage {
  int http_status = 0;  // 0: transport error
  std::string detail;   // why it failed; never personal data
  bool auth_rejected = false;
  std::optional<int64_t> retry_after_us;
  std::string url;      // what was asked (no credentials), recorded with the contacts
  std::vector<ListedContact> contacts;
  std::string next_cursor;  // list: give it back for the next page; empty: that was the last
  int64_t total = -1;       // list: the vendor's count of all contacts, when it says
  int requests = 1;         // the HTTP requests it took (each counts against the limits)
};

class VendorClient {
 public:
  virtual ~VendorClient() = default;
  virtual void Push(const PushRequest& req, const Credentials& creds,
                    std::function<void(PushResult)> done) = 0;
  // Whether `req`, tried again after an attempt that got no answer (and
  // may have reached the vendor: PushResult::not_sent), could be carried
  // out twice: the vendor may have done it, and offers nothing
  // that makes a repeat harmless (no idempotency key, no look-up). Such a
  // push is not tried again after a transport error: it is dead-lettered
  // with its outcome unknown (a text maybe not sent beats one sent twice;
  // the vendor's own webhooks of it, when they come, still report it).
  virtual bool MayApplyTwice(const PushRequest& req) const {
    (void)req;
    return false;
  }
  // The most credits `req` may cost (an enrichment's paid lookups): under
  // a daily credit budget the connector reserves them (or what the budget
  // has left, at least 1: PushRequest::max_credits), durably, before the
  // request goes, and charges what the answer says it cost (or all it
  // reserved when no answer comes). 0: it costs none.
  virtual int MaxCredits(const PushRequest& req) const {
    (void)req;
    return 0;
  }
  // What the status page's card for this system should say beyond its
  // health (HaloPSA: the duplicate Clients it holds); "" for nothing. Asked
  // after every push: cheap, thread-safe, never personal data.
  virtual std::string Notice() const { return ""; }
  // Vendors with OAuth exchange the refresh token for a new grant.
  virtual bool UsesOAuth() const { return false; }
  virtual void RefreshToken(const Credentials& creds, std::function<void(TokenGrant)> done) {
    TokenGrant g;
    g.detail = "this vendor has no OAuth";
    done(g);
  }

  // Backfill. Vendors with a list or search API page through every
  // contact: `cursor` empty for the first page, then the page's
  // next_cursor. `done` follows Push's threading contract.
  virtual bool CanList() const { return false; }
  virtual void ListContacts(const std::string& cursor, int page_size, const Credentials& creds,
                            std::function<void(ContactPage)> done) {
    ContactPage p;
    p.detail = "this vendor has no list API";
    done(std::move(p));
  }
  // Vendors without one are asked by phone (E.164): 0 or 1 contacts, and
  // http_status 404 when the vendor has none with that number.
  virtual bool CanLookupByPhone() const { return false; }
  virtual void LookupByPhone(const std::string& e164, const Credentials& creds,
                             std::function<void(ContactPage)> done) {
    ContactPage p;
    p.detail = "this vendor has no phone lookup";
    done(std::move(p));
  }
};

// A page started from a response: status, url, limits; `error_detail` is
// kept as the detail when the status is not 2xx.
ContactPage PageFromResponse(const HttpResponse& resp, std::string url, std::string error_detail);

// Grants obtained by refreshing are kept in the log's consumer state
// (consumer kCredentialsConsumer, key CredentialsKey), so a restart or
// `dfm backfill` uses the newest one: a spent refresh token is refused.
inline constexpr char kCredentialsConsumer[] = "credentials";
std::string CredentialsKey(const std::string& tenant, const std::string& system);
// A stored grant names the configured grant it descends from (its
// origin): "<expires_at_us>\n<access>\n<refresh>\n<origin>", the origin the
// hex SHA-256 of "<access>\n<refresh>" as configured (docs/event-format.md;
// a value of three lines, written before origins were, names none).
std::string EncodeCredentials(const Credentials& grant, const Credentials& configured);
// False when `s` cannot be read (the configured grant is used instead);
// *origin (when given) "" for a value naming none.
bool DecodeCredentials(const std::string& s, Credentials* c, std::string* origin = nullptr);
// The grant to use: the stored one (an earlier run's refresh: the
// configured one may be spent), unless `stored` ("": none) cannot be read
// or descends from another configured grant than `configured` (the
// operator granted anew in the configuration since).
Credentials NewestGrant(const Credentials& configured, const std::string& stored);

struct RateDefaults {
  std::string limit, window_ms, daily;  // defaults of rate_limit, rate_window_ms, daily_limit
  std::string why;                      // where they come from, for the help text
};
// The delivery-policy keys every connector has: concurrency, rate limits,
// timeouts, retries, breaker (all whole numbers).
void AddDeliverySettings(std::vector<SettingSpec>* settings, const RateDefaults& rate);
// Every contact field of sync/fact.h.
std::vector<std::string> ContactFieldNames();

// A vendor's error text made safe to record: "HTTP <status>: <message>",
// the message dropped when it looks like it holds an email or a phone
// number (vendors echo the invalid value back).
std::string SafeDetail(int status, std::string_view message);

// A vendor's API base URL from its settings, without trailing '/'.
std::string ApiBaseUrl(const SystemSettings& s);
// True when `s` sets an API base URL: the usual test of whether a tenant
// asks for pushes to the system.
bool HasApiBaseUrl(const SystemSettings& s);

// A header's leading whole number ("42", "42 s"); nullopt when absent,
// empty or not a number. Clamped to ±10^12 so that a hostile or broken
// vendor's value times 10^6 (seconds to µs) cannot overflow.
std::optional<int64_t> HeaderInt(const HttpResponse& resp, const char* lower_name);

// Reads the vendor's rate-limit signals into `r` (X-RateLimit-Remaining,
// X-RateLimit-Daily-Remaining, Retry-After in seconds or as an HTTP date:
// RFC 9110 §10.2.3, counted from the answer's Date, else from `now_us`).
void ReadRateHeaders(const HttpResponse& resp, PushResult* r, int64_t now_us = 0);

}  // namespace dfm
