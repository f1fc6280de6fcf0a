// PlanLeases: which partitions a node renews, claims and gives up on each
// tick of its coordinator (docs/scale-out.md, "Who writes a partition").
// Pure: the coordinator (node.h) reads the lease bucket, asks this, and
// does what it says with compare-and-set writes, so two nodes that plan the
// same claim cannot both win it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dfm {

struct LeaseView {
  std::string owner;  // node id; empty when nobody holds it
  uint64_t rev = 0;
};

struct LeasePlan {
  std::vector<uint32_t> renew;    // held by me: extend
  std::vector<uint32_t> claim;    // free: try to take
  std::vector<uint32_t> release;  // held by me beyond my share: give up (at most one a tick)
};

// `leases[p]` is partition p's lease; `live` the nodes whose heartbeat is
// current (me among them). A node's share is ceil(partitions / live). It
// never takes a lease someone holds (an owner's lease lapses only when it
// stops renewing), claims free ones up to its share in an order of its own
// (a hash of node and partition, so nodes starting together mostly want
// different ones), and gives one up a tick while it holds more than its
// share and a live node holds less, so a node that joins gets work without
// anyone restarting. On a node's `first_look` it claims nothing free: the
// nodes started with it may not have heartbeaten yet, and a fleet started
// together then splits the partitions by share at its second look, instead
// of the first node up taking them all and handing them over a release a
// tick (each a partition stopped and started again).
LeasePlan PlanLeases(const std::string& me, const std::vector<std::string>& live,
                     const std::vector<LeaseView>& leases, bool first_look = false);

}  // namespace dfm
