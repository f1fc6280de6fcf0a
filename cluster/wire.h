// What cluster mode (docs/scale-out.md) puts in NATS JetStream, with no NATS
// inside: the frames of the two streams and the tenant's partition. The
// grammars, with their version byte, are in docs/scale-out.md ("Formats").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "storage/rocksdb_event_log.h"
#include "util/status.h"

namespace dfm {

// The partition of `tenant` among `partitions` (>= 1): FNV-1a 64 of the
// tenant's name, modulo. Stable across builds and machines: every node, and
// every tool, must agree on it for the life of the cluster.
uint32_t PartitionOf(std::string_view tenant, uint32_t partitions);

// A webhook's event draft as the ingest stream holds it: version 1 with
// its payload in clear, version 2 with its payload sealed by the front
// (`sealed`; cluster/draft_seal.h).
std::string EncodeDraft(const EventDraft& d, bool sealed = false);
// InvalidArgument for anything but a whole frame of version 1 or 2;
// *sealed (may be null) says which.
Status DecodeDraft(std::string_view frame, EventDraft* d, bool* sealed = nullptr);

// Several webhooks' drafts in one message of the ingest stream (version 3:
// the fronts put the webhooks of a partition that wait together in one
// publish), each an EncodeDraft frame. REQUIRES: frames.size() >= 2.
std::string EncodeDraftBatch(const std::vector<std::string>& frames);
// The drafts of a message of the ingest stream, of any version: one for
// versions 1 and 2, each with whether the front sealed it.
struct TakenDraft {
  EventDraft draft;
  bool sealed = false;
};
Status DecodeDrafts(std::string_view frame, std::vector<TakenDraft>* out);
// Whether a message of the ingest stream names a version this build does
// not know, up to 15: its own first byte, or (a batch that parses whole)
// any of its drafts'. Such a message is kept for a node that reads it,
// not taken for damaged.
bool WrittenByNewerBuild(std::string_view frame);

// One message of a partition's log stream: records one group commit wrote,
// and who wrote them under which lease.
struct LogChunk {
  std::string writer;      // node id
  uint64_t lease_rev = 0;  // the revision of the writer's lease when it wrote
  std::vector<ReplicaRecord> records;
};
std::string EncodeChunk(const LogChunk& c);
Status DecodeChunk(std::string_view frame, LogChunk* c);

// Whether a partition's log already holds webhooks (subject
// dfm.seen.<p>): the front asks the partition's node before it publishes a
// webhook with an idempotency key, so one sent again after the ingest
// stream's de-duplication window is still answered `duplicate`.
struct SeenKey {
  std::string tenant, system, key;
  bool operator==(const SeenKey& o) const { return tenant == o.tenant && system == o.system && key == o.key; }
};
struct SeenAsk {
  std::vector<SeenKey> keys;
};
struct Seen {
  uint64_t seq = 0;  // in the partition's log; 0: not held
  EventId id;        // the event's, when held
};
std::string EncodeSeenAsk(const SeenAsk& a);
Status DecodeSeenAsk(std::string_view frame, SeenAsk* a);
std::string EncodeSeen(const std::vector<Seen>& answer);
Status DecodeSeen(std::string_view frame, std::vector<Seen>* answer);

}  // namespace dfm
