#include "app/reconcile.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <future>
#include <set>

#include "config/config.h"
#include "connectors/common/delivery.h"
#include "connectors/connector.h"
#include "projections/sync_projections.h"
#include "replay-tools/tool_log.h"
#include "sync/consent.h"
#include "sync/contact_model.h"
#include "sync/domain_event.h"
#include "sync/fact.h"
#include "util/clock.h"

namespace dfm {

namespace {

// One opted-out registry row: "o/<tenant>/<subject>/<channel>" ->
// "out <when> <seq> <system>" (projections/sync_projections.h).
struct OptedOut {
  std::string subject, channel;
  int64_t when_us = 0;
  uint64_t seq = 0;
};

bool ParseRow(std::string_view key, std::string_view value, size_t prefix, OptedOut* out) {
  if (value.substr(0, 4) != "out ") return false;
  const size_t slash = key.rfind('/');
  if (slash == std::string_view::npos || slash <= prefix) return false;
  out->subject = std::string(key.substr(prefix, slash - prefix));
  out->channel = std::string(key.substr(slash + 1));
  long long when = 0;
  unsigned long long seq = 0;
  if (std::sscanf(std::string(value.substr(4)).c_str(), "%lld %llu", &when, &seq) != 2) return false;
  out->when_us = when;
  out->seq = seq;
  return true;
}

std::string StateOf(const EventLog& log, const char* consumer, const std::string& key) {
  std::string v;
  return log.GetConsumerState(consumer, key, &v).ok() ? v : std::string();
}

// The contact view's value of a field: "<system> <value>" -> value.
std::string FieldOf(const EventLog& log, const std::string& contact, const char* field) {
  std::string v = StateOf(log, ContactViewProjection::kName, "f/" + contact + "/" + field);
  const size_t sp = v.find(' ');
  return sp == std::string::npos ? std::string() : v.substr(sp + 1);
}

struct Person {
  std::set<std::string> channels;
  uint64_t seq = 0;  // the newest opt-out's (by when it happened)
  int64_t when_us = INT64_MIN;
  std::map<std::string, std::pair<int64_t, uint64_t>> newest;  // per channel: when, seq
};

// Whether (when, seq) names a later opt-out than `than`.
bool Later(int64_t when_us, uint64_t seq, const std::pair<int64_t, uint64_t>& than) {
  return when_us > than.first || (when_us == than.first && seq > than.second);
}

}  // namespace

std::map<std::string, ReconcileSystem> ReconcileSystems(const Config& config, const std::string& tenant) {
  const SyncContext ctx = SyncContextFor(config, tenant);
  std::map<std::string, ReconcileSystem> out;
  for (const auto& system : ctx.reads_consent) {
    auto ch = ctx.channels.find(system);
    if (ch == ctx.channels.end() || ch->second.empty()) continue;
    ReconcileSystem& s = out[system];
    s.channels.assign(ch->second.begin(), ch->second.end());
    auto key = ctx.key_field.find(system);
    if (key != ctx.key_field.end()) s.key_field = key->second;
  }
  return out;
}

Status PlanReconcile(const EventLog& log, const std::string& tenant, int64_t since_us,
                     const std::map<std::string, ReconcileSystem>& systems, ReconcilePlan* plan) {
  *plan = {};
  Status s = log.ReadCheckpoint(OptOutRegistryProjection::kName, &plan->registry_seq);
  if (!s.ok()) return s;
  const std::string prefix = "o/" + tenant + "/";
  std::map<std::string, Person> people;  // by contact id
  std::set<std::string> subjects;
  s = log.ScanConsumerState(OptOutRegistryProjection::kName, prefix,
                            [&](std::string_view key, std::string_view value) {
                              OptedOut row;
                              if (!ParseRow(key, value, prefix.size(), &row) || row.when_us < since_us)
                                return true;
                              const bool phone = row.subject.rfind('+', 0) == 0;
                              const std::string contact = StateOf(
                                  log, MappingsProjection::kName,
                                  std::string(phone ? "p/" : "e/") + tenant + "/" + row.subject);
                              const bool first_row = subjects.insert(row.subject).second;
                              if (first_row) plan->opted_out_people++;
                              if (contact.empty()) {
                                if (first_row)
                                  plan->without_contact++;  // once per person, as above
                                return true;
                              }
                              Person& p = people[contact];
                              p.channels.insert(row.channel);
                              if (Later(row.when_us, row.seq, {p.when_us, p.seq}))
                                p.seq = row.seq, p.when_us = row.when_us;
                              auto [at, fresh] =
                                  p.newest.try_emplace(row.channel, row.when_us, row.seq);
                              if (!fresh && Later(row.when_us, row.seq, at->second))
                                at->second = {row.when_us, row.seq};
                              return true;
                            });
  if (!s.ok()) return s;
  for (const auto& [contact, person] : people) {
    if (!StateOf(log, ContactViewProjection::kName, "d/" + contact).empty()) continue;  // deleted
    auto id_of = [&log](uint64_t seq) {
      Event cause;
      return ReadEventBySeq(log, seq, &cause).ok() ? cause.id.ToString() : std::string();
    };
    const std::string cause_id = id_of(person.seq);
    std::map<std::string, std::string> cause_of;
    for (const auto& [ch, newest] : person.newest)
      cause_of[ch] = newest.second == person.seq ? cause_id : id_of(newest.second);
    std::map<std::string, std::string> fields;
    for (const char* f : {fields::kPhone, fields::kEmail}) {
      std::string v = FieldOf(log, contact, f);
      if (!v.empty()) fields[f] = v;
    }
    for (const auto& [system, sys] : systems) {
      ReconcileCheck c;
      for (const auto& ch : sys.channels)
        if (person.channels.count(ch)) c.channels.push_back(ch);
      if (c.channels.empty()) continue;
      if (!sys.key_field.empty() && !fields.count(sys.key_field)) continue;  // it cannot hold them
      c.contact_id = contact;
      c.system = system;
      c.external_id = StateOf(log, MappingsProjection::kName, "c/" + contact + "/" + system);
      c.fields = fields;
      c.cause = cause_id;
      c.opted_out_at_us = person.when_us;
      for (const auto& ch : c.channels) {
        c.cause_of[ch] = cause_of[ch];
        c.opted_out_at_of[ch] = person.newest.at(ch).first;
      }
      plan->checks.push_back(std::move(c));
    }
  }
  return Status::OK();
}

std::pair<int64_t, std::string> NewestOf(const ReconcileCheck& check,
                                         const std::vector<std::string>& channels) {
  std::pair<int64_t, std::string> newest{INT64_MIN, ""};
  for (const auto& ch : channels) {
    auto cause = check.cause_of.find(ch);
    auto at = check.opted_out_at_of.find(ch);
    if (cause == check.cause_of.end() || cause->second.empty() || at == check.opted_out_at_of.end())
      continue;
    if (at->second > newest.first || newest.second.empty()) newest = {at->second, cause->second};
  }
  if (newest.second.empty()) return {check.opted_out_at_us, check.cause};
  return newest;
}

std::vector<std::string> DriftedChannels(const ReconcileCheck& check, const PushResult& answer) {
  std::vector<std::string> out;
  for (const auto& ch : check.channels) {
    auto shown = answer.answered.find("held." + ch);
    if (shown != answer.answered.end() && shown->second == "in") out.push_back(ch);
  }
  return out;
}

namespace {

PushResult AskOnce(const ReconcileCheck& c, const ReconcileReader& r) {
  PushRequest req;
  req.push_id = "reconcile:" + c.contact_id + ":" + c.system;
  req.contact_id = c.contact_id;
  req.op = "read_consent";
  req.external_id = c.external_id;
  req.channel = JoinChannels(c.channels);
  req.reason = "reconcile";
  req.fields = c.fields;
  std::promise<PushResult> answered;
  auto result = answered.get_future();
  r.client->Push(req, r.credentials, [&answered](PushResult p) { answered.set_value(std::move(p)); });
  return result.get();
}

struct Pace {
  std::unique_ptr<RateLimiter> limiter;
  bool refused = false;  // credentials refused: not asked again this run
  int64_t unread = 0;
  int last_status = 0;
};

}  // namespace

void RunReconcile(const ReconcilePlan& plan, const ReconcileDeps& deps, ReconcileReport* report) {
  *report = {};
  report->started_at_us = deps.now_us ? deps.now_us() : 0;
  ReconcileProgress& p = report->progress;
  p.total = static_cast<int64_t>(plan.checks.size());
  std::map<std::string, Pace> paces;
  for (const auto& [system, r] : deps.readers) {
    const int limit = std::max(1, static_cast<int>(r.rate_limit * r.share));
    paces[system].limiter = std::make_unique<RateLimiter>(limit, r.window_us, 0);
  }
  for (const auto& c : plan.checks) {
    if (deps.cancelled && deps.cancelled()) break;
    auto reader = deps.readers.find(c.system);
    if (reader == deps.readers.end()) continue;
    Pace& pace = paces[c.system];
    PushResult answer;
    for (int attempt = 0; attempt < 6 && !pace.refused; ++attempt) {
      const int64_t now = deps.now_us();
      const int64_t at = pace.limiter->NextAllowed(now);
      if (at > now) deps.sleep_us(at - now);
      pace.limiter->OnSent(deps.now_us());
      answer = AskOnce(c, reader->second);
      for (int i = 1; i < answer.requests; ++i) pace.limiter->OnSent(deps.now_us());
      p.requests += std::max(1, answer.requests);
      pace.limiter->OnHeaders(deps.now_us(), answer.rate_remaining, answer.daily_remaining);
      if (answer.http_status != 429) break;
      pace.limiter->OnThrottled(deps.now_us(), answer.retry_after_us);
    }
    pace.refused = pace.refused || answer.auth_rejected;
    p.checked++;
    p.checked_by_system[c.system]++;
    if (answer.http_status / 100 != 2 || pace.refused) {
      p.failed++;
      pace.unread++;
      pace.last_status = answer.http_status;
    } else if (auto shown = DriftedChannels(c, answer); !shown.empty()) {
      p.drift++;
      report->drift.push_back({c, std::move(shown), answer.external_id, answer.detail});
    }
    if (deps.progress) deps.progress(p);
  }
  for (const auto& [system, pace] : paces) {
    if (pace.unread == 0) continue;
    report->unread[system] = std::to_string(pace.unread) + " unread (" +
                             (pace.refused ? std::string("credentials refused")
                              : pace.last_status == 0 ? std::string("no answer")
                                                      : "HTTP " + std::to_string(pace.last_status)) +
                             ")";
  }
}

ReplayRequest ReapplyRequest(const std::vector<ReconcileDrift>& drift, const std::string& reason,
                             int64_t run_at_us) {
  ReplayRequest r;
  r.reason = reason + " (run of " + FormatIso8601Millis(run_at_us) + ")";
  for (const auto& d : drift) {
    // One item per opt-out the drifted channels answer (the audit counts
    // a re-application for the statement it names, by channel).
    std::map<std::string, std::vector<std::string>> by_cause;
    for (const auto& ch : d.shown_in) {
      auto c = d.check.cause_of.find(ch);
      by_cause[c != d.check.cause_of.end() && !c->second.empty() ? c->second : d.check.cause]
          .push_back(ch);
    }
    for (const auto& [cause, chans] : by_cause) {
      RedriveItem item;
      item.contact_id = d.check.contact_id;
      item.cause = cause;
      item.push.type = std::string(ev::kPushRequested);
      item.push.contact_id = d.check.contact_id;
      item.push.system = d.check.system;
      item.push.op = "opt_out";
      item.push.channel = JoinChannels(chans);
      item.push.external_id = d.check.external_id;
      item.push.reason = "reconcile: " + d.check.system + " showed the opt-out lifted";
      r.items.push_back(std::move(item));
    }
  }
  return r;
}

std::string FormatReconcileProgress(const ReconcileProgress& p, double per_second) {
  std::string by;
  for (const auto& [system, n] : p.checked_by_system)
    by += (by.empty() ? "" : ", ") + system + " " + std::to_string(n);
  char rate[32];
  std::snprintf(rate, sizeof rate, "%.0f/s", per_second);
  return "reconcile: " + std::to_string(p.checked) + " of " + std::to_string(p.total) + " read" +
         (by.empty() ? "" : " (" + by + ")") + " · " + std::to_string(p.drift) + " drifting · " +
         std::to_string(p.failed) + " unread · " + std::to_string(p.requests) + " requests · " + rate;
}

void MakeReconcileReaders(const Config& config, const std::string& tenant, const EventLog& log,
                          HttpClient* http, double share, ReconcileClients* out) {
  const auto& systems = config.Systems(tenant);
  for (const auto& [system, sys] : ReconcileSystems(config, tenant)) {
    (void)sys;
    const Connector* f = FindConnector(system);
    auto it = systems.find(system);
    if (!f || !f->client || it == systems.end()) continue;
    const SystemSettings& settings = it->second;
    ReconcileReader r;
    out->owned[system] = f->client(settings, http);
    r.client = out->owned[system].get();
    r.credentials = f->credentials(settings);
    std::string stored;
    if (log.GetConsumerState(kCredentialsConsumer, CredentialsKey(tenant, system), &stored).ok())
      r.credentials = NewestGrant(r.credentials, stored);  // the service's newest grant
    r.rate_limit = std::max(1, std::atoi(settings.at("rate_limit").c_str()));
    r.window_us = std::max<int64_t>(1, std::atoll(settings.at("rate_window_ms").c_str())) * 1000;
    r.share = share;
    out->readers[system] = r;
  }
}

}  // namespace dfm
