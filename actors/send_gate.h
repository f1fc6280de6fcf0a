// SendGate: the numbers and addresses texts must not go to now, shared by a
// tenant's contact actors (which close it) and connector actors (which ask
// it before a send goes out).
//
// Why: a contact actor decides an opt-out, appends it, and only then tells
// the connectors to cancel the sends still waiting; a connector whose
// retry or pacing timer fires in between would hand the vendor a text
// after the opt-out is durable (the simulation found it: docs/fuzzing.md).
// So the contact actor closes the gate when it decides the opt-out, before
// the append, and opens it only once an opt-in is durable; the connector
// withholds a send to a closed (tenant, phone or email, channel). Closing
// early is the safe side: a send withheld for an opt-out whose append is
// still being retried is refused by that decision (message.refused).
//
// In memory only: after a restart the contacts' state refuses the sends
// (a send refused is settled in the log, never re-driven).
// Thread-safe.
#pragma once

#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace dfm {

class SendGate {
 public:
  void Close(const std::string& tenant, const std::string& who, const std::vector<std::string>& channels);
  void Open(const std::string& tenant, const std::string& who, const std::vector<std::string>& channels);
  bool Closed(const std::string& tenant, const std::string& who, const std::string& channel) const;

 private:
  mutable std::mutex mu_;
  std::set<std::tuple<std::string, std::string, std::string>> closed_;
};

}  // namespace dfm
