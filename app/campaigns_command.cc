#include "app/campaigns_command.h"

#include <simdjson.h>

#include <ostream>

#include "connectors/common/http_client.h"
#include "replay-tools/replay.h"

namespace dfm {

namespace {

using simdjson::dom::element;
using simdjson::dom::object;

std::string Text(element e, const char* key) {
  std::string_view v;
  return e[key].get(v) == simdjson::SUCCESS ? std::string(v) : "";
}
int64_t Number(element e, const char* key) {
  int64_t v = 0;
  return e[key].get(v) == simdjson::SUCCESS ? v : 0;
}

void PrintCampaignLine(element c, std::ostream& out) {
  element spec = c["spec"];
  out << Text(spec, "id") << "  " << Text(c, "state") << "  customer " << Text(spec, "customer");
  const std::string name = Text(spec, "name");
  if (!name.empty()) out << "  \"" << name << "\"";
  out << "\n";
}

void PrintList(element doc, std::ostream& out) {
  simdjson::dom::array list;
  if (doc["campaigns"].get(list) != simdjson::SUCCESS || list.size() == 0) {
    out << "no campaigns\n";
    return;
  }
  for (element c : list) PrintCampaignLine(c, out);
}

// "name 3, other 1" of an object of counts; "none" when empty.
std::string Counts(element e) {
  object o;
  std::string s;
  if (e.get(o) == simdjson::SUCCESS)
    for (auto [k, v] : o) {
      int64_t n = 0;
      if (v.get(n) != simdjson::SUCCESS) n = 0;
      s += (s.empty() ? "" : ", ") + std::string(k) + " " + std::to_string(n);
    }
  return s.empty() ? "none" : s;
}

void PrintShow(element doc, std::ostream& out) {
  element c = doc["campaign"];
  PrintCampaignLine(c, out);
  simdjson::dom::array steps;
  if (c["spec"]["steps"].get(steps) == simdjson::SUCCESS) {
    int i = 0;
    for (element st : steps)
      out << "  step " << i++ << ": " << Text(st, "channel") << " after " << Number(st, "delay_s")
          << " s\n";
  }
  const std::string started = Text(c, "started_at");
  if (!started.empty()) out << "  started " << started << "\n";
  out << "  tasks: " << Counts(doc["tasks"]) << "\n";
  out << "  skipped: " << Counts(doc["skipped"]) << "\n";
}

// 0 when every check passes.
int PrintCheck(element doc, std::ostream& out) {
  simdjson::dom::array checks;
  int failing = 0;
  if (doc["checks"].get(checks) == simdjson::SUCCESS)
    for (element c : checks) {
      bool ok = false;
      if (c["ok"].get(ok) != simdjson::SUCCESS) ok = false;
      failing += ok ? 0 : 1;
      out << (ok ? "ok    " : "FAIL  ") << Text(c, "what") << ": " << Text(c, "detail") << "\n";
    }
  out << (failing == 0 ? "it can start\n"
                       : std::to_string(failing) + " check(s) fail: it would not start\n");
  return failing == 0 ? 0 : 1;
}

void PrintTasks(element doc, std::ostream& out) {
  simdjson::dom::array tasks;
  if (doc["tasks"].get(tasks) != simdjson::SUCCESS || tasks.size() == 0) {
    out << "no tasks\n";
    return;
  }
  for (element t : tasks) {
    out << "step " << Number(t, "step") << "  " << Text(t, "contact") << "  " << Text(t, "state");
    const std::string agent = Text(t, "agent"), reason = Text(t, "reason");
    if (!agent.empty()) out << "  by " << agent << " until " << Text(t, "lease_until");
    if (!reason.empty()) out << "  (" << reason << ")";
    out << "\n";
  }
  bool truncated = false;
  if (doc["truncated"].get(truncated) == simdjson::SUCCESS && truncated)
    out << "(more: the first 1000 shown)\n";
}

}  // namespace

int RunCampaignsCommand(const Config& config, const CampaignsCommandArgs& args, std::ostream& out,
                        std::ostream& err) {
  const std::string tenant = "tenant=" + UrlEscape(args.tenant);
  const std::string one = "/v1/campaigns/" + UrlEscape(args.id);
  std::string method = "GET", path;
  if (args.action == "list") {
    path = "/v1/campaigns?" + tenant;
  } else if (args.action == "show") {
    path = one + "?" + tenant;
  } else if (args.action == "check") {
    method = "POST";
    path = one + "/validate?" + tenant;
  } else if (args.action == "tasks" && args.reset) {
    method = "POST";
    path = one + "/tasks/reset?" + tenant;
  } else if (args.action == "tasks") {
    path = one + "/tasks?" + tenant + (args.stuck ? "&stuck=true" : "");
  } else {
    err << "dfm campaigns: list, show, check or tasks\n";
    return 2;
  }
  const std::string base_url = AdminBaseUrl(config.server());
  ServiceAnswer a = AskService(config.data_dir(), base_url, method, path, "", 30000);
  if (a.http.status == 0) {
    err << "dfm campaigns: no service answers at " << base_url
        << " (campaigns are read through the running service: dfm serve)\n";
    return 2;
  }
  if (a.http.status != 200) {
    err << "dfm campaigns: the service answered HTTP " << a.http.status << ": " << a.http.body
        << "\n";
    return 1;
  }
  if (args.json) {
    out << a.http.body << "\n";
    return 0;
  }
  simdjson::dom::parser parser;
  element doc;
  if (parser.parse(a.http.body).get(doc) != simdjson::SUCCESS) {
    err << "dfm campaigns: the service answered something unreadable\n";
    return 1;
  }
  if (args.action == "list") PrintList(doc, out);
  if (args.action == "show") PrintShow(doc, out);
  if (args.action == "tasks" && args.reset)
    out << "reset recorded (" << Text(doc, "event_id")
        << "): the campaign's runner gives back the tasks stuck now; they run again\n";
  else if (args.action == "tasks")
    PrintTasks(doc, out);
  return args.action == "check" ? PrintCheck(doc, out) : 0;
}

}  // namespace dfm
