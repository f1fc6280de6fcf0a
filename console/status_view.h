// What the status page says about each connected system and the engine, in
// plain words (docs/status-page.md). Pure: built from a snapshot of the
// status board and the projections' counts, at a time given.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dfm {

// One connected system of one tenant, as the board and the sync_status
// projection show it.
struct ConnectorSnapshot {
  std::string tenant, system, name;  // name: for people ("GoHighLevel")
  bool breaker_open = false;
  bool auth_failing = false;
  int64_t down_since_us = 0;
  int64_t reopens_at_us = 0;
  int64_t last_success_us = 0;
  int64_t last_failure_us = 0;  // when an attempt last failed
  int64_t last_answer_us = 0;   // how long its last answer took
  uint64_t held = 0;           // changes the connector holds now
  uint64_t ok_hour = 0, failed_hour = 0;  // pushes taken, attempts failed: last 60 min
  uint64_t failed_recent = 0;             // attempts failed in the last 5 minutes
  uint64_t dead_letters = 0;  // pushes given up, since the log began (sync_status projection)
  int64_t oldest_opt_out_us = 0;  // webhook time of the oldest opt-out it holds
  // People whose opt-out it refused (kept open, tried again), since when.
  uint64_t opt_outs_refused = 0;
  int64_t opt_outs_refused_since_us = 0;
  int64_t credits_today = 0, credit_budget = 0;  // an enrichment system's (0: no budget)
  // Its webhooks read since the service started: how many, how many were
  // batches (several facts), and the facts they carried.
  uint64_t webhooks = 0, webhooks_batched = 0, webhook_facts = 0;
  std::string notice;  // what its client says beyond health (duplicate HaloPSA Clients)
  int64_t paused_since_us = 0;  // an operator paused its pushes (actors/sync_control.h); 0: not
  int concurrency_limit = 0;    // an operator's limit on pushes at once; 0: none
};

enum class CardState { kWorking, kIdle, kSlow, kDown, kAttention, kPaused };
// "working", "idle", "slow", "down", "attention", "paused"
const char* CardStateName(CardState s);

struct ServiceCard {
  std::string tenant, system, name;
  CardState state = CardState::kWorking;
  std::string headline;  // "Working", "Down since 14:02 UTC, retrying", ...
  std::string detail;    // one or two sentences: what it means, what to do
  std::string last_success;  // "14:05 UTC (3 minutes ago)", or "none yet"
  uint64_t syncs_hour = 0, failures_hour = 0, waiting = 0, dead_letters = 0;
  uint64_t webhooks = 0, webhooks_batched = 0, webhook_facts = 0;  // ConnectorSnapshot's
};

// A slow vendor: its last answer took at least this long.
inline constexpr int64_t kSlowAnswerUs = 5 * 1000000;
// An opt-out held this long is late (the alert's threshold).
inline constexpr int64_t kLateOptOutUs = 60 * 1000000;

ServiceCard DescribeConnector(const ConnectorSnapshot& c, int64_t now_us);

// A campaign that is scheduled, running or paused, as the campaign_tasks
// projection counts its tasks (campaigns/README.md).
struct CampaignSnapshot {
  std::string tenant, id, name, state;
  int64_t sent = 0;     // tasks done
  int64_t waiting = 0;  // pending or in progress
  int64_t failed = 0;
  int64_t skipped_consent = 0;  // the person opted out of the step's channel
  int64_t skipped_quiet = 0;    // quiet hours lasted past the step's window
  int64_t skipped_other = 0;    // replied, paid, no address, window passed, caps, cancelled
};

// One campaign in words: "Running: 120 sent, 30 waiting, skipped 4 because
// the person opted out, 2 because of quiet hours, 1 failed."
std::string DescribeCampaign(const CampaignSnapshot& c);

// The engine's own parts.
struct EngineSnapshot {
  std::string log_state;   // "writable", "low_disk", "unavailable"
  std::string log_detail;  // why, when not writable
  bool sync_enabled = true;
  uint64_t router_behind = 0;       // events the sync has not read yet
  uint64_t projections_behind = 0;  // events the projections have not folded
  bool projections_failed = false;
  // Cluster mode: the partitions whose runner did not say how it is, in
  // words ("partition 3 (2 tenants): no node runs it now").
  std::vector<std::string> cluster_problems;
  // The campaigns it runs (scheduled, running, paused), by tenant and id.
  std::vector<CampaignSnapshot> campaigns;
};

// Something a person must look at (consent conflicts, docs/sync-rules.md).
struct AttentionItem {
  std::string tenant, contact_id, what;
  int64_t at_us = 0;
  bool hidden = false;  // its contact not shown to this reader (not signed in); never encoded
};

struct StatusView {
  int64_t now_us = 0;
  bool all_well = true;
  std::string summary;  // "All systems working", "2 systems need attention"
  std::vector<ServiceCard> cards;
  ServiceCard engine;   // the event log and the sync, as one card
  std::vector<AttentionItem> attention;
  uint64_t attention_total = 0;
  std::vector<CampaignSnapshot> campaigns;  // the page's campaigns card
};

StatusView BuildStatusView(const std::vector<ConnectorSnapshot>& connectors,
                           const EngineSnapshot& engine, std::vector<AttentionItem> attention,
                           uint64_t attention_total, int64_t now_us);

// "14:02 UTC" today, "Nov 21 14:02 UTC" another day.
std::string ClockTime(int64_t at_us, int64_t now_us);
// "just now", "3 minutes ago", "2 hours ago", "4 days ago".
std::string TimeAgo(int64_t at_us, int64_t now_us);

}  // namespace dfm
