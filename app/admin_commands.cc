// `dfm keys ...`, `erase`, `unsubscribe-link`, `cluster ...`
// (app/command_groups.h).
#include <CLI/CLI.hpp>
#include <ctime>
#include <iostream>

#include "app/cluster_command.h"
#include "app/command_groups.h"
#include "app/erase_command.h"
#include "app/keys_command.h"
#include "app/unsubscribe_command.h"

namespace dfm {

struct AdminCommands::Impl {
  std::string* config_path = nullptr;
  KeysCommandArgs keys_args;
  UnsubscribeLinkArgs unsub_args;
  EraseArgs erase_args;
  std::string pull_into, cluster_tenant;
  bool pull_json = false;
  CLI::App *keys = nullptr, *keys_create = nullptr, *keys_list = nullptr, *unsub = nullptr,
           *erase = nullptr, *cluster = nullptr, *pull = nullptr;

  void AddKeys(CLI::App* app);
  void AddPeople(CLI::App* app);  // erase, unsubscribe-link
  void AddCluster(CLI::App* app);
};

void AdminCommands::Impl::AddKeys(CLI::App* app) {
  keys = app->add_subcommand("keys", "API keys for the HTTP API and the status page");
  keys->require_subcommand(1);
  keys_create = keys->add_subcommand("create", "Make a key; its token is printed once");
  keys_create->add_option("-c,--config", *config_path, "configuration file");
  keys_create->add_option("--name", keys_args.name, "what the key is for")->required();
  keys_create->add_option("--role", keys_args.role, "viewer, operator or admin")
      ->capture_default_str();
  keys_create->add_option("--tenant", keys_args.tenant, "its tenant, or * for every one")
      ->capture_default_str();
  keys_list = keys->add_subcommand("list", "Every key, revoked ones too (never their tokens)");
  keys_list->add_option("-c,--config", *config_path, "configuration file");
  keys_list->add_flag("--json", keys_args.json, "JSON lines");
  auto* keys_revoke = keys->add_subcommand("revoke", "Revoke a key at once (its sessions end too)");
  keys_revoke->add_option("-c,--config", *config_path, "configuration file");
  keys_revoke->add_option("id", keys_args.id, "the key's id (dfm keys list)")->required();
}

void AdminCommands::Impl::AddPeople(CLI::App* app) {
  unsub = app->add_subcommand(
      "unsubscribe-link",
      "An address's one-click unsubscribe link and mail headers (docs/email.md)");
  unsub->add_option("-c,--config", *config_path, "configuration file");
  unsub->add_option("--email", unsub_args.email, "the recipient's address")->required();
  unsub->add_option("--tenant", unsub_args.tenant, "its tenant")->capture_default_str();
  unsub->add_option("--campaign", unsub_args.campaign,
                    "the mailing it is for, recorded as the cause");
  unsub->add_flag("--json", unsub_args.json, "one JSON object");

  erase = app->add_subcommand(
      "erase", "Erase a person: destroy the keys of their data in the log (docs/privacy.md)");
  erase->add_option("-c,--config", *config_path, "configuration file");
  erase->add_option("contact", erase_args.contact_id, "the contact id (dfm trace, the API)")
      ->required();
  erase->add_option("--tenant", erase_args.tenant, "its tenant")->capture_default_str();
  erase->add_option("--reason", erase_args.reason, "why: recorded in the erasure event")
      ->required();
  erase->add_flag("--json", erase_args.json, "one JSON object");
  erase->add_flag("--force", erase_args.force,
                  "erase even while the person's opt-out or opt-in pushes are on their way "
                  "(they are lost if the service restarts before they land)");
}

void AdminCommands::Impl::AddCluster(CLI::App* app) {
  cluster =
      app->add_subcommand("cluster", "Cluster mode's logs and partitions (docs/scale-out.md)");
  cluster->require_subcommand(1);
  pull = cluster->add_subcommand(
      "pull", "Copy every partition's log from NATS into DIR/p<NNN>, for the log and replay tools");
  pull->add_option("-c,--config", *config_path, "configuration file (its [cluster])");
  pull->add_option("--into", pull_into, "where the copies go (pulled again: only what is new)")
      ->required();
  pull->add_flag("--json", pull_json, "one JSON object per partition");
  auto* part = cluster->add_subcommand("partition", "The partition a tenant lives in");
  part->add_option("-c,--config", *config_path, "configuration file (its [cluster])");
  part->add_option("tenant", cluster_tenant, "tenant")->required();
}

AdminCommands::AdminCommands(CLI::App* app, std::string* config_path) : impl_(new Impl) {
  impl_->config_path = config_path;
  impl_->AddKeys(app);
  impl_->AddPeople(app);
  impl_->AddCluster(app);
}

AdminCommands::~AdminCommands() = default;

int AdminCommands::Run() {
  Impl& m = *impl_;
  if (!m.keys->parsed() && !m.erase->parsed() && !m.unsub->parsed() && !m.cluster->parsed())
    return -1;
  std::optional<Config> loaded = LoadCommandConfig(*m.config_path);
  if (!loaded) return 2;
  const Config& c = *loaded;
  if (m.keys_create->parsed()) return RunKeysCreate(c, m.keys_args, std::cout, std::cerr);
  if (m.keys_list->parsed()) return RunKeysList(c, m.keys_args, std::cout, std::cerr);
  if (m.keys->parsed()) return RunKeysRevoke(c, m.keys_args, std::cout, std::cerr);
  if (m.erase->parsed()) return RunErase(c, m.erase_args, std::cout, std::cerr);
  if (m.unsub->parsed())
    return RunUnsubscribeLink(c, m.unsub_args, std::time(nullptr), std::cout, std::cerr);
  if (m.pull->parsed()) return RunClusterPull(c, m.pull_into, m.pull_json, std::cout, std::cerr);
  return RunClusterPartition(c, m.cluster_tenant, std::cout);
}

}  // namespace dfm
