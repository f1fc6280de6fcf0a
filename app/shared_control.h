// Cluster mode: an operator's sync pauses and limits (sync/sync_control.h)
// on every node (docs/scale-out.md). A pause or resume taken by any node's
// console is appended to the log of its tenant's partition as on a single
// node (the audit), then written to a CasStore every node reads (the NATS
// bucket DFM_CONTROL) as the next entry of one sequence. Each node folds
// that sequence, in order, into its console's SyncControl and into every
// partition's it runs, whose connectors are woken.
//
// Entry key: "c." 20-digit sequence number, from 1.
// Value (grammar, version 1): "1" SP type SP payload   ; the event's
// (type sync.paused or sync.resumed; the payload one-line JSON).
// Each node also says how far it has applied the sequence (so that a
// pause is answered once every node holds it):
// Ack key: "a." node id. Value (grammar, version 1): "1" SP count
// (the entries its subscribers have been given, 1*DIGIT).
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "events/event.h"
#include "storage/cas_store.h"

namespace dfm {

class SharedControl {
 public:
  explicit SharedControl(std::shared_ptr<CasStore> store) : store_(std::move(store)) {}
  ~SharedControl();  // stops the poller

  // From now on every poll that gives the subscribers new entries (and
  // the next one in any case) writes this node's ack as `node`.
  void SetNode(std::string node);
  // The nodes of `nodes` whose ack is below `count` (or unreadable, or
  // absent) into *waiting. Not OK when the store could not be read: then
  // every node not known to have acked is in *waiting.
  Status Waiting(const std::vector<std::string>& nodes, uint64_t count,
                 std::vector<std::string>* waiting);

  // Writes `e` as the next entry (*seq: its number), then polls (this
  // node's subscribers have it then, or at a later poll: a read may lag).
  Status Publish(const Event& e, uint64_t* seq = nullptr);
  // Reads the entries not yet seen and hands them, in order, to every
  // subscriber (an entry that does not read is logged and handed on as an
  // event of no type, which SyncControl ignores).
  Status Poll();
  // Polls every second on a thread of its own until destroyed.
  void Start();
  // `apply` is given every entry seen so far at once (on the caller's
  // thread), then each batch of new ones; it must not (un)subscribe.
  int Subscribe(std::function<void(const std::vector<Event>&)> apply);
  // After it returns, `apply` is never called again.
  void Unsubscribe(int id);
  // Every entry seen so far (as Subscribe gives them first).
  std::vector<Event> Seen();

  static std::string EntryKey(uint64_t seq);
  static std::string AckKey(const std::string& node) { return "a." + node; }
  static std::string EncodeAck(uint64_t count) { return "1 " + std::to_string(count); }
  static bool DecodeAck(const std::string& value, uint64_t* count);
  static std::string Encode(const Event& e);
  static bool Decode(const std::string& value, Event* e);

 private:
  // Writes the ack when `count` differs from the last written. Under poll_mu_.
  void Ack(uint64_t count);

  std::shared_ptr<CasStore> store_;
  std::mutex poll_mu_;  // one Poll at a time
  std::string node_;    // GUARDED_BY(poll_mu_); "": no acks
  uint64_t acked_ = 0;  // GUARDED_BY(poll_mu_)
  bool ack_written_ = false;  // GUARDED_BY(poll_mu_)
  std::mutex mu_;       // seen_ and subscribers_; never held across a store call
  std::vector<Event> seen_;  // an unreadable entry is an Event of no type
  std::map<int, std::function<void(const std::vector<Event>&)>> subscribers_;
  int next_id_ = 1;
  std::thread poller_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
};

}  // namespace dfm
