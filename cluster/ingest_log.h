// IngestLog: the HTTP front's log in cluster mode (docs/scale-out.md). An
// append first asks the partition's node whether its log holds the drafts
// with an idempotency key (dfm.seen.<p>; its own log, without NATS, when
// this node runs the partition): those are answered duplicate
// with the log's event, unpublished. It publishes the others to
// DFM_IN_<its tenant's partition> and is answered once JetStream
// acknowledged them (replicated): one message of a partition in flight
// at a time, holding what waited for it (a group commit), de-duplicated
// there by the idempotency key within the stream's window; the event id
// is made here and kept by the partition's log, and the payload sealed
// here when the cluster seals.
// Everything else reads the node's own log, which holds nothing (health,
// metrics and the console read it).
//
// Thread-safety: as EventLog; Close() once, before the NATS client goes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "cluster/nats_client.h"
#include "cluster/seal_keys.h"
#include "cluster/wire.h"
#include "storage/event_log.h"

namespace dfm {

class IngestLog : public EventLog {
 public:
  // Finishes the publishes queued, then refuses appends. Idempotent.
  virtual void Close() = 0;
  // Drafts published since the start, and the messages they went in
  // (several in one when they waited together).
  virtual uint64_t published() const = 0;
  virtual uint64_t messages() const = 0;
};

// Answers a seen ask about partition `p` on this node when it runs `p`
// (ReadRouter::AnswerSeenHere): false sends it over NATS.
using SeenHere = std::function<bool(uint32_t p, const SeenAsk& ask, std::vector<Seen>* out)>;

// REQUIRES: `nats` and `local` outlive the result. With `keys`, every
// draft the log would seal is sealed before it is published
// (cluster/draft_seal.h).
std::unique_ptr<IngestLog> MakeIngestLog(NatsClient* nats, EventLog* local, uint32_t partitions,
                                         PartitionKeysOpener keys = nullptr, SeenHere seen_here = nullptr);

}  // namespace dfm
