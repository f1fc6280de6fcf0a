#include "replay-tools/tool_log.h"

#include <algorithm>
#include <limits>
#include <ostream>

#include "connectors/connector.h"
#include "events/codec.h"
#include "projections/sync_projections.h"
#include "storage/rocksdb_event_log.h"
#include "sync/domain_event.h"
#include "sync/identity.h"
#include "util/clock.h"
#include "util/crypto.h"
#include "util/logging.h"

namespace dfm {

namespace {
CopyKeys& CopyKeysSet() {
  static CopyKeys keys;
  return keys;
}
}  // namespace

void SetCopyKeys(CopyKeys keys) { CopyKeysSet() = std::move(keys); }

Status OpenToolLog(const std::string& data_dir, std::unique_ptr<RocksDbEventLog>* log) {
  RocksDbLogOptions o;
  o.path = data_dir;
  o.read_only = true;
  Status s = CopyKeysSet() ? CopyKeysSet()(data_dir, &o.keys) : Status::NotFound("");
  if (s.IsNotFound()) s = OpenToolKeys(data_dir, /*read_only=*/true, &o.keys);
  if (s.ok()) s = RocksDbEventLog::Open(o, log);
  if (s.ok()) s = (*log)->Refresh();
  return s;
}

std::optional<int64_t> ParseToolTime(std::string_view text, int64_t now_us) {
  if (text == "now") return now_us;
  if (text.size() >= 3 && text[0] == '-') {
    int64_t unit = 0;
    switch (text.back()) {
      case 's':
        unit = 1000000LL;
        break;
      case 'm':
        unit = 60LL * 1000000;
        break;
      case 'h':
        unit = 3600LL * 1000000;
        break;
      case 'd':
        unit = 86400LL * 1000000;
        break;
      default:
        return std::nullopt;
    }
    int64_t n = 0;
    for (char c : text.substr(1, text.size() - 2)) {
      if (c < '0' || c > '9' || n > 1000000000) return std::nullopt;
      n = n * 10 + (c - '0');
    }
    // A span past what 64 bits of µs hold (~292,000 years) is no time.
    if (n > std::numeric_limits<int64_t>::max() / unit) return std::nullopt;
    return now_us - n * unit;
  }
  if (text.size() == 10) return ParseIso8601Micros(std::string(text) + "T00:00:00Z");
  return ParseIso8601Micros(text);
}

std::string FormatToolTime(int64_t us) { return FormatIso8601Millis(us); }

uint64_t FirstSeqAtOrAfter(const EventLog& log, int64_t t_us) {
  uint64_t lo = 1, hi = log.LastSequence() + 1;  // answer in [lo, hi]
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    Event one;  // when it was recorded: the payload is not opened
    if (!log.ReadUnopened(mid, &one).ok()) return hi;
    if (one.recorded_at_us < t_us) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

Status ScanEvents(const EventLog& log, uint64_t from, uint64_t to,
                  const std::function<bool(const Event&)>& fn) {
  uint64_t next = std::max<uint64_t>(from, 1);
  uint64_t last = to == 0 ? log.LastSequence() : std::min(to, log.LastSequence());
  std::vector<Event> batch;
  while (next <= last) {
    batch.clear();
    size_t want = static_cast<size_t>(std::min<uint64_t>(1024, last - next + 1));
    Status s = log.Read(next, want, &batch);
    if (!s.ok()) return s;
    if (batch.empty()) break;
    for (const auto& e : batch) {
      if (!fn(e)) return Status::OK();
    }
    next = batch.back().seq + 1;
  }
  return Status::OK();
}

Status ScanWindow(const EventLog& log, int64_t from_us, int64_t to_us, uint64_t min_seq,
                  const std::function<bool(const Event&)>& fn) {
  uint64_t from = std::max<uint64_t>(min_seq, from_us ? FirstSeqAtOrAfter(log, from_us) : 1);
  uint64_t to = to_us ? FirstSeqAtOrAfter(log, to_us) - 1 : log.LastSequence();
  if (to < from) return Status::OK();
  return ScanEvents(log, from, to, fn);
}

Status ReadEventBySeq(const EventLog& log, uint64_t seq, Event* out) {
  std::vector<Event> one;
  Status s = log.Read(seq, 1, &one);
  if (!s.ok()) return s;
  if (one.empty() || one[0].seq != seq) return Status::NotFound("no event " + std::to_string(seq));
  *out = std::move(one[0]);
  return Status::OK();
}

Status ReadEventById(const EventLog& log, const EventId& id, Event* out) {
  uint64_t seq = 0;
  Status s = log.LookupEventId(id, &seq);
  if (!s.ok()) return s;
  return ReadEventBySeq(log, seq, out);
}

Status RecordHashHex(const EventLog& log, uint64_t seq, std::string* hex) {
  bool found = false;
  Status s = log.ScanRecords(seq, [&](uint64_t at, std::string_view record) {
    if (at == seq) {
      *hex = HexEncode(RecordHash(record));
      found = true;
    }
    return false;
  });
  if (!s.ok()) return s;
  return found ? Status::OK() : Status::NotFound("no event " + std::to_string(seq));
}

Status ParseContactRef(std::string_view text, const Normalizer& normalizer, ContactRef* out) {
  ContactRef r;
  size_t colon = text.find(':');
  if (text.find('@') != std::string_view::npos) {
    auto e = Normalizer::Email(text);
    if (!e) return Status::InvalidArgument("not an email address: " + std::string(text));
    r.kind = ContactRef::Kind::kEmail;
    r.value = *e;
  } else if (colon != std::string_view::npos) {
    std::string system(text.substr(0, colon));
    r.value = std::string(text.substr(colon + 1));
    if (r.value.empty()) return Status::InvalidArgument("no id after '" + system + ":'");
    if (system == "contact") {
      r.kind = ContactRef::Kind::kContactId;
    } else if (FindConnector(system)) {
      r.kind = ContactRef::Kind::kExternal;
      r.system = system;
    } else {
      return Status::InvalidArgument("unknown system '" + system + "' (" + ConnectorSystems() +
                                     " or contact)");
    }
  } else {
    auto p = normalizer.Phone(text);
    if (!p) {
      return Status::InvalidArgument("'" + std::string(text) +
                                     "' is not a phone, an email or <system>:<id>");
    }
    r.kind = ContactRef::Kind::kPhone;
    r.value = *p;
  }
  *out = std::move(r);
  return Status::OK();
}

MappingsView::MappingsView(const EventLog& log)
    : log_(log), state_([&log](std::string_view key, std::string* value) {
        return log.GetConsumerState(MappingsProjection::kName, key, value);
      }) {}

Status MappingsView::Load() {
  MappingsProjection mappings;
  uint64_t checkpoint = 0;
  Status s = log_.ReadCheckpoint(MappingsProjection::kName, &checkpoint);
  if (!s.ok() && !s.IsNotFound()) return s;
  s = ScanEvents(log_, checkpoint + 1, 0, [&](const Event& e) {
    mappings.Fold(e, &state_);
    return true;
  });
  if (!s.ok()) return s;
  return state_.status();
}

std::optional<std::string> MappingsView::Get(const std::string& key) { return state_.Get(key); }

Status ResolveContacts(const EventLog& log, const ContactRef& ref,
                       const std::vector<std::string>& tenants, std::vector<ContactMatch>* out) {
  out->clear();
  MappingsView view(log);
  Status s = view.Load();
  if (!s.ok()) return s;
  return ResolveContacts(view, log, ref, tenants, out);
}

Status ResolveContacts(MappingsView& view, const EventLog& log, const ContactRef& ref,
                       const std::vector<std::string>& tenants, std::vector<ContactMatch>* out) {
  out->clear();
  Status s;
  bool contact_id_seen = false;
  for (const auto& tenant : tenants) {
    std::string key;
    switch (ref.kind) {
      case ContactRef::Kind::kPhone:
        key = PhoneKey(tenant, ref.value);
        break;
      case ContactRef::Kind::kEmail:
        key = EmailKey(tenant, ref.value);
        break;
      case ContactRef::Kind::kExternal:
        key = ExternalIdKey(tenant, ref.system, ref.value);
        break;
      case ContactRef::Kind::kContactId:
        break;
    }
    if (ref.kind == ContactRef::Kind::kContactId) {
      // A contact id is unique across tenants: its stream says which.
      std::vector<Event> one;
      s = log.ReadStream(tenant, ContactStream(ref.value), 1, 1, &one);
      if (!s.ok()) return s;
      if (!one.empty() && !contact_id_seen) {
        out->push_back({tenant, ref.value});
        contact_id_seen = true;
      }
      continue;
    }
    if (auto c = view.Get(key)) out->push_back({tenant, *c});
  }
  return Status::OK();
}

void Table::Print(std::ostream& out) const {
  std::vector<size_t> width(header_.size(), 0);
  auto cell = [&](const std::string& v) {
    return v.size() <= max_width_ ? v : v.substr(0, max_width_ - 3) + "...";
  };
  for (size_t i = 0; i < header_.size(); ++i) width[i] = header_[i].size();
  for (const auto& r : rows_)
    for (size_t i = 0; i < r.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], cell(r[i]).size());
  auto line = [&](const std::vector<std::string>& r) {
    std::string l;
    for (size_t i = 0; i < width.size(); ++i) {
      std::string v = i < r.size() ? cell(r[i]) : "";
      l += v;
      if (i + 1 < width.size()) l += std::string(width[i] - v.size() + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out << l << "\n";
  };
  line(header_);
  for (const auto& r : rows_) line(r);
}

std::string MaskValue(std::string_view field, std::string_view value) {
  if (value.empty()) return "";
  if (field == "phone" || (!value.empty() && value[0] == '+')) return MaskPhone(value);
  if (field == "email" || value.find('@') != std::string_view::npos) return MaskEmail(value);
  return "<" + std::to_string(value.size()) + " chars>";
}

}  // namespace dfm
