// What the sync had decided at one moment (actors/router.h), as the
// router's readings of the log said it: each reading has decided every
// webhook up to its `through` but those in its `held`, which wait for a
// contact the router holds (its stream could not be read). A decision
// once durable stays so: a reading begun again from the checkpoint (after
// a contact's failure) does not undo what the one before it decided, so
// both are kept. An erasure waits for its person's own webhooks by it
// (app/erase.h), not for the router's checkpoint alone, which any held
// contact of any tenant keeps back.
#pragma once

#include <cstdint>
#include <memory>
#include <set>

namespace dfm {

struct DecidedView {
  struct Reading {
    uint64_t through = 0;
    std::shared_ptr<const std::set<uint64_t>> held;  // null: none
    bool Has(uint64_t seq) const { return seq <= through && !Holds(seq); }
    bool Holds(uint64_t seq) const { return held && held->count(seq) != 0; }
  };
  uint64_t checkpoint = 0;  // the router's, durable: every webhook up to it
  Reading now;              // the router's reading now
  Reading before;           // its reading before it last began again
  // Whether webhook `seq` was decided, its outcome durable.
  bool Has(uint64_t seq) const { return seq <= checkpoint || now.Has(seq) || before.Has(seq); }
  // Whether it waits for a contact the router holds.
  bool Held(uint64_t seq) const { return !Has(seq) && now.Holds(seq); }
  // Every webhook up to `checkpoint` (the router's) is decided too.
  void AddCheckpoint(uint64_t cp) { checkpoint = checkpoint > cp ? checkpoint : cp; }
};

}  // namespace dfm
