// `dfm config ...` (app/command_groups.h).
#include <CLI/CLI.hpp>
#include <iostream>

#include "app/command_groups.h"
#include "app/config_init.h"
#include "cluster/nats_client.h"
#include "cluster/tls_probe.h"
#include "config/schema.h"
#include "storage/data_dir.h"

namespace dfm {

int PrintConfigProblems(const std::vector<ConfigProblem>& problems, std::ostream& out) {
  int errors = 0;
  for (const auto& p : problems) {
    out << (p.error ? "error: " : "warning: ") << p.key << ": " << p.message << "\n";
    errors += p.error ? 1 : 0;
  }
  return errors;
}

std::optional<Config> LoadCommandConfig(const std::string& path) {
  std::vector<ConfigProblem> problems;
  Config c = Config::Load(path, Config::ProcessEnv(), &problems);
  if (PrintConfigProblems(problems, std::cerr) > 0) return std::nullopt;
  return c;
}

namespace {

// `dfm config check FILE`: every problem, a warning too, fails it.
int RunCheck(const std::string& path) {
  std::vector<ConfigProblem> problems;
  Config c = Config::Load(path, Config::ProcessEnv(), &problems);
  std::string loose = DescribeLooseModes(c.data_dir(), LooseModes(c.data_dir()));
  if (!loose.empty()) problems.push_back({"storage.data_dir", loose, false});
  // A tls:// URL with no CA is checked against the system's store.
  const ClusterSettings& cl = c.cluster();
  for (const auto& url :
       cl.enabled&& cl.nats_ca_file.empty() ? cl.nats_urls : std::vector<std::string>{}) {
    if (url.rfind("tls://", 0) != 0) continue;
    Status probed = ProbeNatsTls(url, kSystemCaFile, 3000);
    if (probed.IsInvalidArgument())
      problems.push_back(
          {"cluster.nats_ca_file",
           url + ": " + probed.message() + "; give the CA that signed the servers' certificates"});
    else if (!probed.ok())
      problems.push_back(
          {"cluster.nats_urls", probed.message() + "; its certificate was not checked", false});
  }
  // Any problem fails the check, a warning too: a `DFM_*` variable that
  // matches no key is most often a secret given under a mistyped name,
  // which `dfm serve` would run without; a data directory others may
  // read gives away what the service keeps.
  PrintConfigProblems(problems, std::cout);
  if (problems.empty()) std::cout << path << ": OK\n";
  return problems.empty() ? 0 : 1;
}

// `dfm config show [FILE]`: every key's resolved value, secrets hidden.
int RunShow(const std::string& path) {
  std::vector<ConfigProblem> problems;
  Config c = Config::Load(path, Config::ProcessEnv(), &problems);
  for (const auto& [k, v] : c.Describe())
    std::cout << k << " = \"" << v << "\"    # " << Config::EnvName(k)
              << (ApplyOf(k) == KeyEffect::kRestart ? ", restart to change" : "") << "\n";
  return PrintConfigProblems(problems, std::cerr) > 0 ? 1 : 0;
}

}  // namespace

struct ConfigCommands::Impl {
  std::string check_path, show_path, init_out, reference_update;
  bool init_force = false;
  CLI::App *check = nullptr, *show = nullptr, *init = nullptr, *tmpl = nullptr,
           *reference = nullptr;
};

ConfigCommands::ConfigCommands(CLI::App* app) : impl_(new Impl) {
  Impl& m = *impl_;
  auto* config_cmd = app->add_subcommand("config", "Check, show or start a configuration");
  config_cmd->require_subcommand(1);
  m.check = config_cmd->add_subcommand("check",
                                       "Print every problem with its key; exit 1 if there is any");
  m.check->add_option("file", m.check_path, "TOML configuration file")->required();
  m.show = config_cmd->add_subcommand("show", "Print every key's resolved value (secrets hidden)");
  m.show->add_option("file", m.show_path, "TOML configuration file");
  m.init =
      config_cmd->add_subcommand("init", "Write a production configuration and its secrets file");
  m.init->add_option("--out", m.init_out, "the configuration file (FILE.env gets the secrets)")
      ->required();
  m.init->add_flag("--force", m.init_force, "write over the files when they are there");
  m.tmpl =
      config_cmd->add_subcommand("template", "Print the production template (packaging/dfm.toml)");
  m.reference =
      config_cmd->add_subcommand("reference", "Print the keys' reference (docs/configuration.md)");
  m.reference->add_option("--update", m.reference_update,
                          "rewrite the generated part of this Markdown file");
}

ConfigCommands::~ConfigCommands() = default;

int ConfigCommands::Run() {
  Impl& m = *impl_;
  if (m.check->parsed()) return RunCheck(m.check_path);
  if (m.init->parsed()) {
    std::string said;
    Status is = WriteProductionConfig(m.init_out, m.init_force, &said);
    if (!is.ok()) {
      std::cerr << "dfm config init: " << is.ToString() << "\n";
      return 2;
    }
    std::cout << said;
    return 0;
  }
  if (m.tmpl->parsed()) {
    std::cout << ProductionTemplate();
    return 0;
  }
  if (m.reference->parsed()) return RunConfigReference(m.reference_update, std::cout, std::cerr);
  if (m.show->parsed()) return RunShow(m.show_path);
  return -1;
}

}  // namespace dfm
