#include "actors/send_gate.h"

namespace dfm {

void SendGate::Close(const std::string& tenant, const std::string& who,
                     const std::vector<std::string>& channels) {
  std::lock_guard<std::mutex> lk(mu_);
  for (const auto& ch : channels) closed_.emplace(tenant, who, ch);
}

void SendGate::Open(const std::string& tenant, const std::string& who,
                    const std::vector<std::string>& channels) {
  std::lock_guard<std::mutex> lk(mu_);
  for (const auto& ch : channels) closed_.erase({tenant, who, ch});
}

bool SendGate::Closed(const std::string& tenant, const std::string& who,
                      const std::string& channel) const {
  std::lock_guard<std::mutex> lk(mu_);
  return closed_.count({tenant, who, channel}) > 0;
}

}  // namespace dfm
