// `dfm unsubscribe-link`: the one-click unsubscribe link of an address
// (docs/email.md), and the two header fields a mail carrying it needs.
#pragma once

#include <iosfwd>
#include <string>

#include "config/config.h"

namespace dfm {

struct UnsubscribeLinkArgs {
  std::string tenant = "default";
  std::string email;
  std::string campaign;
  bool json = false;
};

// 0 and the link (or {"url","list_unsubscribe","list_unsubscribe_post"});
// 1 with a reason when the tenant has no unsubscribe.secret, the
// server no public_base_url, or the address or campaign is malformed.
int RunUnsubscribeLink(const Config& config, const UnsubscribeLinkArgs& args, int64_t now_s,
                       std::ostream& out, std::ostream& err);

}  // namespace dfm
