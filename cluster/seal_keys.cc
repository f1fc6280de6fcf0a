#include "cluster/seal_keys.h"

#include "cluster/records_store.h"
#include "cluster/security.h"
#include "storage/shared_key_store.h"
#include "util/crypto.h"

namespace dfm {

Status OpenSealBucket(const ClusterSettings& cluster, const std::string& who, std::shared_ptr<CasStore>* out) {
  return OpenBucketStore(kSealBucket, cluster.nats_urls, who, NatsSecurityOf(cluster),
                         static_cast<int>(cluster.replicas), out);
}

Status OpenPartitionKeys(std::shared_ptr<CasStore> bucket, const std::string& state_key_hex, uint32_t p,
                         std::shared_ptr<KeyStore>* out) {
  auto key = HexDecode(state_key_hex);
  if (!key || key->size() != 32) return Status::InvalidArgument("cluster.state_key: 64 hex digits");
  std::unique_ptr<SharedKeyStore> ks;
  Status s = SharedKeyStore::Open(std::move(bucket), std::move(*key), "p" + std::to_string(p), &ks);
  if (!s.ok()) return s;
  *out = std::move(ks);
  return Status::OK();
}

}  // namespace dfm
