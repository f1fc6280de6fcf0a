// The configuration's schema: every key the service reads, declared once
// with its type, default, when a change takes effect, whether it is a
// secret, its validation and one line of doc. It drives Config::Load (what
// is a key, how its value is read and checked, where it goes), the DFM_*
// variables (Config::EnvName of the key), `dfm config check|show`, which
// keys a reload may change, the production template (packaging/dfm.toml,
// `dfm config template`, `dfm config init`) and the reference
// (docs/configuration.md, `dfm config reference`). Tests fail when the
// checked-in template or reference differ from what the schema makes.
//
// Pure: no file, no environment; Config::Load reads those.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dfm {

enum class KeyType {
  kText,
  kWholeNumber,  // within [min, max]
  kBool,         // true | false
  kList,         // a TOML array, or a comma-separated variable
  kListen,       // host:port ([v6]:port)
  kChoice,       // one of `choices`
};

// When a changed value takes effect: at a reload (SIGHUP, POST
// /v1/admin/reload), or only at a restart (a reload that changes it is
// refused whole and the configuration in use stays).
enum class KeyEffect { kReload, kRestart };

// A value read as its key's type says.
struct KeyValue {
  std::string text;  // as given (a list's items joined by ',')
  int64_t number = 0;
  bool flag = false;
  std::vector<std::string> items;
  std::string host;
  uint16_t port = 0;
};

struct GlobalSettings;  // config/config.h

struct KeySpec {
  std::string key;  // "server.listen"
  KeyType type = KeyType::kText;
  std::string default_value;
  KeyEffect apply = KeyEffect::kReload;
  std::string doc;  // one line of Markdown
  bool secret = false;
  // Numbers, flags and addresses: "" is a value too (unset: off, or the
  // tenant inherits the global setting).
  bool empty_ok = false;
  int64_t min = 0, max = 0;          // kWholeNumber
  std::vector<std::string> choices;  // kChoice
  // A check beyond the type: "" when the value is good, else what is wrong
  // ("must ..."), said after the key.
  std::function<std::string(const KeyValue&)> check;
  // Where a global key's value goes; null for keys read per tenant.
  std::function<void(GlobalSettings&, const KeyValue&)> set;
  // The default as the reference says it, when the value alone does not
  // ("the host name").
  std::string shown_default;
  // The production template's value, when it sets one ("" leaves the key
  // commented out at its default).
  std::string production;

  KeySpec&& Secret() && { secret = true; return std::move(*this); }
  KeySpec&& EmptyOk() && { empty_ok = true; return std::move(*this); }
  KeySpec&& Check(std::function<std::string(const KeyValue&)> f) && {
    check = std::move(f);
    return std::move(*this);
  }
  KeySpec&& Shown(std::string s) && { shown_default = std::move(s); return std::move(*this); }
  KeySpec&& Production(std::string v) && { production = std::move(v); return std::move(*this); }
};

// The keys outside any tenant and system, in the reference's order
// (config/schema_keys.cc).
const std::vector<KeySpec>& GlobalKeys();

// Every key of a configuration whose tenants are `tenants` ("default"
// first): the global keys, then the families: `sync.owners.<field>`,
// `sync.roles.<role>`, each connector's settings as `<system>.<key>` for
// the default tenant and `tenants.<t>.<system>.<key>` for the others,
// `tenants.<t>.roles.<role>` and `tenants.<t>.consent.staff_opt_outs_hold`.
std::vector<KeySpec> AllKeys(const std::vector<std::string>& tenants);

// Reads `text` as `spec` says into *out; "" when it is a good value, else
// what is wrong with it.
std::string ReadValue(const KeySpec& spec, const std::string& text, KeyValue* out);

// When a change of `key` (any key AllKeys gives) takes effect.
KeyEffect ApplyOf(const std::string& key);

// Comma-separated items, each trimmed, empty ones dropped.
std::vector<std::string> SplitList(const std::string& s);

// The reference's generated part (docs/configuration.md, between the
// markers below), and `doc` with that part replaced by `generated`
// (unchanged when it has no markers).
extern const char kReferenceBegin[];
extern const char kReferenceEnd[];
std::string ReferenceMarkdown();
std::string WithGeneratedReference(const std::string& doc, const std::string& generated);

// The production template (packaging/dfm.toml): every global key with its
// doc, set where production wants another value than the default, else
// commented at its default; secrets named by their variable, never given;
// the vendors' tables commented.
std::string ProductionTemplate();

}  // namespace dfm
