// `dfm erase`: erases a person (docs/privacy.md) through the running
// service (POST /v1/admin/erase), or on the data directory itself when no
// service answers.
#pragma once

#include <iosfwd>
#include <string>

#include "config/config.h"

namespace dfm {

struct EraseArgs {
  std::string tenant = "default";
  std::string contact_id;
  std::string reason;
  bool json = false;
  // Erase even while the person's consent pushes are on their way (they
  // are then lost at the next restart; app/erase.h, EraseRequest).
  bool force = false;
};

// 0 when erased (or erased before); 1 when the tenant has no such contact;
// 2 when it could not be done (the reason on `err`).
int RunErase(const Config& config, const EraseArgs& args, std::ostream& out, std::ostream& err);

}  // namespace dfm
