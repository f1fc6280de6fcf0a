// `dfm keys create|list|revoke` (docs/http-api.md, "Keys and roles").
//
// create and revoke ask the running service (POST / DELETE
// /v1/admin/keys on its admin listener, with the data directory's admin
// token); when none answers, they append the api_key event to the log
// themselves (the service reads it when it starts). list asks the running
// service too (in cluster mode its keys are every node's), else reads the
// log. A new key's token is printed once and kept nowhere.
#pragma once

#include <iosfwd>
#include <string>

#include "config/config.h"

namespace dfm {

struct KeysCommandArgs {
  std::string name, role = "viewer", tenant = "default";
  std::string id;  // revoke
  bool json = false;
};

int RunKeysCreate(const Config& config, const KeysCommandArgs& args, std::ostream& out,
                  std::ostream& err);
int RunKeysList(const Config& config, const KeysCommandArgs& args, std::ostream& out,
                std::ostream& err);
int RunKeysRevoke(const Config& config, const KeysCommandArgs& args, std::ostream& out,
                  std::ostream& err);

}  // namespace dfm
