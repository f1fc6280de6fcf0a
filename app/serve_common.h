// What `dfm serve` needs on a single node and in a cluster alike: the
// configuration reload (SIGHUP, POST /v1/admin/reload) and the alert
// mailer over the front's own /metrics.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "alerts/alerter.h"
#include "config/config.h"
#include "http/server.h"
#include "storage/event_log.h"
#include "storage/key_store.h"
#include "sync/decided_view.h"
#include "util/metrics.h"
#include "util/status.h"

namespace dfm {

// What a configuration reload changes for the tenants and their systems,
// in words for the log ("tenants added: north; systems changed:
// acme/verity"), or "" when nothing did.
std::string DescribeChange(const Config& was, const Config& now);

// SIGHUP and POST /v1/admin/reload: the file read again. A configuration
// with errors, or one that changes what only a restart changes, is refused
// whole; the one in use stays. Every configuration ever put in place is
// kept, because the webhook sources, the actors' tables and the API point
// into it (reloads are rare and small). `apply` puts a sound one in place.
class Reloader {
 public:
  Reloader(std::string path, const Config* first, std::function<void(const Config&)> apply)
      : path_(std::move(path)), current_(first), apply_(std::move(apply)) {}

  // ReloadHandler (console/console.h).
  Status operator()(std::string* summary, const ReloadRecorder& record);

 private:
  const std::string path_;
  std::mutex mu_;
  const Config* current_;
  std::vector<std::unique_ptr<Config>> kept_;
  std::function<void(const Config&)> apply_;
};

// The alert mailer (docs/alerts.md) when [alerts] names an SMTP server:
// it evaluates what `scrape` answers (a single node's GET /metrics, a
// cluster's scope=cluster). Null when off. Not started: the caller keeps
// it where the metrics read it, then starts it.
std::unique_ptr<Alerter> StartAlerter(const Config& config, Alerter::Scrape scrape);

// Runs `front` until SIGTERM or SIGINT under systemd's notify protocol
// (ready once it listens; the watchdog fed while `healthy`; `status` for
// systemctl): 0, or 1 (logged) when it could not listen.
int RunFront(HttpFront* front, std::function<bool()> healthy, const std::string& status);

// POST /v1/admin/erase over `log` sealed with `keys` (app/erase.h), the
// tenant's webhooks read with the configuration's mappers; the erasure
// also written to the ledger at `ledger_path` ("": none). With the sync
// on, it waits for the webhooks about the person to be decided: by
// `router`'s word (SyncRuntime::DecidedSource) as well as the router's
// checkpoint, so only a contact held that they wait for holds it back;
// then up to 10 s for the person's consent pushes on their way to land
// (EraseRequest::consent_wait; none with the sync off), unless `force`.
Status EraseForApi(const Config& config, EventLog* log, KeyStore* keys,
                   const std::string& ledger_path, const std::string& tenant,
                   const std::string& contact, const std::string& reason, const std::string& by,
                   bool force, EraseAnswer* answer, std::function<DecidedView()> router = nullptr);

// The mailer's own families for GET /metrics; nothing when it is off.
void WriteAlerterMetrics(const Alerter* alerter, MetricsText* out);

}  // namespace dfm
