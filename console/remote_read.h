// A read of the keyed API asked of the node that holds the tenant's log
// (cluster mode; cluster/reads.h carries the bytes). Pure.
//
// Grammar (JSON, version 1):
//   request = {"v":1,"route":<string>,"tenant":<string>,
//              "params":[[<name>,<value>],...],"whole"?:true,"parts"?:true}
// ("whole": the caller is a key of every tenant, who also sees the
// installation's own records; absent, they are left out. "parts": the
// asker puts together an answer too large for one message from its parts,
// console/read_parts.h; absent, such an answer is refused.)
//   answer  = {"v":1,"status":<int>,"content_type":<string>,"body":<string>}
// (With "parts":true, an answer whose encoding passes kMaxReadAnswer is
// instead its first part, version 2: console/read_parts.h; or a 503
// answer_too_large when it cannot be parked.)
// The asking node has authenticated the caller and checked its tenant and
// limits; the answering node runs the read as asked.
//
// The status page's search is the read kStoryRoute (params q, reveal);
// its answer's body is
//   stories = {"v":1,"stories":[story...]}
//   story   = {"tenant","contact_id","name","phone","email",
//              "where":[[<system>,<id>]...],
//              "consent":[{"channel","opted_out","since_us","via","how","who"}...],
//              "timeline":[{"at_us","system","what"}...],
//              "waiting":[<string>...],"findings":[<string>...],"it_report"}
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "console/console.h"
#include "console/contact_story.h"
#include "events/event.h"

namespace dfm {

struct RemoteRead {
  std::string route;   // "/v1/events", ...
  std::string tenant;
  std::vector<std::pair<std::string, std::string>> params;
  bool whole = false;
  bool parts = false;
};

std::string EncodeRemoteRead(const RemoteRead& r);
// False when `data` is not a version-1 request.
bool DecodeRemoteRead(std::string_view data, RemoteRead* r);

inline constexpr char kStoryRoute[] = "/docs/visual/search";

// POST /v1/admin/replay and /v1/admin/settle are planned where the tenant's
// log is: the reads kReplayPlanRoute and kSettlePlanRoute (param body, the
// POST's) answer with the draft to append, or the refusal. Their answer's
// body when 200:
//   planned = {"v":1,"items":<uint>,"stream","type","schema_version",
//              "payload","causation_id","correlation_id",
//              "idempotency_system","idempotency_key"}
// (ids as EventId::ToString, "" for zero).
inline constexpr char kReplayPlanRoute[] = "/v1/admin/replay#plan";
inline constexpr char kSettlePlanRoute[] = "/v1/admin/settle#plan";
// The tenant of a decoded draft is the asker's (the request's).
std::string EncodePlannedDraft(const EventDraft& d, uint64_t items);
bool DecodePlannedDraft(std::string_view data, EventDraft* d, uint64_t* items);
// POST /v1/admin/erase runs where the tenant's log and keys are: the
// request kEraseRoute (params contact, reason, by) is answered with
//   erased = {"v":1,"code":"ok"|"not_found"|"unavailable","message",
//             "seq","already","keys","events","sources","subjects"}
inline constexpr char kEraseRoute[] = "/v1/admin/erase#run";
std::string EncodeEraseAnswer(const Status& s, const EraseAnswer& a);
// False when `data` is not a version-1 answer; else *s is the erasure's.
bool DecodeEraseAnswer(std::string_view data, Status* s, EraseAnswer* a);
// /v1/admin/backfill runs on the node of the tenant's partition, whose log
// and connectors those are: the request kBackfillRoute (params start "1"
// or "0", system, page_size, restart "1" or "0") is answered with
//   backfill = {"v":1,"code":"ok"|"exists"|"invalid"|"unavailable",
//               "message","json"}   ; json: BackfillHandler's *json
inline constexpr char kBackfillRoute[] = "/v1/admin/backfill#run";
RemoteRead BackfillRequest(const std::string& tenant, const BackfillAsk& ask);
// False when `r` is not a backfill request.
bool DecodeBackfillRequest(const RemoteRead& r, BackfillAsk* ask);
std::string EncodeBackfillAnswer(const Status& s, const std::string& json);
// False when `data` is not a version-1 answer; else *s is the handler's.
bool DecodeBackfillAnswer(std::string_view data, Status* s, std::string* json);
std::string EncodeStories(const std::vector<ContactStory>& stories);
// False when `data` is not version-1 stories.
bool DecodeStories(std::string_view data, std::vector<ContactStory>* stories);

std::string EncodeReadAnswer(const ApiResponse& a);
// False when `data` is not a version-1 answer.
bool DecodeReadAnswer(std::string_view data, ApiResponse* a);

}  // namespace dfm
