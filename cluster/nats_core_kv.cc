// NatsClient (cluster/nats_client.h): core NATS (request/reply, listeners,
// plain publishes) and the key-value bucket.
#include <nats/nats.h>

#include <string>
#include <vector>

#include "cluster/nats_client.h"
#include "cluster/nats_internal.h"
#include "util/logging.h"

namespace dfm {

using nats_internal::FromNats;
using nats_internal::kNanos;

namespace {
// What a key-value bucket's calls wait at most (OpenBucket).
constexpr int64_t kKvWaitMs = 1500;
}  // namespace

Status NatsClient::Request(const std::string& subject, std::string_view data, int64_t timeout_ms,
                           std::string* answer) {
  natsMsg* reply = nullptr;
  natsStatus s = natsConnection_Request(&reply, nc_, subject.c_str(), data.data(),
                                        static_cast<int>(data.size()), timeout_ms);
  if (s == NATS_NO_RESPONDERS) return Status::NotFound("nobody answers " + subject);
  if (s != NATS_OK) return FromNats(s, "request");
  answer->assign(natsMsg_GetData(reply), static_cast<size_t>(natsMsg_GetDataLength(reply)));
  natsMsg_Destroy(reply);
  return Status::OK();
}

// What a listener's libnats callback needs; freed by libnats's "complete"
// callback, once the handler can run no more.
struct NatsClient::Listener::State {
  natsConnection* nc;
  Handler handler;
  Watcher watcher;  // Watch: every message, answered or not
};

namespace {

void OnRequest(natsConnection*, natsSubscription*, natsMsg* m, void* closure) {
  auto* st = static_cast<NatsClient::Listener::State*>(closure);
  std::string data(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
  const char* reply_to = natsMsg_GetReply(m);
  std::string to = reply_to ? reply_to : "";
  natsMsg_Destroy(m);
  if (to.empty()) return;  // a publish, not a request: nobody to answer
  natsConnection* nc = st->nc;
  st->handler(std::move(data), [nc, to](std::string answer) {
    (void)natsConnection_Publish(nc, to.c_str(), answer.data(), static_cast<int>(answer.size()));
  });
}

void OnPublished(natsConnection*, natsSubscription*, natsMsg* m, void* closure) {
  auto* st = static_cast<NatsClient::Listener::State*>(closure);
  std::string data(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
  natsMsg_Destroy(m);
  st->watcher(std::move(data));
}

void OnListenerComplete(void* closure) {
  delete static_cast<NatsClient::Listener::State*>(closure);
}

}  // namespace

Status NatsClient::Listen(const std::string& subject, Handler handler,
                          std::unique_ptr<Listener>* out) {
  return SubscribeCore(subject, new Listener::State{nc_, std::move(handler), nullptr}, out);
}

Status NatsClient::Watch(const std::string& subject, Watcher watcher,
                         std::unique_ptr<Listener>* out) {
  return SubscribeCore(subject, new Listener::State{nc_, nullptr, std::move(watcher)}, out);
}

Status NatsClient::Send(const std::string& subject, std::string_view data) {
  return FromNats(
      natsConnection_Publish(nc_, subject.c_str(), data.data(), static_cast<int>(data.size())),
      "send");
}

Status NatsClient::SubscribeCore(const std::string& subject, Listener::State* st,
                                 std::unique_ptr<Listener>* out) {
  auto l = std::unique_ptr<Listener>(new Listener());
  l->owner_ = this;
  natsStatus s = natsConnection_Subscribe(&l->sub_, nc_, subject.c_str(),
                                          st->watcher ? OnPublished : OnRequest, st);
  if (s == NATS_OK) s = natsSubscription_SetOnCompleteCB(l->sub_, OnListenerComplete, st);
  if (s != NATS_OK) {
    if (l->sub_) {
      natsSubscription_Unsubscribe(l->sub_);
      Retire(l->sub_);
      l->sub_ = nullptr;
    }
    delete st;
    return FromNats(s, "listen");
  }
  *out = std::move(l);
  return Status::OK();
}

NatsClient::Listener::~Listener() {
  if (!sub_) return;
  // Drained: the handler has returned for every message taken, and the
  // complete callback frees the state. Then out of the connection's table
  // (a no-op once drained), freed later.
  if (natsSubscription_Drain(sub_) == NATS_OK)
    (void)natsSubscription_WaitForDrainCompletion(sub_, 5000);
  natsSubscription_Unsubscribe(sub_);
  owner_->Retire(sub_);
}

Status NatsClient::OpenBucket(const std::string& bucket, int64_t ttl_s, int replicas) {
  if (kv_) return Status::OK();
  // The lease bucket's calls wait 1.5 s at most (the others 5 s): a
  // coordinator stuck on one call would miss its renewals.
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = kKvWaitMs;
  natsStatus js = natsConnection_JetStream(&kvjs_, nc_, &jo);
  if (js != NATS_OK) return FromNats(js, "lease bucket context");
  kvConfig kc;
  kvConfig_Init(&kc);
  kc.Bucket = bucket.c_str();
  kc.History = 1;
  kc.TTL = ttl_s * kNanos;
  kc.Replicas = replicas;
  kc.StorageType = js_FileStorage;
  natsStatus s = js_CreateKeyValue(&kv_, kvjs_, &kc);
  if (s != NATS_OK) s = js_KeyValue(&kv_, kvjs_, bucket.c_str());
  if (s == NATS_OK) bucket_ = bucket;
  return FromNats(s, "lease bucket");
}

Status NatsClient::KvGet(const std::string& key, KvEntry* e) {
  *e = KvEntry();
  kvEntry* entry = nullptr;
  natsStatus s = kvStore_Get(&entry, kv_, key.c_str());
  if (s == NATS_NOT_FOUND) return Status::OK();
  if (s != NATS_OK) return FromNats(s, "lease get");
  const kvOperation op = kvEntry_Operation(entry);
  if (op != kvOp_Delete && op != kvOp_Purge) {
    e->present = true;
    e->value.assign(static_cast<const char*>(kvEntry_Value(entry)),
                    static_cast<size_t>(kvEntry_ValueLen(entry)));
  }
  e->rev = kvEntry_Revision(entry);
  kvEntry_Destroy(entry);
  return Status::OK();
}

Status NatsClient::KvGetLatest(const std::string& key, KvEntry* e) {
  *e = KvEntry();
  // The stream's "get message" API, which its leader answers (kvStore_Get
  // asks any replica: the bucket allows direct gets).
  natsMsg* m = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const std::string subject = "$KV." + bucket_ + "." + key;
  natsStatus s =
      js_GetLastMsg(&m, kvjs_, ("KV_" + bucket_).c_str(), subject.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND) return Status::OK();
  if (s != NATS_OK) return FromNats(s, "key get", jerr);
  const char* op = nullptr;
  const bool removed = natsMsgHeader_Get(m, "KV-Operation", &op) == NATS_OK && op != nullptr &&
                       (strcmp(op, "DEL") == 0 || strcmp(op, "PURGE") == 0);
  if (!removed) {
    e->present = true;
    e->value.assign(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
  }
  e->rev = natsMsg_GetSequence(m);
  natsMsg_Destroy(m);
  return Status::OK();
}

Status NatsClient::KvCreate(const std::string& key, const std::string& value, uint64_t* rev) {
  natsStatus s =
      kvStore_Create(rev, kv_, key.c_str(), value.data(), static_cast<int>(value.size()));
  if (s == NATS_ERR) return Status::AlreadyExists("lease " + key + " is held");
  return FromNats(s, "lease create");
}

Status NatsClient::KvUpdate(const std::string& key, const std::string& value, uint64_t last,
                            uint64_t* rev) {
  natsStatus s =
      kvStore_Update(rev, kv_, key.c_str(), value.data(), static_cast<int>(value.size()), last);
  if (s == NATS_ERR) return Status::AlreadyExists("lease " + key + " moved on");
  return FromNats(s, "lease update");
}

Status NatsClient::KvPut(const std::string& key, const std::string& value) {
  uint64_t rev = 0;
  return FromNats(kvStore_Put(&rev, kv_, key.c_str(), value.data(), static_cast<int>(value.size())),
                  "key put");
}

Status NatsClient::KvDelete(const std::string& key) {
  return FromNats(kvStore_Delete(kv_, key.c_str()), "key delete");
}

Status NatsClient::KvKeysLatest(std::vector<std::string>* keys) {
  const std::string prefix = "$KV." + bucket_ + ".";
  const std::string filter = prefix + ">";
  jsOptions o;
  jsOptions_Init(&o);
  o.Stream.Info.SubjectsFilter = filter.c_str();
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, kvjs_, ("KV_" + bucket_).c_str(), &o, &jerr);
  if (s != NATS_OK) return FromNats(s, "keys", jerr);
  if (si->State.Subjects != nullptr) {
    for (int i = 0; i < si->State.Subjects->Count; ++i) {
      const char* subject = si->State.Subjects->List[i].Subject;
      if (subject != nullptr && std::string_view(subject).substr(0, prefix.size()) == prefix)
        keys->push_back(subject + prefix.size());
    }
  }
  jsStreamInfo_Destroy(si);
  return Status::OK();
}

}  // namespace dfm
