#include "replay-tools/events_command.h"

#include <algorithm>
#include <map>
#include <ostream>
#include <set>

#include "replay-tools/story.h"
#include "sync/domain_event.h"
#include "sync/redrive.h"

namespace dfm {

namespace {

bool TypeMatches(const std::string& pattern, const std::string& type) {
  if (pattern.empty()) return true;
  if (pattern.back() == '*')
    return type.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
  return pattern == type;
}

// The filters on the envelope alone: checked before any payload is read.
bool EnvelopeMatches(const EventFilter& f, const Event& e) {
  if (f.from_us && e.recorded_at_us < f.from_us) return false;
  if (f.to_us && e.recorded_at_us >= f.to_us) return false;
  if (!f.tenant.empty() && e.tenant != f.tenant) return false;
  if (!f.stream.empty() && e.stream != f.stream) return false;
  return TypeMatches(f.type, e.type);
}

bool SystemMatches(const EventFilter& f, const Event& e, const EventStory& story) {
  return f.system.empty() || story.system == f.system || e.stream == SourceStream(f.system);
}

void Row(Table* t, const Event& e, const EventStory& s) {
  t->Add({std::to_string(e.seq), FormatToolTime(e.recorded_at_us), e.tenant, e.stream, e.type,
          s.what});
}

// `id`: an event id or a sequence number.
Status FindEvent(const EventLog& log, const std::string& id, Event* out) {
  uint64_t seq = 0;
  if (!id.empty() && id.find_first_not_of("0123456789") == std::string::npos) {
    if (id.size() > 19) return Status::NotFound("no event " + id);
    seq = std::strtoull(id.c_str(), nullptr, 10);
  } else {
    auto parsed = EventId::Parse(id);
    if (!parsed)
      return Status::InvalidArgument("'" + id + "' is neither an event id nor a sequence number");
    return ReadEventById(log, *parsed, out);
  }
  return ReadEventBySeq(log, seq, out);
}

// A page of the contacts' events (EventFilter::by_contact): their own
// events after `after` up to `head`, each with what caused it (a webhook,
// a replay) unless an own event at or before `after` had that cause, in
// log order. A cause joins the page of its first consequence whatever its
// own sequence number (a webhook is decided in a later commit than its
// own), so paging by the own events loses none. The page ends before the
// own event (with its cause) that would take it past `limit` matching
// events; the first one is taken whatever its size. `items`: the page's
// events `matches` is true of, with what it told of each; `last_own`: the
// last own event taken; `full`: own events up to `head` were left for the
// next page.
using Matcher = std::function<bool(const Event&, EventStory*)>;
struct ContactPage {
  std::map<uint64_t, std::pair<Event, EventStory>> items;
  uint64_t last_own = 0;
  bool full = false;
};

Status ReadContactPage(const EventLog& log, const EventFilter& f, uint64_t head,
                       const Matcher& matches, ContactPage* page) {
  std::map<uint64_t, Event> own;
  for (const auto& c : f.contacts) {
    Status st = log.ScanStream(c.tenant, ContactStream(c.contact_id), [&](const Event& e) {
      if (e.seq > head) return false;
      own.emplace(e.seq, e);
      return true;
    });
    if (!st.ok()) return st;
  }
  std::set<std::string> brought;  // causes on an earlier page or this one
  for (auto it = own.begin(); it != own.end() && it->first <= f.after_seq; ++it)
    if (!it->second.causation_id.IsZero())
      brought.insert(std::string(it->second.causation_id.AsBytes()));
  uint64_t shown = 0;
  for (auto it = own.upper_bound(f.after_seq); it != own.end(); ++it) {
    std::vector<Event> unit;
    const std::string cause(it->second.causation_id.AsBytes());
    Event c;
    if (!it->second.causation_id.IsZero() && !brought.count(cause)) {
      // A cause no longer there (erased) is left out; one that cannot be
      // read now fails the page: the next would count it as brought.
      Status read = ReadEventById(log, it->second.causation_id, &c);
      if (!read.ok() && !read.IsNotFound()) return read;
      if (read.ok() && !IsContactStream(c.stream)) unit.push_back(std::move(c));
    }
    unit.push_back(it->second);
    std::vector<std::pair<Event, EventStory>> matching;
    for (Event& e : unit) {
      EventStory s;
      if (matches(e, &s)) matching.emplace_back(std::move(e), std::move(s));
    }
    if (shown > 0 && shown + matching.size() > f.limit) {
      page->full = true;
      break;
    }
    brought.insert(cause);
    shown += matching.size();
    page->last_own = it->first;
    for (auto& m : matching) page->items.emplace(m.first.seq, std::move(m));
  }
  return Status::OK();
}

}  // namespace

int ListEvents(const EventLog& log, const EventFilter& f, bool json, bool reveal, std::ostream& out,
               std::ostream& err, uint64_t* next_after) {
  Table table({"SEQ", "RECORDED", "TENANT", "STREAM", "TYPE", "WHAT"}, 100);
  const uint64_t head = std::min(f.until_seq, log.LastSequence());
  auto matches = [&](const Event& e, EventStory* story) {
    if (!EnvelopeMatches(f, e) || (f.hidden && f.hidden(e))) return false;
    *story = TellEvent(e, reveal);
    return SystemMatches(f, e, *story);
  };
  uint64_t shown = 0;
  auto print = [&](const Event& e, const EventStory& s) {
    if (json) {
      out << EventJson(e, s, reveal).Finish() << "\n";
    } else {
      Row(&table, e, s);
    }
    ++shown;
  };
  Status st;
  uint64_t cursor = head;
  if (f.by_contact) {
    ContactPage page;
    st = ReadContactPage(log, f, head, matches, &page);
    for (const auto& [seq, item] : page.items) print(item.first, item.second);
    if (page.full) cursor = page.last_own;
  } else {
    uint64_t asked = 0;  // the last event the filters saw
    bool full = false;
    st = ScanWindow(log, f.from_us, f.to_us, f.after_seq + 1, [&](const Event& e) {
      if (e.seq > head) return false;
      asked = e.seq;
      EventStory s;
      if (!matches(e, &s)) return true;
      print(e, s);
      full = shown >= f.limit;
      return !full;
    });
    if (full || f.to_us) cursor = asked;
  }
  if (!st.ok()) {
    err << "dfm events: " << st.ToString() << "\n";
    return 2;
  }
  if (next_after) *next_after = std::max(f.after_seq, cursor);
  if (!json) {
    table.Print(out);
    out << shown << " event(s); the next page: --after " << std::max(f.after_seq, cursor) << "\n";
  }
  return 0;
}

int ShowEvent(const EventLog& log, const std::string& id, bool json, bool reveal, std::ostream& out,
              std::ostream& err) {
  Event e;
  Status st = FindEvent(log, id, &e);
  if (!st.ok()) {
    err << "dfm events show: " << st.ToString() << "\n";
    return st.IsNotFound() || st.IsInvalidArgument() ? 1 : 2;
  }
  // Causes: the causation chain back to the root.
  std::vector<Event> causes;
  EventId up = e.causation_id;
  while (!up.IsZero() && causes.size() < 64) {
    Event c;
    if (!ReadEventById(log, up, &c).ok()) break;
    up = c.causation_id;
    causes.push_back(std::move(c));
  }
  // Consequences: everything after it whose causation leads back to it.
  std::map<std::string, int> depth;  // id bytes -> depth below e
  depth[std::string(e.id.AsBytes())] = 0;
  std::vector<std::pair<int, Event>> consequences;
  st = ScanEvents(log, e.seq + 1, 0, [&](const Event& c) {
    if (c.causation_id.IsZero()) return true;
    auto it = depth.find(std::string(c.causation_id.AsBytes()));
    if (it == depth.end()) return true;
    depth[std::string(c.id.AsBytes())] = it->second + 1;
    consequences.emplace_back(it->second + 1, c);
    return true;
  });
  if (!st.ok()) {
    err << "dfm events show: " << st.ToString() << "\n";
    return 2;
  }
  if (json) {
    out << EventJson(e, TellEvent(e, reveal), reveal).Str("role", "event").Finish() << "\n";
    for (const auto& c : causes)
      out << EventJson(c, TellEvent(c, reveal), reveal).Str("role", "cause").Finish() << "\n";
    for (const auto& [d, c] : consequences)
      out << EventJson(c, TellEvent(c, reveal), reveal).Str("role", "consequence").Int("depth", d).Finish()
          << "\n";
    return 0;
  }
  EventStory s = TellEvent(e, reveal);
  out << "event " << e.seq << "  " << e.id.ToString() << "\n"
      << "  type         " << e.type << " (schema " << e.schema_version << ")\n"
      << "  tenant       " << e.tenant << "\n"
      << "  stream       " << e.stream << "\n"
      << "  recorded at  " << FormatToolTime(e.recorded_at_us) << "\n";
  if (e.source_time_us) out << "  source time  " << FormatToolTime(*e.source_time_us) << "\n";
  out << "  correlation  " << e.correlation_id.ToString() << "\n"
      << "  what         " << s.what << "\n";
  if (reveal && s.decoded && IsDomainEventType(e.type))
    out << "  payload      " << e.payload << "\n";
  out << "\ncaused by (" << causes.size() << "):\n";
  for (const auto& c : causes)
    out << "  " << c.seq << "  " << FormatToolTime(c.recorded_at_us) << "  " << c.type << "  "
        << TellEvent(c, reveal).what << "\n";
  out << "\nconsequences (" << consequences.size() << "):\n";
  for (const auto& [d, c] : consequences)
    out << "  " << std::string(2 * (d - 1), ' ') << c.seq << "  "
        << FormatToolTime(c.recorded_at_us) << "  " << c.stream << "  " << TellEvent(c, reveal).what
        << "\n";
  return 0;
}

}  // namespace dfm
