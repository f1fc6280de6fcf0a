// A connector's settings as the configuration fills them in when a tenant
// sets nothing (each SettingSpec's default), with `overrides` on top.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "connectors/connector.h"

namespace dfm::testing {

inline SystemSettings DefaultSettings(std::string_view system,
                                      const std::map<std::string, std::string>& overrides = {}) {
  SystemSettings s;
  for (const auto& spec : FindConnector(system)->settings) s[spec.key] = spec.default_value;
  for (const auto& [k, v] : overrides) s[k] = v;
  return s;
}

}  // namespace dfm::testing
