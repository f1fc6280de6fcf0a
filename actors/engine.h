// SyncEngine: assembles and runs the sync actors over one event log: a
// connector actor per (tenant, system) with outbound settings, the router,
// the campaigns' supervisor (actors/campaign_actor.h), and a thread that
// wakes the router when the log grows.
//
// Lifecycle: construct, Start(), ... Stop() (also run by the destructor).
// Projections must have caught up with the log before Start(): the router
// resolves identities and finds unsettled pushes through them.
#pragma once

#include <caf/all.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <memory>
#include <thread>
#include <vector>

#include "actors/connector_actor.h"
#include "actors/router.h"
#include "actors/sync_env.h"

namespace dfm {

class SyncEngine {
 public:
  SyncEngine(caf::actor_system& sys, std::shared_ptr<SyncEnv> env,
             std::vector<ConnectorSettings> connectors);
  ~SyncEngine();
  SyncEngine(const SyncEngine&) = delete;
  SyncEngine& operator=(const SyncEngine&) = delete;

  void Start();
  void Stop();
  // Whether a connector actor runs for (tenant, system).
  bool Has(const std::string& tenant, const std::string& system) const;
  // A configuration reload: `changed` holds the settings of each connector
  // that is new (an actor is spawned) or whose settings changed (its actor
  // is sent them: ConnectorUpdate); then `tables`, with every actor in its
  // `connectors`, is published to the actors (SyncEnv::Publish).
  // REQUIRES: after Start(); one caller at a time.
  void Reload(std::vector<ConnectorSettings> changed, std::shared_ptr<SyncEnv::Tables> tables);
  caf::actor router() const { return router_; }
  // Hands a backfill's read to (tenant, system)'s connector actor; false
  // when none runs (or the engine stopped). Thread-safe.
  bool Read(const std::string& tenant, const std::string& system, BackfillRead read);
  // Every connector looks again at what it may send: after an operator's
  // pause or resume changed env->control. Thread-safe.
  void WakeConnectors();

 private:
  caf::actor_system& sys_;
  std::shared_ptr<SyncEnv> env_;
  std::vector<ConnectorSettings> settings_;
  mutable std::mutex mu_;  // connectors_ and by_system_ after Start
  std::vector<caf::actor> connectors_;
  std::map<std::pair<std::string, std::string>, caf::actor> by_system_;
  caf::actor router_;
  caf::actor campaigns_;  // actors/campaign_actor.h's supervisor
  std::atomic<bool> stop_{false};
  std::thread notifier_;
};

// Registers the sync messages with a CAF config (call before the system is made).
void AddSyncMessageTypes(caf::actor_system_config& cfg);

}  // namespace dfm
