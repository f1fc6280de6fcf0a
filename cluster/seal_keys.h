// The keys that seal a partition's log in cluster mode (docs/scale-out.md,
// docs/privacy.md): partition p's are scope "p<p>" of a SharedKeyStore
// (storage/shared_key_store.h) over the NATS key-value bucket DFM_SEAL,
// sealed there with cluster.state_key. Every node that runs the partition,
// and every tool given the state key, reads the same keys; `dfm erase`
// destroys them once for all of them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "config/config.h"
#include "storage/cas_store.h"
#include "storage/key_store.h"
#include "util/status.h"

namespace dfm {

inline constexpr char kSealBucket[] = "DFM_SEAL";

// Opens partition `p`'s keys; a null opener: partitions are not sealed
// (no cluster.state_key).
using PartitionKeysOpener = std::function<Status(uint32_t p, std::shared_ptr<KeyStore>* out)>;

// DFM_SEAL on a link of its own (records_store.h, OpenBucketStore), as
// `cluster` says to reach NATS; `who` names the link (a node, a tool).
Status OpenSealBucket(const ClusterSettings& cluster, const std::string& who, std::shared_ptr<CasStore>* out);

// Partition `p`'s keys in `bucket` (DFM_SEAL). `state_key_hex`:
// cluster.state_key, 64 hex digits.
Status OpenPartitionKeys(std::shared_ptr<CasStore> bucket, const std::string& state_key_hex, uint32_t p,
                         std::shared_ptr<KeyStore>* out);

}  // namespace dfm
