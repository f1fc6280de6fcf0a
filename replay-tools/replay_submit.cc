// Re-drives asked of the running service (`--execute`): the requests
// made from a plan or the dead letters, and their submission through the
// admin API, or straight into the log when no service runs
// (replay-tools/replay.h).
#include <filesystem>
#include <future>
#include <map>
#include <string>

#include "config/config.h"
#include "connectors/common/http_client.h"
#include "replay-tools/replay.h"
#include "storage/rocksdb_event_log.h"
#include "util/admin_token.h"
#include "util/json.h"

namespace dfm {

std::map<std::string, ReplayRequest> RedriveMissing(const ReplayPlan& plan,
                                                    const std::string& reason) {
  std::map<std::string, ReplayRequest> out;
  for (const auto& d : plan.diffs) {
    if (d.kind != "missing") continue;
    auto& r = out[d.contact.tenant];
    r.reason = reason;
    r.items.push_back({d.contact.contact_id, d.webhook_id, d.now, d.webhook_at_us});
  }
  return out;
}

std::map<std::string, ReplayRequest> RedriveDeadLetters(const std::vector<DeadLetter>& dead,
                                                        const std::string& reason) {
  std::map<std::string, ReplayRequest> out;
  for (const auto& d : dead) {
    auto& r = out[d.contact.tenant];
    r.reason = reason;
    r.items.push_back({d.contact.contact_id, d.request_id, d.request, d.request_at_us});
  }
  return out;
}

std::string AdminBaseUrl(const ServerSettings& server) {
  const bool separate = server.admin_listen_port != 0;
  std::string host = separate ? server.admin_listen_host : server.listen_host;
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "::") host = "[::1]";
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  return "http://" + host + ":" +
         std::to_string(separate ? server.admin_listen_port : server.listen_port);
}

ServiceAnswer PostToService(const std::string& data_dir, const std::string& base_url,
                            const std::string& path, const std::string& body) {
  return AskService(data_dir, base_url, "POST", path, body);
}

ServiceAnswer AskService(const std::string& data_dir, const std::string& base_url,
                         const std::string& method, const std::string& path,
                         const std::string& body, int timeout_ms) {
  ServiceAnswer a;
  std::string token;
  if (!ReadAdminToken(data_dir, &token).ok()) return a;
  HttpRequest req;
  req.method = method;
  req.url = base_url + path;
  req.headers = {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};
  req.body = body;
  req.timeout_ms = timeout_ms;
  std::promise<HttpResponse> answered;
  auto answer = answered.get_future();
  {
    CurlHttpClient http(1);
    http.Send(std::move(req), [&answered](HttpResponse r) { answered.set_value(std::move(r)); });
    answer.wait();
  }
  a.http = answer.get();
  if (a.http.status == 200) {
    size_t at = a.http.body.find("\"seq\":");
    a.seq = at == std::string::npos ? 0 : std::strtoull(a.http.body.c_str() + at + 6, nullptr, 10);
    a.duplicate = a.http.body.find("\"status\":\"duplicate\"") != std::string::npos;
  }
  return a;
}

Status OpenLogWithoutService(const std::string& data_dir, const std::string& base_url,
                             std::unique_ptr<RocksDbEventLog>* log) {
  RocksDbLogOptions opts;
  opts.path = data_dir;
  Status s = OpenToolKeys(data_dir, /*read_only=*/false, &opts.keys);
  if (s.ok()) s = RocksDbEventLog::Open(opts, log);
  if (!s.ok())
    return Status::IOError("the service does not answer at " + base_url +
                           " and the log cannot be opened for writing (is the service running "
                           "elsewhere?): " +
                           s.ToString());
  return Status::OK();
}

Status SubmitReplay(const std::string& data_dir, const std::string& base_url,
                    const std::string& tenant, const ReplayRequest& request, std::string* how,
                    uint64_t* seq) {
  std::string body = EncodeReplayRequest(request);
  ServiceAnswer a =
      PostToService(data_dir, base_url, "/v1/admin/replay?tenant=" + UrlEscape(tenant), body);
  if (a.http.status == 200) {
    *seq = a.seq;
    *how = "sent to the running service at " + base_url;
    return Status::OK();
  }
  if (a.http.status != 0)
    return Status::IOError("the service answered HTTP " + std::to_string(a.http.status) + ": " +
                           a.http.body);
  // No service answering: append it ourselves. If a service holds the log,
  // opening it fails (the lock tells); if it had appended the request,
  // appending it again is a duplicate. Not to a cluster node's directory
  // or a copy of a partition: no partition would read it there.
  if (std::filesystem::exists(data_dir + "/PARTITION") ||
      std::filesystem::exists(data_dir + "/partitions"))
    return Status::Unavailable("no node answers at " + base_url +
                               "; in cluster mode the request goes through a running node");
  std::unique_ptr<RocksDbEventLog> log;
  Status s = OpenLogWithoutService(data_dir, base_url, &log);
  if (!s.ok()) return s;
  AppendOutcome outcome;
  s = log->Append(ReplayRequestDraft(tenant, request), &outcome);
  log->Close();
  if (!s.ok()) return s;
  *seq = outcome.seq;
  *how = outcome.duplicate ? "already in the log (the same request was made before)"
                           : "appended to the log; the service carries it out when it starts";
  return Status::OK();
}

}  // namespace dfm
