// NatsPartition's ingest (partition_internal.h): DFM_IN_<p>'s webhooks
// pulled, opened and appended to the partition's log in order.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iterator>
#include <thread>
#include <vector>

#include "cluster/names.h"
#include "cluster/partition_internal.h"
#include "cluster/wire.h"
#include "storage/shared_key_store.h"
#include "util/logging.h"

namespace dfm::cluster_partition {

using namespace cluster_names;

namespace {

// Failed pulls in a row (each followed by 200 ms) before the consumer is
// made again.
constexpr int kPullFailuresBeforeResubscribe = 15;
// Empty pulls in a row (250 ms each) before the consumer is asked whether
// messages wait that it does not hand out.
constexpr int kIdlePullsBeforeCheck = 20;
// Webhooks appended in one group commit at most (a pull of batches can
// hold tens of thousands).
constexpr size_t kAppendDrafts = 2048;

// How long a webhook whose front key the key store's leader answers
// absent is asked again (WaitForKey) before it is given up as lost:
// seconds would cover a leader election; DFM_TEST_KEY_GONE_AFTER_S sets
// it (debug builds).
int64_t KeyGoneAfterUs() {
  int64_t s = 300;
#ifndef NDEBUG
  if (const char* t = std::getenv("DFM_TEST_KEY_GONE_AFTER_S")) s = std::atoi(t);
#endif
  return s * 1000000;
}

// A key block not seen missing for this long is waited for anew; one
// given up (never made, or a store restored from an older copy), after
// an hour.
constexpr int64_t kMissingForgotUs = 60LL * 1000000;
constexpr int64_t kGoneForgotUs = 3600LL * 1000000;

}  // namespace

NatsPartition::Taken NatsPartition::Take(bool sealed, uint64_t seq, EventDraft* d,
                                         uint64_t* front_key) {
  auto logger = Logger("cluster");
  if (!sealed) return Taken::kAppend;
  if (!keys_) {
    logger->error(
        "event=ingest_frame_sealed partition={} stream_seq={} reason=\"sealed by a node with "
        "cluster.state_key; this node has none\"",
        p_, seq);
    broken_.store(true);
    return Taken::kBroken;
  }
  DraftOpen opened = OpenDraft(*keys_, d, front_key);
  if (opened == DraftOpen::kMissing) opened = WaitForKey(seq, d, front_key);
  if (!running_.load()) return Taken::kBroken;  // stopping: taken again by whoever runs it next
  switch (opened) {
    case DraftOpen::kOpened:
      ForgetMissingBlock(*front_key);
      return Taken::kAppend;
    case DraftOpen::kDestroyed:
      logger->info("event=ingest_already_appended partition={} stream_seq={}", p_, seq);
      return Taken::kSkip;
    case DraftOpen::kDamaged:
      Lost(seq, "it does not open with its key");
      return Taken::kSkip;
    case DraftOpen::kMissing:
      Lost(seq, "its key is not in the partition's key store");
      return Taken::kSkip;
    case DraftOpen::kUnread:
      break;
  }
  logger->error("event=ingest_key_unread partition={} stream_seq={} key={}", p_, seq, *front_key);
  broken_.store(true);
  return Taken::kBroken;
}

DraftOpen NatsPartition::WaitForKey(uint64_t seq, EventDraft* d, uint64_t* front_key) {
  using Clock = std::chrono::steady_clock;
  const uint64_t block = (*front_key - 1) / SharedKeyStore::kKeysPerBlock;
  int64_t now_us = 0;
  const int64_t since = NoteMissing(block, &now_us);
  const auto until = Clock::time_point(std::chrono::microseconds(since + KeyGoneAfterUs()));
  Logger("cluster")->warn(
      "event=ingest_key_missing partition={} stream_seq={} key={} missing_for_s={} reason=\"its "
      "block "
      "is asked again until it has been missing {} s here\"",
      p_, seq, *front_key, (now_us - since) / 1000000, KeyGoneAfterUs() / 1000000);
  ingest_state_->waiting_key.store(1);
  auto pause = std::chrono::milliseconds(1000);
  DraftOpen o = DraftOpen::kMissing;
  while (running_.load() && o == DraftOpen::kMissing) {
    const auto wake = std::min(until, Clock::now() + pause);
    while (running_.load() && Clock::now() < wake)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!running_.load()) break;
    o = OpenDraft(*keys_, d, front_key);  // asked once more even when the wait is over
    if (o != DraftOpen::kMissing) break;
    NoteMissing(block, &now_us);
    if (Clock::now() >= until) break;
    pause = std::min(pause * 2, std::chrono::milliseconds(10000));
  }
  ingest_state_->waiting_key.store(0);
  std::lock_guard<std::mutex> lk(ingest_state_->mu);
  auto& blocks = ingest_state_->missing_blocks;
  if (o == DraftOpen::kMissing && running_.load()) {
    blocks[block].gone = true;  // its later keys are given up after one more ask
  } else if (o == DraftOpen::kOpened || o == DraftOpen::kDestroyed || o == DraftOpen::kDamaged) {
    blocks.erase(block);  // it exists (kUnread says nothing)
  }
  return o;
}

int64_t NatsPartition::NoteMissing(uint64_t block, int64_t* now_us) {
  const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  *now_us = now;
  std::lock_guard<std::mutex> lk(ingest_state_->mu);
  auto& blocks = ingest_state_->missing_blocks;
  for (auto it = blocks.begin(); it != blocks.end();) {
    const int64_t keep = it->second.gone ? kGoneForgotUs : kMissingForgotUs;
    it = now - it->second.last_us > keep ? blocks.erase(it) : std::next(it);
  }
  IngestState::MissingBlock& b = blocks[block];
  if (b.first_us == 0) b.first_us = now;
  b.last_us = now;
  return b.first_us;
}

void NatsPartition::ForgetMissingBlock(uint64_t key) {
  if (key == 0) return;
  std::lock_guard<std::mutex> lk(ingest_state_->mu);
  ingest_state_->missing_blocks.erase((key - 1) / SharedKeyStore::kKeysPerBlock);
}

void NatsPartition::ReportLost() {
  for (const auto& [seq, why] : lost_here_) {
    Logger("cluster")->critical(
        "event=ingest_webhook_lost partition={} stream_seq={} reason=\"{}\"", p_, seq, why);
    ingest_state_->lost.fetch_add(1);  // after its line: who sees the count finds the line
  }
  lost_here_.clear();
}

bool NatsPartition::DestroyFrontKeys(const std::vector<uint64_t>& keys) {
  if (keys.empty()) return true;
  Status s = keys_->Destroy(keys);
  if (!s.ok())
    Logger("cluster")->error("event=front_keys_not_destroyed partition={} count={} error=\"{}\"",
                             p_, keys.size(), s.ToString());
  return s.ok();
}

void NatsPartition::IngestLoop() {
  int failures = 0, idle = 0;
  while (running_.load() && !broken_.load()) {
    std::vector<PulledMsg> msgs;
    Status s = consumer_->Fetch(256, 250, &msgs);
    if (!s.ok()) {
      if (!AfterFailedPull(s, &failures)) return;
      continue;
    }
    failures = 0;
    if (msgs.empty()) {
      if (!AfterEmptyPull(&idle)) return;
      continue;
    }
    idle = 0;
    lost_here_.clear();
    InOrder in;
    if (!TakeInOrder(msgs, &in) || !AppendInOrder(msgs, in)) return;
  }
}

bool NatsPartition::AfterFailedPull(const Status& s, int* failures) {
  if (++*failures == 1)
    Logger("cluster")->warn("event=ingest_pull_failed partition={} error=\"{}\"", p_, s.ToString());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  if (*failures < kPullFailuresBeforeResubscribe) return true;
  *failures = 0;
  return Resubscribe("pulls fail");
}

bool NatsPartition::AfterEmptyPull(int* idle) {
  if (++*idle < kIdlePullsBeforeCheck) return true;
  *idle = 0;
  uint64_t pending = 0;
  const Status st = nats_->ConsumerPending(InStream(p_), consumer_name_, &pending);
  if (st.ok() && pending == 0) return true;
  return Resubscribe(st.ok() ? "idle while messages wait" : "consumer gone");
}

bool NatsPartition::TakeInOrder(std::vector<PulledMsg>& msgs, InOrder* in) {
  for (; in->taken < msgs.size(); ++in->taken) {
    const uint64_t seq = msgs[in->taken].stream_seq();
    if (seq < next_in_) continue;  // appended before (a redelivery)
    if (seq > next_in_) {
      in->gap = true;
      break;
    }
    ++next_in_;
    std::vector<TakenDraft> in_msg;
    if (!DecodeDrafts(msgs[in->taken].data(), &in_msg).ok()) {
      if (WrittenByNewerBuild(msgs[in->taken].data())) {
        // A newer build wrote it: kept for a node that reads it.
        Logger("cluster")->error(
            "event=ingest_frame_newer partition={} stream_seq={} reason=\"written by a "
            "newer build: upgrade this node\"",
            p_, seq);
        broken_.store(true);
        return false;
      }
      Lost(seq, "its frame does not decode");
      continue;
    }
    for (size_t i = 0; i < in_msg.size(); ++i) {
      EventDraft& d = in_msg[i].draft;
      uint64_t front_key = 0;
      const Taken t = Take(in_msg[i].sealed, seq, &d, &front_key);
      if (t == Taken::kBroken) return false;
      if (t == Taken::kSkip) continue;
      if (front_key != 0) in->keys.push_back(front_key);
      if (d.idempotency_key.empty()) {
        // The stream's position (and its place in a batch) is the
        // webhook's identity: a redelivery after a takeover is then
        // still one event.
        d.idempotency_system = "cluster.ingest";
        d.idempotency_key = std::to_string(seq);
        if (in_msg.size() > 1) d.idempotency_key += "." + std::to_string(i);
      }
      in->drafts.push_back(std::move(d));
    }
  }
  return true;
}

bool NatsPartition::AppendInOrder(std::vector<PulledMsg>& msgs, InOrder& in) {
  auto logger = Logger("cluster");
  Status s;
  for (size_t at = 0; s.ok() && at < in.drafts.size(); at += kAppendDrafts) {
    const auto from = in.drafts.begin() + static_cast<std::ptrdiff_t>(at);
    const auto to = in.drafts.begin() +
                    static_cast<std::ptrdiff_t>(std::min(in.drafts.size(), at + kAppendDrafts));
    std::vector<EventDraft> some(std::make_move_iterator(from), std::make_move_iterator(to));
    std::vector<AppendOutcome> outcomes;
    s = log_->Append(std::move(some), &outcomes);
  }
  if (!s.ok()) {
    // Start again from the replica and the consumer's ack floor.
    logger->error("event=ingest_append_failed partition={} error=\"{}\"", p_, s.ToString());
    broken_.store(true);
    return false;
  }
  // Before the ack: a redelivery whose key is gone was appended.
  if (!DestroyFrontKeys(in.keys)) {
    broken_.store(true);
    return false;
  }
  if (in.taken > 0) msgs[in.taken - 1].Ack();
  ReportLost();
  if (!in.gap) return true;
  logger->warn("event=ingest_gap partition={} expected={} got={}", p_, next_in_,
               msgs[in.taken].stream_seq());
  uint64_t first = 0, last = 0;
  if (nats_->Bounds(InStream(p_), &first, &last).ok() && first > next_in_) {
    // Older than cluster.ingest_max_age_s and never taken: gone.
    logger->critical(
        "event=ingest_expired partition={} from={} to={} reason=\"webhooks the partition "
        "did not take within cluster.ingest_max_age_s are lost\"",
        p_, next_in_, first - 1);
    next_in_ = first;
  }
  return Resubscribe("a gap");
}

}  // namespace dfm::cluster_partition
