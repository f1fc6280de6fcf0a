// The status page of a cluster (docs/scale-out.md, "The status page"):
// each partition's runner describes its connectors, its sync and its
// consent conflicts; any node merges what every partition's runner said.
// Pure, but for CollectAttention (which reads a log).
//
// Grammar of a partition's status (JSON, version 1):
//   status    = {"v":1,"connectors":[connector...],"engine":engine,
//                "attention":[item...],"attention_total":<uint>,
//                "attention_by_tenant"?:{<tenant>:<uint>...}}
//   connector = an object of ConnectorSnapshot's fields, by their names
//   engine    = {"log_state","log_detail","sync_enabled","router_behind",
//                "projections_behind","projections_failed","campaigns"?}
//   campaigns = [{"tenant","id","name","state","sent","waiting","failed",
//                 "skipped_consent","skipped_quiet","skipped_other"}...]
//               (absent from an older build's: none)
//   item      = {"tenant","contact_id","what","at_us"}
// "attention" holds the newest 20 of each tenant; "attention_by_tenant"
// counts each tenant's (absent from an older build's: its items counted).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "console/api_keys.h"
#include "console/status_view.h"
#include "storage/event_log.h"

namespace dfm {

struct PartitionStatus {
  std::vector<ConnectorSnapshot> connectors;
  EngineSnapshot engine;
  std::vector<AttentionItem> attention;  // the newest 20 of each tenant
  uint64_t attention_total = 0;
  std::map<std::string, uint64_t> attention_by_tenant;  // how many each tenant has
};

std::string EncodePartitionStatus(const PartitionStatus& s);
// False when `data` is not a version-1 status.
bool DecodePartitionStatus(std::string_view data, PartitionStatus* s);

// The event log's state as the page says it ("writable", "low_disk",
// "unavailable") from its Health().
void SetLogState(const Status& health, EngineSnapshot* engine);

// The campaigns of `tenants` that are scheduled, running or paused, with
// their tasks' counts (the campaign projections of `log`), appended: the
// first kMostCampaigns (a partition's status stays well under NATS's
// payload limit).
inline constexpr size_t kMostCampaigns = 50;
void CollectCampaigns(const EventLog& log, const std::vector<std::string>& tenants,
                      std::vector<CampaignSnapshot>* out);

// The consent conflicts waiting for a person in `tenants` (the opt-out
// registry's "c/" entries of `log`): the newest of each tenant, newest
// first, each tenant with conflicts keeping an equal share of `most` (at
// least one, at most 20: a partition's status, kMostAttentionItems, stays
// well under NATS's payload limit); and how many in all and (when
// `by_tenant` is given) of each.
inline constexpr size_t kMostAttentionItems = 500;
void CollectAttention(const EventLog& log, const std::vector<std::string>& tenants,
                      std::vector<AttentionItem>* items, uint64_t* total,
                      std::map<std::string, uint64_t>* by_tenant = nullptr,
                      size_t most = kMostAttentionItems);
// The newest 20 of `items`, newest first.
void KeepNewest(std::vector<AttentionItem>* items);

// GET /v1/health's word for one connected system: "down" while its
// breaker is open or it refuses the credentials, "degraded" while the
// breaker is half-open or an opt-out has waited over a minute, else
// "connected" (as actors/status_board.h's SyncServices says it on a
// single node).
const char* ServiceState(const ConnectorSnapshot& c, int64_t now_us);

// What one partition's runner said, as a node last heard it.
struct PartitionAnswer {
  uint32_t partition = 0;
  size_t tenants = 0;  // of the configuration, in this partition
  std::string owner;   // "" when no node holds its lease
  std::string status;  // EncodePartitionStatus's; "" when none came
  bool starting = false;  // its node is starting it (catching up with its log)
};

// Every partition's connectors, conflicts and sync, merged: the engine is
// as bad as its worst partition, and a partition with tenants that did not
// answer is named in `engine->cluster_problems`. With `tenant` set (not
// kAllTenants), the connectors, conflicts and campaigns are that tenant's
// alone, and `attention_total` counts its conflicts.
void MergePartitionStatuses(const std::vector<PartitionAnswer>& answers,
                            std::vector<ConnectorSnapshot>* connectors, EngineSnapshot* engine,
                            std::vector<AttentionItem>* attention, uint64_t* attention_total,
                            const std::string& tenant = std::string(kAllTenants));

}  // namespace dfm
