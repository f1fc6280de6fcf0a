#include "cluster/reads.h"

#include <condition_variable>
#include <utility>

#include "cluster/names.h"
#include "cluster/wire.h"

namespace dfm {

namespace {
using cluster_names::ReadSubject;
using cluster_names::SeenSubject;
constexpr size_t kAskers = 4;
// A front asks about one batch at most (its 256 drafts).
constexpr size_t kMaxSeenKeys = 1024;

// Each asked webhook's event in `log`, when it holds one.
std::vector<Seen> LookUpSeen(const EventLog& log, const SeenAsk& ask) {
  std::vector<Seen> answer(ask.keys.size());
  for (size_t i = 0; i < ask.keys.size(); ++i) {
    uint64_t seq = 0;
    Event first;  // its id alone: the payload is not opened
    const SeenKey& k = ask.keys[i];
    if (!log.LookupIdempotency(k.tenant, k.system, k.key, &seq).ok()) continue;
    if (log.ReadUnopened(seq, &first).ok()) answer[i] = {seq, first.id};
  }
  return answer;
}
}  // namespace

// A served partition's answers under way, and whether it still serves.
struct ReadRouter::Serving::Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = true;
  int in_flight = 0;
};

ReadRouter::ReadRouter(NatsClient* nats, uint32_t partitions) : nats_(nats), partitions_(partitions) {
  for (size_t i = 0; i < kAskers; ++i) askers_.push_back(std::make_unique<Worker>());
}

ReadRouter::~ReadRouter() { Drain(); }

void ReadRouter::Drain() {
  std::vector<std::unique_ptr<Worker>> draining;
  {
    std::lock_guard<std::mutex> lk(askers_mu_);
    draining.swap(askers_);
  }
  draining.clear();  // each runs what is queued, then joins
}

void ReadRouter::SetAnswerer(ReadAnswerer answerer) {
  std::lock_guard<std::mutex> lk(mu_);
  answerer_ = answerer ? std::make_shared<ReadAnswerer>(std::move(answerer)) : nullptr;
}

Status ReadRouter::Serve(uint32_t p, ServedLog at, std::unique_ptr<Serving>* out) {
  auto serving = std::unique_ptr<Serving>(new Serving());
  auto gate = std::make_shared<Serving::Gate>();
  serving->gate_ = gate;
  auto handler = [this, gate, at](std::string request, NatsClient::Reply reply) {
    std::shared_ptr<ReadAnswerer> answerer;
    {
      std::lock_guard<std::mutex> lk(mu_);
      answerer = answerer_;
    }
    {
      std::lock_guard<std::mutex> lk(gate->mu);
      if (!gate->open || !answerer) {
        reply(gate->open ? "Enot ready: the node is starting" : "Ethe partition is leaving this node");
        return;
      }
      gate->in_flight++;
    }
    (*answerer)(at, std::move(request), [gate, reply = std::move(reply)](std::string answer) {
      reply("A" + answer);
      std::lock_guard<std::mutex> lk(gate->mu);
      if (--gate->in_flight == 0) gate->cv.notify_all();
    });
  };
  // A few point reads of the log: answered on the libnats thread. A frame
  // it cannot read is not answered (the front publishes after its wait).
  auto seen = [gate, log = at.log](std::string request, NatsClient::Reply reply) {
    SeenAsk ask;
    if (!DecodeSeenAsk(request, &ask).ok() || ask.keys.size() > kMaxSeenKeys) return;
    {
      std::lock_guard<std::mutex> lk(gate->mu);
      if (!gate->open) return;
      gate->in_flight++;
    }
    reply(EncodeSeen(LookUpSeen(*log, ask)));
    std::lock_guard<std::mutex> lk(gate->mu);
    if (--gate->in_flight == 0) gate->cv.notify_all();
  };
  Status s = nats_->Listen(ReadSubject(p), std::move(handler), &serving->listener_);
  if (s.ok()) s = nats_->Listen(SeenSubject(p), std::move(seen), &serving->seen_listener_);
  if (!s.ok()) return s;
  serving->router_ = this;
  serving->p_ = p;
  {
    std::lock_guard<std::mutex> lk(local_mu_);
    local_[p] = Local{gate, at.log};
  }
  *out = std::move(serving);
  return Status::OK();
}

bool ReadRouter::AnswerSeenHere(uint32_t p, const SeenAsk& ask, std::vector<Seen>* out) {
  Local here;
  {
    std::lock_guard<std::mutex> lk(local_mu_);
    auto it = local_.find(p);
    if (it == local_.end()) return false;
    here = it->second;
  }
  {
    std::lock_guard<std::mutex> lk(here.gate->mu);
    if (!here.gate->open) return false;
    here.gate->in_flight++;
  }
  *out = LookUpSeen(*here.log, ask);
  std::lock_guard<std::mutex> lk(here.gate->mu);
  if (--here.gate->in_flight == 0) here.gate->cv.notify_all();
  return true;
}

ReadRouter::Serving::~Serving() {
  if (router_ != nullptr) {
    std::lock_guard<std::mutex> lk(router_->local_mu_);
    auto it = router_->local_.find(p_);
    if (it != router_->local_.end() && it->second.gate == gate_) router_->local_.erase(it);
  }
  listener_.reset();  // no new requests
  seen_listener_.reset();
  std::unique_lock<std::mutex> lk(gate_->mu);
  gate_->open = false;
  gate_->cv.wait(lk, [&] { return gate_->in_flight == 0; });
}

void ReadRouter::Ask(const std::string& tenant, std::string request, int64_t timeout_ms,
                     std::function<void(Status, std::string)> done) {
  const uint32_t p = PartitionOf(tenant, partitions_);
  std::lock_guard<std::mutex> lk(askers_mu_);
  if (askers_.empty()) {
    done(Status::Unavailable("the node is stopping"), "");
    return;
  }
  askers_[p % askers_.size()]->Post([this, p, request = std::move(request), timeout_ms,
                                     done = std::move(done)] {
    std::string answer;
    Status s = nats_->Request(ReadSubject(p), request, timeout_ms, &answer);
    if (s.IsNotFound()) {
      done(Status::NotFound("no node runs partition " + std::to_string(p) + " now"), "");
    } else if (!s.ok()) {
      done(Status::Unavailable("partition " + std::to_string(p) + "'s node did not answer: " + s.ToString()), "");
    } else if (answer.empty() || answer[0] != 'A') {
      done(Status::Unavailable("partition " + std::to_string(p) + ": " + (answer.empty() ? "" : answer.substr(1))), "");
    } else {
      done(Status::OK(), answer.substr(1));
    }
  });
}

}  // namespace dfm
