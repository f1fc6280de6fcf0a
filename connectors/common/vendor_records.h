// Records a vendor made for the engine under a real-world key (a HaloPSA
// Client per company name or domain: docs/vendors/halopsa.md), shared by
// every connector of one tenant and system wherever it runs: the claims
// that make a creation single-flight across restarts and nodes, and the
// ids they made, kept durably (storage/cas_store.h: the log's state on a
// single node, the NATS bucket DFM_RECORDS in a cluster), so that a
// restart or another node knows a record before its next lookup.
//
// Contract for a creator: Claim every key of the record; kKnown: use that
// id (release the others); kBusy: someone else is creating it, ask again
// later (release the others); kMine / kTakenOver: create it, then Settle
// each key with the new id, or Release each when the creation failed.
// kTakenOver means the claim's holder left it unsettled for kStaleUs (it
// died): its creation may have landed, so look in the vendor again first.
// A live holder settles well within kStaleUs (its requests time out in
// seconds). Keys are hashed: the store never holds a name or a domain.
//
// Calls block for one store round trip (a local durable write, or NATS):
// made only when a record is missing, which is rare.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "storage/cas_store.h"

namespace dfm {

class VendorRecords {
 public:
  static constexpr int64_t kStaleUs = 60LL * 1000000;
  enum class Claim { kKnown, kMine, kTakenOver, kBusy, kUnavailable };

  // Records of `scope` ("<tenant>/<system>") in `store`; `now_us` is the
  // wall clock the claims' ages are told by (tests: simulated).
  VendorRecords(std::shared_ptr<CasStore> store, std::string scope,
                std::function<int64_t()> now_us = nullptr);

  // `key`: the record's kind and normalized key ("client n:umbrella labs").
  // kKnown: *id holds the record's id. kBusy: *busy_us says how long the
  // holder has had the claim.
  Claim Take(const std::string& key, std::string* id, int64_t* busy_us);
  // The creation under `key` made `id`; durable when OK.
  Status Settle(const std::string& key, const std::string& id);
  // The creation under `key` failed: the next Take may create it.
  void Release(const std::string& key);

  // The store's key of `key` in `scope`: "r." + 40 hex digits.
  static std::string StoreKey(const std::string& scope, const std::string& key);

 private:
  Claim Remember(const std::string& store_key, int64_t since, Claim c);

  std::shared_ptr<CasStore> store_;
  const std::string scope_;
  std::function<int64_t()> now_us_;
  std::mutex mu_;
  std::map<std::string, int64_t> claimed_;  // store key -> since, of the claims this one took
};

// Stored values (grammar, version 1):
//   value   = "1 creating " <since, µs of the wall clock, decimal>
//           | "1 id " <the vendor's id>
//           | "1 released"
struct VendorRecordValue {
  enum Kind { kCreating, kId, kReleased } kind = kReleased;
  int64_t since_us = 0;
  std::string id;
};
std::string EncodeVendorRecord(const VendorRecordValue& v);
// False when `s` does not read.
bool DecodeVendorRecord(const std::string& s, VendorRecordValue* v);

}  // namespace dfm
