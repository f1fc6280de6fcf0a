// One actor per external system and tenant: it owns the vendor client, the
// credentials, the rate limit, retries and the circuit breaker
// (connectors/common/delivery.h), and carries out PushOrders.
//
// Contract:
// - A push id it already holds is ignored (contacts re-send their unsettled
//   pushes after a restart).
// - At most `concurrency` pushes are in flight, and at most one per contact,
//   in the order they came; urgent pushes (priority > 0, and every opt-out
//   push: opt_out, mark_dnc) go first, in their own order. With
//   `pair_burst`, a contact's pushes are paced too (a token bucket of that
//   size refilled one per `pair_interval_us`): WhatsApp's per-person limit.
// - Every attempt becomes push.attempted (outcome ok / retry / failed) and the
//   end of every push push.succeeded or push.dead_lettered, reported to the
//   router for the contact actor to append. Retries wait with exponential
//   backoff and full jitter, at least as long as a 429 asks; 4xx other than
//   408/429 and exhausted retries dead-letter.
// - An opt-out push (opt_out, mark_dnc) is never given up on: a refusal
//   (any 4xx but a "recipient opted out") or exhausted retries leave it
//   open: push.attempted outcome "refused", tried again with the longest
//   backoff for as long as it is held, counted on the status board
//   (opt_outs_refused: the people, since when). While open it holds back
//   only the contact's later consent pushes that do not commute with it
//   (an opt_in of its channels, and what must follow that; connector_send's
//   Pick). An opt_in or opt_out for the same contact and channels (or
//   more) supersedes it (push.dead_lettered, outcome "superseded"): the
//   person took the opt-out back, or a repeated STOP asks again now. One that came while the
//   opt-out was still on its way (in flight, in its backoff) supersedes it at its refusal.
// - OAuth vendors: the access token is refreshed before it expires and after
//   a 401; the new grant is stored (consumer state "credentials") before it
//   is used, because the vendor's refresh tokens are single use. In a
//   cluster it is also written for the tenant's next owner before use
//   (SyncEnv::replicate_state), as are the credit reservations below.
// - A daily credit budget (`daily_credit_budget`, an enrichment vendor's
//   paid lookups) is never exceeded, whatever the order of rate-limit
//   holds, restarts and concurrency: before a push goes, the most it may
//   cost (VendorClient::MaxCredits) is reserved under the UTC day's budget
//   and stored durably (consumer state "credits": spent + reserved, so a
//   question asked and left unanswered by a crash counts as spent); the
//   answer charges what it cost (PushResult::credits; all it reserved when
//   no answer came) and frees the rest. A push that cannot be reserved for
//   waits, holding nothing: for an answer in flight to free some, else for
//   the next UTC day. Pushes held by a rate limit reserve nothing and are
//   checked again when they may go.
// - A PushCancel drops a push still waiting (no event: the contact settled
//   it with message.refused); one in flight is not tried again if it fails.
// - A ConnectorUpdate (a configuration reload) puts new settings in place
//   for what goes next: the client, credentials (an OAuth vendor asks for
//   a new grant), limits, retries, pacing. What it holds stays, in order;
//   requests in flight finish with the old client, which is kept.
// - A BackfillRead (app/backfill.h) is carried out with the connector's
//   grant, counted in its rate limit and concurrency (and an operator's
//   concurrency limit) like a push, one at a time, after the opt-out
//   pushes waiting to go; a 401 makes it refresh (OAuth) and ask once
//   more, so a backfill never spends a refresh token of its own. A refresh
//   the vendor refuses (400, 401) answers the waiting reads 401; other
//   failures keep them waiting for the next try. Reads go while the sync
//   is paused (they change nothing in the vendor) and do not pass through
//   the circuit breaker (the backfill retries on its own).
// - HTTP runs on the client's thread; this actor never waits on it.
#pragma once

#include <caf/all.hpp>

#include <deque>
#include <map>
#include <optional>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "actors/messages.h"
#include "actors/sync_env.h"
#include "connectors/common/delivery.h"
#include "connectors/common/outbound.h"
#include "connectors/common/vendor_records.h"

namespace dfm {

struct ConnectorSettings {
  std::string tenant;
  std::string system;
  std::shared_ptr<VendorClient> client;
  Credentials credentials;  // from the config; a stored newer grant wins
  int concurrency = 4;
  int rate_limit = 100;
  int64_t rate_window_us = 10'000'000;
  int64_t daily_limit = 0;
  int64_t daily_credit_budget = 0;  // 0: none
  // Pacing per person (WhatsApp's pair rate limit): `pair_burst` pushes to
  // one contact at once, then one per `pair_interval_us`; 0: none.
  int pair_burst = 0;
  int64_t pair_interval_us = 0;
  Backoff backoff;
  int breaker_threshold = 5;
  int64_t breaker_open_us = 30'000'000;
  int64_t refresh_margin_us = 300'000'000;  // refresh this long before expiry
  int64_t refresh_retry_us = 30'000'000;    // after a failed refresh
  uint64_t seed = 0;                        // jitter; 0: from the clock
  // Where the actor publishes its state for GET /v1/health; may be null.
  std::shared_ptr<ConnectorStatus> status;
};

struct ConnectorState {
  std::shared_ptr<const SyncEnv> env;
  ConnectorSettings cfg;
  caf::actor router;
  std::unique_ptr<RateLimiter> limiter;
  std::unique_ptr<CircuitBreaker> breaker;
  Credentials creds;
  // This tenant's records of the system, shared by every node and run
  // (SyncEnv::vendor_records); null when the env has none.
  std::shared_ptr<VendorRecords> records;
  struct Item {
    PushOrder order;
    int attempt = 0;
    int64_t not_before = 0;
    int64_t sent_at = 0;  // when its last request went
    int auth_retries = 0;
    bool cancelled = false;  // PushCancel came while it was in flight
    // Its push.sending is durable (VendorClient::MayApplyTwice: recorded
    // once, before its first request in this run).
    bool sending_recorded = false;
    // Which push.sending is its own (connector_steps::SendingKey): a send
    // held once recorded (a pause, an open breaker) or answered "not done"
    // (connector_steps::GiveUpGeneration) gives its generation up with a
    // push.held and records the next before its request, once that
    // push.held is written (hold_unrecorded false; when refused, written
    // again from hold_retry_at).
    int generation = 0;
    bool hold_unrecorded = false;
    int64_t hold_retry_at = 0;
    // A request under this generation may have been carried out (an
    // answer that is not the vendor's own "not done", connector_answers'
    // SaysNotDone: a gateway's bare 5xx may hide a vendor that took it): it
    // is never given up, so a restart does not send it again.
    bool may_have_gone = false;
    std::string held_reason;
    int64_t opt_out_since = 0;  // an opt-out push: its webhook's time (status board)
    int credits_reserved = 0;   // for the request in flight (daily credit budget)
    int64_t refused_since = 0;  // an open opt-out the system refused: since when
    // 429s answering a spent daily cap (RateLimiter::DailyCapReached), up
    // to kFreeDailyTries, and requests refused for their token (up to two,
    // auth_retries): not counted against max_attempts. (attempt itself
    // only rises: it names each request's events.)
    int free_tries = 0;
    // A push re-driven after a restart: the attempts earlier runs recorded.
    // This run's are numbered after them, and not counted against them.
    // While the log has not told them (unnumbered) it does not go
    // (connector_steps' NumberRedriven).
    int earlier = 0;
    bool unnumbered = false;
    int counted() const { return attempt - earlier - free_tries; }
  };
  std::map<std::string, Item> items;       // push id -> held push
  std::deque<std::string> urgent, normal;  // push ids not in flight, in order
  std::set<std::string> busy;              // contacts with a push in flight
  // Per-contact pacing (cfg.pair_burst): tokens left and when they were
  // counted; a contact absent has a full bucket. Forgotten once full.
  struct Pair {
    double tokens = 0;
    int64_t at_us = 0;
  };
  std::map<std::string, Pair> pairs;
  std::multiset<int64_t> opt_outs_held;    // opt_out_since of each opt-out push held
  std::multiset<int64_t> opt_outs_refused;  // refused_since of each open refused opt-out
  std::map<std::string, int> refused_people;  // contact -> its open refused opt-outs
  size_t in_flight = 0;
  // Pushes whose push.sending is being recorded (RecordSending): they go
  // when it is durable, so the rate limit counts them as going now.
  int recording = 0;
  size_t holds_unrecorded = 0;  // items with hold_unrecorded (RewriteHolds looks when any)
  std::set<std::string> unnumbered;  // ids of the items with unnumbered (NumberRedriven)
  // The log could not tell a re-driven push's attempts: none is asked
  // again before number_retry_at, and the warning is not logged again.
  bool numbering_failed = false;
  int64_t number_retry_at = 0;
  bool refreshing = false;
  // The refresh under way was asked with a grant a reload replaced since
  // (ConnectorUpdate with a grant configured anew): its answer is dropped.
  bool refresh_superseded = false;
  // Backfill reads (BackfillRead): waiting, in order, and the one in
  // flight (at most one), with the 401s mended for it by a refresh.
  std::deque<BackfillRead> reads;
  std::optional<BackfillRead> read;
  int read_auth_retries = 0;
  // How long before the grant expires it is refreshed: cfg.refresh_margin_us,
  // or half the last grant's life when that is shorter.
  int64_t margin_us = 0;
  bool auth_failed = false;  // a 401: refresh before the next push
  bool last_answer_401 = false;  // the vendor's last answer refused the credentials
  bool refresh_failed = false;   // the last token refresh failed
  int64_t refresh_not_before = 0;
  int64_t wake_at = 0;
  int64_t credits_day = 0;    // UTC day (µs since the epoch / a day) they count
  int64_t credits_spent = 0;  // that day, as answers said (and unanswered requests reserved)
  int64_t credits_reserved = 0;  // by requests in flight
  std::mt19937_64 rng;
  // Clients a reload replaced: kept while requests they sent may answer,
  // let go once nothing is in flight (ReleaseRetired).
  std::vector<std::shared_ptr<VendorClient>> retired;
  uint64_t attempts = 0, succeeded = 0, dead = 0, cancelled = 0;
  static inline const char* name = "dfm.connector";
};

caf::behavior ConnectorActor(caf::stateful_actor<ConnectorState>* self,
                             std::shared_ptr<const SyncEnv> env, caf::actor router,
                             ConnectorSettings cfg);

}  // namespace dfm
