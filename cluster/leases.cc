#include "cluster/leases.h"

#include <algorithm>
#include <map>

namespace dfm {

namespace {
uint64_t Mix(const std::string& node, uint32_t p) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : node) h = (h ^ c) * 1099511628211ull;
  h = (h ^ p) * 1099511628211ull;
  return h ^ (h >> 29);
}
}  // namespace

LeasePlan PlanLeases(const std::string& me, const std::vector<std::string>& live,
                     const std::vector<LeaseView>& leases, bool first_look) {
  LeasePlan plan;
  const size_t nodes = std::max<size_t>(1, live.size() + (std::count(live.begin(), live.end(), me) ? 0 : 1));
  const size_t share = (leases.size() + nodes - 1) / nodes;
  std::map<std::string, size_t> held;
  for (const auto& n : live) held[n] = 0;
  std::vector<uint32_t> free;
  for (uint32_t p = 0; p < leases.size(); ++p) {
    if (leases[p].owner.empty()) {
      free.push_back(p);
    } else {
      held[leases[p].owner]++;
      if (leases[p].owner == me) plan.renew.push_back(p);
    }
  }
  const size_t mine = plan.renew.size();
  if (mine < share && !first_look) {
    std::sort(free.begin(), free.end(),
              [&](uint32_t a, uint32_t b) { return Mix(me, a) < Mix(me, b); });
    free.resize(std::min(free.size(), share - mine));
    plan.claim = free;
  } else if (mine > share && free.empty()) {
    bool someone_short = false;
    for (const auto& n : live)
      if (n != me && held[n] < share) someone_short = true;
    if (someone_short) plan.release.push_back(plan.renew.back());
  }
  return plan;
}

}  // namespace dfm
