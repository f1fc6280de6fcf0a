#include "cluster/records_store.h"

#include <chrono>
#include <thread>

namespace dfm {

namespace {

class NatsCasStore final : public CasStore {
 public:
  explicit NatsCasStore(std::unique_ptr<NatsClient> nats) : nats_(std::move(nats)) {}

  Status Get(const std::string& key, Entry* e) override { return Read(key, /*latest=*/false, e); }
  Status GetLatest(const std::string& key, Entry* e) override {
    return Read(key, /*latest=*/true, e);
  }

  Status Create(const std::string& key, const std::string& value) override {
    uint64_t rev = 0;
    return nats_->KvCreate(key, value, &rev);
  }

  Status Update(const std::string& key, const std::string& value, uint64_t rev) override {
    uint64_t next = 0;
    return nats_->KvUpdate(key, value, rev, &next);
  }

  // From the leader, one request: deleted keys are listed too (CasStore).
  Status Keys(std::vector<std::string>* keys) override { return nats_->KvKeysLatest(keys); }

 private:
  Status Read(const std::string& key, bool latest, Entry* e) {
    NatsClient::KvEntry kv;
    Status s = latest ? nats_->KvGetLatest(key, &kv) : nats_->KvGet(key, &kv);
    if (!s.ok()) return s;
    e->present = kv.present;
    e->value = std::move(kv.value);
    e->rev = kv.rev;
    return Status::OK();
  }

  std::unique_ptr<NatsClient> nats_;
};

}  // namespace

Status OpenRecordsStore(const std::vector<std::string>& urls, const std::string& node,
                        const NatsSecurity& security, int replicas, std::shared_ptr<CasStore>* out) {
  return OpenBucketStore(kRecordsBucket, urls, node, security, replicas, out);
}

Status OpenBucketClient(const std::string& bucket, const std::vector<std::string>& urls, const std::string& node,
                        const NatsSecurity& security, int replicas, std::unique_ptr<NatsClient>* out,
                        int64_t ttl_s) {
  Status s = NatsClient::Connect(urls, "dfm " + node + " " + bucket, security, /*keep_trying=*/true, out);
  if (!s.ok()) return s;
  for (int attempt = 0;; ++attempt) {
    s = (*out)->OpenBucket(bucket, ttl_s, replicas);
    if (s.ok() || attempt >= 60) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // a cluster still forming
  }
  return s;
}

Status OpenBucketStore(const std::string& bucket, const std::vector<std::string>& urls, const std::string& node,
                       const NatsSecurity& security, int replicas, std::shared_ptr<CasStore>* out,
                       int64_t ttl_s) {
  std::unique_ptr<NatsClient> nats;
  Status s = OpenBucketClient(bucket, urls, node, security, replicas, &nats, ttl_s);
  if (!s.ok()) return s;
  *out = std::make_shared<NatsCasStore>(std::move(nats));
  return Status::OK();
}

}  // namespace dfm
