// `dfm campaigns list | show ID | check ID | tasks ID [--stuck|--reset]`: the
// campaign API (docs/campaigns.md) asked of the running service with the
// data directory's admin token, printed for a person, or as answered with
// --json. `check` answers the guide's "campaign not starting" in one
// command; `tasks --stuck` its "tasks not executing", and `tasks --reset`
// gives back the tasks stuck now (POST /v1/campaigns/{id}/tasks/reset).
#pragma once

#include <iosfwd>
#include <string>

#include "config/config.h"

namespace dfm {

struct CampaignsCommandArgs {
  std::string action;  // list, show, check, tasks
  std::string id;      // show, check, tasks
  std::string tenant = "default";
  bool stuck = false;  // tasks
  bool reset = false;  // tasks
  bool json = false;
};

// Exit code: 0 answered (check: every check passes), 1 the service
// refused or a check fails, 2 no service answers or a usage error.
int RunCampaignsCommand(const Config& config, const CampaignsCommandArgs& args, std::ostream& out,
                        std::ostream& err);

}  // namespace dfm
