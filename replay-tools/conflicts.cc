#include "replay-tools/conflicts.h"

#include "connectors/common/http_client.h"
#include "replay-tools/replay.h"
#include "replay-tools/tool_log.h"
#include "storage/rocksdb_event_log.h"
#include "util/json.h"
#include "util/strings.h"

namespace dfm {

Status FindConflicts(const EventLog& log, const std::string& tenant, bool open_only,
                     std::vector<ConflictRow>* out) {
  std::vector<ConflictRow> rows;
  std::map<EventId, size_t> by_id;  // conflict id -> row
  Status s = ScanEvents(log, 1, 0, [&](const Event& e) {
    if (e.type != ev::kIdentityConflict && e.type != ev::kIdentitySettled) return true;
    if (!tenant.empty() && e.tenant != tenant) return true;
    DomainEvent d;
    if (!AsDomainEvent(e, &d)) return true;
    if (e.type == ev::kIdentityConflict) {
      ConflictRow r;
      r.seq = e.seq;
      r.recorded_at_us = e.recorded_at_us;
      r.tenant = e.tenant;
      r.system = d.system;
      r.external_id = d.external_id;
      r.candidates = d.candidates;
      r.fields = d.fields;
      r.webhook_seq = d.webhook_seq;
      by_id[e.id] = rows.size();
      rows.push_back(std::move(r));
    } else if (auto it = by_id.find(e.causation_id); it != by_id.end()) {
      ConflictRow& r = rows[it->second];
      if (r.settled_seq == 0) {  // the first settles it; the log refuses a second
        r.settled_seq = e.seq;
        r.chosen = d.contact_id;
        r.reason = d.reason;
      }
    }
    return true;
  });
  if (!s.ok()) return s;
  out->clear();
  for (auto& r : rows)
    if (!open_only || r.settled_seq == 0) out->push_back(std::move(r));
  return Status::OK();
}

namespace {

std::string State(const ConflictRow& r) {
  if (r.settled_seq == 0) return "open";
  return (r.chosen.empty() ? "dismissed" : "settled: " + r.chosen) + " (event " +
         std::to_string(r.settled_seq) + ")";
}

}  // namespace

int PrintConflicts(const std::vector<ConflictRow>& rows, bool json, bool reveal,
                   std::ostream& out) {
  bool open = false;
  Table table({"conflict", "recorded", "tenant", "system", "fields", "candidates", "state"}, 80);
  for (const auto& r : rows) {
    open = open || r.settled_seq == 0;
    if (json) {
      JsonArray candidates;
      for (const auto& [id, by] : r.candidates)
        candidates.Raw(JsonObject().Str("contact_id", id).Str("matched_by", by).Finish());
      JsonObject fields;
      for (const auto& [k, v] : r.fields) fields.Str(k, reveal ? v : MaskValue(k, v));
      JsonObject o;
      o.UInt("conflict", r.seq)
          .Str("recorded_at", FormatToolTime(r.recorded_at_us))
          .Str("tenant", r.tenant)
          .Str("system", r.system)
          .Str("external_id", r.external_id)
          .UInt("webhook_seq", r.webhook_seq)
          .Raw("fields", fields.Finish())
          .Raw("candidates", candidates.Finish())
          .Str("state", r.settled_seq == 0 ? "open"
                        : r.chosen.empty() ? "dismissed"
                                           : "settled");
      if (r.settled_seq) o.UInt("settled_seq", r.settled_seq).Str("contact_id", r.chosen);
      if (!r.reason.empty() && reveal) o.Str("reason", r.reason);  // may name a phone or email
      out << o.Finish() << "\n";
      continue;
    }
    std::string fields, candidates;
    for (const auto& [k, v] : r.fields)
      fields += (fields.empty() ? "" : ", ") + k + "=" + (reveal ? v : MaskValue(k, v));
    for (const auto& [id, by] : r.candidates)
      candidates += (candidates.empty() ? "" : ", ") + id + " (" + by + ")";
    std::string state = State(r);
    if (reveal && !r.reason.empty()) state += ": " + r.reason;  // may name a phone or email
    table.Add({std::to_string(r.seq), FormatToolTime(r.recorded_at_us), r.tenant,
               r.system + (r.external_id.empty() ? "" : ":" + r.external_id), fields, candidates,
               state});
  }
  if (!json) {
    if (rows.empty()) {
      out << "no identity conflicts\n";
    } else {
      table.Print(out);
      if (open)
        out << "settle one: dfm conflicts settle <conflict> --contact <candidate> (or --dismiss)\n";
    }
  }
  return open ? 1 : 0;
}

Status SubmitSettlement(const std::string& data_dir, const std::string& base_url,
                        const std::string& tenant, const SettleRequest& request, std::string* how,
                        uint64_t* seq, bool* duplicate) {
  ServiceAnswer a =
      PostToService(data_dir, base_url, "/v1/admin/settle?tenant=" + UrlEscape(tenant),
                    EncodeSettleRequest(request));
  const HttpResponse& r = a.http;
  if (r.status == 200) {
    *seq = a.seq;
    *duplicate = a.duplicate;
    *how = "sent to the running service at " + base_url;
    return Status::OK();
  }
  // The service's refusals of this settlement; other statuses (admin
  // endpoints off, the wrong listener) are the setup's.
  const bool refused =
      (r.status == 404 && r.body.find("unknown_conflict") != std::string::npos) || r.status == 422;
  if (refused)
    return Status::InvalidArgument("the service refused it (HTTP " + std::to_string(r.status) +
                                   "): " + r.body);
  if (r.status != 0)
    return Status::IOError("the service answered HTTP " + std::to_string(r.status) + ": " + r.body);
  // No answer (or no service has run here): if a service holds the log,
  // opening it fails below; if it had appended the settlement, appending it
  // again is a duplicate.
  std::unique_ptr<RocksDbEventLog> log;
  Status s = OpenLogWithoutService(data_dir, base_url, &log);
  if (!s.ok()) return s;
  Event conflict;
  s = ReadEventBySeq(*log, request.conflict_seq, &conflict);
  EventDraft d;
  if (s.ok()) {
    s = PlanSettlement(conflict, tenant, request, &d);
  } else if (s.code() == Status::Code::kNotFound) {
    s = Status::InvalidArgument("event " + std::to_string(request.conflict_seq) +
                                " is not in the log");
  }
  AppendOutcome outcome;
  if (s.ok()) s = log->Append(std::move(d), &outcome);
  log->Close();
  if (!s.ok()) return s;
  *seq = outcome.seq;
  *duplicate = outcome.duplicate;
  *how = "appended to the log; the service carries it out when it starts";
  return Status::OK();
}

}  // namespace dfm
