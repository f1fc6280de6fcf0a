#include "actors/engine.h"

#include "actors/campaign_actor.h"

namespace dfm {

void AddSyncMessageTypes(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::dfm>();
}

SyncEngine::SyncEngine(caf::actor_system& sys, std::shared_ptr<SyncEnv> env,
                       std::vector<ConnectorSettings> connectors)
    : sys_(sys), env_(std::move(env)), settings_(std::move(connectors)) {}

SyncEngine::~SyncEngine() { Stop(); }

void SyncEngine::Start() {
  std::shared_ptr<const SyncEnv> shared = env_;
  for (auto& c : settings_) {
    auto a = sys_.spawn(ConnectorActor, shared, caf::actor(), c);
    env_->connectors[{c.tenant, c.system}] = a;
    by_system_[{c.tenant, c.system}] = a;
    connectors_.push_back(a);
  }
  router_ = sys_.spawn(Router, shared);
  for (auto& c : connectors_) caf::anon_send(c, router_);
  caf::anon_send(router_, recover_atom::value);
  campaigns_ = sys_.spawn(CampaignSupervisor, shared);
  // One poll per new head, but at most one per kMinPollInterval: on a busy
  // log the router reads a batch of group commits at once instead of
  // waking for each (an idle log's first append is polled at once).
  notifier_ = std::thread([this] {
    constexpr auto kMinPollInterval = std::chrono::milliseconds(2);
    uint64_t seen = env_->log->LastSequence();
    auto last_poll = std::chrono::steady_clock::time_point{};
    while (!stop_) {
      uint64_t now = env_->log->WaitForSequence(seen + 1, std::chrono::milliseconds(200));
      if (now > seen) {
        auto wait = last_poll + kMinPollInterval - std::chrono::steady_clock::now();
        if (wait > wait.zero()) std::this_thread::sleep_for(wait);
        seen = env_->log->LastSequence();
        last_poll = std::chrono::steady_clock::now();
        caf::anon_send(router_, poll_atom::value);
      }
    }
  });
}

bool SyncEngine::Has(const std::string& tenant, const std::string& system) const {
  return by_system_.count({tenant, system}) > 0;
}

bool SyncEngine::Read(const std::string& tenant, const std::string& system, BackfillRead read) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = by_system_.find({tenant, system});
  if (stop_ || it == by_system_.end()) return false;
  caf::anon_send(it->second, std::move(read));
  return true;
}

void SyncEngine::WakeConnectors() {
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& c : connectors_) caf::anon_send(c, wake_atom::value);
}

void SyncEngine::Reload(std::vector<ConnectorSettings> changed,
                        std::shared_ptr<SyncEnv::Tables> tables) {
  std::shared_ptr<const SyncEnv> shared = env_;
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& c : changed) {
    auto it = by_system_.find({c.tenant, c.system});
    if (it != by_system_.end()) {
      caf::anon_send(it->second, ConnectorUpdate{std::make_shared<ConnectorSettings>(std::move(c))});
      continue;
    }
    auto a = sys_.spawn(ConnectorActor, shared, router_, c);
    by_system_[{c.tenant, c.system}] = a;
    connectors_.push_back(a);
  }
  tables->connectors = by_system_;
  env_->Publish(std::move(tables));
}

void SyncEngine::Stop() {
  if (stop_.exchange(true)) return;
  if (notifier_.joinable()) notifier_.join();
  if (router_) caf::anon_send_exit(router_, caf::exit_reason::user_shutdown);
  for (auto& c : connectors_) caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
  // Its campaign actors end with it.
  if (campaigns_) caf::anon_send_exit(campaigns_, caf::exit_reason::user_shutdown);
}

}  // namespace dfm
