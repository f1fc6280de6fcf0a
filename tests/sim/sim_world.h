// The world around the simulated service (tests/sim/sim_test.cc): the
// vendors the connectors push to, the webhooks their senders post, and the
// front's configuration those senders are signed for.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "config/config.h"
#include "connectors/common/outbound.h"
#include "http/ingest.h"
#include "util/crypto.h"

namespace dfm {
namespace sim {

// The vendor: remembers what each push set, answers when the run says.
class SimVendor : public VendorClient {
 public:
  struct Call {
    PushRequest req;
    std::function<void(PushResult)> done;
  };
  std::vector<Call> waiting;
  std::map<std::string, std::string> first_name;  // by contact id: what the vendor holds
  std::map<std::string, int> attempts;            // by push id
  std::function<void(const PushRequest&)> on_push;  // sees every push as it arrives
  std::map<std::string, int> applied;  // by push id: how often the vendor carried it out
  bool sends_not_idempotent = false;   // as Verity's send route (docs/verity.md)
  // Refuses opt-outs (a 422, not carried out) while set: a vendor whose
  // duplicate or validation rules refuse them for a while (issue 46).
  bool refuse_opt_outs = false;
  std::map<std::string, bool> dnd;  // by contact id: its DND as the vendor holds it
  // Other records of the same person (staff or an import made them; by
  // contact id, each its DND), made and edited without a webhook. A consent
  // push reaches every record of the person, as the real clients' searches
  // do (connectors/ghl/every_record.h).
  std::map<std::string, std::vector<bool>> duplicates;
  // Whether every record of the person holds DND.
  bool AllOut(const std::string& contact) const {
    auto main = dnd.find(contact);
    if (main == dnd.end() || !main->second) return false;
    auto dups = duplicates.find(contact);
    if (dups == duplicates.end()) return true;
    return std::all_of(dups->second.begin(), dups->second.end(), [](bool b) { return b; });
  }
  bool MayApplyTwice(const PushRequest& req) const override {
    return sends_not_idempotent && req.op == "send";
  }

  void Push(const PushRequest& req, const Credentials&, std::function<void(PushResult)> done) override {
    attempts[req.push_id]++;
    if (on_push) on_push(req);
    waiting.push_back({req, std::move(done)});
  }

  static bool IsOptOut(const PushRequest& req) { return req.op == "opt_out" || req.op == "mark_dnc"; }

  void Apply(const PushRequest& req) {
    if (refuse_opt_outs && IsOptOut(req)) return;
    applied[req.push_id]++;
    if (IsOptOut(req) || req.op == "opt_in") {
      const bool out = req.op != "opt_in";
      dnd[req.contact_id] = out;
      for (auto&& d : duplicates[req.contact_id]) d = out;
    }
    for (const auto& [k, v] : req.fields)
      if (k == "first_name") first_name[req.contact_id] = v;
  }

  // The service was killed with these requests open: before it is back,
  // the vendor has carried out each or dropped it (by the seed), and
  // nobody hears the answer. (A request the vendor held on to for longer
  // than a restart takes could land after the next run's newer one: no
  // engine can order that without the vendor's help, so it is not played.)
  void Orphan(std::mt19937_64& rng) {
    for (const auto& c : waiting)
      if (rng() % 2) Apply(c.req);
    waiting.clear();
  }

  // Answers waiting call `i`: 0 ok, 1 a 500, 2 a 429, 3 done and timed out.
  bool verbose = false;
  void Answer(size_t i, int how) {
    Call c = std::move(waiting[i]);
    waiting.erase(waiting.begin() + static_cast<long>(i));
    if (verbose) {
      std::string name;
      for (const auto& [k, v] : c.req.fields)
        if (k == "first_name") name = v;
      std::printf("vendor: %s %s first_name=%s answer=%d\n", c.req.push_id.c_str(),
                  c.req.contact_id.c_str(), name.c_str(), how);
    }
    PushResult r;
    r.requests = 1;
    if ((how == 0 || how == 3) && refuse_opt_outs && IsOptOut(c.req)) how = 4;
    if (how == 0 || how == 3) Apply(c.req);
    if (how == 4) {
      r.http_status = 422;  // refused whatever is tried: never given up on
      r.detail = "refused";
    } else if (how == 0) {
      r.http_status = 200;
      r.external_id = "v-" + c.req.contact_id;
    } else if (how == 1) {
      r.http_status = 500;
    } else if (how == 2) {
      r.http_status = 429;
      r.retry_after_us = 2'000'000;
    } else {
      r.http_status = 0;  // the answer never came: a transport error
      r.detail = "timeout";
    }
    c.done(r);
  }
};

// `dfm reconcile`'s reads of the vendor above (op read_consent), answered
// at once from what it holds: "in" when any record of the person lacks DND.
class SimConsentReader : public VendorClient {
 public:
  explicit SimConsentReader(const SimVendor* vendor) : vendor_(vendor) {}
  int reads = 0;
  void Push(const PushRequest& req, const Credentials&, std::function<void(PushResult)> done) override {
    ++reads;
    PushResult r;
    r.http_status = 200;
    r.requests = 1;
    if (vendor_->dnd.count(req.contact_id))
      r.answered["held.sms"] = vendor_->AllOut(req.contact_id) ? "out" : "in";
    done(r);
  }

 private:
  const SimVendor* vendor_;
};

struct Webhook {
  enum Kind { kContact, kStop, kStart, kSend, kBatch };
  std::string id;
  int person;
  std::string first_name;
  int64_t at_ms;  // its timestamp
  Kind kind = kContact;
  // kBatch: a WhatsApp notification of several messages (person, wamid),
  // in order, a new change starting at each index in `change_at`.
  std::vector<std::pair<int, std::string>> messages;
  std::vector<size_t> change_at;
};

enum class Post { kGenuine, kForged, kTruncated };

// The HTTP front's part (http/ingest.h: routing, the vendor's signature,
// the body's checks, its provider event id) on a configuration with
// GoHighLevel's, Verity's and WhatsApp's webhooks, made once for every seed.
struct SimFront {
  std::unique_ptr<PrivateKey> ghl_key;  // GoHighLevel's signing key, as its sandbox has one
  Config config;
  std::unique_ptr<WebhookIngestor> ingestor;
};
inline const SimFront& TheFront() {
  static const SimFront* kit = [] {
    auto* k = new SimFront();
    k->ghl_key = PrivateKey::GenerateEd25519();
    std::vector<ConfigProblem> problems;
    // Wide time windows: a webhook played late by minutes is still taken
    // (the windows themselves are the unit tests' business).
    k->config = Config::Load("", {{"DFM_GHL_ED25519_PUBLIC_KEY", k->ghl_key->PublicPem()},
                                  {"DFM_GHL_LOCATION_ID", "ve9EPM428h8vShlRW1KT"},  // the fixtures'
                                  {"DFM_GHL_TIMESTAMP_TOLERANCE_S", "315360000"},
                                  {"DFM_VERITY_WEBHOOK_SECRET", "sim-verity-secret"},
                                  {"DFM_VERITY_TIMESTAMP_TOLERANCE_S", "315360000"},
                                  {"DFM_WHATSAPP_APP_SECRET", "sim-meta-app-secret"},
                                  {"DFM_WHATSAPP_VERIFY_TOKEN", "sim-verify"},
                                  {"DFM_WHATSAPP_PHONE_NUMBER_ID", "106540352242922"}},
                             &problems);
    for (const auto& pr : problems) ADD_FAILURE() << pr.key << ": " << pr.message;
    k->ingestor = std::make_unique<WebhookIngestor>(k->config);
    return k;
  }();
  return *kit;
}

}  // namespace sim
}  // namespace dfm
