// Reads of a tenant's log from any node (docs/scale-out.md, "Reads from
// any node"). A tenant's events live in its partition's log, on the node
// that runs the partition; every other node asks that one, over NATS
// request and reply on `dfm.read.<p>`, which only the partition's runner
// listens on.
//
// The runner also answers `dfm.seen.<p>`: whether its log holds webhooks
// (cluster/wire.h, SeenAsk), which the fronts ask before they publish.
//
// What is asked and answered is opaque here (the console's encoding,
// console/remote_read.h). On the wire an answer is "A" and the
// answerer's bytes, or "E" and why it could not be answered.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cluster/nats_client.h"
#include "cluster/wire.h"
#include "storage/event_log.h"
#include "storage/key_store.h"
#include "util/status.h"
#include "util/worker.h"

namespace dfm {

// A partition as this node runs it: its log and the keys that seal it
// (null: not sealed). A request that changes it (an erasure) is asked of
// this node like a read.
class PartitionWork;  // cluster/node.h

struct ServedLog {
  EventLog* log = nullptr;
  KeyStore* keys = nullptr;
  // After an erasure at the sequence given: what the sync derived is
  // compacted out of the log's files once it has passed it, in the
  // background (null: not asked).
  std::function<void(uint64_t)> scrub_after;
  // The partition's work, once it runs (null before): it answers the
  // requests that are its own (PartitionWork::Answer).
  PartitionWork* work = nullptr;
  // True once the partition is stopping (null: never): a work that starts
  // may give up on it. Outlives the work.
  const std::atomic<bool>* stopping = nullptr;
};

// Answers `request` from `at`: calls `reply` once, from any thread.
using ReadAnswerer = std::function<void(const ServedLog& at, std::string request,
                                        std::function<void(std::string answer)> reply)>;

class ReadRouter {
 public:
  // REQUIRES: `nats` outlives the router.
  ReadRouter(NatsClient* nats, uint32_t partitions);
  ~ReadRouter();
  // Waits for the asks under way (each bounded by its timeout); later
  // asks are answered Unavailable at once.
  void Drain();

  // What answers the reads this node serves; until set they are answered
  // "not ready".
  void SetAnswerer(ReadAnswerer answerer);

  // While it lives, partition `p`'s reads (and seen asks) are answered
  // here from `at`.
  // Its destructor stops listening and waits for the answers under way,
  // so its log may close right after.
  class Serving {
   public:
    ~Serving();
    struct Gate;

   private:
    friend class ReadRouter;
    std::unique_ptr<NatsClient::Listener> listener_, seen_listener_;
    std::shared_ptr<Gate> gate_;
    ReadRouter* router_ = nullptr;
    uint32_t p_ = 0;
  };
  Status Serve(uint32_t p, ServedLog at, std::unique_ptr<Serving>* out);

  // A seen ask (cluster/wire.h) about partition `p`, answered from its log
  // when this node serves it: the front's own partition needs no NATS
  // round trip. False when this node does not serve it.
  bool AnswerSeenHere(uint32_t p, const SeenAsk& ask, std::vector<Seen>* out);

  // Asks whoever runs `tenant`'s partition; `done` runs on a router
  // thread with its answer, or NotFound (no node runs the partition now:
  // it is moving) or Unavailable (no answer within `timeout_ms`, or the
  // runner could not answer).
  void Ask(const std::string& tenant, std::string request, int64_t timeout_ms,
           std::function<void(Status, std::string answer)> done);

 private:
  NatsClient* nats_;
  const uint32_t partitions_;
  std::mutex mu_;
  std::shared_ptr<ReadAnswerer> answerer_;  // GUARDED_BY(mu_)
  // Asks wait on NATS; one slow owner holds up only the partitions that
  // share its thread. Emptied by Drain.
  std::mutex askers_mu_;
  std::vector<std::unique_ptr<Worker>> askers_;  // GUARDED_BY(askers_mu_)
  // The partitions served here, for AnswerSeenHere.
  struct Local {
    std::shared_ptr<Serving::Gate> gate;
    const EventLog* log = nullptr;
  };
  std::mutex local_mu_;
  std::map<uint32_t, Local> local_;  // GUARDED_BY(local_mu_)
};

}  // namespace dfm
