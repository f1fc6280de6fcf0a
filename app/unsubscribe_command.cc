#include "app/unsubscribe_command.h"

#include <ostream>

#include "connectors/connector.h"
#include "util/json.h"

namespace dfm {

int RunUnsubscribeLink(const Config& config, const UnsubscribeLinkArgs& args, int64_t now_s,
                       std::ostream& out, std::ostream& err) {
  const auto& systems = config.Systems(args.tenant);
  const Connector* links = FindConnector("unsubscribe");
  auto it = systems.find("unsubscribe");
  if (!links || !links->make_link || it == systems.end()) {
    err << "tenant " << args.tenant << " has no unsubscribe.secret\n";
    return 1;
  }
  std::string base = config.server().public_base_url;
  if (base.empty()) {
    err << "server.public_base_url is not set: a link needs the service's public address\n";
    return 1;
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string token;
  Status s = links->make_link(it->second, args.email, args.campaign, now_s, &token);
  if (!s.ok()) {
    err << s.message() << "\n";
    return 1;
  }
  const std::string url = base + (args.tenant == "default" ? "" : "/t/" + args.tenant) +
                          "/webhooks/unsubscribe?u=" + token;
  const std::string header = "<" + url + ">";
  const std::string post = "List-Unsubscribe=One-Click";
  if (args.json) {
    out << JsonObject().Str("url", url).Str("list_unsubscribe", header)
               .Str("list_unsubscribe_post", post).Finish()
        << "\n";
  } else {
    out << url << "\n"
        << "List-Unsubscribe: " << header << "\n"
        << "List-Unsubscribe-Post: " << post << "\n";
  }
  return 0;
}

}  // namespace dfm
