#include "console/cluster_status.h"

#include <simdjson.h>

#include <algorithm>
#include <map>
#include <tuple>

#include "connectors/connector.h"
#include "projections/campaign_projections.h"
#include "util/json.h"

namespace dfm {

namespace {

// ConnectorSnapshot's fields, each once: name, how to write it, how to read it.
template <typename T>
struct Field {
  const char* name;
  T ConnectorSnapshot::*member;
};
constexpr Field<std::string> kTexts[] = {
    {"tenant", &ConnectorSnapshot::tenant}, {"system", &ConnectorSnapshot::system},
    {"name", &ConnectorSnapshot::name},     {"notice", &ConnectorSnapshot::notice}};
constexpr Field<bool> kFlags[] = {{"breaker_open", &ConnectorSnapshot::breaker_open},
                                  {"auth_failing", &ConnectorSnapshot::auth_failing}};
constexpr Field<int64_t> kTimes[] = {
    {"down_since_us", &ConnectorSnapshot::down_since_us},
    {"reopens_at_us", &ConnectorSnapshot::reopens_at_us},
    {"last_success_us", &ConnectorSnapshot::last_success_us},
    {"last_failure_us", &ConnectorSnapshot::last_failure_us},
    {"last_answer_us", &ConnectorSnapshot::last_answer_us},
    {"oldest_opt_out_us", &ConnectorSnapshot::oldest_opt_out_us},
    {"opt_outs_refused_since_us", &ConnectorSnapshot::opt_outs_refused_since_us},
    {"credits_today", &ConnectorSnapshot::credits_today},
    {"credit_budget", &ConnectorSnapshot::credit_budget},
    {"paused_since_us", &ConnectorSnapshot::paused_since_us}};
constexpr Field<uint64_t> kCounts[] = {
    {"held", &ConnectorSnapshot::held},
    {"ok_hour", &ConnectorSnapshot::ok_hour},
    {"failed_hour", &ConnectorSnapshot::failed_hour},
    {"failed_recent", &ConnectorSnapshot::failed_recent},
    {"dead_letters", &ConnectorSnapshot::dead_letters},
    {"opt_outs_refused", &ConnectorSnapshot::opt_outs_refused},
    {"webhooks", &ConnectorSnapshot::webhooks},
    {"webhooks_batched", &ConnectorSnapshot::webhooks_batched},
    {"webhook_facts", &ConnectorSnapshot::webhook_facts}};

std::string EncodeConnector(const ConnectorSnapshot& c) {
  JsonObject o;
  for (const auto& f : kTexts) o.Str(f.name, c.*f.member);
  for (const auto& f : kFlags) o.Bool(f.name, c.*f.member);
  for (const auto& f : kTimes) o.Int(f.name, c.*f.member);
  for (const auto& f : kCounts) o.UInt(f.name, c.*f.member);
  o.Int("concurrency_limit", c.concurrency_limit);
  return o.Finish();
}

bool DecodeConnector(simdjson::dom::object o, ConnectorSnapshot* c) {
  for (const auto& f : kTexts) {
    std::string_view v;
    if (o[f.name].get(v) != simdjson::SUCCESS) return false;
    (c->*f.member).assign(v);
  }
  for (const auto& f : kFlags)
    if (o[f.name].get(c->*f.member) != simdjson::SUCCESS) return false;
  for (const auto& f : kTimes)
    if (o[f.name].get(c->*f.member) != simdjson::SUCCESS) return false;
  for (const auto& f : kCounts)
    if (o[f.name].get(c->*f.member) != simdjson::SUCCESS) return false;
  int64_t limit = 0;
  if (o["concurrency_limit"].get(limit) != simdjson::SUCCESS) return false;
  c->concurrency_limit = static_cast<int>(limit);
  return true;
}

// A campaign's counts, by CampaignSnapshot's field names.
struct CampaignCount {
  const char* name;
  int64_t CampaignSnapshot::*member;
};
constexpr CampaignCount kCampaignCounts[] = {
    {"sent", &CampaignSnapshot::sent},
    {"waiting", &CampaignSnapshot::waiting},
    {"failed", &CampaignSnapshot::failed},
    {"skipped_consent", &CampaignSnapshot::skipped_consent},
    {"skipped_quiet", &CampaignSnapshot::skipped_quiet},
    {"skipped_other", &CampaignSnapshot::skipped_other}};

std::string EncodeCampaigns(const std::vector<CampaignSnapshot>& campaigns) {
  JsonArray list;
  for (const auto& c : campaigns) {
    JsonObject o;
    o.Str("tenant", c.tenant).Str("id", c.id).Str("name", c.name).Str("state", c.state);
    for (const auto& f : kCampaignCounts) o.Int(f.name, c.*f.member);
    list.Raw(o.Finish());
  }
  return list.Finish();
}

// Absent (a node of an older build): none.
bool DecodeCampaigns(simdjson::dom::object engine, std::vector<CampaignSnapshot>* out) {
  out->clear();
  simdjson::dom::array list;
  if (engine["campaigns"].get(list) != simdjson::SUCCESS) return true;
  for (simdjson::dom::element x : list) {
    CampaignSnapshot c;
    std::string_view tenant, id, name, state;
    if (x["tenant"].get(tenant) || x["id"].get(id) || x["name"].get(name) || x["state"].get(state))
      return false;
    for (const auto& f : kCampaignCounts)
      if (x[f.name].get(c.*f.member) != simdjson::SUCCESS) return false;
    c.tenant.assign(tenant);
    c.id.assign(id);
    c.name.assign(name);
    c.state.assign(state);
    out->push_back(std::move(c));
  }
  return true;
}

bool DecodeEngine(simdjson::dom::object o, EngineSnapshot* e) {
  std::string_view state, detail;
  if (o["log_state"].get(state) || o["log_detail"].get(detail) || o["sync_enabled"].get(e->sync_enabled) ||
      o["router_behind"].get(e->router_behind) || o["projections_behind"].get(e->projections_behind) ||
      o["projections_failed"].get(e->projections_failed) || !DecodeCampaigns(o, &e->campaigns))
    return false;
  e->log_state.assign(state);
  e->log_detail.assign(detail);
  return true;
}

bool DecodeItem(simdjson::dom::object o, AttentionItem* a) {
  std::string_view tenant, contact, what;
  if (o["tenant"].get(tenant) || o["contact_id"].get(contact) || o["what"].get(what) || o["at_us"].get(a->at_us))
    return false;
  a->tenant.assign(tenant);
  a->contact_id.assign(contact);
  a->what.assign(what);
  return true;
}

// A consent.conflict the opt-out registry keeps (projections/
// sync_projections.h, "c/" keys), in words.
void ParseConflictEntry(std::string_view json, AttentionItem* a) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  if (parser.parse(json.data(), json.size()).get(o) != simdjson::SUCCESS) return;
  auto text = [&](const char* k) {
    std::string_view v;
    return o[k].get(v) == simdjson::SUCCESS ? std::string(v) : std::string();
  };
  int64_t at = 0;
  if (o["at_us"].get(at) == simdjson::SUCCESS) a->at_us = at;
  a->contact_id = text("contact_id");
  const Connector* c = FindConnector(text("system"));
  const std::string actor = text("actor");
  a->what = (actor == "carrier" ? "The carrier" : "Staff or a system setting") +
            std::string(" in ") + (c ? c->name : text("system")) + " tried to opt " +
            text("channel") + " back in (" + text("reason") + "). Refused: " + text("detail") +
            "; the opt-out is set again there.";
}

}  // namespace

void KeepNewest(std::vector<AttentionItem>* items) {
  std::sort(items->begin(), items->end(),
            [](const AttentionItem& a, const AttentionItem& b) { return a.at_us > b.at_us; });
  if (items->size() > 20) items->resize(20);
}

std::string EncodePartitionStatus(const PartitionStatus& s) {
  JsonArray connectors, attention;
  for (const auto& c : s.connectors) connectors.Raw(EncodeConnector(c));
  for (const auto& a : s.attention)
    attention.Raw(JsonObject().Str("tenant", a.tenant).Str("contact_id", a.contact_id).Str("what", a.what)
                      .Int("at_us", a.at_us).Finish());
  JsonObject by_tenant;
  for (const auto& [tenant, n] : s.attention_by_tenant) by_tenant.UInt(tenant, n);
  const EngineSnapshot& e = s.engine;
  const std::string engine = JsonObject()
                                 .Str("log_state", e.log_state)
                                 .Str("log_detail", e.log_detail)
                                 .Bool("sync_enabled", e.sync_enabled)
                                 .UInt("router_behind", e.router_behind)
                                 .UInt("projections_behind", e.projections_behind)
                                 .Bool("projections_failed", e.projections_failed)
                                 .Raw("campaigns", EncodeCampaigns(e.campaigns))
                                 .Finish();
  return JsonObject()
      .Int("v", 1)
      .Raw("connectors", connectors.Finish())
      .Raw("engine", engine)
      .Raw("attention", attention.Finish())
      .UInt("attention_total", s.attention_total)
      .Raw("attention_by_tenant", by_tenant.Finish())
      .Finish();
}

bool DecodePartitionStatus(std::string_view data, PartitionStatus* s) {
  simdjson::dom::parser parser;
  simdjson::dom::object o, engine;
  simdjson::dom::array connectors, attention;
  int64_t v = 0;
  if (parser.parse(data.data(), data.size()).get(o) || o["v"].get(v) || v != 1 ||
      o["connectors"].get(connectors) || o["engine"].get(engine) || o["attention"].get(attention) ||
      o["attention_total"].get(s->attention_total) || !DecodeEngine(engine, &s->engine))
    return false;
  s->connectors.clear();
  s->attention.clear();
  s->attention_by_tenant.clear();
  simdjson::dom::object by_tenant;
  if (o["attention_by_tenant"].get(by_tenant) == simdjson::SUCCESS) {
    for (auto field : by_tenant) {
      uint64_t n = 0;
      if (field.value.get(n)) return false;
      s->attention_by_tenant[std::string(field.key)] = n;
    }
  } else {
    for (simdjson::dom::element x : attention) {  // an older build's: its items counted
      std::string_view t;
      if (x["tenant"].get(t) == simdjson::SUCCESS) ++s->attention_by_tenant[std::string(t)];
    }
  }
  for (simdjson::dom::element x : connectors) {
    simdjson::dom::object c;
    s->connectors.emplace_back();
    if (x.get(c) || !DecodeConnector(c, &s->connectors.back())) return false;
  }
  for (simdjson::dom::element x : attention) {
    simdjson::dom::object a;
    s->attention.emplace_back();
    if (x.get(a) || !DecodeItem(a, &s->attention.back())) return false;
  }
  return true;
}

void SetLogState(const Status& health, EngineSnapshot* engine) {
  engine->log_state = health.ok() ? "writable" : health.IsResourceExhausted() ? "low_disk" : "unavailable";
  engine->log_detail = health.message();
}

void CollectCampaigns(const EventLog& log, const std::vector<std::string>& tenants,
                      std::vector<CampaignSnapshot>* out) {
  for (const auto& tenant : tenants) {
    if (out->size() >= kMostCampaigns) return;
    std::vector<CampaignView> all;
    if (!ListCampaigns(log, tenant, &all).ok()) continue;
    for (const CampaignView& v : all) {
      if (v.state != CampaignState::kScheduled && v.state != CampaignState::kRunning &&
          v.state != CampaignState::kPaused)
        continue;
      std::map<std::string, int64_t> by_state, skipped;
      if (!ReadCampaignCounts(log, tenant, v.spec.id, &by_state, &skipped).ok()) continue;
      CampaignSnapshot c;
      c.tenant = tenant;
      c.id = v.spec.id;
      c.name = v.spec.name;
      c.state = std::string(CampaignStateName(v.state));
      c.sent = by_state["done"];
      c.waiting = by_state["pending"] + by_state["in_progress"];
      c.failed = by_state["failed"];
      for (const auto& [why, n] : skipped)
        (why == "opted_out" ? c.skipped_consent : why == "quiet_hours" ? c.skipped_quiet
                                                                      : c.skipped_other) += n;
      out->push_back(std::move(c));
      if (out->size() >= kMostCampaigns) return;
    }
  }
}

void CollectAttention(const EventLog& log, const std::vector<std::string>& tenants,
                      std::vector<AttentionItem>* items, uint64_t* total,
                      std::map<std::string, uint64_t>* by_tenant, size_t most) {
  items->clear();
  *total = 0;
  std::vector<std::vector<AttentionItem>> newest;  // each tenant's newest 20, newest first
  for (const auto& tenant : tenants) {
    std::vector<AttentionItem> own;
    (void)log.ScanConsumerState("opt_outs", "c/" + tenant + "/",
                                [&](std::string_view, std::string_view value) {
                                  AttentionItem a;
                                  a.tenant = tenant;
                                  ParseConflictEntry(value, &a);
                                  own.push_back(std::move(a));
                                  return true;
                                });
    *total += own.size();
    if (own.empty()) continue;
    if (by_tenant) (*by_tenant)[tenant] = own.size();
    KeepNewest(&own);
    newest.push_back(std::move(own));
  }
  // Every tenant with conflicts gets its share of `most` (at least its
  // newest one): none is left without items for the others' many.
  const size_t share =
      newest.empty() ? 0 : std::min<size_t>(20, std::max<size_t>(1, most / newest.size()));
  for (auto& own : newest)
    for (size_t i = 0; i < own.size() && i < share; ++i) items->push_back(std::move(own[i]));
  std::sort(items->begin(), items->end(),
            [](const AttentionItem& a, const AttentionItem& b) { return a.at_us > b.at_us; });
}

const char* ServiceState(const ConnectorSnapshot& c, int64_t now_us) {
  const bool open = c.breaker_open && now_us < c.reopens_at_us;
  const bool half_open = c.breaker_open && !open;
  if (open || c.auth_failing) return "down";
  if (half_open || (c.oldest_opt_out_us > 0 && now_us - c.oldest_opt_out_us > kLateOptOutUs)) return "degraded";
  return "connected";
}

void MergePartitionStatuses(const std::vector<PartitionAnswer>& answers,
                            std::vector<ConnectorSnapshot>* connectors, EngineSnapshot* engine,
                            std::vector<AttentionItem>* attention, uint64_t* attention_total,
                            const std::string& tenant) {
  const bool all = tenant == kAllTenants;
  auto rank = [](const std::string& state) { return state == "unavailable" ? 2 : state == "low_disk" ? 1 : 0; };
  for (const auto& a : answers) {
    // A reader of one tenant sees the partitions holding it alone (their
    // answers' `tenants` count that tenant only).
    if (!all && a.tenants == 0) continue;
    PartitionStatus s;
    if (a.status.empty() || !DecodePartitionStatus(a.status, &s)) {
      if (a.tenants == 0) continue;  // nothing of the configuration's runs there
      engine->cluster_problems.push_back(
          "Partition " + std::to_string(a.partition) + " (" + std::to_string(a.tenants) +
          (a.tenants == 1 ? " tenant): " : " tenants): ") +
          (a.owner.empty() ? "no node runs it now"
           : a.starting    ? a.owner + " is starting it"
                           : "its node (" + a.owner + ") does not answer"));
      continue;
    }
    for (auto& c : s.connectors)
      if (all || c.tenant == tenant) connectors->push_back(std::move(c));
    for (auto& i : s.attention)
      if (all || i.tenant == tenant) attention->push_back(std::move(i));
    if (all) {
      *attention_total += s.attention_total;
    } else if (auto n = s.attention_by_tenant.find(tenant); n != s.attention_by_tenant.end()) {
      *attention_total += n->second;
    }
    if (rank(s.engine.log_state) > rank(engine->log_state)) {
      engine->log_state = s.engine.log_state;
      engine->log_detail = "partition " + std::to_string(a.partition) + ": " + s.engine.log_detail;
    }
    engine->router_behind += s.engine.router_behind;
    engine->projections_behind += s.engine.projections_behind;
    engine->projections_failed = engine->projections_failed || s.engine.projections_failed;
    for (auto& c : s.engine.campaigns)
      if (all || c.tenant == tenant) engine->campaigns.push_back(std::move(c));
  }
  std::sort(engine->campaigns.begin(), engine->campaigns.end(),
            [](const CampaignSnapshot& a, const CampaignSnapshot& b) {
              return std::tie(a.tenant, a.id) < std::tie(b.tenant, b.id);
            });
  KeepNewest(attention);
}

}  // namespace dfm
