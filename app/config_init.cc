#include "app/config_init.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <set>

#include "config/config.h"
#include "config/schema.h"
#include "connectors/connector.h"
#include "storage/durable_file.h"
#include "util/crypto.h"

namespace dfm {
namespace {

// The variables the service makes its own values for: not a vendor's.
const std::set<std::string>& OwnSecrets() {
  static const std::set<std::string> kOwn = {"unsubscribe.secret"};
  return kOwn;
}

}  // namespace

std::string ProductionSecrets() {
  std::string out =
      "# DF-Middleware's secrets (docs/deploy.md), read by the unit as its\n"
      "# EnvironmentFile. Keep this file 0600, owned by root. Every line is a\n"
      "# DFM_* variable of the configuration key it names (`dfm config show`).\n"
      "# A value holding a backslash, a double quote or blanks at either end\n"
      "# goes in single quotes (NAME='value'), which systemd reads as written;\n"
      "# one holding a single quote, as a file in /etc/dfm/credentials.\n\n"
      "# Made here, fresh: the service's own.\n";
  for (const auto& key : OwnSecrets()) out += Config::EnvName(key) + "=" + RandomHex(32) + "\n";
  out += "\n# The others': uncomment those you use, with the value given to you.\n";
  for (const auto& k : AllKeys({"default"})) {
    const bool previous = k.key.size() > 9 && k.key.compare(k.key.size() - 9, 9, "_previous") == 0;
    if (k.secret && !OwnSecrets().count(k.key) && !previous) out += "# " + Config::EnvName(k.key) + "=\n";
  }
  return out;
}

Status WriteProductionConfig(const std::string& out, bool force, std::string* said) {
  const std::string env = out + ".env";
  if (!force && (::access(out.c_str(), F_OK) == 0 || ::access(env.c_str(), F_OK) == 0))
    return Status::AlreadyExists(out + " or " + env + " is there already (--force writes over them)");
  Status s = ReplaceFileDurably(env, ProductionSecrets());
  if (s.ok()) s = ReplaceFileDurably(out, ProductionTemplate());
  if (!s.ok()) return s;
  if (::chmod(out.c_str(), 0644) != 0) return Status::IOError("cannot make " + out + " readable");
  *said = "wrote " + out + " (no secret in it) and " + env +
          " (mode 0600: a fresh unsubscribe secret, the vendors' variables to fill in).\n"
          "Next: set server.public_base_url and your vendors' sections in " + out +
          ", the vendors' secrets in " + env + ", then `dfm config check " + out + "`.\n";
  return Status::OK();
}

int RunConfigReference(const std::string& update, std::ostream& out, std::ostream& err) {
  if (update.empty()) {
    out << ReferenceMarkdown();
    return 0;
  }
  std::ifstream in(update, std::ios::binary);
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string next = WithGeneratedReference(doc, ReferenceMarkdown());
  if (!in || next == doc) {
    if (doc.find(kReferenceBegin) == std::string::npos) {
      err << "dfm config reference: " << update << " has no generated part (its marker line)\n";
      return 1;
    }
    out << update << ": up to date\n";
    return 0;
  }
  Status s = ReplaceFileDurably(update, next);
  if (!s.ok()) {
    err << "dfm config reference: " << s.ToString() << "\n";
    return 1;
  }
  out << update << ": updated\n";
  return 0;
}

}  // namespace dfm
