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
// Drafts published together at most (one message, TakeBatch).
constexpr size_t kMaxBatchDrafts = 256;

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
      std::vector<Item> items;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return closed_ || !queue_.empty(); });
        if (queue_.empty()) return;
        TakeBatch(&items);
      }
      Send(&items);
    }
  }

  // The partition of every draft of `item`; -1 when they go to several.
  int64_t PartitionOfItem(const Item& item) const {
    int64_t part = -1;
    for (const auto& d : item.drafts) {
      const int64_t p = PartitionOf(d.tenant, partitions_);
      if (part >= 0 && p != part) return -1;
      part = p;
    }
    return part;
  }

  // Moves the queue's first item to *out, and the items queued after it
  // whose drafts all go to its partition, up to kMaxBatchDrafts drafts:
  // they are published together. REQUIRES: mu_ held, queue_ not empty.
  void TakeBatch(std::vector<Item>* out) {
    const int64_t part = PartitionOfItem(queue_.front());
    size_t drafts = 0;
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (!out->empty() && (part < 0 || PartitionOfItem(*it) != part ||
                            drafts + it->drafts.size() > kMaxBatchDrafts)) {
        ++it;
        continue;
      }
      drafts += it->drafts.size();
      out->push_back(std::move(*it));
      it = queue_.erase(it);
      if (part < 0) break;
    }
  }

  // A draft ready to publish: its frame, the id that de-duplicates it in
  // the stream's window, and whose answer it is.
  struct Frame {
    uint32_t part = 0;
    std::string bytes, msg_id;
    EventId id;
    size_t item = 0, draft = 0;
  };

  // Publishes `items` and answers each: the drafts their partition's log
  // holds already as duplicates (unpublished), the others once in the
  // stream. An item with a draft that could not be sealed or published is
  // answered Unavailable (the sender tries again; the stream's window and
  // the log de-duplicate what did go).
  void Send(std::vector<Item>* items) {
    std::vector<std::vector<AppendOutcome>> outcomes(items->size());
    std::vector<Status> failed(items->size());
    const std::vector<std::vector<Seen>> held = HeldAlready(*items);
    std::vector<Frame> frames;
    for (size_t i = 0; i < items->size(); ++i) {
      auto& drafts = (*items)[i].drafts;
      outcomes[i].resize(drafts.size());
      for (size_t j = 0; j < drafts.size() && failed[i].ok(); ++j) {
        EventDraft& d = drafts[j];
        if (held[i][j].seq != 0) {  // its partition's log holds it: not published again
          outcomes[i][j] = {held[i][j].seq, held[i][j].id, true};
          continue;
        }
        {
          std::lock_guard<std::mutex> lk(ids_mu_);
          d.id = ids_.Next(SystemClock::Instance()->NowMicros() / 1000);
        }
        Frame f;
        f.part = PartitionOf(d.tenant, partitions_);
        const bool sealed = open_keys_ && SealsDraft(d);
        if (sealed) failed[i] = SealWithKeysOf(f.part, &d);
        if (!failed[i].ok()) break;
        // The webhook's own id de-duplicates it in the stream's window (when
        // published alone); the partition's log de-duplicates it for ever.
        if (!d.idempotency_key.empty())
          f.msg_id = d.tenant + "/" + d.idempotency_system + "/" + d.idempotency_key;
        f.bytes = EncodeDraft(d, sealed);
        f.id = d.id;
        f.item = i;
        f.draft = j;
        frames.push_back(std::move(f));
      }
    }
    PublishFrames(frames, &outcomes, &failed);
    for (size_t i = 0; i < items->size(); ++i) {
      if (failed[i].ok())
        (*items)[i].cb(Status::OK(), outcomes[i]);
      else
        (*items)[i].cb(Status::Unavailable("replicated ingest: " + failed[i].ToString()), {});
    }
  }

  // Publishes `frames` in order: a run of one partition's drafts as one
  // message (version 3) of at most kMaxFrame bytes, a draft alone as
  // itself under its own id.
  void PublishFrames(const std::vector<Frame>& frames, std::vector<std::vector<AppendOutcome>>* outcomes,
                     std::vector<Status>* failed) {
    for (size_t from = 0; from < frames.size();) {
      size_t to = from + 1, bytes = frames[from].bytes.size();
      while (to < frames.size() && frames[to].part == frames[from].part &&
             bytes + frames[to].bytes.size() + 16 <= kMaxFrame) {
        bytes += frames[to].bytes.size() + 16;
        ++to;
      }
      PublishAck ack;
      Status s;
      if (to - from == 1) {
        s = Publish(frames[from].part, frames[from].bytes, frames[from].msg_id, &ack);
      } else {
        std::vector<std::string> batch;
        for (size_t k = from; k < to; ++k) batch.push_back(frames[k].bytes);
        // Its own id: a batch sent again after an unclear answer is stored once.
        s = Publish(frames[from].part, EncodeDraftBatch(batch), "batch/" + frames[from].id.ToString(), &ack);
        ack.duplicate = false;  // the same batch: its drafts are new
      }
      for (size_t k = from; k < to; ++k) {
        const Frame& f = frames[k];
        if (!s.ok()) {
          (*failed)[f.item] = s;
          continue;
        }
        AppendOutcome& o = (*outcomes)[f.item][f.draft];
        o = {ack.seq, f.id, ack.duplicate};
        if (ack.duplicate) o.id = FirstId(f.part, ack.seq, f.id);
      }
      if (s.ok()) published_.fetch_add(ack.duplicate ? 0 : to - from);
      from = to;
    }
  }

  Status Publish(uint32_t part, const std::string& bytes, const std::string& msg_id, PublishAck* ack) {
    auto attempt = [&](int64_t wait_ms, bool* final) {
      return nats_->Publish(InSubject(part), bytes, msg_id, 0, wait_ms, ack, nullptr, final);
    };
    if (msg_id.empty()) return attempt(kPublishTimeoutMs, nullptr);
    // Published again under the same id until the stream answers
    // (cluster/publish_retry.h): an ambiguous 503 is rarer.
    return PublishWithRetry(attempt, PublishRetryPolicy{}, NowMs, SleepMs, nullptr);
  }

  // A duplicate is answered with the first delivery's id (one more read,
  // for duplicates only); `fallback` when it cannot be read.
  EventId FirstId(uint32_t part, uint64_t seq, EventId fallback) {
    std::string first;
    std::vector<TakenDraft> was;
    if (nats_->GetMsg(InStream(part), seq, &first).ok() && DecodeDrafts(first, &was).ok() && was.size() == 1)
      return was[0].draft.id;
    return fallback;
  }

  // Which drafts of `items` their partition's log holds already, asked of
  // its node in one request; none when it does not answer (the stream's
  // window and the log de-duplicate them then). A node that lets an ask
  // wait is not asked again for kSeenBackoffMs.
  std::vector<std::vector<Seen>> HeldAlready(const std::vector<Item>& items) {
    std::vector<std::vector<Seen>> held(items.size());
    SeenAsk ask;
    std::vector<std::pair<size_t, size_t>> asked;
    int64_t part = -1;
    for (size_t i = 0; i < items.size(); ++i) held[i].resize(items[i].drafts.size());
    for (size_t i = 0; i < items.size(); ++i) {
      for (size_t j = 0; j < items[i].drafts.size(); ++j) {
        const EventDraft& d = items[i].drafts[j];
        if (d.idempotency_key.empty()) continue;
        const int64_t p = PartitionOf(d.tenant, partitions_);
        if (part >= 0 && p != part) return held;  // several partitions: not asked
        part = p;
        ask.keys.push_back({d.tenant, d.idempotency_system, d.idempotency_key});
        asked.emplace_back(i, j);
      }
    }
    if (asked.empty()) return held;
    const int64_t now = NowMs();
    {
      std::lock_guard<std::mutex> lk(seen_mu_);
      if (now < quiet_until_ms_[static_cast<size_t>(part)]) return held;
    }
    std::string reply;
    std::vector<Seen> answer;
    Status s = nats_->Request(SeenSubject(static_cast<uint32_t>(part)), EncodeSeenAsk(ask), kSeenTimeoutMs, &reply);
    if (s.ok()) s = DecodeSeen(reply, &answer);
    if (s.ok() && answer.size() != asked.size()) s = Status::InvalidArgument("seen: answer count");
    if (!s.ok()) {
      if (!s.IsNotFound()) {  // nobody runs it: asked again next time
        std::lock_guard<std::mutex> lk(seen_mu_);
        quiet_until_ms_[static_cast<size_t>(part)] = now + kSeenBackoffMs;
      }
      return held;
    }
    for (size_t k = 0; k < asked.size(); ++k) held[asked[k].first][asked[k].second] = answer[k];
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
