#include "replay-tools/audit.h"

#include <simdjson.h>

#include <algorithm>
#include <map>
#include <ostream>
#include <set>

#include "campaigns/task.h"
#include "events/codec.h"
#include "replay-tools/tool_log.h"
#include "sync/consent.h"
#include "sync/domain_event.h"
#include "sync/fact.h"
#include "sync/identity.h"
#include "sync/redrive.h"
#include "util/crypto.h"
#include "util/json.h"

namespace dfm {

namespace {

// Whether a spreadsheet would read `v` as a formula: it starts with "=",
// "@", a tab or a CR, or with "+" or "-" and is not a number (a phone
// number's "+" and digits are left as they are).
bool ReadsAsFormula(const std::string& v) {
  if (v.empty()) return false;
  const char c = v[0];
  if (c == '=' || c == '@' || c == '\t' || c == '\r') return true;
  return (c == '+' || c == '-') && v.find_first_not_of("0123456789", 1) != std::string::npos;
}

// A CSV field (RFC 4180); one a spreadsheet would run as a formula (an
// email address or a reason can be anybody's text) starts with "'", so
// it is shown as text (OWASP, "CSV Injection").
std::string Csv(const std::string& raw) {
  const std::string v = ReadsAsFormula(raw) ? "'" + raw : raw;
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string q = "\"";
  for (char c : v) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

struct PushFate {
  std::string system, op, state = "pending";
  std::string channels;  // the push's, comma-separated (empty: not said)
  int64_t at_us = 0;
  std::string superseded_by;  // the push that took its place ("superseded")
};

// What became of `id`: a push superseded by a later one (a refused
// opt-out, then a repeated STOP or the person's opt-in) shares the fate of
// the push that took its place: the later opt-out's, or "withdrawn" when
// the person took the opt-out back (nobody is to be told any more; at_us:
// when the refused push was settled so).
ConsentRecord::Told FateOf(const std::map<std::string, PushFate>& fate, const std::string& id) {
  auto it = fate.find(id);
  const std::string system = it == fate.end() ? "" : it->second.system;
  for (int hops = 0; it != fate.end() && it->second.state == "superseded" && hops < 64; ++hops) {
    auto next = fate.find(it->second.superseded_by);
    if (next == fate.end()) break;
    if (next->second.op == "opt_in") return {system, "withdrawn", it->second.at_us};
    it = next;
  }
  if (it == fate.end()) return {system, "pending", 0};
  return {system, it->second.state, it->second.at_us};
}

// Whether two channel lists share a channel; an empty one is not said
// and shares any.
bool SharesAChannel(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return true;
  const std::vector<std::string> theirs = SplitChannels(b);
  for (const auto& ch : SplitChannels(a))
    if (std::find(theirs.begin(), theirs.end(), ch) != theirs.end()) return true;
  return false;
}

// The consent pushes of the log, filed by (contact, causation, op): the
// key a statement's pushes are found under.
struct PushFiling {
  std::map<std::string, std::vector<std::string>> pushes_of;  // key -> push ids
  std::map<std::string, PushFate> fate;                       // push id -> its fate
  std::map<std::string, std::string> key_of_request;          // push.requested id -> its key

  // Files a push event of op opt_out or opt_in.
  void File(const Event& e, const DomainEvent& de) {
    if (e.type == ev::kPushRequested) {
      std::string key = de.contact_id + "\n" + std::string(e.causation_id.AsBytes()) + "\n" + de.op;
      // A re-drive (sync/redrive.h) answers a dead push or a webhook:
      // it counts for the opt-out that one was filed under.
      if (auto cause = RedriveCause(de)) {
        auto req = key_of_request.find(std::string(cause->AsBytes()));
        key = req != key_of_request.end()
                  ? req->second
                  : de.contact_id + "\n" + std::string(cause->AsBytes()) + "\n" + de.op;
      }
      key_of_request[std::string(e.id.AsBytes())] = key;
      pushes_of[key].push_back(de.push_id);
      // The first request of an id is the push: a second one asking for
      // the same id (another statement of the webhook) is ignored by
      // the connector, so its channels were never sent.
      if (!fate.count(de.push_id)) fate[de.push_id].channels = de.channel;
      fate[de.push_id].system = de.system;
      fate[de.push_id].op = de.op;
    } else if (e.type == ev::kPushAttempted) {
      // An opt-out the system refused is kept open (never given up on).
      auto& f = fate[de.push_id];
      if (de.outcome == "refused" && f.state == "pending") {
        f.state = "refused";
        f.at_us = e.recorded_at_us;
      }
    } else {
      auto& f = fate[de.push_id];
      f.state = e.type == ev::kPushSucceeded ? "succeeded"
                : de.outcome == "superseded" ? "superseded"
                                             : "dead";
      f.at_us = e.recorded_at_us;
      if (f.state == "superseded") f.superseded_by = SupersedingPush(de.reason);
    }
  }

  // The pushes filed under `key` that tell `r`: one webhook may state
  // several things (GoHighLevel's DND per channel), and each statement
  // counts the pushes of its own channels, each once.
  void Tell(const std::string& key, ConsentRecord* r) const {
    auto filed = pushes_of.find(key);
    if (filed == pushes_of.end()) return;
    std::set<std::string> counted;
    for (const auto& id : filed->second) {
      auto f = fate.find(id);
      if (f != fate.end() && !SharesAChannel(f->second.channels, r->channel)) continue;
      if (counted.insert(id).second) r->told.push_back(FateOf(fate, id));
    }
  }
};
}  // namespace

int BusinessDaysBetween(int64_t from_us, int64_t to_us) {
  constexpr int64_t kDay = 86400LL * 1000000;
  auto day = [](int64_t us) { return us >= 0 ? us / kDay : (us - kDay + 1) / kDay; };
  int64_t d0 = day(from_us), d1 = day(to_us);
  int n = 0;
  for (int64_t d = d0 + 1; d <= d1; ++d) {
    int64_t wd = ((d + 3) % 7 + 7) % 7;  // 1970-01-01 was a Thursday; 0 = Monday
    if (wd < 5) ++n;
  }
  return n;
}

Status CollectConsentRecords(const EventLog& log, const OptOutAuditOptions& o,
                             std::vector<ConsentRecord>* out) {
  out->clear();
  std::vector<ConsentRecord> records;
  std::vector<std::string> push_keys;  // per record: the key its pushes are filed under
  PushFiling pushes;
  Status decode_error;
  Status s = log.ScanRecords(1, [&](uint64_t, std::string_view record) {
    Event e;
    Status d = DecodeRecord(record, &e);
    if (!d.ok()) {
      decode_error = d;
      return false;
    }
    if (!o.tenant.empty() && e.tenant != o.tenant) return true;
    bool consent = e.type == ev::kOptedOut || e.type == ev::kOptedIn;
    bool push = e.type == ev::kPushRequested || e.type == ev::kPushSucceeded ||
                e.type == ev::kPushDeadLettered || e.type == ev::kPushAttempted;
    if (!consent && !push) return true;
    if (Status u = log.Unseal(&e); !u.ok()) {
      decode_error = u;  // counted as unreadable, the audit would be wrong
      return false;
    }
    if (consent && e.erased()) {
      // Its person erased: what it said is gone, that it was said is not
      // (a row with no personal data). Nobody's phone or email now.
      if (!o.phone.empty() || !o.email.empty()) return true;
      if (o.since_us && e.recorded_at_us < o.since_us) return true;
      if (o.until_us && e.recorded_at_us >= o.until_us) return true;
      ConsentRecord r;
      r.tenant = e.tenant;
      r.contact_id = IsContactStream(e.stream) ? e.stream.substr(sizeof("contact:") - 1) : "";
      r.status = e.type == ev::kOptedOut ? "opt_out" : "opt_in";
      r.erased = true;
      r.at_us = r.recorded_us = e.recorded_at_us;
      r.event_id = e.id.ToString();
      r.record_sha256 = HexEncode(RecordHash(record));
      r.seq = e.seq;
      push_keys.emplace_back();  // no push is filed under it
      records.push_back(std::move(r));
      return true;
    }
    DomainEvent de;
    if (!DecodeDomainEvent(e.type, e.payload, &de).ok()) return true;
    if (push) {
      if (de.op != "opt_out" && de.op != "opt_in") return true;
      pushes.File(e, de);
      return true;
    }
    ConsentRecord r;
    r.tenant = e.tenant;
    r.contact_id = de.contact_id;
    r.status = e.type == ev::kOptedOut ? "opt_out" : "opt_in";
    r.channel = de.channel;
    r.source_system = de.system;
    r.reason = de.reason;
    r.actor = ActorName(ActorOf(de.actor));
    r.cause = de.external_id;
    if (auto p = de.fields.find(fields::kPhone); p != de.fields.end()) r.phone = p->second;
    if (auto m = de.fields.find(fields::kEmail); m != de.fields.end()) r.email = m->second;
    if (!o.phone.empty() && r.phone != o.phone) return true;
    if (!o.email.empty() && r.email != o.email &&
        !(o.fold_plus_addressing && FoldedEmail(r.email) == FoldedEmail(o.email)))
      return true;
    r.at_us = HappenedAt(e, de);
    if (o.since_us && r.at_us < o.since_us) return true;
    if (o.until_us && r.at_us >= o.until_us) return true;
    r.recorded_us = e.recorded_at_us;
    r.cause_event_id = e.causation_id.IsZero() ? "" : e.causation_id.ToString();
    r.event_id = e.id.ToString();
    r.record_sha256 = HexEncode(RecordHash(record));
    r.seq = e.seq;
    // The same webhook caused the opt-out and its pushes; a re-drive that
    // answers the opt-out itself (dfm reconcile's re-application, cause =
    // its event id) counts for it too.
    push_keys.push_back(de.contact_id + "\n" + std::string(e.causation_id.AsBytes()) + "\n" +
                        r.status);
    pushes.key_of_request[std::string(e.id.AsBytes())] = push_keys.back();
    records.push_back(std::move(r));
    return true;
  });
  if (!s.ok()) return s;
  if (!decode_error.ok()) return decode_error;
  for (size_t i = 0; i < records.size(); ++i) pushes.Tell(push_keys[i], &records[i]);
  *out = std::move(records);
  return Status::OK();
}

int PrintConsentRecords(const std::vector<ConsentRecord>& records, const std::string& format,
                        std::ostream& out, std::ostream& err) {
  if (format != "csv" && format != "json") {
    err << "dfm audit opt-outs: --format must be csv or json\n";
    return 2;
  }
  if (format == "csv")
    out << "happened_at,recorded_at,status,channel,phone,email,source_system,reason,cause,"
           "cause_event_id,contact_id,tenant,systems_told,systems_not_told,event_id,seq,record_"
           "sha256,actor,erased\n";
  for (const auto& r : records) {
    std::string told, not_told;
    for (const auto& t : r.told) {
      if (t.state == "succeeded") {
        told += (told.empty() ? "" : ";") + t.system + "@" + FormatToolTime(t.at_us);
      } else {
        not_told += (not_told.empty() ? "" : ";") + t.system + " (" + t.state + ")";
      }
    }
    if (format == "csv") {
      out << FormatToolTime(r.at_us) << "," << FormatToolTime(r.recorded_us) << "," << r.status
          << "," << Csv(r.channel) << "," << Csv(r.phone) << "," << Csv(r.email) << ","
          << r.source_system << "," << Csv(r.reason) << "," << Csv(r.cause) << ","
          << r.cause_event_id << "," << r.contact_id << "," << Csv(r.tenant) << "," << Csv(told)
          << "," << Csv(not_told) << "," << r.event_id << "," << r.seq << "," << r.record_sha256
          << "," << r.actor << "," << (r.erased ? "true" : "false") << "\n";
      continue;
    }
    JsonArray told_json;
    for (const auto& w : r.told) {
      JsonObject t;
      t.Str("system", w.system).Str("state", w.state);
      if (w.state == "succeeded") t.Str("at", FormatToolTime(w.at_us));
      told_json.Raw(t.Finish());
    }
    const std::string arr = told_json.Finish();
    out << JsonObject()
               .Str("happened_at", FormatToolTime(r.at_us))
               .Str("recorded_at", FormatToolTime(r.recorded_us))
               .Str("status", r.status)
               .Str("channel", r.channel)
               .Str("phone", r.phone)
               .Str("email", r.email)
               .Str("source_system", r.source_system)
               .Str("reason", r.reason)
               .Str("cause", r.cause)
               .Str("cause_event_id", r.cause_event_id)
               .Str("contact_id", r.contact_id)
               .Str("tenant", r.tenant)
               .Raw("systems", arr)
               .Str("event_id", r.event_id)
               .UInt("seq", r.seq)
               .Str("record_sha256", r.record_sha256)
               .Str("actor", r.actor)
               .Bool("erased", r.erased)
               .Finish()
        << "\n";
  }
  return 0;
}

int RunAuditVerify(const EventLog& log, const std::string& against, bool json, std::ostream& out,
                   std::ostream& err) {
  // One pass: the chain, and the counts of its intact prefix.
  std::map<std::string, uint64_t> types;
  int64_t first_at = 0, last_at = 0;
  ChainReport chain = log.VerifyChain([&](const Event& e) {
    types[e.type]++;
    if (!first_at) first_at = e.recorded_at_us;
    last_at = e.recorded_at_us;
  });
  JsonObject counts;
  for (const auto& [t, n] : types) counts.UInt(t, n);
  JsonObject summary;
  summary.Str("format", "dfm-audit-verify/1")
      .Bool("chain_intact", chain.ok)
      .UInt("events", chain.count)
      .UInt("first_seq", chain.first_seq)
      .UInt("last_seq", chain.last_seq)
      .Str("head_hash", HexEncode(chain.head_hash))
      .Str("first_recorded_at", first_at ? FormatToolTime(first_at) : "")
      .Str("last_recorded_at", last_at ? FormatToolTime(last_at) : "")
      .Raw("types", counts.Finish());
  if (!chain.ok) summary.UInt("first_bad_seq", chain.first_bad_seq).Str("problem", chain.problem);

  // Against a summary kept earlier: the same prefix, unchanged.
  bool matches = true;
  std::string mismatch;
  if (!against.empty()) {
    simdjson::dom::parser parser;
    simdjson::dom::element kept;
    uint64_t kept_last = 0, kept_events = 0;
    std::string_view kept_hash;
    if (parser.parse(against).get(kept) != simdjson::SUCCESS || kept["last_seq"].get(kept_last) ||
        kept["events"].get(kept_events) || kept["head_hash"].get(kept_hash)) {
      err << "dfm audit verify: --against is not a summary this command printed\n";
      return 2;
    }
    std::string hash;
    if (kept_last == 0) {
      matches = true;
    } else if (kept_last > chain.last_seq || !RecordHashHex(log, kept_last, &hash).ok()) {
      matches = false;
      mismatch = "the log no longer reaches seq " + std::to_string(kept_last);
    } else if (hash != kept_hash) {
      matches = false;
      mismatch = "the record at seq " + std::to_string(kept_last) + " hashes to " + hash +
                 ", the summary says " + std::string(kept_hash);
    } else if (kept_last - chain.first_seq + 1 != kept_events) {
      matches = false;
      mismatch = "the summary counts " + std::to_string(kept_events) + " events up to seq " +
                 std::to_string(kept_last);
    }
    summary.Bool("matches_summary", matches);
    if (!matches) summary.Str("mismatch", mismatch);
  }
  if (json) {
    out << summary.Finish() << "\n";
  } else {
    out << (chain.ok ? "hash chain intact" : "hash chain BROKEN") << "\n"
        << "  events      " << chain.count << " (seq " << chain.first_seq << ".." << chain.last_seq
        << ")\n"
        << "  head hash   " << HexEncode(chain.head_hash) << "\n"
        << "  recorded    " << (first_at ? FormatToolTime(first_at) : "-") << " .. "
        << (last_at ? FormatToolTime(last_at) : "-") << "\n";
    if (!chain.ok)
      out << "  first break seq " << chain.first_bad_seq << ": " << chain.problem << "\n";
    for (const auto& [t, n] : types) out << "  " << t << ": " << n << "\n";
    if (!against.empty())
      out << (matches ? "matches the kept summary\n"
                      : "DOES NOT match the kept summary: " + mismatch + "\n");
    out << "keep this line to re-check later (dfm audit verify --against FILE):\n"
        << summary.Finish() << "\n";
  }
  return chain.ok && matches ? 0 : 1;
}

}  // namespace dfm
