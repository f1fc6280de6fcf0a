// ContactOptedOut (audience_index.h) asked of many people again and again:
// a campaign's tick asks it of every waiting task, and at 100,000 tasks two
// projection reads each cost most of a second per tick, which bounds how
// long a STOP waits to skip the person's waiting text (bench (q)). The
// watch remembers each answer and reads it again only once the log shows an event that may
// change it: one the contact view or the opt-out registry folds that names
// the person or their address. Pure logic over an EventLog; one caller at a
// time (not thread-safe).
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "storage/event_log.h"

namespace dfm {

class OptOutWatch {
 public:
  // REQUIRES: `log` outlives the watch.
  OptOutWatch(const EventLog* log, std::string tenant);

  // Brings what it remembers up to the projections' present: reads the
  // events the contact view and the registry folded since the last call
  // and forgets the answers they may change (all of them on an erasure, an
  // event it cannot decode, or a tail longer than kMaxTail). Not OK when
  // the log cannot be read: it then forgets everything and remembers
  // nothing new until a call succeeds.
  Status Refresh();

  // ContactOptedOut(log, tenant, contact, channel). After a Refresh that
  // returned OK, the answer is as of the projections' committed state at
  // that Refresh or newer. A read that fails answers false and is not kept.
  bool OptedOut(const std::string& contact, std::string_view channel);

  size_t remembered() const { return answers_.size(); }

  // Past this many records since the last Refresh, forgetting everything
  // costs less than reading them.
  static constexpr uint64_t kMaxTail = 200000;

 private:
  struct Answer {
    std::string address;  // what it was looked up by ("" when none)
    bool out = false;
  };
  void Forget();
  void ForgetContact(std::string_view contact);
  void ForgetAddress(const std::string& address);
  // Reads (through_, until] and forgets what they may change. False when
  // the log cannot be read.
  bool ReadTail(uint64_t until);

  const EventLog* log_;
  std::string tenant_;
  bool primed_ = false;  // through_ holds: answers may be kept
  uint64_t through_ = 0;
  // "<contact>\n<channel>" -> its answer; address -> the keys read by it.
  std::unordered_map<std::string, Answer> answers_;
  std::unordered_multimap<std::string, std::string> by_address_;
  std::set<std::string, std::less<>> channels_;  // each channel asked (sync/consent.h)
  std::string key_;                              // OptedOut's buffer
};

}  // namespace dfm
