// GoHighLevel's client: a consent push (mark_dnc, opt_out, opt_in) and a
// read back, on every record of the person (every_record.h; the protocol:
// client.cc).
#include <simdjson.h>

#include <algorithm>
#include <memory>

#include "connectors/common/json_body.h"
#include "connectors/ghl/client_impl.h"
#include "connectors/ghl/dnd.h"
#include "connectors/ghl/every_record.h"
#include "sync/consent.h"
#include "sync/fact.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/strings.h"

namespace dfm {
namespace ghl {

// A consent push: every record of the person (every_record.h).
void GhlClient::SetEveryRecord(const StatePtr& st) {
  const std::string query = ghl::EveryRecordQuery(st->req, location_);
  if (query.empty()) return SetEach(st, ghl::RecordsToSet(st->req.external_id, {}), 0, {});
  HttpRequest r = Base(st, "POST", "/contacts/search");
  r.body = query;
  http_->Send(std::move(r), [this, st](HttpResponse resp) {
    if (resp.status / 100 != 2 && !st->req.external_id.empty()) {
      // The search failed: the push's own record gets it now, and the
      // push fails as the search did (tried again for the others).
      auto failed = std::make_shared<const HttpResponse>(std::move(resp));
      return SetEach(st, {st->req.external_id}, 0, {}, std::move(failed));
    }
    if (Settle(st, resp)) return;
    SetEach(st, ghl::RecordsToSet(st->req.external_id, ghl::ContactIds(resp.body)), 0, {});
  });
}

// read_consent: what every record of the person holds (every_record.h):
// the search's records (their dndSettings come with them), and its own by
// GET /contacts/{id} when the search did not list it. A read that follows
// a consent push of ours (field "after") reads its own record and those
// the push set (field "ids") by id, whatever the search lists: the search
// is eventually consistent (docs/vendors/ghl-api.md 3.7) and would show
// them as they were before the push wrote them (none of them read by id,
// it answers nothing). After an opt-in it reads
// each channel's dndSettings alone (the global `dnd`, which the opt-in
// leaves, is no setting made since).
void GhlClient::ReadConsent(const StatePtr& st) {
  const std::string query = ghl::EveryRecordQuery(st->req, location_);
  if (query.empty()) return ReadByIds(st, {});
  HttpRequest r = Base(st, "POST", "/contacts/search");
  r.body = query;
  http_->Send(std::move(r), [this, st](HttpResponse resp) {
    if (Settle(st, resp)) return;
    ReadByIds(st, ghl::RecordsDnd(resp.body));
  });
}

// The records `records` (the search's) lacks or may hold stale, read by id.
void GhlClient::ReadByIds(const StatePtr& st, std::vector<ghl::RecordDnd> records) {
  const std::string& own = st->req.external_id;
  std::vector<std::string> ids;
  if (!st->req.Field("after").empty()) {
    if (!own.empty()) ids.push_back(own);
    for (const auto& id : SplitChannels(st->req.Field("ids")))
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
    auto fresh = [&ids](const ghl::RecordDnd& r) {
      return std::find(ids.begin(), ids.end(), r.id) != ids.end();
    };
    records.erase(std::remove_if(records.begin(), records.end(), fresh), records.end());
  } else if (!own.empty() &&
             std::none_of(records.begin(), records.end(),
                          [&own](const ghl::RecordDnd& r) { return r.id == own; })) {
    ids.push_back(own);
  }
  ReadEach(st, std::move(records), std::move(ids), 0, 0);
}

// GETs ids[i..] into `records` (`got` of them read so far), then
// answers. One gone is skipped (the others tell), except after a push of
// ours: none of its records read by id, or any unreadable, answers
// nothing (the search's copies may be as old as the push).
void GhlClient::ReadEach(const StatePtr& st, std::vector<ghl::RecordDnd> records,
                         std::vector<std::string> ids, size_t i, size_t got) {
  const bool after = !st->req.Field("after").empty();
  if (i == ids.size()) {
    if (after && got == 0) records.clear();
    return AnswerHeld(st, records);
  }
  const std::string path = "/contacts/" + UrlEscape(ids[i]);
  http_->Send(Base(st, "GET", path),
              [this, st, records, ids, i, got, after](HttpResponse resp) mutable {
                if (IsNotFound(resp)) {
                  st->result.requests++;
                } else {
                  if (Settle(st, resp)) return;
                  auto one = ghl::ContactDnd(resp.body);
                  if (!one && after) return AnswerHeld(st, {});
                  if (one) {
                    records.push_back(std::move(*one));
                    got++;
                  }
                }
                ReadEach(st, std::move(records), std::move(ids), i + 1, got);
              });
}

void GhlClient::AnswerHeld(const StatePtr& st, const std::vector<ghl::RecordDnd>& records) {
  const bool settings_only = st->req.Field("after") == "opt_in";
  st->result.answered = ghl::HeldConsent(records, SplitChannels(st->req.channel), settings_only);
  st->result.http_status = 200;
  st->result.detail = "read " + std::to_string(records.size()) + " GoHighLevel contact" +
                      (records.size() == 1 ? "" : "s");
  st->done(std::move(st->result));
}

// A consent push that found no record of the person: an opt-out makes
// one with its DND set (a contact GoHighLevel does not know yet, or one
// staff deleted, is never texted without it); an opt-in or a deletion's
// mark has nothing to lift or mark there, and makes none (it would bring
// back a record staff deleted).
void GhlClient::NoRecord(const StatePtr& st) {
  if (st->req.op == "opt_out") return Upsert(st);
  st->result.http_status = 200;
  st->result.detail = "no GoHighLevel contact of the person: nothing to " +
                      std::string(st->req.op == "opt_in" ? "lift" : "mark");
  st->done(std::move(st->result));
}

// Sets ids[i..] with a body of only the consent fields; `set`: those done.
// `then_fail`: the answer the push ends with once they are set.
void GhlClient::SetEach(const StatePtr& st, std::vector<std::string> ids, size_t i,
                        std::vector<std::string> set,
                        std::shared_ptr<const HttpResponse> then_fail) {
  if (i == ids.size()) {
    if (then_fail) {
      if (!Settle(st, *then_fail)) st->done(std::move(st->result));
      return;
    }
    if (set.empty()) return NoRecord(st);
    std::string all;
    for (const auto& id : set) all += (all.empty() ? "" : ",") + id;
    // The contact's own record, only when it is the push's own: a record
    // the search found may be another contact's (a phone or email two
    // people share), and the contact is not linked to it here
    // (answer.ids names every record set; sync_projections.cc maps the
    // ones nobody holds).
    if (set[0] == st->req.external_id) st->result.external_id = set[0];
    st->result.answered["ids"] = all;
    st->result.detail = "set on " + std::to_string(set.size()) + " GoHighLevel contact" +
                        (set.size() == 1 ? "" : "s") + ": " + all;
    return st->done(std::move(st->result));
  }
  HttpRequest r = Base(st, "PUT", "/contacts/" + UrlEscape(ids[i]));
  PushRequest only = st->req;
  only.fields.clear();  // never the phone, email or name: duplicate rules cannot refuse it
  r.body = ContactBody(only, location_, false);
  http_->Send(std::move(r), [this, st, ids, i, set, then_fail](HttpResponse resp) mutable {
    if (IsNotFound(resp)) {  // deleted or merged away: the others still count
      st->result.requests++;
      return SetEach(st, std::move(ids), i + 1, std::move(set), std::move(then_fail));
    }
    if (Settle(st, resp)) return;
    set.push_back(ids[i]);
    SetEach(st, std::move(ids), i + 1, std::move(set), std::move(then_fail));
  });
}

}  // namespace ghl
}  // namespace dfm
