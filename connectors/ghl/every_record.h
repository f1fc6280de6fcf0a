// An opt-out reaches every GoHighLevel record of the person (issue 46;
// docs/vendors/ghl-api.md "Opt-outs"): the records are found with one
// advanced search (POST /contacts/search, phone OR email), and each gets a
// PUT /contacts/{id} that carries only its DND setting, never the phone,
// email or name, so the location's duplicate rules cannot refuse it.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "connectors/common/outbound.h"

namespace dfm::ghl {

// Whether `op` is a consent push: opt_out, opt_in, mark_dnc.
bool IsConsentPush(const std::string& op);

// The body of the search for every record with the push's phone or email:
// {"locationId","pageLimit":100,"filters":[{"group":"OR","filters":[...]}]}.
// Empty when the push names neither.
std::string EveryRecordQuery(const PushRequest& req, const std::string& location_id);

// The contacts' ids of a search answer ({"contacts":[{"id":...},...]}), in
// its order; empty when unreadable.
std::vector<std::string> ContactIds(const std::string& body);

// Where the opt-out is set, in order: the push's own record first (when
// known), then the others found, each once.
std::vector<std::string> RecordsToSet(const std::string& own, const std::vector<std::string>& found);

// What one record holds of DND: its `dnd` flag (every channel) and the
// channels (ours, sync/consent.h) its dndSettings mark "active".
struct RecordDnd {
  std::string id;
  bool dnd = false;
  std::set<std::string> active;
};
// The records of a search answer ({"contacts":[...]}), or of a GET answer
// ({"contact":{...}}); unreadable ones are left out.
std::vector<RecordDnd> RecordsDnd(const std::string& search_body);
std::optional<RecordDnd> ContactDnd(const std::string& get_body);
// A read_consent answer: held.<channel> = "out" when every record shows it
// opted out (its dndSettings, or its global `dnd` unless `settings_only`),
// else "in"; nothing when there is no record.
std::map<std::string, std::string> HeldConsent(const std::vector<RecordDnd>& records,
                                               const std::vector<std::string>& channels,
                                               bool settings_only = false);

}  // namespace dfm::ghl
