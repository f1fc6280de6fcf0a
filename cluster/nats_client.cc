#include "cluster/nats_client.h"

#include <nats/nats.h>

#include <algorithm>
#include <cstring>

#include "cluster/nats_internal.h"
#include "util/logging.h"

namespace dfm {

namespace nats_internal {

Status FromNats(natsStatus s, const char* what, jsErrCode jerr) {
  if (s == NATS_OK) return Status::OK();
  std::string m = std::string(what) + ": " + natsStatus_GetText(s);
  if (jerr != 0) m += " (JetStream error " + std::to_string(static_cast<int>(jerr)) + ")";
  if (s == NATS_NOT_FOUND) return Status::NotFound(m);
  return Status::Unavailable(m);
}

}  // namespace nats_internal

using nats_internal::FromNats;
using nats_internal::kNanos;

namespace {
// ReadRange's most bytes a request (a log frame is at most kMaxFrame), and
// how long a request waits for its first message.
constexpr int64_t kReadRangeBytes = 8 << 20;
constexpr int64_t kReadRangeWaitNs = 2 * kNanos;

// `security` applied to `opts`: the way to authenticate, then TLS.
natsStatus Secure(natsOptions* opts, const std::vector<std::string>& urls, const NatsSecurity& sec,
                  std::string* what) {
  natsStatus s = NATS_OK;
  if (!sec.user.empty()) {
    *what = "user and password";
    s = natsOptions_SetUserInfo(opts, sec.user.c_str(), sec.password.c_str());
  } else if (!sec.token.empty()) {
    *what = "token";
    s = natsOptions_SetToken(opts, sec.token.c_str());
  } else if (!sec.nkey.empty()) {
    *what = "nkey seed file " + sec.nkey_seed_file;
    s = natsOptions_SetNKeyFromSeed(opts, sec.nkey.c_str(), sec.nkey_seed_file.c_str());
  } else if (!sec.creds_file.empty()) {
    *what = "creds file " + sec.creds_file;
    s = natsOptions_SetUserCredentialsFromFiles(opts, sec.creds_file.c_str(), nullptr);
  }
  bool tls = !sec.ca_file.empty() || !sec.cert_file.empty();
  for (const auto& u : urls) tls = tls || u.rfind("tls://", 0) == 0;
  if (s != NATS_OK || !tls) return s;
  s = natsOptions_SetSecure(opts, true);
  const std::string ca = sec.ca_file.empty() ? kSystemCaFile : sec.ca_file;
  *what = "CA file " + ca;
  if (s == NATS_OK) s = natsOptions_LoadCATrustedCertificates(opts, ca.c_str());
  if (s == NATS_OK && !sec.cert_file.empty()) {
    *what = "certificate " + sec.cert_file + " and key " + sec.key_file;
    s = natsOptions_LoadCertificatesChain(opts, sec.cert_file.c_str(), sec.key_file.c_str());
  }
  return s;
}
}  // namespace

PulledMsg::~PulledMsg() {
  if (m_) natsMsg_Destroy(m_);
}

std::string_view PulledMsg::data() const {
  return std::string_view(natsMsg_GetData(m_), static_cast<size_t>(natsMsg_GetDataLength(m_)));
}

uint64_t PulledMsg::stream_seq() const {
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, m_) != NATS_OK) return 0;
  const uint64_t seq = meta->Sequence.Stream;
  jsMsgMetaData_Destroy(meta);
  return seq;
}

void PulledMsg::Ack() { natsMsg_Ack(m_, nullptr); }

Status NatsClient::Connect(const std::vector<std::string>& urls, const std::string& name,
                           const NatsSecurity& security, bool keep_trying,
                           std::unique_ptr<NatsClient>* out) {
  std::unique_ptr<NatsClient> c(new NatsClient());
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  std::vector<const char*> servers;
  for (const auto& u : urls) servers.push_back(u.c_str());
  if (s == NATS_OK) s = natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size()));
  if (s == NATS_OK) s = natsOptions_SetName(opts, name.c_str());
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 250);
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 2000);
  if (s == NATS_OK && keep_trying) s = natsOptions_SetRetryOnFailedConnect(opts, true, nullptr, nullptr);
  std::string what;
  if (s == NATS_OK) s = Secure(opts, urls, security, &what);
  if (s != NATS_OK) {
    natsOptions_Destroy(opts);
    const char* why = nats_GetLastError(nullptr);
    return Status::InvalidArgument("NATS " + what + ": " + natsStatus_GetText(s) + " (" +
                                   (why ? why : "") + ")");
  }
  s = natsConnection_Connect(&c->nc_, opts);
  if (s == NATS_NOT_YET_CONNECTED) s = NATS_OK;
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    const char* why = nats_GetLastError(nullptr);
    return Status::Unavailable(std::string("connect to NATS: ") + natsStatus_GetText(s) +
                               (why && *why ? std::string(" (") + why + ")" : ""));
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 5000;
  s = natsConnection_JetStream(&c->js_, c->nc_, &jo);
  if (s != NATS_OK) return FromNats(s, "JetStream context");
  *out = std::move(c);
  return Status::OK();
}

NatsClient::~NatsClient() {
  if (kv_) kvStore_Destroy(kv_);
  if (kvjs_) jsCtx_Destroy(kvjs_);
  if (js_) jsCtx_Destroy(js_);
  if (nc_) natsConnection_Close(nc_);  // joins the reader
  for (auto& r : retired_) natsSubscription_Destroy(r.second);
  if (nc_) natsConnection_Destroy(nc_);
}

void NatsClient::Retire(natsSubscription* sub) {
  std::vector<natsSubscription*> due;
  {
    std::lock_guard<std::mutex> lock(retired_mu_);
    due = TakeDue();
    if (sub) retired_.emplace_back(std::chrono::steady_clock::now(), sub);
  }
  for (natsSubscription* s : due) natsSubscription_Destroy(s);
}

std::vector<natsSubscription*> NatsClient::TakeDue() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<natsSubscription*> due;
  auto kept = retired_.begin();
  for (auto& r : retired_) {
    if (now - r.first >= retired_for_)
      due.push_back(r.second);
    else
      *kept++ = r;
  }
  retired_.erase(kept, retired_.end());
  return due;
}

bool NatsClient::connected() const {
  return natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED;
}

Status NatsClient::EnsureStream(const std::string& name, const std::string& subjects, int replicas,
                                int64_t dedup_s, int64_t max_age_s) {
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  sc.Name = name.c_str();
  const char* subj[1] = {subjects.c_str()};
  sc.Subjects = subj;
  sc.SubjectsLen = 1;
  sc.Storage = js_FileStorage;
  sc.Retention = js_LimitsPolicy;
  sc.Replicas = replicas;
  sc.Duplicates = dedup_s * kNanos;
  sc.MaxAge = max_age_s * kNanos;
  sc.DenyDelete = true;
  sc.DenyPurge = true;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(&si, js_, &sc, nullptr, &jerr);
  if (si) jsStreamInfo_Destroy(si);
  if (s != NATS_OK && jerr == JSStreamNameExistErr) return Status::OK();
  return FromNats(s, "add stream", jerr);
}

Status NatsClient::Publish(const std::string& subject, std::string_view data,
                           const std::string& msg_id, uint64_t expect_last_seq, int64_t timeout_ms,
                           PublishAck* ack, bool* fenced, bool* answered) {
  if (fenced) *fenced = false;
  if (answered) *answered = false;
  jsPubOptions po;
  jsPubOptions_Init(&po);
  if (!msg_id.empty()) po.MsgId = msg_id.c_str();
  po.MaxWait = timeout_ms;
  jsPubAck* pa = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s;
  if (expect_last_seq == 0) {
    // libnats sends the expectation only when above 0: "empty" goes as
    // the header itself, which the stream checks whenever it is present.
    natsMsg* m = nullptr;
    s = natsMsg_Create(&m, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
    if (s == NATS_OK) s = natsMsgHeader_Set(m, "Nats-Expected-Last-Sequence", "0");
    if (s == NATS_OK) s = js_PublishMsg(&pa, js_, m, &po, &jerr);
    if (m) natsMsg_Destroy(m);
  } else {
    if (expect_last_seq != kNoExpectation) po.ExpectLastSeq = expect_last_seq;
    s = js_Publish(&pa, js_, subject.c_str(), data.data(), static_cast<int>(data.size()), &po,
                   &jerr);
  }
  if (s == NATS_OK) {
    ack->seq = pa->Sequence;
    ack->duplicate = pa->Duplicate;
    jsPubAck_Destroy(pa);
    return Status::OK();
  }
  if (pa) jsPubAck_Destroy(pa);
  if (jerr == JSStreamWrongLastSequenceErr && fenced) *fenced = true;
  if (jerr != 0 && answered) *answered = true;
  return FromNats(s, "publish", jerr);
}

Status NatsClient::UpdateStreamLimits(const std::string& name, int64_t dedup_s, int64_t max_age_s) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, js_, name.c_str(), nullptr, &jerr);
  if (s != NATS_OK) return FromNats(s, "stream info", jerr);
  jsStreamConfig* sc = si->Config;
  if (sc->Duplicates == dedup_s * kNanos && sc->MaxAge == max_age_s * kNanos) {
    jsStreamInfo_Destroy(si);
    return Status::OK();
  }
  sc->Duplicates = dedup_s * kNanos;
  sc->MaxAge = max_age_s * kNanos;
  jsStreamInfo* updated = nullptr;
  s = js_UpdateStream(&updated, js_, sc, nullptr, &jerr);
  if (updated) jsStreamInfo_Destroy(updated);
  jsStreamInfo_Destroy(si);
  return FromNats(s, "update stream", jerr);
}

Status NatsClient::Bounds(const std::string& stream, uint64_t* first, uint64_t* last) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, js_, stream.c_str(), nullptr, &jerr);
  if (s != NATS_OK) return FromNats(s, "stream info", jerr);
  *first = si->State.FirstSeq;
  *last = si->State.LastSeq;
  jsStreamInfo_Destroy(si);
  return Status::OK();
}

Status NatsClient::LastSeq(const std::string& stream, uint64_t* seq) {
  uint64_t first = 0;
  return Bounds(stream, &first, seq);
}

Status NatsClient::GetMsg(const std::string& stream, uint64_t seq, std::string* data) {
  natsMsg* m = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetMsg(&m, js_, stream.c_str(), seq, nullptr, &jerr);
  if (s != NATS_OK) return FromNats(s, "get message", jerr);
  data->assign(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
  natsMsg_Destroy(m);
  return Status::OK();
}

Status NatsClient::TakeAlone(const std::string& stream, uint64_t seq, const Taker& take) {
  std::string data;
  Status s = GetMsg(stream, seq, &data);
  return s.ok() ? take(seq, data) : s;
}

Status NatsClient::ReadRange(const std::string& stream, const std::string& subject, uint64_t first,
                             uint64_t last, int batch, const Taker& take) {
  uint64_t next = first;
  bool consumer_failed = false;
  if (first <= last) {
    Status s = ReadByConsumer(stream, subject, last, batch, take, &next, &consumer_failed);
    if (!s.ok()) return s;
  }
  // The consumer could not be made or was lost (its one server, a leader
  // election): the rest one message a request, as GetMsg reads.
  for (; consumer_failed && next <= last; ++next) {
    Status s = TakeAlone(stream, next, take);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

namespace {

// Up to `want` messages of `sub` and kReadRangeBytes: what its consumer has
// (NoWait: a batch it cannot fill is not waited for), its first message
// waited for at most kReadRangeWaitNs (none then: OK and empty).
natsStatus FetchSome(natsSubscription* sub, int want, std::vector<PulledMsg>* out) {
  natsMsgList list{nullptr, 0};
  jsFetchRequest req;
  jsFetchRequest_Init(&req);
  req.Batch = want;
  req.MaxBytes = kReadRangeBytes;
  req.Expires = kReadRangeWaitNs;
  req.NoWait = true;
  natsStatus s = natsSubscription_FetchRequest(&list, sub, &req);
  if (s == NATS_TIMEOUT || s == NATS_NOT_FOUND) return NATS_OK;  // 408 / 404: none now
  if (s != NATS_OK) return s;
  for (int i = 0; i < list.Count; ++i) {
    out->emplace_back(list.Msgs[i]);
    list.Msgs[i] = nullptr;  // owned by the PulledMsg now
  }
  natsMsgList_Destroy(&list);
  return NATS_OK;
}

// ReadRange's fall back to GetMsg, said once per range: a lasting cause
// (no permission to make consumers) slows every catch-up ~8x.
void LogReadAlone(const std::string& stream, const char* step, natsStatus ns, jsErrCode jerr,
                  uint64_t next, uint64_t last) {
  Logger("cluster")->warn(
      "event=read_range_one_by_one stream={} step={} error=\"{}\" js_error={} frames={}", stream,
      step, natsStatus_GetText(ns), static_cast<int>(jerr), last - next + 1);
}

}  // namespace

Status NatsClient::ReadByConsumer(const std::string& stream, const std::string& subject,
                                  uint64_t last, int batch, const Taker& take, uint64_t* next,
                                  bool* failed) {
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Config.AckPolicy = js_AckNone;  // pull consumers may go without acks since NATS 2.9
  so.Config.DeliverPolicy = js_DeliverByStartSequence;
  so.Config.OptStartSeq = *next;
  so.Config.InactiveThreshold = 30 * kNanos;  // the server drops it if this reader dies
  natsSubscription* sub = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  Retire(nullptr);  // frees those due
  if (natsStatus ns = js_PullSubscribe(&sub, js_, subject.c_str(), nullptr, nullptr, &so, &jerr);
      ns != NATS_OK) {
    LogReadAlone(stream, "consumer", ns, jerr, *next, last);
    *failed = true;
    return Status::OK();
  }
  Status s;
  while (s.ok() && *next <= last) {
    std::vector<PulledMsg> msgs;
    const int want =
        static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(batch), last - *next + 1));
    if (natsStatus ns = FetchSome(sub, want, &msgs); ns != NATS_OK) {
      LogReadAlone(stream, "fetch", ns, static_cast<jsErrCode>(0), *next, last);
      *failed = true;
      break;
    }
    if (msgs.empty()) {  // skipped, or slow to come
      s = TakeAlone(stream, *next, take);
      if (s.ok()) ++*next;
    }
    for (const PulledMsg& m : msgs) {
      const uint64_t seq = m.stream_seq();  // 0 when unreadable: then read alone
      if (seq < *next) continue;            // handed before
      while (*next < seq && *next <= last && (s = TakeAlone(stream, *next, take)).ok()) ++*next;
      if (!s.ok() || seq > last) break;
      s = take(seq, m.data());
      if (!s.ok()) break;
      ++*next;
    }
  }
  natsSubscription_Unsubscribe(sub);  // it made the consumer: deleted with it
  Retire(sub);                        // a pull still under way may yet be answered
  return s;
}

NatsClient::PullConsumer::~PullConsumer() {
  if (!sub_) return;
  // Bound to a consumer it did not create, the subscription leaves the
  // durable consumer on the server (Subscribe). Its last pull may still
  // be answered: freed later (Retire).
  natsSubscription_Unsubscribe(sub_);
  owner_->Retire(sub_);
}

Status NatsClient::PullConsumer::Fetch(int batch, int64_t timeout_ms, std::vector<PulledMsg>* out) {
  natsMsgList list{nullptr, 0};
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = natsSubscription_Fetch(&list, sub_, batch, timeout_ms, &jerr);
  if (s == NATS_TIMEOUT) return Status::OK();
  if (s != NATS_OK) return FromNats(s, "fetch", jerr);
  for (int i = 0; i < list.Count; ++i) {
    out->emplace_back(list.Msgs[i]);
    list.Msgs[i] = nullptr;  // owned by the PulledMsg now
  }
  natsMsgList_Destroy(&list);
  return Status::OK();
}

Status NatsClient::ConsumerPending(const std::string& stream, const std::string& durable,
                                   uint64_t* pending) {
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetConsumerInfo(&ci, js_, stream.c_str(), durable.c_str(), nullptr, &jerr);
  if (s != NATS_OK) return FromNats(s, "consumer info", jerr);
  *pending = ci->NumPending + static_cast<uint64_t>(ci->NumAckPending);
  jsConsumerInfo_Destroy(ci);
  return Status::OK();
}

Status NatsClient::Consumers(const std::string& stream, std::vector<ConsumerState>* out) {
  jsConsumerInfoList* list = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_Consumers(&list, js_, stream.c_str(), nullptr, &jerr);
  out->clear();
  if (s == NATS_NOT_FOUND) return Status::OK();  // none
  if (s != NATS_OK) return FromNats(s, "consumer list", jerr);
  for (int i = 0; i < list->Count; ++i) {
    const jsConsumerInfo* ci = list->List[i];
    ConsumerState c;
    c.name = ci->Name ? ci->Name : "";
    c.ack_floor = ci->AckFloor.Stream;
    c.pending = ci->NumPending + static_cast<uint64_t>(ci->NumAckPending);
    out->push_back(std::move(c));
  }
  jsConsumerInfoList_Destroy(list);
  return Status::OK();
}

Status NatsClient::DeleteConsumer(const std::string& stream, const std::string& durable) {
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_DeleteConsumer(js_, stream.c_str(), durable.c_str(), nullptr, &jerr);
  if (s == NATS_OK || s == NATS_NOT_FOUND) return Status::OK();
  return FromNats(s, "delete consumer", jerr);
}

Status NatsClient::Subscribe(const std::string& stream, const std::string& subject,
                             const std::string& durable, int64_t ack_wait_s, uint64_t start_seq,
                             std::unique_ptr<PullConsumer>* out) {
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = durable.c_str();
  cc.AckPolicy = js_AckAll;
  cc.AckWait = ack_wait_s * kNanos;
  cc.MaxAckPending = 8192;
  cc.FilterSubject = subject.c_str();
  cc.DeliverPolicy = js_DeliverByStartSequence;
  cc.OptStartSeq = start_seq == 0 ? 1 : start_seq;
  // Made here, then bound: a subscription that binds an existing consumer
  // never deletes it when it ends (one that made it would, when
  // unsubscribed: ~PullConsumer unsubscribes).
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_AddConsumer(&ci, js_, stream.c_str(), &cc, nullptr, &jerr);
  if (ci) jsConsumerInfo_Destroy(ci);
  if (s != NATS_OK) return FromNats(s, "add consumer", jerr);
  jsSubOptions bind;
  jsSubOptions_Init(&bind);
  bind.Stream = stream.c_str();
  bind.Consumer = durable.c_str();
  Retire(nullptr);  // frees those due
  auto c = std::unique_ptr<PullConsumer>(new PullConsumer());
  c->owner_ = this;
  s = js_PullSubscribe(&c->sub_, js_, subject.c_str(), durable.c_str(), nullptr, &bind, &jerr);
  if (s != NATS_OK) return FromNats(s, "pull subscribe", jerr);
  *out = std::move(c);
  return Status::OK();
}

}  // namespace dfm
