// What the sync had decided at one moment (actors/router.h): every
// webhook up to `through` but those in `held`, which wait for a contact
// the router holds (its stream could not be read). An erasure waits for
// its person's own webhooks by it (app/erase.h), not for the router's
// checkpoint, which any held contact of any tenant keeps back.
#pragma once

#include <cstdint>
#include <set>

namespace dfm {

struct DecidedView {
  uint64_t through = 0;
  std::set<uint64_t> held;
  // Whether webhook `seq` was decided, its outcome durable.
  bool Has(uint64_t seq) const { return seq <= through && held.count(seq) == 0; }
  // Every webhook up to `checkpoint` (the router's, durable) is decided too.
  void AddCheckpoint(uint64_t checkpoint) {
    through = through > checkpoint ? through : checkpoint;
    held.erase(held.begin(), held.upper_bound(checkpoint));
  }
};

}  // namespace dfm
