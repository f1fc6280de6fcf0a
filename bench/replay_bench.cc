// The replay tools' benchmark (issue 5), on a real RocksDB log:
//
//   replay_bench generate DIR EVENTS   writes a log of EVENTS events shaped like
//                                      live traffic (below), fsync on, in
//                                      group commits of 4,096 events
//   replay_bench rebuild DIR [NAME]    drops and rebuilds every projection
//                                      (or NAME); prints events/s
//   replay_bench scan DIR              the read alone: scan, decode records,
//                                      decode payloads; prints events/s
//   replay_bench replay DIR EVENTS     `dfm replay` dry run over the last
//                                      EVENTS events; prints events/s and
//                                      webhooks/s
//   replay_bench history DIR           a year of traffic into an empty DIR:
//                                      the contacts as `generate` writes
//                                      them, then their texts (below)
//   replay_bench erase DIR N           appends contact.erased for N contacts
//                                      spread over them (`dfm erase`'s event;
//                                      no key destroyed): a rebuild then
//                                      forgets each from a full state
//   replay_bench pending DIR           the router's start: its scan for the
//                                      pushes not yet settled (after rebuild)
//
// The traffic: 200,000 contacts (DFM_BENCH_CONTACTS to change it); each sync is a GoHighLevel
// contact webhook
// (~600 bytes) with its decisions: contact.created the first time, else
// contact.changed, then push.requested, push.attempted and push.succeeded
// for Aloware (5 events). Every 50th sync is also a STOP: contact.opted_out
// and two opt-out pushes (requested and succeeded).
//
// The history (issue 36's memory benchmark): each contact's texts of the
// year before now, recorded on the days they happened. Most people text
// a little: 0 to 6 texts (3 on average); one contact in 1,000 is a busy
// conversation of 2,000 texts. A text is message.logged (Verity, in or
// out), push.requested and push.succeeded of its GoHighLevel record, and
// for an outbound one its delivery status: 3.5 events a text, ~5,000,000
// texts for 1,000,000 contacts. (Their webhooks are left out: they cost
// disk, not a contact's start or memory.)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"
#include "events/codec.h"
#include "events/sealing.h"
#include "events/webhook_received.h"
#include "projections/sync_projections.h"
#include "replay-tools/projection_commands.h"
#include "replay-tools/replay.h"
#include "replay-tools/tool_log.h"
#include "storage/rocksdb_event_log.h"
#include "sync/domain_event.h"
#include "sync/erasure.h"
#include "sync/identity.h"
#include "sync/normalize.h"
#include "util/clock.h"

namespace dfm {
namespace {

const uint64_t kContacts = [] {
  const char* n = std::getenv("DFM_BENCH_CONTACTS");
  return n && *n ? std::strtoull(n, nullptr, 10) : uint64_t{200000};
}();

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string Phone(uint64_t k) {
  char b[32];
  std::snprintf(b, sizeof(b), "+1205%07llu", static_cast<unsigned long long>(k));
  return b;
}

std::unique_ptr<RocksDbEventLog> OpenForWriting(const std::string& dir,
                                               const Clock* clock = SystemClock::Instance()) {
  std::unique_ptr<RocksDbEventLog> log;
  RocksDbLogOptions o;
  o.path = dir;
  o.clock = clock;
  // DFM_BENCH_SEALED=1: payloads sealed, as the service writes them
  // (docs/privacy.md); the key store in <dir>/keys. A sealed log read
  // without it would fold its payloads unopened, far faster than any
  // rebuild of the service's: refused.
  const char* sealed = std::getenv("DFM_BENCH_SEALED");
  const bool seal = sealed && *sealed == '1';
  if (!seal && std::filesystem::exists(KeyStorePath(dir))) {
    std::fprintf(stderr,
                 "%s holds a sealed log (its key store is there): run with DFM_BENCH_SEALED=1\n",
                 dir.c_str());
    return nullptr;
  }
  if (seal) {
    std::unique_ptr<RocksDbKeyStore> keys;  // made with the log it generates
    if (Status s = RocksDbKeyStore::Open(KeyStorePath(dir), /*read_only=*/false, &keys); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return nullptr;
    }
    o.keys = std::move(keys);
  }
  if (Status s = RocksDbEventLog::Open(o, &log); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return nullptr;
  }
  return log;
}

// Appends `*batch` (then empties it); false, said on stderr, if it fails.
bool AppendBatch(RocksDbEventLog* log, std::vector<EventDraft>* batch) {
  if (batch->empty()) return true;
  std::vector<AppendOutcome> out;
  Status s = log->Append(std::move(*batch), &out);
  batch->clear();
  if (!s.ok()) std::fprintf(stderr, "%s\n", s.ToString().c_str());
  return s.ok();
}

int Generate(const std::string& dir, uint64_t events, const Clock* clock = SystemClock::Instance()) {
  std::unique_ptr<RocksDbEventLog> log = OpenForWriting(dir, clock);
  if (!log) return 1;
  uint64_t written = log->LastSequence();
  std::vector<EventDraft> batch;
  double start = Now();
  uint64_t sync = written / 5;
  auto flush = [&]() { return AppendBatch(log.get(), &batch); };
  while (written < events) {
    uint64_t k = sync % kContacts;
    bool first = sync < kContacts;
    std::string contact = "c" + std::to_string(k);
    WebhookReceived w;
    w.system = "ghl";
    w.provider_event_id = "wh-" + std::to_string(sync);
    w.id_source = "body.webhookId";
    w.verification = "ed25519";
    w.request_id = "bench";
    w.body =
        R"({"type":")" + std::string(first ? "ContactCreate" : "ContactUpdate") +
        R"(","locationId":"bench-location","id":"g)" + std::to_string(k) +
        R"(","firstName":"First)" + std::to_string(sync) + R"(","lastName":"Lovelace","phone":")" +
        Phone(k) + R"(","email":"person)" + std::to_string(k) +
        R"(@example.com","tags":["customer"],"source":"bench","dateAdded":"2026-11-20T10:00:00.000Z",)"
        R"("country":"US","timezone":"America/Chicago","dnd":false,"webhookId":"wh-)" +
        std::to_string(sync) + R"(","timestamp":"2026-11-20T10:00:00.000Z","customFields":[]})";
    batch.push_back(WebhookDraft("default", w));
    // The decisions name the webhook by a made-up id (the log assigns ids
    // at append): the bench measures reading, not causation.
    EventId cause;
    DomainEvent d;
    d.contact_id = contact;
    d.system = "ghl";
    d.external_id = "g" + std::to_string(k);
    d.webhook_seq = written + 1;
    if (first) {
      d.type = std::string(ev::kContactCreated);
      d.fields = {{"first_name", "First" + std::to_string(sync)},
                  {"phone", Phone(k)},
                  {"email", "person" + std::to_string(k) + "@example.com"}};
    } else {
      d.type = std::string(ev::kContactChanged);
      d.changes = {{"first_name", "First" + std::to_string(sync - kContacts),
                    "First" + std::to_string(sync)}};
    }
    batch.push_back(ToDraft(d, "default", ContactStream(contact), cause, cause));
    DomainEvent p;
    p.contact_id = contact;
    p.system = "aloware";
    p.op = "upsert";
    p.push_id = contact + ":aloware:" + std::to_string(written + 1);
    p.fields = {{"first_name", "First" + std::to_string(sync)}, {"phone", Phone(k)}};
    p.type = std::string(ev::kPushRequested);
    batch.push_back(ToDraft(p, "default", ContactStream(contact), cause, cause));
    p.type = std::string(ev::kPushAttempted);
    p.attempt = 1;
    p.outcome = "ok";
    p.http_status = 200;
    batch.push_back(ToDraft(p, "default", ContactStream(contact), cause, cause));
    p.type = std::string(ev::kPushSucceeded);
    p.external_id = "a" + std::to_string(k);
    batch.push_back(ToDraft(p, "default", ContactStream(contact), cause, cause));
    written += 5;
    if (sync % 50 == 49) {
      DomainEvent out;
      out.type = std::string(ev::kOptedOut);
      out.contact_id = contact;
      out.system = "verity";
      out.channel = "sms";
      out.reason = "keyword STOP";
      out.fields = {{"phone", Phone(k)}};
      batch.push_back(ToDraft(out, "default", ContactStream(contact), cause, cause));
      for (const char* target : {"aloware", "ghl"}) {
        DomainEvent q;
        q.contact_id = contact;
        q.system = target;
        q.op = "opt_out";
        q.channel = "sms";
        q.priority = 10;
        q.push_id = contact + ":" + target + ":" + std::to_string(written) + ":opt_out";
        q.type = std::string(ev::kPushRequested);
        batch.push_back(ToDraft(q, "default", ContactStream(contact), cause, cause));
        q.type = std::string(ev::kPushSucceeded);
        batch.push_back(ToDraft(q, "default", ContactStream(contact), cause, cause));
      }
      written += 5;
    }
    sync++;
    if (batch.size() >= 4096 && !flush()) return 1;
  }
  if (!flush()) return 1;
  double secs = Now() - start;
  std::printf("generated log: %llu events in %.1f s (%.0f events/s appended, fsync on)\n",
              static_cast<unsigned long long>(log->LastSequence()), secs,
              static_cast<double>(log->LastSequence()) / secs);
  log->Close();
  return 0;
}

uint64_t Mix(uint64_t x) {  // splitmix64's finalizer: a fixed pseudo-random function
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t TextsOf(uint64_t k) { return k % 1000 == 0 ? 2000 : Mix(k) % 7; }

int History(const std::string& dir) {
  constexpr int64_t kDayUs = 86400LL * 1000000;
  const int64_t now_us = SystemClock::Instance()->NowMicros();
  const int64_t first_day_us = now_us - 366 * kDayUs;
  // Which texts happen on which day: (contact, text) by day.
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> days(365);
  uint64_t texts = 0;
  for (uint64_t k = 0; k < kContacts; ++k)
    for (uint64_t j = 0, n = TextsOf(k); j < n; ++j, ++texts)
      days[Mix(k * 7919 + j) % 365].emplace_back(static_cast<uint32_t>(k), static_cast<uint32_t>(j));
  // The contacts first, created the day before the year begins.
  ManualClock clock(first_day_us - kDayUs);
  if (int rc = Generate(dir, kContacts * 51 / 10, &clock); rc != 0) return rc;
  std::unique_ptr<RocksDbEventLog> log = OpenForWriting(dir, &clock);
  if (!log) return 1;
  const uint64_t before = log->LastSequence();
  double start = Now();
  std::vector<EventDraft> batch;
  auto flush = [&]() { return AppendBatch(log.get(), &batch); };
  EventId cause;
  for (int day = 0; day < 365; ++day) {
    // Everything of a day is recorded at its start (a contact's texts of
    // one day keep their order: j ascending).
    std::sort(days[day].begin(), days[day].end());
    clock.Set(first_day_us + day * kDayUs);
    for (const auto& [k, j] : days[day]) {
      const std::string contact = "c" + std::to_string(k);
      const std::string stream = ContactStream(contact);
      const std::string id = "m" + std::to_string(k) + "-" + std::to_string(j);
      const bool outbound = j % 2 == 1;
      DomainEvent m;
      m.type = std::string(ev::kMessageLogged);
      m.contact_id = contact;
      m.system = "verity";
      m.external_id = id;
      m.message_key = "verity:" + id;
      m.channel = "sms";
      m.fields["direction"] = outbound ? "outbound" : "inbound";
      m.source_time_us = clock.NowMicros();
      batch.push_back(ToDraft(m, "default", stream, cause, cause));
      DomainEvent p;
      p.contact_id = contact;
      p.system = "ghl";
      p.op = "message";
      p.message_key = m.message_key;
      p.push_id = contact + ":ghl:message:" + id;
      p.type = std::string(ev::kPushRequested);
      batch.push_back(ToDraft(p, "default", stream, cause, cause));
      p.type = std::string(ev::kPushSucceeded);
      p.external_id = "g" + id;
      batch.push_back(ToDraft(p, "default", stream, cause, cause));
      if (outbound) {
        DomainEvent st = m;
        st.type = std::string(ev::kMessageStatus);
        st.outcome = "delivered";
        batch.push_back(ToDraft(st, "default", stream, cause, cause));
      }
      if (batch.size() >= 4096 && !flush()) return 1;
    }
    if (!flush()) return 1;
  }
  // Every webhook of it was decided (its decisions are in the log): a
  // service started on it reads on from the head, as after a year live.
  if (Status s = log->CommitConsumer("router", log->LastSequence(), {}); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  const double secs = Now() - start;
  std::printf("history: %llu texts, %llu events in %.1f s\n", static_cast<unsigned long long>(texts),
              static_cast<unsigned long long>(log->LastSequence() - before), secs);
  log->Close();
  return 0;
}

int Rebuild(const std::string& dir, const std::string& name) {
  std::unique_ptr<RocksDbEventLog> log = OpenForWriting(dir);
  if (!log) return 1;
  RebuildReport r;
  Status s = RebuildProjections(log.get(), name, nullptr, &r);
  log->Close();
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("rebuild: %llu events in %.2f s = %.0f events/s\n",
              static_cast<unsigned long long>(r.events), r.seconds,
              static_cast<double>(r.events) / r.seconds);
  return 0;
}

// What the read costs, apart from any fold: the scan alone, then with each
// record decoded, then with each domain event's payload decoded too.
int Scan(const std::string& dir) {
  std::unique_ptr<RocksDbEventLog> log = OpenForWriting(dir);
  if (!log) return 1;
  for (int level = 0; level < 3; ++level) {
    uint64_t n = 0, bytes = 0;
    Event e;
    DomainEvent d;
    double start = Now();
    Status s = log->ScanRecords(1, [&](uint64_t, std::string_view rec) {
      n++;
      bytes += rec.size();
      if (level >= 1 && DecodeRecord(rec, &e).ok() && level >= 2 && IsDomainEventType(e.type))
        (void)DecodeDomainEvent(e.type, e.payload, &d);
      return true;
    });
    double secs = Now() - start;
    if (!s.ok()) return 1;
    static const char* kWhat[] = {"scan", "scan+record", "scan+record+payload"};
    std::printf("%s: %llu events (%.0f MB) in %.2f s = %.0f events/s\n", kWhat[level],
                static_cast<unsigned long long>(n), static_cast<double>(bytes) / 1e6, secs,
                static_cast<double>(n) / secs);
  }
  return 0;
}

// What the router's start reads to find the pushes not yet settled
// (actors/router.cc, RecoverPendingPushes): the sync_status projection's
// u/ rows (layout 4), against every push's p/ row (what it read before).
// Run `rebuild DIR` first.
int Pending(const std::string& dir) {
  std::unique_ptr<RocksDbEventLog> log = OpenForWriting(dir);
  if (!log) return 1;
  for (const char* prefix : {"p/", SyncStatusProjection::kUnsettledPrefix}) {
    uint64_t rows = 0;
    double start = Now();
    Status s = log->ScanConsumerState(SyncStatusProjection::kName, prefix,
                                      [&](std::string_view, std::string_view) {
                                        rows++;
                                        return true;
                                      });
    if (!s.ok()) return 1;
    std::printf("start's scan of %s rows: %llu rows in %.3f s\n", prefix,
                static_cast<unsigned long long>(rows), Now() - start);
  }
  return 0;
}

int Replay(const std::string& dir, uint64_t window) {
  std::unique_ptr<RocksDbEventLog> log;
  Status s = OpenToolLog(dir, &log);  // as `dfm replay` opens it
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  uint64_t head = log->LastSequence();
  uint64_t first = head > window ? head - window + 1 : 1;
  std::vector<Event> one;
  s = log->Read(first, 1, &one);
  if (!s.ok() || one.empty()) return 1;
  Normalizer normalizer("US");
  MapperSettings mapper;
  mapper.normalizer = &normalizer;
  ReplayOptions ro;
  ro.from_us = one[0].recorded_at_us;
  ro.mapper = &mapper;
  ro.context = [](const std::string&) {
    SyncContext ctx;
    ctx.targets["aloware"] = {"first_name", "last_name", "phone", "email", "tags"};
    ctx.conversations = BuiltinRole("conversations");  // the roles by default
    ctx.sender = BuiltinRole("sender");
    ctx.lists_target = BuiltinRole("lists");
    return ctx;
  };
  ReplayPlan plan;
  double start = Now();
  s = PlanReplay(*log, ro, &plan);
  double secs = Now() - start;
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::printf(
      "replay: window of %llu events, %llu webhooks, %llu contacts in %.2f s = %.0f window "
      "events/s, "
      "%.0f webhooks/s (%llu events read in all; %llu pushes agree, %zu differ)\n",
      static_cast<unsigned long long>(head - first + 1),
      static_cast<unsigned long long>(plan.webhooks),
      static_cast<unsigned long long>(plan.contacts), secs,
      static_cast<double>(head - first + 1) / secs, static_cast<double>(plan.webhooks) / secs,
      static_cast<unsigned long long>(plan.events_read), static_cast<unsigned long long>(plan.same),
      plan.diffs.size());
  return 0;
}

// contact.erased for `n` contacts spread over the generated ones, at the
// end of the log: each projection forgets each of them from its whole
// state in a rebuild (the worst place for an erasure). Runs between
// `generate`s to a longer log spread erasures over it.
int Erase(const std::string& dir, uint64_t n) {
  std::unique_ptr<RocksDbEventLog> log = OpenForWriting(dir);
  if (!log) return 1;
  std::vector<EventDraft> batch;
  const uint64_t step = std::max<uint64_t>(1, kContacts / std::max<uint64_t>(n, 1));
  const uint64_t from = log->LastSequence() / 7;  // another run erases others
  for (uint64_t i = 0; i < n; ++i) {
    const std::string contact = "c" + std::to_string((from + i * step) % kContacts);
    EventDraft d;
    d.tenant = "default";
    d.stream = ContactStream(contact);
    d.type = std::string(kContactErasedType);
    d.payload = EncodeErasure(PlanErasure("default", contact, {}, {}, "bench-hash-key"));
    d.idempotency_system = "bench";
    d.idempotency_key = "erase/" + contact;
    batch.push_back(std::move(d));
  }
  if (!AppendBatch(log.get(), &batch)) return 1;
  std::printf("erased %llu contacts; the log ends at %llu\n", static_cast<unsigned long long>(n),
              static_cast<unsigned long long>(log->LastSequence()));
  log->Close();
  return 0;
}

}  // namespace
}  // namespace dfm

int main(int argc, char** argv) {
  if (argc >= 4 && std::string(argv[1]) == "generate")
    return dfm::Generate(argv[2], std::strtoull(argv[3], nullptr, 10));
  if (argc >= 3 && std::string(argv[1]) == "rebuild")
    return dfm::Rebuild(argv[2], argc >= 4 ? argv[3] : "");
  if (argc >= 3 && std::string(argv[1]) == "scan") return dfm::Scan(argv[2]);
  if (argc >= 3 && std::string(argv[1]) == "history") return dfm::History(argv[2]);
  if (argc >= 3 && std::string(argv[1]) == "pending") return dfm::Pending(argv[2]);
  if (argc >= 4 && std::string(argv[1]) == "erase")
    return dfm::Erase(argv[2], std::strtoull(argv[3], nullptr, 10));
  if (argc >= 4 && std::string(argv[1]) == "replay")
    return dfm::Replay(argv[2], std::strtoull(argv[3], nullptr, 10));
  std::fprintf(
      stderr,
      "usage: replay_bench generate DIR EVENTS | rebuild DIR [NAME] | scan DIR | replay DIR "
      "WINDOW_EVENTS | history DIR | erase DIR N | pending DIR\n");
  return 2;
}
