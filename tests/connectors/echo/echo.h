// Echo: a connector that exists only in the test tree, to show what adding a
// system takes: this folder and one line in tests/CMakeLists.txt. Its
// webhooks carry one contact ({"id", "phone", "first_name", "version"},
// authenticated by X-Echo-Token); its API is this process (EchoPushes()
// sees every push it was given).
#pragma once

#include <mutex>
#include <vector>

#include "connectors/connector.h"

namespace dfm {

struct EchoPushes {
  std::mutex mu;
  std::vector<PushRequest> got;
};
EchoPushes& EchoSink();

const Connector& EchoConnector();

}  // namespace dfm
