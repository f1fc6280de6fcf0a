// What every sync actor shares: the log, the rules, the clock and where the
// connectors are. Built once by the SyncEngine (or a test) before any actor
// is spawned, then only read, except the tenant tables a configuration
// reload publishes (Publish).
#pragma once

#include <caf/all.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "actors/erased_subjects.h"
#include "actors/send_gate.h"
#include "actors/status_board.h"
#include "sync/sync_control.h"
#include "connectors/common/mapper.h"
#include "storage/cas_store.h"
#include "storage/event_log.h"
#include "storage/snapshot_store.h"
#include "sync/contact_model.h"

namespace dfm {

struct CampaignRunSettings;  // actors/campaign_actor.h

struct SyncEnv {
  EventLog* log = nullptr;
  // What the campaign agents check at the moment of sending; null: the
  // defaults (CampaignRunSettings's).
  std::shared_ptr<const CampaignRunSettings> campaigns;
  // Merge policy and targets per tenant (each tenant's own systems); `ctx`
  // for a tenant not in `contexts`. now_us is set per decision.
  std::map<std::string, SyncContext> contexts;
  SyncContext ctx;
  const SyncContext& ContextFor(const std::string& tenant) const {
    const auto& all = Live() ? Live()->contexts : contexts;
    auto it = all.find(tenant);
    return it == all.end() ? ctx : it->second;
  }
  // How webhooks are read: `mapper` (the phone normalizer), with each
  // (tenant, system)'s own table where it has one (MapperFor).
  MapperSettings mapper;
  std::map<std::pair<std::string, std::string>, const SystemSettings*> system_tables;
  MapperSettings MapperFor(const std::string& tenant, const std::string& system) const {
    MapperSettings m = mapper;
    const auto& all = Live() ? Live()->system_tables : system_tables;
    auto it = all.find({tenant, system});
    if (it != all.end()) m.system = it->second;
    return m;
  }
  // The longest request_timeout_ms among `tenant`'s systems as configured
  // now (a reload's included), in µs; 0 when none sets one.
  int64_t LongestRequestTimeoutUs(const std::string& tenant) const {
    const auto& all = Live() ? Live()->system_tables : system_tables;
    int64_t longest_ms = 0;
    for (auto it = all.lower_bound({tenant, ""}); it != all.end() && it->first.first == tenant;
         ++it) {
      if (!it->second) continue;
      if (auto t = it->second->find("request_timeout_ms"); t != it->second->end())
        longest_ms = std::max<int64_t>(longest_ms, std::strtoll(t->second.c_str(), nullptr, 10));
    }
    return longest_ms * 1000;
  }
  std::function<int64_t()> now_us;  // wall clock (tests: simulated)
  int64_t contact_idle_us = 300LL * 1000000;  // passivate after this long idle
  int64_t append_retry_us = 500000;  // an append the log refused is tried again after this
  size_t router_batch = 256;          // events read per poll
  size_t router_max_in_flight = 20000;  // webhooks routed and not yet decided
  // (tenant, system) -> its connector actor. Systems without one get no pushes.
  std::map<std::pair<std::string, std::string>, caf::actor> connectors;
  // Where contact actors keep their snapshots (sync/contact_snapshot.h);
  // null: none kept, every start folds the whole stream. A contact writes
  // one when it passivates, and after snapshot_every events (or as many
  // as it holds messages, when more: the write's cost stays a constant
  // share of the events it saves folding) since its last.
  SnapshotStore* snapshots = nullptr;
  uint64_t snapshot_every = 512;
  // The key store's secret for the keyed hashes of erased people's phones
  // and emails (sync/erasure.h); empty: the log does not seal, nobody was
  // erased, and sends are not checked against the registry's z/ rows.
  std::string subject_hash_key;
  // Where contact actors close the numbers texts must not go to now, before
  // their opt-outs are durable, and connectors look before a send goes out
  // (actors/send_gate.h). Null: none (unit tests of one actor).
  std::shared_ptr<SendGate> gate;
  // Erased people's consent from the contact.erased events the router has
  // read (actors/erased_subjects.h); null: the registry's rows only.
  std::shared_ptr<ErasedSubjects> erased_subjects;
  // An operator's pauses and concurrency limits (actors/sync_control.h),
  // asked by connectors before a push goes; null: none.
  std::shared_ptr<SyncControl> control;
  // Where the connectors keep the records they made under a real-world key
  // (connectors/common/vendor_records.h): the log's state on one node, the
  // cluster's shared bucket; null: none (unit tests of one actor).
  std::shared_ptr<CasStore> vendor_records;
  // Cluster mode: where connectors write their state (credentials,
  // credits) for the next owner of the tenant, after the log's own
  // durable copy and before using it; null on a single node.
  StateReplicator replicate_state;
  // Where the router publishes its state for GET /v1/health; may be null.
  std::shared_ptr<SyncStatusBoard> board;

  caf::actor Connector(const std::string& tenant, const std::string& system) const {
    const auto& all = Live() ? Live()->connectors : connectors;
    auto it = all.find({tenant, system});
    return it == all.end() ? caf::actor() : it->second;
  }
  // Every connector of `tenant`.
  std::vector<caf::actor> ConnectorsOf(const std::string& tenant) const {
    std::vector<caf::actor> out;
    for (const auto& [key, c] : Live() ? Live()->connectors : connectors)
      if (key.first == tenant && c) out.push_back(c);
    return out;
  }

  // What a configuration reload (SIGHUP, POST /v1/admin/reload) puts in
  // place of `contexts`, `system_tables` and `connectors`. Published whole,
  // atomically; every set ever published is kept (reloads are rare), so a
  // reference a reader took from one stays valid.
  struct Tables {
    std::map<std::string, SyncContext> contexts;
    std::map<std::pair<std::string, std::string>, const SystemSettings*> system_tables;
    std::map<std::pair<std::string, std::string>, caf::actor> connectors;
  };
  void Publish(std::shared_ptr<const Tables> t) const {
    std::lock_guard<std::mutex> lock(publish_mu_);
    published_.push_back(t);
    live_.store(t.get(), std::memory_order_release);
  }
  // The last published set; null before any reload.
  const Tables* Live() const { return live_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex publish_mu_;
  mutable std::vector<std::shared_ptr<const Tables>> published_;
  mutable std::atomic<const Tables*> live_{nullptr};
};

}  // namespace dfm
