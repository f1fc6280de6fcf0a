// The campaign actors (campaigns/README.md, step 2). One per campaign that
// is scheduled, running, paused, or cancelled with tasks still open: each
// tick it reads the campaign from its stream, its audience and tasks from
// the projections, and appends what campaigns/planner.h decides; it begins
// a scheduled campaign when its date comes and completes a running one
// whose tasks all ended. Thin: the decisions are PlanNextTaskEvents's.
//
// A tick comes about every second (a STOP skips the person's waiting
// tasks a tick and a rest after its registry row), sooner when a task
// falls due, but not before the actor rested three times as long as its
// last tick took, up to a second (RestAfterTick). The actor runs
// detached: a tick waits for its appends to be durable. Every event it appends is idempotent
// (campaigns/task.h), so a tick that reads projections a moment behind its own appends asks for
// nothing twice.
//
// The supervisor (one per engine) looks at the tenants' campaigns every
// second and spawns an actor for each that needs one; an exit message to
// it ends them too.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "actors/sync_env.h"
#include "campaigns/quiet_hours.h"
#include "campaigns/recipient_zones.h"
#include "campaigns/send_check.h"
#include "projections/opt_out_watch.h"

namespace dfm {

// The rules of sending (configuration [campaigns]), and the zones a
// person's quiet hours are read in.
struct CampaignRunSettings {
  QuietHours hours;
  std::string default_zone = "UTC";
  FrequencyCaps caps;
  double texts_per_second = 10;
  int64_t lease_us = 600LL * 1000000;
  // The service's public address (server.public_base_url, no trailing
  // '/'): an email's one-click unsubscribe link is made under it; empty:
  // emails go without one.
  std::string public_base_url;
  std::shared_ptr<const RecipientZones> zones;  // null: RecipientZones without a phone map
  // Each sender's pace ("<tenant>/<sender>"), shared by the campaigns that
  // text from it.
  struct Pacers {
    std::mutex mu;
    std::map<std::string, SenderPacer> by_sender;
  };
  std::shared_ptr<Pacers> pacers = std::make_shared<Pacers>();
};

// What an actor keeps between ticks: the audience, resolved at its first
// tick of the running campaign (a person tagged later joins when the
// actor starts again, after a restart or a partition's move).
struct CampaignTickState {
  bool resolved = false;
  std::vector<std::string> audience;
  uint64_t appended = 0;        // the last event it appended (waits for the projection to fold it)
  int64_t fold_wait_since = 0;  // when that wait began (0: not waiting)
  int empty_ticks = 0;          // ticks that found nobody in the audience
  int64_t stuck_logged_us = 0;  // when a plan the tasks refused was last logged
  // Each waiting person's opt-out, kept between ticks (made at the first).
  std::unique_ptr<OptOutWatch> opt_outs;
};

// One tick: what the campaign needs now, appended. Returns when to tick
// again (µs from now, at most a second), or -1 when nothing is left to
// tend (a draft, a completed campaign, a cancelled one whose tasks ended,
// or none of that id). An append that fails is logged and tried again at
// the next tick.
int64_t TickCampaign(const SyncEnv& env, const std::string& tenant, const std::string& campaign,
                     CampaignTickState* state);

// How long a campaign's actor rests after a tick that took `took_us`
// and asked for the next in `asked_us` (TickCampaign's answer, >= 0): at
// least kRestPerTickTime times the tick's own time, up to a second, so
// that one actor keeps at most a quarter of a core while its ticks take
// up to a third of a second (a tick reads every task: ~100 ms at 100,000
// people on a 2-core machine), tick / (tick + 1 s) past that (half a core
// at 1 s ticks). A small campaign's ticks take a few milliseconds and
// rest as they ask.
inline constexpr int64_t kRestPerTickTime = 3;
int64_t RestAfterTick(int64_t asked_us, int64_t took_us);

caf::behavior CampaignActor(caf::event_based_actor* self, std::shared_ptr<const SyncEnv> env,
                            std::string tenant, std::string campaign, caf::actor supervisor);

struct CampaignSupervisorState {
  std::shared_ptr<const SyncEnv> env;
  std::map<std::pair<std::string, std::string>, caf::actor> running;  // (tenant, campaign)
  static inline const char* name = "dfm.campaigns";
};

caf::behavior CampaignSupervisor(caf::stateful_actor<CampaignSupervisorState>* self,
                                 std::shared_ptr<const SyncEnv> env);

}  // namespace dfm
