#include "connectors/common/vendor_records.h"

#include "util/clock.h"
#include "util/crypto.h"

namespace dfm {

namespace {

bool Taken(const Status& s) { return s.code() == Status::Code::kAlreadyExists; }

}  // namespace

std::string EncodeVendorRecord(const VendorRecordValue& v) {
  switch (v.kind) {
    case VendorRecordValue::kCreating:
      return "1 creating " + std::to_string(v.since_us);
    case VendorRecordValue::kId:
      return "1 id " + v.id;
    case VendorRecordValue::kReleased:
      break;
  }
  return "1 released";
}

bool DecodeVendorRecord(const std::string& s, VendorRecordValue* v) {
  *v = VendorRecordValue();
  if (s == "1 released") return true;
  if (s.rfind("1 id ", 0) == 0 && s.size() > 5) {
    v->kind = VendorRecordValue::kId;
    v->id = s.substr(5);
    return true;
  }
  if (s.rfind("1 creating ", 0) != 0) return false;
  try {
    size_t used = 0;
    v->since_us = std::stoll(s.substr(11), &used);
    if (used != s.size() - 11) return false;
  } catch (...) {
    return false;
  }
  v->kind = VendorRecordValue::kCreating;
  return true;
}

VendorRecords::VendorRecords(std::shared_ptr<CasStore> store, std::string scope,
                             std::function<int64_t()> now_us)
    : store_(std::move(store)), scope_(std::move(scope)), now_us_(std::move(now_us)) {
  if (!now_us_) now_us_ = [] { return SystemClock::Instance()->NowMicros(); };
}

std::string VendorRecords::StoreKey(const std::string& scope, const std::string& key) {
  return "r." + HexEncode(Sha256(scope + "\n" + key)).substr(0, 40);
}

VendorRecords::Claim VendorRecords::Take(const std::string& key, std::string* id, int64_t* busy_us) {
  const std::string k = StoreKey(scope_, key);
  const int64_t now = now_us_();
  VendorRecordValue mine;
  mine.kind = VendorRecordValue::kCreating;
  mine.since_us = now;
  const std::string claim = EncodeVendorRecord(mine);
  // Two rounds: a value that moves between the read and the write (another
  // claim, settle or release) is read again once.
  for (int round = 0; round < 2; ++round) {
    CasStore::Entry e;
    if (!store_->Get(k, &e).ok()) return Claim::kUnavailable;
    if (!e.present) {
      Status s = store_->Create(k, claim);
      if (s.ok()) return Remember(k, now, Claim::kMine);
      if (!Taken(s)) return Claim::kUnavailable;
      continue;
    }
    VendorRecordValue v;
    if (!DecodeVendorRecord(e.value, &v)) return Claim::kUnavailable;
    if (v.kind == VendorRecordValue::kId) {
      *id = v.id;
      return Claim::kKnown;
    }
    const bool stale = v.kind == VendorRecordValue::kCreating && now - v.since_us >= kStaleUs;
    if (v.kind == VendorRecordValue::kCreating && !stale) {
      *busy_us = now - v.since_us;
      return Claim::kBusy;
    }
    Status s = store_->Update(k, claim, e.rev);
    if (s.ok()) return Remember(k, now, stale ? Claim::kTakenOver : Claim::kMine);
    if (!Taken(s)) return Claim::kUnavailable;
  }
  *busy_us = 0;
  return Claim::kBusy;
}

VendorRecords::Claim VendorRecords::Remember(const std::string& store_key, int64_t since, Claim c) {
  std::lock_guard<std::mutex> lock(mu_);
  claimed_[store_key] = since;
  return c;
}

Status VendorRecords::Settle(const std::string& key, const std::string& id) {
  VendorRecordValue v;
  v.kind = VendorRecordValue::kId;
  v.id = id;
  const std::string k = StoreKey(scope_, key);
  // Whoever holds the claim now, the record exists: its id is the truth.
  // The claim is forgotten only once written (a failed Settle may Release).
  for (int round = 0; round < 3; ++round) {
    CasStore::Entry e;
    Status s = store_->Get(k, &e);
    if (!s.ok()) return s;
    s = e.present ? store_->Update(k, EncodeVendorRecord(v), e.rev) : store_->Create(k, EncodeVendorRecord(v));
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      claimed_.erase(k);
    }
    if (!Taken(s)) return s;
  }
  return Status::Unavailable("record " + k + " kept moving");
}

void VendorRecords::Release(const std::string& key) {
  const std::string k = StoreKey(scope_, key);
  int64_t since = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = claimed_.find(k);
    if (it == claimed_.end()) return;
    since = it->second;
    claimed_.erase(it);
  }
  CasStore::Entry e;
  if (!store_->Get(k, &e).ok() || !e.present) return;
  VendorRecordValue v;
  if (!DecodeVendorRecord(e.value, &v) || v.kind != VendorRecordValue::kCreating || v.since_us != since)
    return;  // settled, or taken over since: not ours to release
  VendorRecordValue released;
  (void)store_->Update(k, EncodeVendorRecord(released), e.rev);  // moved on since: fine
}

}  // namespace dfm
