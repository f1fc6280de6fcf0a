#include "console/status_view.h"

#include <cctype>
#include <ctime>

namespace dfm {

namespace {

std::string Plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

const char* CardStateName(CardState s) {
  switch (s) {
    case CardState::kWorking: return "working";
    case CardState::kIdle: return "idle";
    case CardState::kSlow: return "slow";
    case CardState::kDown: return "down";
    case CardState::kAttention: return "attention";
    case CardState::kPaused: return "paused";
  }
  return "working";
}

std::string ClockTime(int64_t at_us, int64_t now_us) {
  std::time_t t = static_cast<std::time_t>(at_us / 1000000), n = static_cast<std::time_t>(now_us / 1000000);
  std::tm a{}, b{};
  gmtime_r(&t, &a);
  gmtime_r(&n, &b);
  char buf[32];
  if (a.tm_yday == b.tm_yday && a.tm_year == b.tm_year) {
    std::strftime(buf, sizeof(buf), "%H:%M UTC", &a);
  } else {
    std::strftime(buf, sizeof(buf), "%b %d %H:%M UTC", &a);
  }
  return buf;
}

std::string TimeAgo(int64_t at_us, int64_t now_us) {
  const int64_t s = (now_us - at_us) / 1000000;
  if (s < 60) return "just now";
  if (s < 3600) return Plural(static_cast<uint64_t>(s / 60), "minute ago", "minutes ago");
  if (s < 86400) return Plural(static_cast<uint64_t>(s / 3600), "hour ago", "hours ago");
  return Plural(static_cast<uint64_t>(s / 86400), "day ago", "days ago");
}

ServiceCard DescribeConnector(const ConnectorSnapshot& c, int64_t now_us) {
  ServiceCard card;
  card.tenant = c.tenant;
  card.system = c.system;
  card.name = c.name;
  card.syncs_hour = c.ok_hour;
  card.failures_hour = c.failed_hour;
  card.waiting = c.held;
  card.dead_letters = c.dead_letters;
  card.webhooks = c.webhooks;
  card.webhooks_batched = c.webhooks_batched;
  card.webhook_facts = c.webhook_facts;
  card.last_success = c.last_success_us
                          ? ClockTime(c.last_success_us, now_us) + " (" +
                                TimeAgo(c.last_success_us, now_us) + ")"
                          : "none since the service started";
  const std::string since =
      c.down_since_us ? " since " + ClockTime(c.down_since_us, now_us) : std::string();
  if (c.paused_since_us) {
    card.state = CardState::kPaused;
    card.headline = "Paused by an operator since " + ClockTime(c.paused_since_us, now_us) + " (" +
                    TimeAgo(c.paused_since_us, now_us) + ")";
    card.detail = "Nothing is sent to " + c.name + " until an operator resumes the sync (`dfm sync resume`); " +
                  "webhooks are still taken and recorded, and " +
                  Plural(c.held, "change waits", "changes wait") + " to go, in order.";
  } else if (c.auth_failing) {
    card.state = CardState::kAttention;
    card.headline = "Needs attention: credentials rejected";
    card.detail = c.name + " refuses the service's credentials" + since +
                  ". Changes wait until someone renews the token or key in the configuration "
                  "(run `dfm diagnose`).";
  } else if (c.opt_outs_refused > 0) {
    card.state = CardState::kAttention;
    card.headline = "Needs attention: opt-outs refused";
    card.detail = (c.opt_outs_refused == 1 ? std::string("1 person's opt-out")
                                           : std::to_string(c.opt_outs_refused) + " people's opt-outs") +
                  " could not be set in " + c.name + " since " +
                  ClockTime(c.opt_outs_refused_since_us, now_us) +
                  ". The service keeps trying; until they land, " + c.name +
                  " may still text them. `dfm audit violations` lists them.";
  } else if (c.credit_budget > 0 && c.credits_today >= c.credit_budget && c.held > 0) {
    card.state = CardState::kSlow;
    card.headline = "Waiting: today's credit budget is spent";
    card.detail = c.name + " was paid " + std::to_string(c.credits_today) + " of the " +
                  std::to_string(c.credit_budget) + " credits allowed today (UTC); " +
                  Plural(c.held, "lookup waits", "lookups wait") +
                  " for tomorrow. The contacts' sync to the other systems does not wait.";
  } else if (c.breaker_open) {
    card.state = CardState::kDown;
    card.headline = "Down" + since + ", retrying";
    card.detail = c.name + " does not answer or answers with errors. The service tries again "
                           "by itself" +
                  (c.reopens_at_us > now_us
                       ? " at " + ClockTime(c.reopens_at_us, now_us)
                       : std::string(" now")) +
                  "; nothing is lost: " + Plural(c.held, "change waits", "changes wait") +
                  " for it.";
  } else if ((c.failed_recent > 0 && c.last_failure_us > c.last_success_us) ||
             c.last_answer_us >= kSlowAnswerUs ||
             (c.oldest_opt_out_us && now_us - c.oldest_opt_out_us > kLateOptOutUs)) {
    card.state = CardState::kSlow;
    card.headline = "Slow";
    if (c.oldest_opt_out_us && now_us - c.oldest_opt_out_us > kLateOptOutUs) {
      card.detail = "An opt-out has waited more than a minute to reach " + c.name + ".";
    } else if (c.failed_recent > 0) {
      card.detail = Plural(c.failed_recent, "request", "requests") + " to " + c.name +
                    " failed in the last 5 minutes and " +
                    (c.failed_recent == 1 ? "is" : "are") + " being tried again.";
    } else {
      card.detail = c.name + " took " + std::to_string(c.last_answer_us / 1000000) +
                    " s to answer the last request.";
    }
  } else if (c.ok_hour == 0 && c.held == 0) {
    card.state = CardState::kIdle;
    card.headline = "Working";
    card.detail = "Nothing to sync in the last hour.";
  } else {
    card.state = CardState::kWorking;
    card.headline = "Working";
    card.detail = c.held ? Plural(c.held, "change is", "changes are") + " on the way."
                         : "Everything is in sync.";
    if (c.failed_hour > 0)
      card.detail += " It answers again; " + Plural(c.failed_hour, "request", "requests") +
                     " failed in the last hour and were tried again.";
  }
  if (c.dead_letters > 0)
    card.detail += " " + Plural(c.dead_letters, "change was", "changes were") +
                   " given up after their retries; `dfm replay dead-letters` lists the ones not "
                   "re-driven yet.";
  if (!c.notice.empty()) card.detail += " " + c.notice;
  if (c.concurrency_limit > 0 && !c.paused_since_us)
    card.detail += " An operator limits it to " + Plural(static_cast<uint64_t>(c.concurrency_limit),
                                                          "request", "requests") + " at once.";
  return card;
}

StatusView BuildStatusView(const std::vector<ConnectorSnapshot>& connectors,
                           const EngineSnapshot& engine, std::vector<AttentionItem> attention,
                           uint64_t attention_total, int64_t now_us) {
  StatusView v;
  v.now_us = now_us;
  v.campaigns = engine.campaigns;
  size_t troubled = 0, paused = 0;
  for (const auto& c : connectors) {
    v.cards.push_back(DescribeConnector(c, now_us));
    const CardState s = v.cards.back().state;
    if (s == CardState::kDown || s == CardState::kAttention || s == CardState::kSlow) troubled++;
    if (s == CardState::kPaused) paused++;
  }
  ServiceCard& e = v.engine;
  e.system = "engine";
  e.name = "DF-Middleware";
  e.waiting = engine.router_behind;
  if (!engine.cluster_problems.empty()) {
    e.state = CardState::kDown;
    e.headline = "Part of the cluster is not answering";
    e.detail = "";
    for (const auto& p : engine.cluster_problems) e.detail += p + ". ";
    e.detail += "Its webhooks are kept and synced once a node runs it again (seconds after a node "
                "dies); its systems are missing below meanwhile. If it lasts, contact IT.";
  } else if (engine.log_state == "unavailable") {
    e.state = CardState::kDown;
    e.headline = "Not taking webhooks";
    e.detail = "The event log cannot be written: " + engine.log_detail +
               ". Vendors retry what they sent; contact IT.";
  } else if (engine.log_state == "low_disk") {
    e.state = CardState::kAttention;
    e.headline = "Needs attention: disk nearly full";
    e.detail = "Webhooks are still taken; free space on the data disk soon.";
  } else if (engine.projections_failed) {
    e.state = CardState::kAttention;
    e.headline = "Needs attention: lookups are stale";
    e.detail = "The service's indexes stopped updating; contact IT.";
  } else if (engine.sync_enabled && engine.router_behind > 1000) {
    e.state = CardState::kSlow;
    e.headline = "Slow";
    e.detail = Plural(engine.router_behind, "event waits", "events wait") +
               " to be synced; they will be, in order.";
  } else {
    e.headline = "Working";
    e.detail = engine.sync_enabled ? "Webhooks are recorded and synced as they arrive."
                                   : "Webhooks are recorded; the sync is turned off.";
  }
  if (e.state != CardState::kWorking) troubled++;
  v.attention = std::move(attention);
  v.attention_total = attention_total;
  v.all_well = troubled == 0 && paused == 0 && attention_total == 0;
  if (troubled == 0 && paused == 0) {
    v.summary = "All systems working";
  } else if (troubled == 0) {
    v.summary = "Sync paused by an operator: " + Plural(paused, "system waits", "systems wait");
  } else {
    v.summary = Plural(troubled, "system needs", "systems need") + " attention";
    if (paused > 0) v.summary += "; " + Plural(paused, "system is", "systems are") + " paused by an operator";
  }
  if (attention_total > 0)
    v.summary += "; " + Plural(attention_total, "consent conflict waits", "consent conflicts wait") +
                 " for a person";
  return v;
}

std::string DescribeCampaign(const CampaignSnapshot& c) {
  std::string s = c.state.empty() ? std::string("?") : c.state;
  s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  s += ": " + std::to_string(c.sent) + " sent, " + std::to_string(c.waiting) + " waiting";
  std::vector<std::string> skipped;
  if (c.skipped_consent)
    skipped.push_back(std::to_string(c.skipped_consent) + " because the person opted out");
  if (c.skipped_quiet)
    skipped.push_back(std::to_string(c.skipped_quiet) + " because of quiet hours");
  if (c.skipped_other) skipped.push_back(std::to_string(c.skipped_other) + " for other reasons");
  for (size_t i = 0; i < skipped.size(); ++i)
    s += (i == 0 ? ", skipped " : ", ") + skipped[i];
  if (c.failed) s += ", " + std::to_string(c.failed) + " failed";
  return s + ".";
}

}  // namespace dfm
