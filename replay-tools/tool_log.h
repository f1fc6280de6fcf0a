// What every `dfm` log tool shares: reading the log, naming times and
// contacts, and a table printer. Nothing here writes to the log.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "projections/projection.h"
#include "storage/event_log.h"
#include "storage/key_store.h"
#include "sync/normalize.h"
#include "util/status.h"

namespace dfm {

class RocksDbEventLog;

// Opens <data_dir> as a RocksDB secondary: safe while the service runs,
// and sees everything the service had made durable when it was opened.
// Its sealed payloads open with the directory's key store, or with what
// the CopyKeys set answers for it (a cluster partition's copy).
Status OpenToolLog(const std::string& data_dir, std::unique_ptr<RocksDbEventLog>* log);

// The keys of a copy of a log kept elsewhere (a cluster partition's,
// cluster/pull.h); NotFound when `data_dir` is none it knows.
using CopyKeys = std::function<Status(const std::string& data_dir, std::shared_ptr<KeyStore>* out)>;
// Set once by `dfm` before a tool runs.
void SetCopyKeys(CopyKeys keys);

// Times on the command line: RFC 3339 ("2026-11-20T15:04:05Z", fractions
// allowed), a date ("2026-11-20", midnight UTC), "now", or an offset from
// now ("-30m", "-2h", "-7d", "-90s"). nullopt when unreadable.
std::optional<int64_t> ParseToolTime(std::string_view text, int64_t now_us);
std::string FormatToolTime(int64_t us);  // "2026-11-20T15:04:05.123Z"

// The first sequence number whose event was recorded at or after `t_us`
// (LastSequence() + 1 when none): recorded times never go back.
uint64_t FirstSeqAtOrAfter(const EventLog& log, int64_t t_us);

// Visits events with from <= seq <= to (to = 0: the head) in order until
// `fn` returns false.
Status ScanEvents(const EventLog& log, uint64_t from, uint64_t to,
                  const std::function<bool(const Event&)>& fn);

// Events recorded in [from_us, to_us) (0: unbounded) with seq >= min_seq,
// in order, until `fn` returns false. An empty window visits nothing.
Status ScanWindow(const EventLog& log, int64_t from_us, int64_t to_us, uint64_t min_seq,
                  const std::function<bool(const Event&)>& fn);

// The event with id `id`, or at sequence number `seq`; NotFound when there
// is none.
Status ReadEventById(const EventLog& log, const EventId& id, Event* out);
Status ReadEventBySeq(const EventLog& log, uint64_t seq, Event* out);

inline bool IsContactStream(std::string_view stream) { return stream.rfind("contact:", 0) == 0; }

// SHA-256 of the stored record of event `seq`: what the next event's
// prev_hash holds, and what an auditor re-computes.
Status RecordHashHex(const EventLog& log, uint64_t seq, std::string* hex);

// A contact as people name it: "+12055550142" or "(205) 555-0142" (a phone),
// "ann@example.com", "<system>:<id>" (ghl, aloware, verity, twilio), or
// "contact:<engine contact id>".
struct ContactRef {
  enum class Kind { kPhone, kEmail, kExternal, kContactId };
  Kind kind = Kind::kPhone;
  std::string system;  // kExternal
  std::string value;   // E.164 phone, lower-case email, the id
};
Status ParseContactRef(std::string_view text, const Normalizer& normalizer, ContactRef* out);

struct ContactMatch {
  std::string tenant;
  std::string contact_id;
  bool operator==(const ContactMatch& o) const {
    return tenant == o.tenant && contact_id == o.contact_id;
  }
};

// The mappings projection as of the log head: its committed state with the
// events after its checkpoint folded in memory (so a projection that lags,
// or was never built, still answers). Keys: projections/sync_projections.h.
class MappingsView {
 public:
  explicit MappingsView(const EventLog& log);
  Status Load();  // folds the events after the checkpoint
  std::optional<std::string> Get(const std::string& key);

 private:
  const EventLog& log_;
  ProjectionState state_;
};

// The contacts `ref` names now, in any of `tenants`: the mappings
// projection's committed state, with the events after its checkpoint folded
// in memory (so a projection that lags, or was never built, still answers).
Status ResolveContacts(const EventLog& log, const ContactRef& ref,
                       const std::vector<std::string>& tenants, std::vector<ContactMatch>* out);
// The same with `view` already loaded (a command that also needs it loads
// the mappings once).
Status ResolveContacts(MappingsView& view, const EventLog& log, const ContactRef& ref,
                       const std::vector<std::string>& tenants, std::vector<ContactMatch>* out);

// A table for people: columns padded to their widest cell (at most
// `max_width` characters; longer cells are cut with "...").
class Table {
 public:
  explicit Table(std::vector<std::string> header, size_t max_width = 60)
      : header_(std::move(header)), max_width_(max_width) {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size(); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  size_t max_width_;
};

// Masks for people-facing output (personal data only on --reveal).
std::string MaskValue(std::string_view field, std::string_view value);

}  // namespace dfm
