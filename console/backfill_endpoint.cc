// GET and POST /v1/admin/backfill (docs/http-api.md): the backfills the
// service runs (app/backfill_jobs.h), on whichever node runs the tenant.
#include <simdjson.h>

#include "console/console_internal.h"
#include "util/json.h"
#include "util/logging.h"

namespace dfm {

namespace {

// The POST body {"system", "page_size"?, "restart"?}; false when malformed.
bool ParseBackfillAsk(const std::string& text, BackfillAsk* ask) {
  simdjson::dom::parser parser;
  simdjson::dom::object body;
  std::string_view system;
  if (parser.parse(text.data(), text.size()).get(body) != simdjson::SUCCESS ||
      body["system"].get(system) != simdjson::SUCCESS || system.empty())
    return false;
  ask->start = true;
  ask->system = std::string(system);
  int64_t size = ask->page_size;
  auto page = body["page_size"];
  if (page.error() != simdjson::NO_SUCH_FIELD && page.get(size) != simdjson::SUCCESS) return false;
  if (size < 1 || size > 1000) return false;
  ask->page_size = static_cast<int>(size);
  auto restart = body["restart"];
  if (restart.error() != simdjson::NO_SUCH_FIELD && restart.get(ask->restart) != simdjson::SUCCESS)
    return false;
  return true;
}

ApiResponse Refusal(const Status& s, const std::string& json) {
  if (s.IsInvalidArgument()) return JsonError(422, "not_backfillable", s.message());
  if (s.code() == Status::Code::kAlreadyExists) {
    ApiResponse a;
    a.status = 409;
    a.body = JsonObject()
                 .Str("error", "backfill_running")
                 .Str("detail", s.message())
                 .Raw("backfill", json)
                 .Finish();
    return a;
  }
  ApiResponse a = JsonError(503, "unavailable", s.message());
  a.headers.emplace_back("Retry-After", "2");
  return a;
}

}  // namespace

// GET: {"backfills": [<run>...]}. POST: starts one, records who asked
// (admin.action), answers 200 {"status","event_id","seq","backfill":<run>}.
void Console::Impl::Backfill(const ApiRequest& r, const Principal& who, const std::string& tenant,
                             Headers headers, Responder respond) {
  BackfillAsk ask;
  if (r.method == "POST" && !ParseBackfillAsk(r.body, &ask)) {
    counters->rejected.fetch_add(1);
    respond(With(
        JsonError(400, "malformed_body",
                  "expected {\"system\": \"<system>\", \"page_size\": 1-1000, \"restart\": false}"),
        std::move(headers)));
    return;
  }
  if (!backfill) {
    respond(
        With(JsonError(503, "unavailable", "this process runs no sync ([sync] enabled = false)"),
             std::move(headers)));
    return;
  }
  worker->Post([this, r, who, tenant, ask, headers = std::move(headers),
                respond = std::move(respond)]() mutable {
    std::string json;
    Status s = backfill(tenant, ask, &json);
    if (!s.ok()) {
      (s.IsUnavailable() || s.IsNotFound() ? counters->unavailable : counters->rejected)
          .fetch_add(1);
      respond(With(Refusal(s, json), std::move(headers)));
      return;
    }
    if (!ask.start) {
      ApiResponse a;
      a.content_type = "application/json";
      a.body = JsonObject().Raw("backfills", json).Finish();
      respond(With(std::move(a), std::move(headers)));
      return;
    }
    Logger("http")->info("request_id={} tenant={} event=backfill_asked system={} by={}",
                         r.request_id, tenant, ask.system, who.credential);
    std::vector<EventDraft> drafts{
        AdminAction(r, who, tenant, "backfill", "backfill/" + ask.system)};
    AppendAndAnswer(std::move(drafts), std::move(headers), std::move(respond),
                    [json](JsonObject* o) { o->Raw("backfill", json); });
  });
}

}  // namespace dfm
