// What the schema writes for people: the reference's tables and the
// production template (config/schema.h).
#include <map>
#include <string>

#include "config/config.h"
#include "config/schema.h"
#include "connectors/connector.h"

namespace dfm {

const char kReferenceBegin[] =
    "<!-- generated from the schema by `dfm config reference --update "
    "docs/configuration.md`: do not edit by hand -->";
const char kReferenceEnd[] = "<!-- end of the generated reference -->";

namespace {

std::string Section(const std::string& key) { return key.substr(0, key.find('.')); }

bool IsPrevious(const std::string& key) {
  return key.size() > 9 && key.compare(key.size() - 9, 9, "_previous") == 0;
}

std::string Cell(std::string text) {
  std::string out;
  for (char c : text) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

std::string Row(const KeySpec& k) {
  std::string def = !k.shown_default.empty() ? k.shown_default
                    : k.default_value.empty() ? "empty"
                                              : "`" + k.default_value + "`";
  std::string doc = k.secret ? "**secret**; " + k.doc : k.doc;
  return "| `" + k.key + "` | " + Cell(def) + " | " + (k.apply == KeyEffect::kRestart ? "restart" : "reload") +
         " | " + Cell(doc) + " |\n";
}

const char kTableHead[] = "| key | default | a change takes effect at | meaning |\n|---|---|---|---|\n";

// A value as TOML writes it.
std::string Toml(const KeySpec& k, const std::string& v) {
  if (k.type == KeyType::kWholeNumber || k.type == KeyType::kBool) return v;
  auto quote = [](const std::string& s) {
    std::string out = "\"";
    for (char c : s) out += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
    return out + "\"";
  };
  if (k.type != KeyType::kList) return quote(v);
  std::string out;
  for (const auto& item : SplitList(v)) out += (out.empty() ? "" : ", ") + quote(item);
  return "[" + out + "]";
}

}  // namespace

std::string ReferenceMarkdown() {
  std::string out = std::string(kReferenceBegin) + "\n\n### The service\n\n" + kTableHead;
  for (const auto& k : GlobalKeys()) out += Row(k);
  out += "\n### Merge owners and roles\n\n" + std::string(kTableHead);
  for (const auto& k : AllKeys({"default"}))
    if (k.key.rfind("sync.owners.", 0) == 0 || k.key.rfind("sync.roles.", 0) == 0) out += Row(k);
  out += "\nA named tenant may set its own: `tenants.<t>.roles.<role>` and "
         "`tenants.<t>.consent.staff_opt_outs_hold` (empty: the global setting).\n";
  for (const Connector* con : Connectors()) {
    out += "\n### `" + con->system + "`: " + con->name + "\n\n" + kTableHead;
    for (const auto& k : AllKeys({"default"}))
      if (k.key.rfind(con->system + ".", 0) == 0) out += Row(k);
  }
  return out + "\n" + kReferenceEnd + "\n";
}

std::string WithGeneratedReference(const std::string& doc, const std::string& generated) {
  const size_t begin = doc.find(kReferenceBegin);
  const size_t end = doc.find(kReferenceEnd);
  if (begin == std::string::npos || end == std::string::npos || end < begin) return doc;
  size_t after = end + sizeof(kReferenceEnd) - 1;
  if (after < doc.size() && doc[after] == '\n') ++after;
  return doc.substr(0, begin) + generated + doc.substr(after);
}

std::string ProductionTemplate() {
  std::string out =
      "# DF-Middleware production configuration (docs/deploy.md), installed as\n"
      "# /etc/dfm/dfm.toml; generated from the schema (`dfm config template`).\n"
      "# No secret is written here: give each as the DFM_* variable named\n"
      "# beside it, as a file named after the variable in /etc/dfm/credentials\n"
      "# (the unit loads them all) or in /etc/dfm/dfm.env (mode 0600; `dfm\n"
      "# config init` writes it). `dfm config check /etc/dfm/dfm.toml` says what is\n"
      "# wrong; docs/configuration.md explains every key. (restart): a change\n"
      "# takes effect at a restart only; the others at a reload (SIGHUP).\n";
  std::string section;
  for (const auto& k : GlobalKeys()) {
    if (Section(k.key) != section) {
      section = Section(k.key);
      out += "\n[" + section + "]\n";
    }
    const std::string name = k.key.substr(section.size() + 1);
    out += "# " + k.doc + (k.apply == KeyEffect::kRestart ? " (restart)" : "") + "\n";
    if (k.secret)
      out += "# " + name + ": a secret, give it as " + Config::EnvName(k.key) + "\n";
    else if (!k.production.empty())
      out += name + " = " + Toml(k, k.production) + "\n";
    else
      out += "# " + name + " = " + Toml(k, k.default_value) + "\n";
  }
  out += "\n# The vendors: uncomment the tables you use. Their secrets are\n"
         "# given as the variables named; every other key is in\n"
         "# docs/configuration.md.\n";
  for (const Connector* con : Connectors()) {
    out += "\n# [" + con->system + "]  " + con->name + "\n";
    for (const auto& s : con->settings) {
      if (IsPrevious(s.key)) continue;
      const std::string key = con->system + "." + s.key;
      if (s.secret)
        out += "#   " + Config::EnvName(key) + " (secret: " + s.key + ")\n";
      else if (s.default_value.empty())
        out += "# " + s.key + " = \"\"\n";
    }
  }
  return out;
}

}  // namespace dfm
