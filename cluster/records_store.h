// The cluster's shared records (connectors/common/vendor_records.h): a
// CasStore over the NATS key-value bucket DFM_RECORDS (file storage, the
// cluster's replicas, no expiry), on a connection of its own so that a
// slow record write never holds up a lease renewal. Every node's
// partitions share it: a creation claimed on one node is seen by all.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cluster/nats_client.h"
#include "storage/cas_store.h"

namespace dfm {

inline constexpr char kRecordsBucket[] = "DFM_RECORDS";

inline constexpr char kKeysBucket[] = "DFM_KEYS";        // console/shared_keys.h
inline constexpr char kControlBucket[] = "DFM_CONTROL";  // app/shared_control.h
inline constexpr char kLimitsBucket[] = "DFM_LIMITS";    // console/limits.h

// Connects a link of its own (retrying in the background like the node's
// own link) and opens or creates the bucket `bucket` (file storage,
// `replicas`, no expiry), waiting up to 30 s for a cluster still forming.
// `ttl_s` > 0: its keys expire that long after their last write.
Status OpenBucketClient(const std::string& bucket, const std::vector<std::string>& urls, const std::string& node,
                        const NatsSecurity& security, int replicas, std::unique_ptr<NatsClient>* out,
                        int64_t ttl_s = 0);
// The same, as a CasStore.
Status OpenBucketStore(const std::string& bucket, const std::vector<std::string>& urls, const std::string& node,
                       const NatsSecurity& security, int replicas, std::shared_ptr<CasStore>* out,
                       int64_t ttl_s = 0);
// OpenBucketStore of DFM_RECORDS.
Status OpenRecordsStore(const std::vector<std::string>& urls, const std::string& node,
                        const NatsSecurity& security, int replicas, std::shared_ptr<CasStore>* out);

}  // namespace dfm
