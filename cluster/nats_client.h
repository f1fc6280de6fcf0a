// NatsClient: the little of NATS JetStream (libnats 3.4, Debian 12) that
// cluster mode uses, behind a C++ face: streams, publishes with message-id
// de-duplication and an expected last sequence, reads by sequence, durable
// pull consumers and a key-value bucket for leases. No dfm logic inside.
//
// Thread-safety: every method may be called from any thread (libnats's
// connection is thread-safe); a PullConsumer is used by one thread.
// Lifetime: every PullConsumer and Listener is destroyed before its
// NatsClient (their ends hand the subscription to it).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "util/status.h"

struct __natsConnection;
struct __jsCtx;
struct __natsSubscription;
struct __natsMsg;
struct __kvStore;

namespace dfm {

struct PublishAck {
  uint64_t seq = 0;        // the stream sequence the message has
  bool duplicate = false;  // the message id was seen in the de-duplication window
};

// A message from a pull consumer; Ack() once its effect is durable.
class PulledMsg {
 public:
  explicit PulledMsg(__natsMsg* m) : m_(m) {}
  PulledMsg(PulledMsg&& o) noexcept : m_(o.m_) { o.m_ = nullptr; }
  PulledMsg& operator=(PulledMsg&&) = delete;
  ~PulledMsg();
  std::string_view data() const;
  uint64_t stream_seq() const;
  void Ack();

 private:
  __natsMsg* m_;
};

// How the client proves who it is to the servers and checks them
// (docs/scale-out.md, "Securing the NATS link"). At most one way to
// authenticate is set; the files are read at Connect.
struct NatsSecurity {
  std::string user, password;        // a user and password
  std::string token;                 // a token
  std::string nkey, nkey_seed_file;  // an NKey: its public key, its seed's file
  std::string creds_file;            // a .creds file: user JWT and NKey seed
  // TLS: on when a URL is tls:// or any of these is set. The servers are
  // verified against ca_file, else the system's CA store; cert_file and
  // key_file are this client's certificate, for servers that ask for one.
  std::string ca_file, cert_file, key_file;
};

// The system's CA store (Debian's ca-certificates bundle).
inline constexpr char kSystemCaFile[] = "/etc/ssl/certs/ca-certificates.crt";

class NatsClient {
 public:
  // Connects to any of `urls` (and learns the rest of the cluster),
  // reconnecting for ever. With `keep_trying` (the service), a server that
  // is not up yet, or refuses, is tried again in the background (the calls
  // fail meanwhile); without (a tool), Unavailable at once, with the
  // server's reason ("Authorization Violation"). InvalidArgument when a
  // file of `security` cannot be read or used.
  static Status Connect(const std::vector<std::string>& urls, const std::string& name,
                        const NatsSecurity& security, bool keep_trying, std::unique_ptr<NatsClient>* out);
  ~NatsClient();
  bool connected() const;
  // For tests: how long an ended subscription waits to be freed (Retire).
  void set_retired_for(std::chrono::milliseconds d) {
    std::lock_guard<std::mutex> lock(retired_mu_);
    retired_for_ = d;
  }
  size_t retired() {
    std::lock_guard<std::mutex> lock(retired_mu_);
    return retired_.size();
  }

  // Creates the stream (file storage, `replicas` copies, limits retention,
  // de-duplication window `dedup_s`, each message kept `max_age_s`, 0: for
  // ever) unless one by that name exists.
  Status EnsureStream(const std::string& name, const std::string& subjects, int replicas,
                      int64_t dedup_s, int64_t max_age_s = 0);
  // Gives an existing stream made by EnsureStream this window and age
  // (its other settings as they are); OK at once when it has them.
  Status UpdateStreamLimits(const std::string& name, int64_t dedup_s, int64_t max_age_s);
  // The stream's first sequence (what is older expired; last + 1 when
  // empty) and last.
  Status Bounds(const std::string& stream, uint64_t* first, uint64_t* last);
  // No expectation of the stream's last sequence (Publish).
  static constexpr uint64_t kNoExpectation = ~uint64_t{0};
  // Publishes and waits for the stream's acknowledgement (at most
  // `timeout_ms`). `expect_last_seq` (kNoExpectation: none) makes the
  // stream refuse it unless its last sequence is that (0: unless it is
  // empty): *fenced is then true. *answered
  // (may be null) is true when the stream refused it with a JetStream
  // error: nothing was stored, and sending it again gets the same answer.
  Status Publish(const std::string& subject, std::string_view data, const std::string& msg_id,
                 uint64_t expect_last_seq, int64_t timeout_ms, PublishAck* ack,
                 bool* fenced = nullptr, bool* answered = nullptr);
  // The stream's last sequence (0: empty).
  Status LastSeq(const std::string& stream, uint64_t* seq);
  // The message at `seq` of `stream`; NotFound when there is none.
  Status GetMsg(const std::string& stream, uint64_t seq, std::string* data);
  // Hands `take` every message of `stream` (on `subject`) from `first` to
  // `last`, in order, each once: through an ephemeral pull consumer that
  // needs no acks, up to `batch` (and 8 MiB) a request, where GetMsg asks
  // once a message. One the consumer does not hand out in its turn (another
  // subject's, or none came within 2 s) is read by GetMsg, and so is the
  // rest when the consumer cannot be made or is lost. The first `take` not
  // OK, or GetMsg failing, ends the read and is returned.
  using Taker = std::function<Status(uint64_t seq, std::string_view data)>;
  Status ReadRange(const std::string& stream, const std::string& subject, uint64_t first,
                   uint64_t last, int batch, const Taker& take);

  class PullConsumer {
   public:
    ~PullConsumer();
    // Up to `batch` messages, waiting at most `timeout_ms` for the first
    // (none: OK and empty).
    Status Fetch(int batch, int64_t timeout_ms, std::vector<PulledMsg>* out);

   private:
    friend class NatsClient;
    NatsClient* owner_ = nullptr;
    __natsSubscription* sub_ = nullptr;
  };
  // Messages of a durable consumer not yet acked (delivered or not).
  Status ConsumerPending(const std::string& stream, const std::string& durable, uint64_t* pending);
  struct ConsumerState {
    std::string name;
    uint64_t ack_floor = 0;  // the stream sequence every message up to is acked
    uint64_t pending = 0;    // not yet acked, delivered or not
  };
  // Every consumer of `stream`, as its leader reports it.
  Status Consumers(const std::string& stream, std::vector<ConsumerState>* out);
  // OK when it is gone (or was never there).
  Status DeleteConsumer(const std::string& stream, const std::string& durable);
  // A new durable pull consumer `durable` of `stream`, filtered to
  // `subject`, whose reader sees the stream in order from `start_seq`
  // (>= 1). An ack acks every message up to it (AckAll); redelivery after
  // `ack_wait_s`. A consumer of that name must not exist: a name is never
  // used twice (NATS 2.9 may keep a deleted consumer's old leader running
  // as a "zombie" under its name, nats-server #4216, #5032).
  Status Subscribe(const std::string& stream, const std::string& subject,
                   const std::string& durable, int64_t ack_wait_s, uint64_t start_seq,
                   std::unique_ptr<PullConsumer>* out);

  // Core NATS request and reply (no JetStream): who runs a partition
  // answers the reads other nodes ask of it (cluster/reads.h).
  //
  // Sends `data` to `subject` and waits at most `timeout_ms` for one
  // answer. NotFound when nobody listens on `subject` (NATS's "no
  // responders"), Unavailable when the link is down or no answer came.
  Status Request(const std::string& subject, std::string_view data, int64_t timeout_ms,
                 std::string* answer);
  // A handler's way to answer: once, from any thread.
  using Reply = std::function<void(std::string answer)>;
  using Handler = std::function<void(std::string data, Reply reply)>;
  // Listens on `subject` until the Listener is destroyed; `handler` runs
  // on a libnats thread for each request, so it must hand long work off.
  // Once the destructor returns the handler runs no more (unless the link
  // was lost: then a call under way may still finish, so what the handler
  // holds must be its own).
  class Listener {
   public:
    ~Listener();
    struct State;

   private:
    friend class NatsClient;
    NatsClient* owner_ = nullptr;
    __natsSubscription* sub_ = nullptr;
  };
  Status Listen(const std::string& subject, Handler handler, std::unique_ptr<Listener>* out);
  // Core NATS publish and subscribe, for what may be lost (a node's
  // metrics, sent again a second later): Send publishes `data` to
  // `subject` (no answer awaited); Watch runs `watcher` on a libnats
  // thread for each message published to `subject` (wildcards allowed)
  // until the Listener is destroyed, as Listen's handler does.
  Status Send(const std::string& subject, std::string_view data);
  using Watcher = std::function<void(std::string data)>;
  Status Watch(const std::string& subject, Watcher watcher, std::unique_ptr<Listener>* out);

  // The key-value bucket (created if missing) whose keys expire `ttl_s`
  // after their last write.
  Status OpenBucket(const std::string& bucket, int64_t ttl_s, int replicas);
  struct KvEntry {
    bool present = false;  // false: never written, deleted, or expired
    std::string value;
    uint64_t rev = 0;
  };
  // From any replica of the bucket (NATS's direct get): it may lag.
  Status KvGet(const std::string& key, KvEntry* e);
  // From the bucket's leader: every write acknowledged before is seen. A
  // deleted key reads absent with the deletion's revision (KvGet: 0).
  Status KvGetLatest(const std::string& key, KvEntry* e);
  // Only if absent (never written, deleted or expired): AlreadyExists
  // when someone holds it.
  Status KvCreate(const std::string& key, const std::string& value, uint64_t* rev);
  // Only if the key's revision is still `last`: AlreadyExists if not.
  Status KvUpdate(const std::string& key, const std::string& value, uint64_t last, uint64_t* rev);
  Status KvPut(const std::string& key, const std::string& value);
  Status KvDelete(const std::string& key);
  // Every key of the bucket, from its leader in one request (its stream's
  // info, by subject): every key written before, deleted ones too
  // (KvGet and KvGetLatest read them absent); expired ones not.
  Status KvKeysLatest(std::vector<std::string>* keys);

 private:
  NatsClient() = default;
  // Frees `sub` (may be null), already unsubscribed, once libnats's reader
  // can no longer be inside a message of it: libnats 3.4 looks a
  // subscription up and then locks it without a reference (nats.c #637,
  // fixed in 3.6.1), so a subscription freed as a late message comes
  // crashes the reader. Freed retired_for_ later (the reader's window is
  // microseconds), by a later Retire or Subscribe, or at close.
  void Retire(__natsSubscription* sub);
  // ReadRange's parts: the message at `seq` by GetMsg; and [*next, last]
  // through a consumer (*failed: made or lost, *next the first not taken).
  Status TakeAlone(const std::string& stream, uint64_t seq, const Taker& take);
  Status ReadByConsumer(const std::string& stream, const std::string& subject, uint64_t last,
                        int batch, const Taker& take, uint64_t* next, bool* failed);
  std::vector<__natsSubscription*> TakeDue();  // REQUIRES: retired_mu_ held
  std::chrono::milliseconds retired_for_{10000};
  std::mutex retired_mu_;
  std::vector<std::pair<std::chrono::steady_clock::time_point, __natsSubscription*>> retired_;
  Status SubscribeCore(const std::string& subject, Listener::State* st, std::unique_ptr<Listener>* out);
  __natsConnection* nc_ = nullptr;
  __jsCtx* js_ = nullptr;
  __jsCtx* kvjs_ = nullptr;  // the lease bucket's, with a shorter wait
  __kvStore* kv_ = nullptr;
  std::string bucket_;  // kv_'s
};

}  // namespace dfm
