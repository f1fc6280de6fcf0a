// ErasedSubjects: erased people's consent as the router reads it from
// contact.erased events (sync/erasure.h), for the contact actors to refuse
// texts to an erased person's opted-out number from that moment on.
//
// Why: the opt-out registry's z/ rows hold the same facts, but only once
// the projection has folded the erasure; a contact that takes the number
// in between (a new person, or the same one again) would be texted (the
// simulation found it after a restart had emptied the send gate). The
// router reads the log in order, so every fact routed after an erasure
// finds it here; what the log held at the service's start, the registry
// has (its projection is caught up before the sync starts).
//
// Keys as the registry's z/ rows (ErasedSubjectKey); a key keeps the
// statement that supersedes the others (ConsentSupersedes). In memory;
// erasures are rare, nothing is forgotten while the service runs.
// Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "sync/consent.h"
#include "sync/contact_model.h"

namespace dfm {

class ErasedSubjects {
 public:
  void Add(const std::string& key, const ErasedConsent& c) {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, fresh] = rows_.try_emplace(key, c);
    if (!fresh && ConsentSupersedes(c.out, c.at_us, it->second.out, it->second.at_us)) it->second = c;
  }

  std::optional<ErasedConsent> Find(const std::string& key) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = rows_.find(key);
    if (it == rows_.end()) return std::nullopt;
    return it->second;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, ErasedConsent> rows_;
};

}  // namespace dfm
