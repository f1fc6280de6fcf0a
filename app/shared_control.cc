#include "app/shared_control.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "sync/sync_control.h"
#include "util/logging.h"

namespace dfm {

SharedControl::~SharedControl() {
  {
    std::lock_guard<std::mutex> lk(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
}

std::string SharedControl::EntryKey(uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "c.%020llu", static_cast<unsigned long long>(seq));
  return buf;
}

std::string SharedControl::Encode(const Event& e) { return "1 " + e.type + " " + e.payload; }

bool SharedControl::Decode(const std::string& value, Event* e) {
  if (value.rfind("1 ", 0) != 0) return false;
  const size_t sp = value.find(' ', 2);
  if (sp == std::string::npos) return false;
  e->type = value.substr(2, sp - 2);
  if (e->type != kSyncPaused && e->type != kSyncResumed) return false;
  e->payload = value.substr(sp + 1);
  e->stream = std::string(kSyncControlStream);
  return !e->payload.empty();
}

Status SharedControl::Publish(const Event& e, uint64_t* seq) {
  const std::string value = Encode(e);
  for (int round = 0; round < 5; ++round) {
    std::vector<std::string> keys;
    Status s = store_->Keys(&keys);
    if (!s.ok()) return s;
    uint64_t last = 0;
    for (const auto& k : keys)
      if (k.rfind("c.", 0) == 0) last = std::max<uint64_t>(last, std::strtoull(k.c_str() + 2, nullptr, 10));
    s = store_->Create(EntryKey(last + 1), value);
    if (s.ok()) {
      if (seq) *seq = last + 1;
      // Shared: the subscribers here have it now, or at the next poll.
      if (Status polled = Poll(); !polled.ok())
        Logger("cluster")->warn("event=shared_control_unread error=\"{}\"", polled.ToString());
      return Status::OK();
    }
    if (s.code() != Status::Code::kAlreadyExists) return s;  // another node took that number: the next
  }
  return Status::Unavailable("the shared sync control kept moving");
}

Status SharedControl::Poll() {
  // Reads under poll_mu_ only: (un)subscribing never waits on NATS.
  std::lock_guard<std::mutex> polling(poll_mu_);
  uint64_t next = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    next = seen_.size() + 1;  // grows only here
  }
  std::vector<Event> fresh;
  Status status;
  for (uint64_t seq = next;; ++seq) {
    CasStore::Entry entry;
    status = store_->Get(EntryKey(seq), &entry);
    if (!status.ok() || !entry.present) break;
    Event e;
    if (!Decode(entry.value, &e)) {  // kept as a gap (a newer writer's type?): the rest still fold
      Logger("cluster")->error("event=shared_control_unreadable entry={}", EntryKey(seq));
      e = Event();
    }
    e.seq = seq;
    fresh.push_back(std::move(e));
  }
  uint64_t count = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    seen_.insert(seen_.end(), fresh.begin(), fresh.end());
    if (!fresh.empty())
      for (auto& [id, apply] : subscribers_) apply(fresh);
    count = seen_.size();
  }
  Ack(count);  // after the subscribers have them
  return status;
}

void SharedControl::SetNode(std::string node) {
  std::lock_guard<std::mutex> polling(poll_mu_);
  node_ = std::move(node);
  ack_written_ = false;
}

void SharedControl::Ack(uint64_t count) {
  if (node_.empty() || (ack_written_ && count == acked_)) return;
  CasStore::Entry now;
  Status s = store_->GetLatest(AckKey(node_), &now);  // its revision, to write over
  if (s.ok())
    s = now.present ? store_->Update(AckKey(node_), EncodeAck(count), now.rev)
                    : store_->Create(AckKey(node_), EncodeAck(count));
  if (!s.ok()) {  // tried again at the next poll; a pause waits for it meanwhile
    Logger("cluster")->warn("event=shared_control_ack_unwritten error=\"{}\"", s.ToString());
    return;
  }
  acked_ = count;
  ack_written_ = true;
}

bool SharedControl::DecodeAck(const std::string& value, uint64_t* count) {
  if (value.rfind("1 ", 0) != 0 || value.size() < 3 || value.size() > 22) return false;
  if (value.find_first_not_of("0123456789", 2) != std::string::npos) return false;
  *count = std::strtoull(value.c_str() + 2, nullptr, 10);
  return true;
}

Status SharedControl::Waiting(const std::vector<std::string>& nodes, uint64_t count,
                              std::vector<std::string>* waiting) {
  waiting->clear();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const std::string& node = nodes[i];
    CasStore::Entry e;
    Status s = store_->Get(AckKey(node), &e);  // one lagging says "waiting": no harm
    if (!s.ok()) {
      waiting->insert(waiting->end(), nodes.begin() + static_cast<std::ptrdiff_t>(i), nodes.end());
      return s;
    }
    uint64_t acked = 0;
    if (!e.present || !DecodeAck(e.value, &acked) || acked < count) waiting->push_back(node);
  }
  return Status::OK();
}

std::vector<Event> SharedControl::Seen() {
  std::lock_guard<std::mutex> lk(mu_);
  return seen_;
}

void SharedControl::Start() {
  poller_ = std::thread([this] {
    std::unique_lock<std::mutex> lk(stop_mu_);
    while (!stop_cv_.wait_for(lk, std::chrono::seconds(1), [this] { return stopping_; })) {
      lk.unlock();
      Status s = Poll();
      if (!s.ok()) Logger("cluster")->warn("event=shared_control_unread error=\"{}\"", s.ToString());
      lk.lock();
    }
  });
}

int SharedControl::Subscribe(std::function<void(const std::vector<Event>&)> apply) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!seen_.empty()) apply(seen_);
  const int id = next_id_++;
  subscribers_[id] = std::move(apply);
  return id;
}

void SharedControl::Unsubscribe(int id) {
  std::lock_guard<std::mutex> lk(mu_);
  subscribers_.erase(id);
}

}  // namespace dfm
