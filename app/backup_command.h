// `dfm backup`, `dfm backup list|verify` and `dfm restore` (docs/backup.md):
//
//   dfm backup --into DIR [--keep N]     asks the running service (POST
//       /v1/admin/backup), or backs up the data directory itself when no
//       service answers
//   dfm backup list DIR                  the backups and their manifests
//   dfm backup verify DIR [--id N]       files, hash chain and manifest
//   dfm restore DIR [--id N] [--data-dir D] [--replace] [--erasures FILE]
//       onto a stopped service; erasures after the backup applied again
//
// Exit codes: 0 done (verify: sound), 1 verify found a problem, 2 an error.
#pragma once

#include <memory>
#include <string>

namespace CLI {
class App;
}

namespace dfm {

class BackupCommands {
 public:
  // Adds the subcommands to `app`; `config_path` is the shared -c value.
  BackupCommands(CLI::App* app, std::string* config_path);
  ~BackupCommands();
  // The exit code when one of the subcommands was parsed; -1 otherwise.
  int Run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What `dfm --version` prints: the build and the formats it reads and writes.
std::string VersionText();
// The build's version alone ("0.1.0").
std::string VersionString();

}  // namespace dfm
