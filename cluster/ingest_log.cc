#include "cluster/ingest_log.h"

#include <pthread.h>

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
// Batches published at once, of different partitions (one per partition
// at a time: TakeBatch).
constexpr int kIngestSenders = 8;
// Drafts published together at most (one message, TakeBatch).
constexpr size_t kMaxBatchDrafts = 256;

int64_t NowMs() { return SystemClock::Instance()->NowMicros() / 1000; }
void SleepMs(int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

class NatsIngestLog final : public IngestLog {
 public:
  NatsIngestLog(NatsClient* nats, EventLog* local, uint32_t partitions, PartitionKeysOpener open_keys,
                SeenHere seen_here)
      : nats_(nats),
        local_(local),
        partitions_(partitions),
        open_keys_(std::move(open_keys)),
        seen_here_(std::move(seen_here)) {
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
  uint64_t messages() const override { return messages_.load(); }

  void AppendAsync(std::vector<EventDraft> drafts, AppendCallback cb) override {
    const int64_t part = PartitionOfDrafts(drafts);
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!closed_) {
        (part < 0 ? mixed_ : waiting_[part]).push_back({std::move(drafts), std::move(cb), part});
        ++queued_;
        MarkReady(part);
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
  Status Unseal(Event* e) const override { return local_->Unseal(e); }
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
    int64_t part = -1;  // of every draft; -1: of several (sent alone)
  };
  void SendLoop() {
    pthread_setname_np(pthread_self(), "dfm-ingest-send");
    for (;;) {
      std::vector<Item> items;
      int64_t part;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return !ready_.empty() || (closed_ && queued_ == 0); });
        if (ready_.empty()) return;
        part = TakeBatch(&items);
      }
      Send(&items);
      std::lock_guard<std::mutex> lk(mu_);
      if (part >= 0) {
        in_flight_[part] = false;
        if (!waiting_[part].empty()) MarkReady(part);
      }
      if (closed_ && queued_ == 0) cv_.notify_all();  // the others may leave
    }
  }

  // The partition of every one of `drafts`; -1 when they go to several.
  int64_t PartitionOfDrafts(const std::vector<EventDraft>& drafts) const {
    int64_t part = -1;
    for (const auto& d : drafts) {
      const int64_t p = PartitionOf(d.tenant, partitions_);
      if (part >= 0 && p != part) return -1;
      part = p;
    }
    return part;
  }

  // Puts `part` in line for a sender unless it is there already or its
  // batch is in flight (it comes back in line when that batch is
  // answered). An item of several partitions (-1) is in line once per
  // item. REQUIRES: mu_ held.
  void MarkReady(int64_t part) {
    if (part >= 0) {
      bool& lined = lined_[part];
      if (lined || in_flight_[part]) return;
      lined = true;
    }
    ready_.push_back(part);
    cv_.notify_one();
  }

  // Moves the next partition in line's items to *out, oldest first, while
  // they fit in kMaxBatchDrafts drafts (at least one), and marks its batch
  // in flight: one batch of a partition is published at a time, so what
  // arrives meanwhile waits and goes in its next batch, which grows with
  // the load as a group commit does. An item of several partitions goes
  // alone. Returns the partition (-1: such an item). REQUIRES: mu_ held,
  // ready_ not empty.
  int64_t TakeBatch(std::vector<Item>* out) {
    const int64_t part = ready_.front();
    ready_.pop_front();
    std::deque<Item>& q = part < 0 ? mixed_ : waiting_[part];
    size_t drafts = 0;
    do {
      drafts += q.front().drafts.size();
      out->push_back(std::move(q.front()));
      q.pop_front();
      --queued_;
    } while (part >= 0 && !q.empty() && drafts + q.front().drafts.size() <= kMaxBatchDrafts);
    if (part >= 0) {
      lined_[part] = false;
      in_flight_[part] = true;
    }
    return part;
  }

  // A draft ready to publish: its frame, the id that de-duplicates it in
  // the stream's window, and whose answer it is.
  struct Frame {
    uint32_t part = 0;
    std::string bytes, msg_id;
    EventId id;
    size_t item = 0, draft = 0;
  };
  // Where each answer comes from: one per draft of each item.
  struct Answers {
    std::vector<std::vector<AppendOutcome>> outcomes;
    std::vector<Status> failed;  // per item: answered Unavailable
    // A draft whose webhook is also earlier in the batch: (its place, the
    // first's place); answered duplicate with the first's outcome.
    std::vector<std::pair<std::pair<size_t, size_t>, std::pair<size_t, size_t>>> copies;
  };

  // Publishes `items` and answers each: the drafts their partition's log
  // holds already, or that are earlier in the batch, as duplicates
  // (unpublished); the others once in the stream. An item is all or
  // nothing: one whose draft could not be sealed or published is answered
  // Unavailable (the sender tries again; the stream's window and the log
  // de-duplicate what did go).
  void Send(std::vector<Item>* items) {
    Answers a;
    a.outcomes.resize(items->size());
    a.failed.resize(items->size());
    std::vector<Frame> frames = BuildFrames(items, HeldAlready(*items), &a);
    PublishFrames(frames, &a);
    for (const auto& [copy, first] : a.copies) {
      if (!a.failed[first.first].ok()) {
        a.failed[copy.first] = a.failed[first.first];
        continue;
      }
      AppendOutcome& o = a.outcomes[copy.first][copy.second];
      o = a.outcomes[first.first][first.second];
      o.duplicate = true;
    }
    for (size_t i = 0; i < items->size(); ++i) {
      if (a.failed[i].ok())
        (*items)[i].cb(Status::OK(), a.outcomes[i]);
      else if (a.failed[i].code() == Status::Code::kTooLarge)
        (*items)[i].cb(a.failed[i], {});  // final: the sender must not try again
      else
        (*items)[i].cb(Status::Unavailable("replicated ingest: " + a.failed[i].ToString()), {});
    }
  }

  // Each item's drafts made ready (event id, sealed, framed), in order;
  // an item that cannot be sealed whole contributes none.
  std::vector<Frame> BuildFrames(std::vector<Item>* items, const std::vector<std::vector<Seen>>& held,
                                 Answers* a) {
    std::vector<Frame> frames;
    std::map<std::string, std::pair<size_t, size_t>> first;  // (tenant, system, key) -> its place
    for (size_t i = 0; i < items->size(); ++i) {
      auto& drafts = (*items)[i].drafts;
      a->outcomes[i].resize(drafts.size());
      std::vector<Frame> mine;
      for (size_t j = 0; j < drafts.size() && a->failed[i].ok(); ++j) {
        EventDraft& d = drafts[j];
        if (held[i][j].seq != 0) {  // its partition's log holds it: not published again
          a->outcomes[i][j] = {held[i][j].seq, held[i][j].id, true};
          continue;
        }
        Frame f;
        if (!d.idempotency_key.empty()) {
          // The webhook's own id de-duplicates it in the stream's window
          // (when published alone); the partition's log, for ever.
          f.msg_id = d.tenant + "/" + d.idempotency_system + "/" + d.idempotency_key;
          auto [at, fresh] = first.emplace(f.msg_id, std::make_pair(i, j));
          if (!fresh) {
            a->copies.push_back({{i, j}, at->second});
            continue;
          }
        }
        {
          std::lock_guard<std::mutex> lk(ids_mu_);
          d.id = ids_.Next(SystemClock::Instance()->NowMicros() / 1000);
        }
        f.part = PartitionOf(d.tenant, partitions_);
        const bool sealed = open_keys_ && SealsDraft(d);
        // One too large for sure gets no key (a sealed draft is larger).
        if (d.payload.size() > kMaxDraft) {
          a->failed[i] =
              Status::TooLarge("the webhook's event takes over " + std::to_string(kMaxDraft) +
                               " bytes, the limit in cluster mode");
          break;
        }
        if (sealed) a->failed[i] = SealWithKeysOf(f.part, &d);
        f.bytes = EncodeDraft(d, sealed);
        if (f.bytes.size() > kMaxDraft)
          a->failed[i] =
              Status::TooLarge("the webhook's event takes " + std::to_string(f.bytes.size()) +
                               " bytes; in cluster mode the limit is " + std::to_string(kMaxDraft));
        f.id = d.id;
        f.item = i;
        f.draft = j;
        mine.push_back(std::move(f));
      }
      if (!a->failed[i].ok()) continue;
      for (auto& f : mine) frames.push_back(std::move(f));
    }
    return frames;
  }

  // Publishes `frames` in order, an item's drafts never split between two
  // messages (unless alone they pass kMaxFrame: then each goes alone): a
  // run of one partition's drafts as one message (version 3) of at most
  // kMaxFrame bytes; a draft alone as itself, under its own id.
  void PublishFrames(const std::vector<Frame>& frames, Answers* a) {
    std::vector<const Frame*> message;
    size_t bytes = 0;
    auto flush = [&] {
      if (!message.empty()) PublishMessage(message, a);
      message.clear();
      bytes = 0;
    };
    for (size_t from = 0; from < frames.size();) {
      size_t to = from, item_bytes = 0;
      for (; to < frames.size() && frames[to].item == frames[from].item; ++to)
        item_bytes += frames[to].bytes.size() + 16;
      const bool other_part = !message.empty() && message.front()->part != frames[from].part;
      if (item_bytes > kMaxFrame) {
        flush();
        for (size_t k = from; k < to && a->failed[frames[k].item].ok(); ++k) PublishMessage({&frames[k]}, a);
      } else {
        if (other_part || bytes + item_bytes > kMaxFrame) flush();
        for (size_t k = from; k < to; ++k) message.push_back(&frames[k]);
        bytes += item_bytes;
      }
      from = to;
    }
    flush();
  }

  // One message of `frames` (one partition's), each draft's outcome or
  // its item's failure.
  void PublishMessage(const std::vector<const Frame*>& frames, Answers* a) {
    PublishAck ack;
    Status s;
    const Frame& head = *frames.front();
    if (frames.size() == 1) {
      s = Publish(head.part, head.bytes, head.msg_id, &ack);
    } else {
      std::vector<std::string> batch;
      for (const Frame* f : frames) batch.push_back(f->bytes);
      // Its own id: a batch sent again after an unclear answer is stored once.
      s = Publish(head.part, EncodeDraftBatch(batch), "batch/" + head.id.ToString(), &ack);
      ack.duplicate = false;  // the same batch: its drafts are new
    }
    for (const Frame* f : frames) {
      if (!s.ok()) {
        a->failed[f->item] = s;
        continue;
      }
      AppendOutcome& o = a->outcomes[f->item][f->draft];
      o = {ack.seq, f->id, ack.duplicate};
      if (ack.duplicate) o.id = FirstId(f->part, ack.seq, f->id);
    }
    if (s.ok() && !ack.duplicate) {
      published_.fetch_add(frames.size());
      messages_.fetch_add(1);
    }
  }

  Status Publish(uint32_t part, const std::string& bytes, const std::string& msg_id, PublishAck* ack) {
    auto attempt = [&](int64_t wait_ms, bool* final) {
      return nats_->Publish(InSubject(part), bytes, msg_id, NatsClient::kNoExpectation, wait_ms,
                            ack, nullptr, final);
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
    std::vector<Seen> answer;
    if (seen_here_ && seen_here_(static_cast<uint32_t>(part), ask, &answer) && answer.size() == asked.size()) {
      for (size_t k = 0; k < asked.size(); ++k) held[asked[k].first][asked[k].second] = answer[k];
      return held;
    }
    const int64_t now = NowMs();
    {
      std::lock_guard<std::mutex> lk(seen_mu_);
      if (now < quiet_until_ms_[static_cast<size_t>(part)]) return held;
    }
    std::string reply;
    answer.clear();
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
  const SeenHere seen_here_;              // null: every seen ask over NATS
  std::mutex keys_mu_;
  std::map<uint32_t, std::shared_ptr<KeyStore>> keys_;  // GUARDED_BY(keys_mu_)
  std::mutex mu_;
  std::condition_variable cv_;
  // The items waiting (GUARDED_BY(mu_)): those of one partition each in
  // its own queue, those of several in mixed_; ready_ has the partitions
  // (-1: mixed, once per item) whose items a sender may take, in the
  // order they became so; lined_ marks a partition in ready_, in_flight_
  // one whose batch is being published (MarkReady).
  std::map<int64_t, std::deque<Item>> waiting_;
  std::deque<Item> mixed_;
  std::deque<int64_t> ready_;
  std::map<int64_t, bool> lined_, in_flight_;
  size_t queued_ = 0;
  bool closed_ = false;
  std::vector<std::thread> senders_;
  std::atomic<uint64_t> published_{0}, messages_{0};
  std::mutex ids_mu_;
  EventIdGenerator ids_;
  std::mutex seen_mu_;
  std::vector<int64_t> quiet_until_ms_ = std::vector<int64_t>(partitions_);  // GUARDED_BY(seen_mu_)
};

}  // namespace

std::unique_ptr<IngestLog> MakeIngestLog(NatsClient* nats, EventLog* local, uint32_t partitions,
                                         PartitionKeysOpener keys, SeenHere seen_here) {
  return std::make_unique<NatsIngestLog>(nats, local, partitions, std::move(keys), std::move(seen_here));
}

}  // namespace dfm
