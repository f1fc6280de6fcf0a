#include "cluster/ingest_log.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/draft_seal.h"
#include "cluster/names.h"
#include "cluster/publish_retry.h"
#include "cluster/wire.h"
#include "util/clock.h"

namespace dfm {

namespace {
using namespace cluster_names;
constexpr int kIngestSenders = 8;

int64_t NowMs() { return SystemClock::Instance()->NowMicros() / 1000; }
void SleepMs(int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

class NatsIngestLog final : public IngestLog {
 public:
  NatsIngestLog(NatsClient* nats, EventLog* local, uint32_t partitions, PartitionKeysOpener open_keys)
      : nats_(nats), local_(local), partitions_(partitions), open_keys_(std::move(open_keys)) {
    for (int i = 0; i < kIngestSenders; ++i) senders_.emplace_back([this] { SendLoop(); });
  }
  ~NatsIngestLog() override { Close(); }
  void Close() override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (closed_) return;
      closed_ = true;
    }
    cv_.notify_all();
    for (auto& t : senders_) t.join();
  }
  uint64_t published() const override { return published_.load(); }

  void AppendAsync(std::vector<EventDraft> drafts, AppendCallback cb) override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!closed_) {
        queue_.push_back({std::move(drafts), std::move(cb)});
        cv_.notify_one();
        return;
      }
    }
    cb(Status::Unavailable("node is stopping"), {});
  }
  Status Health() const override {
    if (!nats_->connected()) return Status::Unavailable("not connected to NATS");
    return local_->Health();
  }
  uint64_t LastSequence() const override { return local_->LastSequence(); }
  uint64_t WaitForSequence(uint64_t seq, std::chrono::milliseconds t) const override {
    return local_->WaitForSequence(seq, t);
  }
  Status Read(uint64_t from, size_t max, std::vector<Event>* out) const override {
    return local_->Read(from, max, out);
  }
  Status ReadStream(std::string_view tenant, std::string_view stream, uint64_t from, size_t max,
                    std::vector<Event>* out) const override {
    return local_->ReadStream(tenant, stream, from, max, out);
  }
  Status ScanRecords(uint64_t from,
                     const std::function<bool(uint64_t, std::string_view)>& fn) const override {
    return local_->ScanRecords(from, fn);
  }
  void Unseal(Event* e) const override { local_->Unseal(e); }
  Status LookupIdempotency(std::string_view tenant, std::string_view system, std::string_view key,
                           uint64_t* seq) const override {
    return local_->LookupIdempotency(tenant, system, key, seq);
  }
  Status LookupEventId(const EventId& id, uint64_t* seq) const override {
    return local_->LookupEventId(id, seq);
  }
  Status ReadCheckpoint(std::string_view consumer, uint64_t* seq) const override {
    return local_->ReadCheckpoint(consumer, seq);
  }
  Status CommitConsumer(std::string_view consumer, uint64_t seq,
                        const std::vector<StateOp>& ops) override {
    return local_->CommitConsumer(consumer, seq, ops);
  }
  Status CommitConsumerDurable(std::string_view consumer, uint64_t seq,
                               const std::vector<StateOp>& ops) override {
    return local_->CommitConsumerDurable(consumer, seq, ops);
  }
  Status GetConsumerState(std::string_view consumer, std::string_view key,
                          std::string* value) const override {
    return local_->GetConsumerState(consumer, key, value);
  }
  Status ScanConsumerState(
      std::string_view consumer, std::string_view prefix,
      const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    return local_->ScanConsumerState(consumer, prefix, fn);
  }
  Status DropConsumer(std::string_view consumer) override { return local_->DropConsumer(consumer); }

 private:
  struct Item {
    std::vector<EventDraft> drafts;
    AppendCallback cb;
  };
  void SendLoop() {
    for (;;) {
      Item item;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return closed_ || !queue_.empty(); });
        if (queue_.empty()) return;
        item = std::move(queue_.front());
        queue_.pop_front();
      }
      std::vector<AppendOutcome> outcomes;
      Status s;
      const std::vector<Seen> held = HeldAlready(item.drafts);
      uint64_t published = 0;
      for (size_t i = 0; i < item.drafts.size(); ++i) {
        EventDraft& d = item.drafts[i];
        if (held[i].seq != 0) {  // its partition's log holds it: not published again
          AppendOutcome o;
          o.seq = held[i].seq;
          o.id = held[i].id;
          o.duplicate = true;
          outcomes.push_back(o);
          continue;
        }
        {
          std::lock_guard<std::mutex> lk(ids_mu_);
          d.id = ids_.Next(SystemClock::Instance()->NowMicros() / 1000);
        }
        // The webhook's own id de-duplicates it in the stream's window;
        // the partition's log de-duplicates it for ever (its idempotency
        // index), so a vendor's retry a day later is still one event.
        std::string msg_id;
        if (!d.idempotency_key.empty())
          msg_id = d.tenant + "/" + d.idempotency_system + "/" + d.idempotency_key;
        PublishAck ack;
        const uint32_t part = PartitionOf(d.tenant, partitions_);
        const bool sealed = open_keys_ && SealsDraft(d);
        if (sealed) {
          s = SealWithKeysOf(part, &d);
          if (!s.ok()) break;
        }
        const std::string frame = EncodeDraft(d, sealed);
        auto attempt = [&](int64_t wait_ms, bool* final) {
          return nats_->Publish(InSubject(part), frame, msg_id, 0, wait_ms, &ack, nullptr, final);
        };
        if (msg_id.empty()) {
          s = attempt(kPublishTimeoutMs, nullptr);
        } else {
          // Published again under the same id until the stream answers
          // (cluster/publish_retry.h): an ambiguous 503 is rarer.
          s = PublishWithRetry(attempt, PublishRetryPolicy{}, NowMs, SleepMs, nullptr);
        }
        if (!s.ok()) break;
        AppendOutcome o;
        o.seq = ack.seq;
        o.duplicate = ack.duplicate;
        o.id = d.id;
        if (ack.duplicate) {
          // Answered with the first delivery's id (one more read, for
          // duplicates only).
          std::string first;
          EventDraft was;
          if (nats_->GetMsg(InStream(part), ack.seq, &first).ok() && DecodeDraft(first, &was).ok())
            o.id = was.id;
        }
        outcomes.push_back(o);
        ++published;
      }
      if (s.ok()) {
        published_.fetch_add(published);
        item.cb(s, outcomes);
      } else {
        item.cb(Status::Unavailable("replicated ingest: " + s.ToString()), {});
      }
    }
  }

  // Which of `drafts` (a webhook's: one tenant) their partition's log
  // holds already, asked of its node; none when it does not answer (the
  // stream's window and the log de-duplicate them then). A node that
  // lets an ask wait is not asked again for kSeenBackoffMs.
  std::vector<Seen> HeldAlready(const std::vector<EventDraft>& drafts) {
    std::vector<Seen> held(drafts.size());
    SeenAsk ask;
    std::vector<size_t> asked;
    for (size_t i = 0; i < drafts.size(); ++i) {
      if (drafts[i].idempotency_key.empty() || drafts[i].tenant != drafts[0].tenant) continue;
      ask.keys.emplace_back(drafts[i].idempotency_system, drafts[i].idempotency_key);
      asked.push_back(i);
    }
    if (asked.empty()) return held;
    ask.tenant = drafts[0].tenant;
    const uint32_t part = PartitionOf(ask.tenant, partitions_);
    const int64_t now = NowMs();
    {
      std::lock_guard<std::mutex> lk(seen_mu_);
      if (now < quiet_until_ms_[part]) return held;
    }
    std::string reply;
    std::vector<Seen> answer;
    Status s = nats_->Request(SeenSubject(part), EncodeSeenAsk(ask), kSeenTimeoutMs, &reply);
    if (s.ok()) s = DecodeSeen(reply, &answer);
    if (s.ok() && answer.size() != asked.size()) s = Status::InvalidArgument("seen: answer count");
    if (!s.ok()) {
      if (!s.IsNotFound()) {  // nobody runs it: asked again next time
        std::lock_guard<std::mutex> lk(seen_mu_);
        quiet_until_ms_[part] = now + kSeenBackoffMs;
      }
      return held;
    }
    for (size_t j = 0; j < asked.size(); ++j) held[asked[j]] = answer[j];
    return held;
  }

  // Seals `d` with a new key of partition `part` (its store opened once).
  Status SealWithKeysOf(uint32_t part, EventDraft* d) {
    std::shared_ptr<KeyStore> keys;
    {
      std::lock_guard<std::mutex> lk(keys_mu_);
      auto it = keys_.find(part);
      if (it == keys_.end()) {
        Status s = open_keys_(part, &keys);
        if (!s.ok()) return s;
        it = keys_.emplace(part, std::move(keys)).first;
      }
      keys = it->second;
    }
    return SealDraft(keys.get(), d);
  }

  NatsClient* nats_;
  EventLog* local_;
  const uint32_t partitions_;
  const PartitionKeysOpener open_keys_;  // null: nothing sealed here
  std::mutex keys_mu_;
  std::map<uint32_t, std::shared_ptr<KeyStore>> keys_;  // GUARDED_BY(keys_mu_)
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool closed_ = false;
  std::vector<std::thread> senders_;
  std::atomic<uint64_t> published_{0};
  std::mutex ids_mu_;
  EventIdGenerator ids_;
  std::mutex seen_mu_;
  std::vector<int64_t> quiet_until_ms_ = std::vector<int64_t>(partitions_);  // GUARDED_BY(seen_mu_)
};

}  // namespace

std::unique_ptr<IngestLog> MakeIngestLog(NatsClient* nats, EventLog* local, uint32_t partitions,
                                         PartitionKeysOpener keys) {
  return std::make_unique<NatsIngestLog>(nats, local, partitions, std::move(keys));
}

}  // namespace dfm
