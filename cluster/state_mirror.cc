#include "cluster/state_mirror.h"

#include "cluster/records_store.h"
#include "util/aead.h"
#include "util/crypto.h"
#include "util/logging.h"

namespace dfm {

namespace {

void PutStr(std::string* out, std::string_view s) {
  const uint32_t n = static_cast<uint32_t>(s.size());
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>((n >> shift) & 0xff));
  out->append(s);
}

bool GetStr(std::string_view* in, std::string* s) {
  if (in->size() < 4) return false;
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<uint8_t>((*in)[static_cast<size_t>(i)]);
  in->remove_prefix(4);
  if (in->size() < n) return false;
  s->assign(in->data(), n);
  in->remove_prefix(n);
  return true;
}

}  // namespace

std::string StateMirror::EntryKey(const std::string& tenant, std::string_view consumer, std::string_view key) {
  std::string both(consumer);
  both += '\n';
  both += key;
  return "s." + HexEncode(tenant) + "." + HexEncode(Sha256(both)).substr(0, 40);
}

bool StateMirror::TenantOf(const std::string& entry_key, std::string* tenant) {
  if (entry_key.rfind("s.", 0) != 0) return false;
  const size_t dot = entry_key.find('.', 2);
  if (dot == std::string::npos) return false;
  auto t = HexDecode(std::string_view(entry_key).substr(2, dot - 2));
  if (!t) return false;
  *tenant = *t;
  return true;
}

std::string StateMirror::Seal(std::string_view state_key, const std::string& entry_key, const StateEntry& e) {
  std::string plain(1, '\x01');
  PutStr(&plain, e.writer);
  PutStr(&plain, e.consumer);
  PutStr(&plain, e.key);
  PutStr(&plain, e.value);
  return AeadSeal(state_key, entry_key, plain);
}

bool StateMirror::Unseal(std::string_view state_key, const std::string& entry_key, std::string_view sealed,
                         StateEntry* e) {
  auto plain = AeadOpen(state_key, entry_key, sealed);
  if (!plain || plain->empty() || (*plain)[0] != '\x01') return false;
  std::string_view in(*plain);
  in.remove_prefix(1);
  return GetStr(&in, &e->writer) && GetStr(&in, &e->consumer) && GetStr(&in, &e->key) &&
         GetStr(&in, &e->value) && in.empty();
}

Status StateMirror::Open(const std::vector<std::string>& urls, const std::string& node,
                         const NatsSecurity& security, int replicas, const std::string& state_key_hex,
                         std::unique_ptr<StateMirror>* out) {
  auto key = HexDecode(state_key_hex);
  if (!key || key->size() != kAeadKeyBytes) return Status::InvalidArgument("cluster.state_key: 64 hex digits");
  auto m = std::unique_ptr<StateMirror>(new StateMirror());
  m->node_ = node;
  m->key_ = std::move(*key);
  Status s = OpenBucketClient(kStateBucket, urls, node, security, replicas, &m->nats_);
  if (!s.ok()) return s;
  *out = std::move(m);
  return Status::OK();
}

Status StateMirror::Put(const std::string& tenant, std::string_view consumer, const std::vector<StateOp>& ops) {
  for (const StateOp& op : ops) {
    const std::string k = EntryKey(tenant, consumer, op.key);
    Status s = op.erase ? nats_->KvDelete(k)
                        : nats_->KvPut(k, Seal(key_, k, StateEntry{node_, std::string(consumer), op.key, op.value}));
    if (!s.ok()) return s;
  }
  return Status::OK();
}

Status StateMirror::Restore(EventLog* log, const std::function<bool(const std::string&)>& runs, int* restored,
                            int* unreadable) {
  *restored = 0;
  *unreadable = 0;
  std::vector<std::string> keys;
  Status s = nats_->KvKeysLatest(&keys);  // a lagging replica may not list the newest
  if (!s.ok()) return s;
  for (const std::string& k : keys) {
    std::string tenant;
    if (!TenantOf(k, &tenant) || !runs(tenant)) continue;
    NatsClient::KvEntry kv;
    s = nats_->KvGetLatest(k, &kv);  // a lagging replica may hold an older grant
    if (!s.ok()) return s;
    if (!kv.present) continue;
    StateEntry e;
    if (!Unseal(key_, k, kv.value, &e)) {  // another key, or damaged: not taken, the rest are
      Logger("cluster")->error("event=state_entry_unreadable key={} reason=\"does not open with cluster.state_key\"", k);
      ++*unreadable;
      continue;
    }
    std::string local;
    if (e.writer == node_ && log->GetConsumerState(e.consumer, e.key, &local).ok())
      continue;  // this node wrote its local copy first: as new or newer
    s = log->CommitConsumerDurable(e.consumer, 0, {StateOp{e.key, e.value, false}});
    if (!s.ok()) return s;
    ++*restored;
  }
  return Status::OK();
}

}  // namespace dfm
