// Sealed payloads and erasure (docs/privacy.md): events/sealing.h,
// storage/key_store.h, storage/sealer.h, sync/erasure.h, app/erase.h and
// the projections' ForgetContact.
#include "sync/erasure.h"

#include <gtest/gtest.h>
#include <rocksdb/sst_file_reader.h>
#include <rocksdb/table_properties.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "app/erase.h"
#include "campaigns/task.h"
#include "events/codec.h"
#include "events/sealing.h"
#include "events/webhook_received.h"
#include "projections/campaign_projections.h"
#include "projections/sync_projections.h"
#include "replay-tools/audit.h"
#include "storage/append_planner.h"
#include "storage/key_store.h"
#include "storage/memory_event_log.h"
#include "storage/rocksdb_event_log.h"
#include "storage/sealer.h"
#include "sync/domain_event.h"
#include "tests/support/erasure_drafts.h"
#include "tests/support/temp_dir.h"
#include "util/crypto.h"

namespace dfm {
namespace {

constexpr char kPhone[] = "+15551234567";
constexpr char kOtherPhone[] = "+15557654321";

EventDraft Webhook(const std::string& body, const std::string& id) {
  return testing::GhlWebhook(body, id);
}

EventDraft Created(const std::string& contact, const std::string& phone, const AppendOutcome& webhook) {
  return testing::ContactCreated(contact, phone, webhook);
}

EventDraft OptedOut(const std::string& contact, const std::string& phone, const AppendOutcome& webhook,
                    int64_t at_us) {
  return testing::SmsOptOut(contact, phone, webhook, at_us);
}

// A memory log that seals with a memory key store.
struct SealedLog {
  std::shared_ptr<MemoryKeyStore> keys = std::make_shared<MemoryKeyStore>();
  MemoryEventLog log;
  SealedLog() { log.SetKeyStore(keys); }
};

AppendOutcome Put(EventLog* log, EventDraft d) {
  AppendOutcome o;
  Status s = log->Append(std::move(d), &o);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return o;
}

Event ReadOne(const EventLog& log, uint64_t seq) {
  std::vector<Event> out;
  EXPECT_TRUE(log.Read(seq, 1, &out).ok());
  return out.empty() ? Event{} : out[0];
}

std::string RawRecord(const EventLog& log, uint64_t seq) {
  std::string raw;
  EXPECT_TRUE(log.ScanRecords(seq, [&](uint64_t, std::string_view r) {
                   raw.assign(r);
                   return false;
                 }).ok());
  return raw;
}

TEST(SealingTest, WhichKeySealsWhat) {
  EXPECT_EQ(SealKindFor("source:ghl", "webhook.received"), SealKind::kOwn);
  EXPECT_EQ(SealKindFor("backfill:ghl", "contact.imported"), SealKind::kOwn);
  EXPECT_EQ(SealKindFor("replay", "replay.requested"), SealKind::kOwn);
  EXPECT_EQ(SealKindFor("contact:c1", "contact.created"), SealKind::kContact);
  EXPECT_EQ(SealKindFor("contact:c1", "contact.erased"), SealKind::kClear);
  EXPECT_EQ(SealKindFor("source:ghl", "identity.conflict"), SealKind::kCause);
  EXPECT_EQ(SealKindFor("campaign-tasks:spring", "task.claimed"), SealKind::kTaskContact);
  EXPECT_EQ(SealKindFor("campaign:spring", "campaign.created"), SealKind::kClear);
  Event erased;
  erased.stream = "contact:c1";
  erased.type = std::string(kContactErasedType);
  EXPECT_EQ(ErasedContactOf(erased), "c1");
  erased.type = "contact.updated";
  EXPECT_EQ(ErasedContactOf(erased), "");
  EXPECT_EQ(SealKindFor("admin", "admin.action"), SealKind::kClear);
  EXPECT_EQ(SealKindFor("log", "log.recovered"), SealKind::kClear);
}

TEST(SealingTest, ASealedPayloadOpensOnlyForItsOwnRecord) {
  std::string key(32, 'k');
  Event e;
  e.tenant = "t";
  e.stream = "contact:c1";
  e.type = "contact.created";
  e.id.bytes[0] = 1;
  std::string sealed = SealPayload(key, 7, e, "secret");
  EXPECT_EQ(SealedKeyNo(sealed).value_or(0), 7u);
  EXPECT_EQ(sealed.find("secret"), std::string::npos);
  EXPECT_EQ(OpenPayload(key, e, sealed).value_or(""), "secret");
  Event moved = e;
  moved.stream = "contact:c2";
  EXPECT_FALSE(OpenPayload(key, moved, sealed)) << "bound to its record";
  EXPECT_FALSE(OpenPayload(std::string(32, 'x'), e, sealed));
}

TEST(SealingTest, TheLogSealsPersonalDataAndReadsItBack) {
  auto owned = std::make_shared<MemoryKeyStore>();
  MemoryEventLog log;
  log.SetKeyStore(owned);
  AppendOutcome w = Put(&log, Webhook(std::string("{\"phone\":\"") + kPhone + "\"}", "w1"));
  AppendOutcome c = Put(&log, Created("c1", kPhone, w));
  AppendOutcome c2 = Put(&log, OptedOut("c1", kPhone, w, 5));
  AppendOutcome other = Put(&log, Created("c2", kOtherPhone, w));
  for (uint64_t seq : {w.seq, c.seq, c2.seq, other.seq})
    EXPECT_EQ(RawRecord(log, seq).find(kPhone), std::string::npos) << "seq " << seq;
  Event we = ReadOne(log, w.seq), ce = ReadOne(log, c.seq), ce2 = ReadOne(log, c2.seq),
        oe = ReadOne(log, other.seq);
  EXPECT_EQ(we.sealing, Event::Sealing::kOpened);
  WebhookReceived back;
  ASSERT_TRUE(DecodeWebhookReceived(we.schema_version, we.payload, &back).ok());
  EXPECT_NE(back.body.find(kPhone), std::string::npos);
  EXPECT_EQ(ce.key_no, ce2.key_no) << "one key per contact";
  EXPECT_NE(ce.key_no, oe.key_no);
  EXPECT_NE(ce.key_no, we.key_no);
  DomainEvent d;
  ASSERT_TRUE(AsDomainEvent(ce, &d));
  EXPECT_EQ(d.fields["phone"], kPhone);
  // A router record on the source stream takes its webhook's key.
  DomainEvent rej;
  rej.type = std::string(ev::kFactRejected);
  rej.system = "ghl";
  rej.reason = "no phone";
  AppendOutcome r = Put(&log, ToDraft(rej, "t", SourceStream("ghl"), w.id, w.id));
  EXPECT_EQ(ReadOne(log, r.seq).key_no, we.key_no);
  EXPECT_TRUE(log.VerifyChain().ok);
}

TEST(SealingTest, AKeyThatCannotBeMadeFailsTheAppendAndWritesNothing) {
  SealedLog sealed;
  MemoryEventLog& log = sealed.log;
  MemoryKeyStore& keys = *sealed.keys;
  keys.FailNewKeys(true);
  AppendOutcome o;
  EXPECT_FALSE(log.Append(Webhook("{}", "w1"), &o).ok());
  EXPECT_EQ(log.LastSequence(), 0u);
  keys.FailNewKeys(false);
  EXPECT_TRUE(log.Append(Webhook("{}", "w1"), &o).ok());
  EXPECT_EQ(o.seq, 1u);
}

// A contact's key the store cannot read now (a failing disk) fails the
// append, where sealing under a key nobody keeps would lose the event.
TEST(SealingTest, AKeyThatCannotBeReadFailsTheAppendAndWritesNothing) {
  SealedLog sealed;
  MemoryEventLog& log = sealed.log;
  AppendOutcome w = Put(&log, Webhook("{}", "w1"));
  AppendOutcome c = Put(&log, Created("c1", kPhone, w));
  sealed.keys->FailGets(true);
  AppendOutcome o;
  Status s = log.Append(OptedOut("c1", kPhone, w, 5), &o);
  EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
  EXPECT_EQ(log.LastSequence(), c.seq);
  sealed.keys->FailGets(false);
  AppendOutcome again = Put(&log, OptedOut("c1", kPhone, w, 5));
  Event e = ReadOne(log, again.seq);
  EXPECT_EQ(e.sealing, Event::Sealing::kOpened) << "sealed under the contact's key";
  EXPECT_EQ(e.key_no, ReadOne(log, c.seq).key_no);
  EXPECT_TRUE(log.VerifyChain().ok);
}

// Within one plan, a call refused (its contact's key not read) leaves
// nothing of itself, the calls before it planned, and its idempotency key
// free to be planned again.
TEST(SealingTest, ARefusedCallIsRolledBackAloneWithinItsPlan) {
  auto keys = std::make_shared<MemoryKeyStore>();
  PayloadSealer sealer(keys.get());
  AppendPlanner planner(SystemClock::Instance(), 0, Sha256Digest{});
  // The contact's key is the one made for it; the log has no records.
  uint64_t contact_key = 0;
  std::string unused;
  ASSERT_TRUE(keys->NewKey(&contact_key, &unused).ok());
  planner.SetSealer(&sealer, {[&](std::string_view, std::string_view) { return contact_key; },
                              [](const EventId&) { return uint64_t{0}; }});
  const auto nothing_stored = [](const std::string&, uint64_t*, EventId*) {
    return Status::NotFound("");
  };
  std::vector<PlannedRecord> records;
  std::vector<AppendOutcome> first, refused, after;
  std::vector<EventDraft> w1{Webhook("{}", "w1")};
  ASSERT_TRUE(planner.Plan(w1, nothing_stored, &records, &first).ok());
  keys->FailGetsOf(contact_key);
  std::vector<EventDraft> mixed{Webhook("{}", "w2"), OptedOut("c1", kPhone, first[0], 5)};
  EXPECT_TRUE(planner.Plan(mixed, nothing_stored, &records, &refused).IsUnavailable());
  EXPECT_TRUE(refused.empty());
  ASSERT_EQ(records.size(), 1u) << "w2, planned before the refused STOP, is rolled back too";
  keys->FailGetsOf(0);
  std::vector<EventDraft> again{Webhook("{}", "w2")};
  ASSERT_TRUE(planner.Plan(again, nothing_stored, &records, &after).ok());
  ASSERT_EQ(after.size(), 1u);
  EXPECT_FALSE(after[0].duplicate) << "the refused call's key is not in flight";
  EXPECT_EQ(after[0].seq, 2u) << "numbered after w1, as if the refused call never was";
  ASSERT_EQ(records.size(), 2u);
  Event e;
  ASSERT_TRUE(DecodeRecord(records[1].record, &e).ok());
  EXPECT_EQ(e.prev_hash, RecordHash(records[0].record)) << "chained to w1";
  planner.Commit();
}

// One contact's key that cannot be read (a damaged block) refuses that
// contact's appends alone: the others in the same group commits are
// written, whichever group each lands in.
TEST(SealingTest, AnAppendWhoseKeyCannotBeReadIsRefusedAloneInItsGroup) {
  testing::TempDir dir;
  auto keys = std::make_shared<MemoryKeyStore>();
  std::unique_ptr<RocksDbEventLog> log = testing::OpenSealingLog(dir.Sub("log"), keys);
  ASSERT_TRUE(log);
  AppendOutcome w = Put(log.get(), Webhook("{}", "w1"));
  AppendOutcome c1 = Put(log.get(), Created("c1", kPhone, w));
  Put(log.get(), Created("c2", kOtherPhone, w));
  keys->FailGetsOf(ReadOne(*log, c1.seq).key_no);
  constexpr int kAppends = 40;
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0, refused = 0, refused_other = 0;
  for (int i = 0; i < kAppends; ++i) {
    const bool bad = i % 4 == 0;
    EventDraft d = bad        ? OptedOut("c1", kPhone, w, i)
                   : i % 4 == 1 ? OptedOut("c2", kOtherPhone, w, i)
                                : Webhook("{}", "w-" + std::to_string(i));
    std::vector<EventDraft> drafts;
    drafts.push_back(std::move(d));
    log->AppendAsync(std::move(drafts), [&, bad](const Status& s, const std::vector<AppendOutcome>&) {
      std::lock_guard<std::mutex> lk(mu);
      if (!s.ok()) (bad ? refused : refused_other)++;
      ++answered;
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lk(mu);
  ASSERT_TRUE(cv.wait_for(lk, std::chrono::seconds(30), [&] { return answered == kAppends; }));
  EXPECT_EQ(refused, kAppends / 4);
  EXPECT_EQ(refused_other, 0);
  EXPECT_EQ(log->LastSequence(), 3u + kAppends - kAppends / 4);
  EXPECT_TRUE(log->VerifyChain().ok);
  keys->FailGetsOf(0);
  AppendOutcome again = Put(log.get(), OptedOut("c1", kPhone, w, 99));
  EXPECT_EQ(ReadOne(*log, again.seq).sealing, Event::Sealing::kOpened);
}

// A keyed hash is HMAC-SHA256(secret, tenant "\n" identifier), its first
// 16 bytes in hex, made one at a time or by a SubjectHasher.
TEST(ErasureTest, ASubjectHashIsTheHmacOfTenantAndIdentifier) {
  const std::string key = "Jefe";
  const std::string hash = SubjectHash(key, "t", "what do ya want for nothing?");
  EXPECT_EQ(hash.size(), 32u);
  const SubjectHasher many(key, "t");
  EXPECT_EQ(many("what do ya want for nothing?"), hash);
  EXPECT_EQ(many("+12055550100"), SubjectHash(key, "t", "+12055550100"));
  EXPECT_NE(SubjectHash(key, "u", "+12055550100"), SubjectHash(key, "t", "+12055550100"));
  EXPECT_EQ(HexEncode(std::string_view(HmacKey(HmacKey::Digest::kSha256, key)
                                           .Mac("t\nwhat do ya want for nothing?"))
                          .substr(0, 16)),
            hash);
}

TEST(ErasureTest, ErasingAContactMakesItsDataAndItsWebhooksUnreadable) {
  SealedLog sealed;
  MemoryEventLog& log = sealed.log;
  MemoryKeyStore& keys = *sealed.keys;
  AppendOutcome w = Put(&log, Webhook(std::string("{\"phone\":\"") + kPhone + "\"}", "w1"));
  AppendOutcome w2 = Put(&log, Webhook(std::string("{\"phone\":\"") + kOtherPhone + "\"}", "w2"));
  Put(&log, Created("c1", kPhone, w));
  Put(&log, OptedOut("c1", kPhone, w, 1000));
  AppendOutcome other = Put(&log, Created("c2", kOtherPhone, w2));

  EraseOutcome out;
  Status s = EraseContact(&log, &keys, {"t", "c1", "GDPR art. 17 request 42", "cli", {}}, &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE(out.already);
  EXPECT_EQ(out.erasure.events, 2u);
  EXPECT_EQ(out.erasure.sources, 1u);
  ASSERT_EQ(out.erasure.subjects.size(), 1u);
  EXPECT_TRUE(out.erasure.subjects[0].out);
  EXPECT_EQ(out.erasure.subjects[0].hash, SubjectHash(keys.HashKey(), "t", kPhone));

  std::vector<Event> stream;
  ASSERT_TRUE(log.ReadWholeStream("t", ContactStream("c1"), &stream).ok());
  ASSERT_EQ(stream.size(), 3u);
  EXPECT_TRUE(stream[0].erased());
  EXPECT_TRUE(stream[1].erased());
  EXPECT_TRUE(stream[0].payload.empty());
  EXPECT_EQ(stream[2].type, kContactErasedType);
  EXPECT_EQ(stream[2].payload.find(kPhone), std::string::npos);
  EXPECT_TRUE(ReadOne(log, w.seq).erased()) << "the webhook that fed it";
  EXPECT_EQ(ReadOne(log, w2.seq).sealing, Event::Sealing::kOpened) << "another person's";
  EXPECT_EQ(ReadOne(log, other.seq).sealing, Event::Sealing::kOpened);
  EXPECT_TRUE(log.VerifyChain().ok) << "the chain covers the sealed bytes";

  // Later events of the erased contact are recorded unreadable.
  AppendOutcome late = Put(&log, OptedOut("c1", kPhone, w, 2000));
  EXPECT_TRUE(ReadOne(log, late.seq).erased());
  // Asking again answers with the first erasure.
  EraseOutcome again;
  ASSERT_TRUE(EraseContact(&log, &keys, {"t", "c1", "again", "cli", {}}, &again).ok());
  EXPECT_TRUE(again.already);
  EXPECT_EQ(again.seq, out.seq);
  EXPECT_TRUE(EraseContact(&log, &keys, {"t", "nobody", "", "cli", {}}, &again).IsNotFound());
}

// The opt-out history after an erasure: the erased person's statement is
// still a row (that it was made, when, under which contact, its record's
// hash), with nothing of the person; asked by phone, it is nobody's.
TEST(ErasureTest, AnErasedPersonsOptOutStaysARowOfTheHistoryWithoutThem) {
  SealedLog sealed;
  MemoryEventLog& log = sealed.log;
  AppendOutcome w = Put(&log, Webhook(std::string("{\"phone\":\"") + kPhone + "\"}", "w1"));
  Put(&log, Created("c1", kPhone, w));
  AppendOutcome out = Put(&log, OptedOut("c1", kPhone, w, 1000));
  EraseOutcome erased;
  ASSERT_TRUE(
      EraseContact(&log, sealed.keys.get(), {"t", "c1", "request 42", "cli", {}}, &erased).ok());
  std::vector<ConsentRecord> records;
  ASSERT_TRUE(CollectConsentRecords(log, {}, &records).ok());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_TRUE(records[0].erased);
  EXPECT_EQ(records[0].status, "opt_out");
  EXPECT_EQ(records[0].contact_id, "c1");
  EXPECT_EQ(records[0].seq, out.seq);
  EXPECT_TRUE(records[0].phone.empty());
  std::ostringstream csv, err;
  PrintConsentRecords(records, "csv", csv, err);
  EXPECT_EQ(csv.str().find(kPhone), std::string::npos);
  EXPECT_NE(csv.str().find(",true\n"), std::string::npos) << csv.str();
  OptOutAuditOptions by_phone;
  by_phone.phone = kPhone;
  ASSERT_TRUE(CollectConsentRecords(log, by_phone, &records).ok());
  EXPECT_TRUE(records.empty());
}

// Folds events into a key/value map as the runner does (one batch each).
struct Folded {
  std::map<std::string, std::string> kv;
  void Fold(Projection& p, const std::vector<Event>& events) {
    ProjectionState st([&](std::string_view k, std::string* v) {
      auto it = kv.find(std::string(k));
      if (it == kv.end()) return Status::NotFound("");
      *v = it->second;
      return Status::OK();
    });
    st.SetBaseScanner([&](std::string_view prefix,
                          const std::function<bool(std::string_view, std::string_view)>& fn) {
      for (auto it = kv.lower_bound(std::string(prefix));
           it != kv.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
        if (!fn(it->first, it->second)) break;
      return Status::OK();
    });
    for (const Event& e : events) p.Fold(e, &st);
    for (const StateOp& op : st.TakeOps()) {
      if (op.erase) {
        kv.erase(op.key);
      } else {
        kv[op.key] = op.value;
      }
    }
  }
};

std::vector<Event> All(const EventLog& log, uint64_t from = 1) {
  std::vector<Event> out;
  EXPECT_TRUE(log.Read(from, 1 << 20, &out).ok());
  return out;
}

// A push of the contact's (`op` to `system`, id `push_id`) requested or
// ended (`type`), caused by `webhook`.
EventDraft PushEvent(std::string_view type, const std::string& push_id, const std::string& op,
                     const std::string& system, const AppendOutcome& webhook) {
  DomainEvent d;
  d.type = std::string(type);
  d.contact_id = "c1";
  d.system = system;
  d.op = op;
  d.channel = "sms";
  d.push_id = push_id;
  d.fields = {{"phone", kPhone}};
  d.webhook_seq = webhook.seq;
  return ToDraft(d, "t", ContactStream("c1"), webhook.id, webhook.id);
}

// Once the person's keys are gone, an opt-out push still on its way lives
// only in its connector's memory (its request is sealed with those keys),
// so a restart before it lands loses it. An erasure waits for the person's
// consent pushes to land (up to consent_wait), and is refused while one is
// open, nothing done, unless forced; pushes of other kinds do not hold it.
TEST(ErasureTest, AnErasureWaitsForTheConsentPushesOnTheirWay) {
  SealedLog sealed;
  MemoryEventLog& log = sealed.log;
  AppendOutcome w = Put(&log, Webhook(std::string("{\"phone\":\"") + kPhone + "\"}", "w1"));
  Put(&log, Created("c1", kPhone, w));
  Put(&log, OptedOut("c1", kPhone, w, 1000));
  Put(&log, PushEvent(ev::kPushRequested, "c1:aloware:1:opt_out", "opt_out", "aloware", w));
  Put(&log, PushEvent(ev::kPushRequested, "c1:ghl:1:opt_out", "opt_out", "ghl", w));
  Put(&log, PushEvent(ev::kPushSucceeded, "c1:ghl:1:opt_out", "opt_out", "ghl", w));
  Put(&log,
      PushEvent(ev::kPushRequested, "c1:verity:1", "upsert", "verity", w));  // open: no matter
  const uint64_t before = log.LastSequence();
  EraseRequest r{"t", "c1", "request 42", "cli", {}};
  r.consent_wait = std::chrono::milliseconds(300);
  EraseOutcome out;
  Status s = EraseContact(&log, sealed.keys.get(), r, &out);
  EXPECT_TRUE(s.IsFailedPrecondition()) << s.ToString();
  EXPECT_NE(s.message().find("opt_out to aloware"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("ghl"), std::string::npos) << "landed: " << s.message();
  EXPECT_EQ(log.LastSequence(), before) << "nothing appended";
  EXPECT_EQ(ReadOne(log, 2).sealing, Event::Sealing::kOpened) << "no key destroyed";

  // It lands while the erasure waits: the erasure goes ahead.
  std::thread lands([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Put(&log, PushEvent(ev::kPushSucceeded, "c1:aloware:1:opt_out", "opt_out", "aloware", w));
  });
  r.consent_wait = std::chrono::seconds(10);
  s = EraseContact(&log, sealed.keys.get(), r, &out);
  lands.join();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ReadOne(log, 2).sealing, Event::Sealing::kErased);
}

TEST(ErasureTest, AForcedErasureGoesPastConsentPushesOnTheirWay) {
  SealedLog sealed;
  MemoryEventLog& log = sealed.log;
  AppendOutcome w = Put(&log, Webhook(std::string("{\"phone\":\"") + kPhone + "\"}", "w1"));
  Put(&log, Created("c1", kPhone, w));
  Put(&log, PushEvent(ev::kPushRequested, "c1:aloware:1:mark_dnc", "mark_dnc", "aloware", w));
  EraseRequest r{"t", "c1", "request 42", "cli", {}};
  EraseOutcome out;
  EXPECT_TRUE(EraseContact(&log, sealed.keys.get(), r, &out).IsFailedPrecondition())
      << "no wait: refused at once";
  r.force = true;
  Status s = EraseContact(&log, sealed.keys.get(), r, &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ReadOne(log, 2).sealing, Event::Sealing::kErased);
}

// A consent push to a system the tenant no longer sends to (taken out of
// its configuration) never lands: it does not hold the erasure.
TEST(ErasureTest, AConsentPushToASystemNoLongerConfiguredHoldsNothing) {
  SealedLog sealed;
  MemoryEventLog& log = sealed.log;
  AppendOutcome w = Put(&log, Webhook(std::string("{\"phone\":\"") + kPhone + "\"}", "w1"));
  Put(&log, Created("c1", kPhone, w));
  Put(&log, PushEvent(ev::kPushRequested, "c1:halopsa:1:opt_out", "opt_out", "halopsa", w));
  EraseRequest r{"t", "c1", "request 42", "cli", {}};
  r.delivers = [](const std::string& system) { return system != "halopsa"; };
  EraseOutcome out;
  Status s = EraseContact(&log, sealed.keys.get(), r, &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

TEST(ErasureTest, ProjectionsForgetTheContactAsARebuildWould) {
  SealedLog sealed;
  MemoryEventLog& log = sealed.log;
  MemoryKeyStore& keys = *sealed.keys;
  AppendOutcome w = Put(&log, Webhook("{}", "w1"));
  AppendOutcome w2 = Put(&log, Webhook("{}", "w2"));
  Put(&log, Created("c1", kPhone, w));
  Put(&log, OptedOut("c1", kPhone, w, 1000));
  Put(&log, Created("c2", kOtherPhone, w2));
  Put(&log, OptedOut("c2", kOtherPhone, w2, 1000));
  SyncProjections live_set, rebuilt_set;
  auto live_p = live_set.All(), rebuilt_p = rebuilt_set.All();
  std::vector<Folded> live(live_p.size()), rebuilt(rebuilt_p.size());
  const uint64_t before = log.LastSequence();
  for (size_t i = 0; i < live_p.size(); ++i) live[i].Fold(*live_p[i], All(log));
  bool had_phone = false;
  for (const auto& [k, v] : live[0].kv) had_phone |= k.find(kPhone) != std::string::npos;
  EXPECT_TRUE(had_phone) << "the mappings know the phone before";

  EraseOutcome out;
  ASSERT_TRUE(EraseContact(&log, &keys, {"t", "c1", "request", "cli", {}}, &out).ok());
  for (size_t i = 0; i < live_p.size(); ++i) {
    live[i].Fold(*live_p[i], All(log, before + 1));
    rebuilt[i].Fold(*rebuilt_p[i], All(log));
    EXPECT_EQ(live[i].kv, rebuilt[i].kv) << live_p[i]->name();
    for (const auto& [k, v] : live[i].kv) {
      EXPECT_EQ(k.find(kPhone), std::string::npos) << live_p[i]->name() << " " << k;
      EXPECT_EQ(v.find(kPhone), std::string::npos) << live_p[i]->name() << " " << k;
      EXPECT_EQ(k.find("~o/c1\n"), std::string::npos) << live_p[i]->name() << " " << k;
      EXPECT_EQ(k.find("/c1/"), std::string::npos) << live_p[i]->name() << " " << k;
      EXPECT_NE(v, "c1") << live_p[i]->name() << " " << k;
    }
  }
  // The registry keeps the erased person's opt-out under its keyed hash,
  // and the other contact's as it was.
  const std::string z = ErasedSubjectKey("t", SubjectHash(keys.HashKey(), "t", kPhone), "sms");
  auto& registry = live[3].kv;
  ASSERT_TRUE(registry.count(z));
  EXPECT_EQ(registry[z].substr(0, 4), "out ");
  EXPECT_TRUE(registry.count(std::string("o/t/") + kOtherPhone + "/sms"));
}

// Two contacts' opt-outs of one address, the erased one's first: the
// address's current status is the other's, and stays when the first is
// erased (it was erased with the first's index), as a rebuild folds it.
TEST(ErasureTest, AnotherContactsLaterOptOutOfTheAddressStays) {
  SealedLog sealed;
  MemoryEventLog& log = sealed.log;
  AppendOutcome w = Put(&log, Webhook("{}", "w1"));
  AppendOutcome w2 = Put(&log, Webhook("{}", "w2"));
  Put(&log, Created("c1", kPhone, w));
  Put(&log, OptedOut("c1", kPhone, w, 1000));
  Put(&log, Created("c2", kPhone, w2));
  Put(&log, OptedOut("c2", kPhone, w2, 2000));
  OptOutRegistryProjection live_p, rebuilt_p;
  Folded live, rebuilt;
  const uint64_t before = log.LastSequence();
  live.Fold(live_p, All(log));
  const std::string o = std::string("o/t/") + kPhone + "/sms";
  ASSERT_TRUE(live.kv.count(o));
  EraseOutcome out;
  ASSERT_TRUE(EraseContact(&log, sealed.keys.get(), {"t", "c1", "request", "cli", {}}, &out).ok());
  live.Fold(live_p, All(log, before + 1));
  rebuilt.Fold(rebuilt_p, All(log));
  ASSERT_TRUE(live.kv.count(o)) << "c2's opt-out of the address stays";
  EXPECT_EQ(live.kv[o].substr(0, 4), "out ");
  EXPECT_EQ(live.kv[o], rebuilt.kv[o]);
}

// A task event of campaign "spring", step 0, for `contact`.
EventDraft TaskDraft(std::string_view type, const std::string& contact, int claim = 0,
                     const std::string& body = "") {
  TaskEvent t;
  t.type = std::string(type);
  t.campaign = "spring";
  t.contact = contact;
  t.due_us = 1;
  t.claim = claim;
  if (type != kTaskCreated && type != kTaskSkipped) t.agent = "sms";
  t.lease_until_us = type == kTaskClaimed ? 5'000'000 : 0;
  t.channel = type == kTaskCreated || type == kTaskSkipped ? "" : "sms";
  t.body = body;
  t.reason = type == kTaskSkipped ? "opted_out" : "";
  return TaskEventDraft("t", t);
}

TEST(ErasureTest, ACampaignsTextToThePersonGoesWithTheirKey) {
  SealedLog sealed;
  MemoryEventLog& log = sealed.log;
  MemoryKeyStore& keys = *sealed.keys;
  AppendOutcome w = Put(&log, Webhook("{}", "w1"));
  AppendOutcome w2 = Put(&log, Webhook("{}", "w2"));
  const uint64_t ann_key = ReadOne(log, Put(&log, Created("c1", kPhone, w)).seq).key_no;
  Put(&log, Created("c2", kOtherPhone, w2));
  std::vector<uint64_t> anns;
  anns.push_back(Put(&log, TaskDraft(kTaskCreated, "c1")).seq);
  anns.push_back(Put(&log, TaskDraft(kTaskClaimed, "c1", 1, "Hi Ann, from Acme")).seq);
  anns.push_back(Put(&log, TaskDraft(kTaskDone, "c1", 1)).seq);
  const uint64_t bos = Put(&log, TaskDraft(kTaskCreated, "c2")).seq;
  Put(&log, TaskDraft(kTaskSkipped, "c2"));
  EXPECT_EQ(RawRecord(log, anns[1]).find("Hi Ann"), std::string::npos) << "sealed";
  for (uint64_t seq : anns) EXPECT_EQ(ReadOne(log, seq).key_no, ann_key) << "the person's key";
  // A contact whose stream names no key yet: a key of the task's own.
  const uint64_t stray = Put(&log, TaskDraft(kTaskCreated, "c3")).seq;
  EXPECT_NE(ReadOne(log, stray).key_no, 0u);
  EXPECT_EQ(ReadOne(log, stray).sealing, Event::Sealing::kOpened);

  CampaignTasksProjection live_p, rebuilt_p;
  Folded live, rebuilt;
  live.Fold(live_p, All(log));
  EXPECT_EQ(live.kv["n/t/spring/done"], "1");
  EXPECT_EQ(live.kv["r/t/spring/opted_out"], "1");
  const uint64_t before = log.LastSequence();
  EraseOutcome out;
  ASSERT_TRUE(EraseContact(&log, &keys, {"t", "c1", "request", "cli", {}}, &out).ok());
  EXPECT_EQ(out.erasure.events, 1u + anns.size()) << "its stream's event and its task events";
  for (uint64_t seq : anns) EXPECT_TRUE(ReadOne(log, seq).erased()) << seq;
  EXPECT_EQ(ReadOne(log, bos).sealing, Event::Sealing::kOpened) << "another person's";
  live.Fold(live_p, All(log, before + 1));
  rebuilt.Fold(rebuilt_p, All(log));
  EXPECT_EQ(live.kv, rebuilt.kv);
  EXPECT_FALSE(live.kv.count("n/t/spring/done")) << "the erased person's task is not counted";
  EXPECT_EQ(live.kv["n/t/spring/skipped"], "1");
  EXPECT_EQ(live.kv["r/t/spring/opted_out"], "1");
  EXPECT_TRUE(live.kv.count(CampaignTaskKey("t", "spring", 0, "c2")));
  EXPECT_TRUE(live.kv.count("e/t/c1")) << "campaigns wait for no task of the erased";
  for (const auto& [k, v] : live.kv) {
    if (k == "e/t/c1") continue;
    EXPECT_EQ(k.find("/c1"), std::string::npos) << k;
    EXPECT_EQ(k.find("~o/c1\n"), std::string::npos) << k;
  }
}

TEST(ErasureTest, NothingAfterAnErasureOpensEvenBeforeItsKeyIsDestroyed) {
  SealedLog sealed;
  MemoryEventLog& log = sealed.log;
  AppendOutcome w = Put(&log, Webhook("{}", "w1"));
  Put(&log, Created("c1", kPhone, w));
  Put(&log, Created("c2", kOtherPhone, w));
  EventDraft erased;
  erased.tenant = "t";
  erased.stream = ContactStream("c1");
  erased.type = std::string(kContactErasedType);
  erased.payload = "{}";
  Put(&log, erased);  // its keys not destroyed yet (app/erase.cc destroys them next)
  EXPECT_TRUE(ReadOne(log, Put(&log, OptedOut("c1", kPhone, w, 5)).seq).erased());
  EXPECT_TRUE(ReadOne(log, Put(&log, TaskDraft(kTaskCreated, "c1")).seq).erased());
  EXPECT_EQ(ReadOne(log, Put(&log, OptedOut("c2", kOtherPhone, w, 5)).seq).sealing,
            Event::Sealing::kOpened);

  // An erasure planned and then dropped (its batch not written) leaves the
  // contact's events readable.
  MemoryKeyStore keys;
  PayloadSealer sealer(&keys);
  PayloadSealer::Lookups none{[](std::string_view, std::string_view) { return uint64_t{0}; },
                              [](const EventId&) { return uint64_t{0}; }};
  auto event = [](const std::string& type, const std::string& payload) {
    Event e;
    e.tenant = "t";
    e.stream = ContactStream("c3");
    e.type = type;
    e.id.bytes[0] = static_cast<uint8_t>(payload.size());
    e.payload = payload;
    return e;
  };
  Event dropped = event(std::string(kContactErasedType), "{}");
  ASSERT_TRUE(sealer.Seal(&dropped, none).ok());
  sealer.Abandon();
  Event later = event("contact.updated", "{\"x\":1}");
  ASSERT_TRUE(sealer.Seal(&later, none).ok());
  ASSERT_TRUE(sealer.Open(&later).ok());
  EXPECT_EQ(later.sealing, Event::Sealing::kOpened);
  Event kept = event(std::string(kContactErasedType), "{}");
  ASSERT_TRUE(sealer.Seal(&kept, none).ok());
  sealer.Commit();
  Event after = event("contact.updated", "{\"x\":22}");
  ASSERT_TRUE(sealer.Seal(&after, none).ok());
  ASSERT_TRUE(sealer.Open(&after).ok());
  EXPECT_TRUE(after.erased());
}

TEST(ErasureTest, TasksOfAContactOlderThanSealingGoWithIt) {
  auto keys = std::make_shared<MemoryKeyStore>();
  MemoryEventLog log;
  AppendOutcome w = Put(&log, Webhook("{}", "w1"));
  Put(&log, Created("c1", kPhone, w));
  for (int i = 0; i < 16; ++i) Put(&log, OptedOut("c1", kPhone, w, i));  // all clear
  log.SetKeyStore(keys);
  const uint64_t key = ReadOne(log, Put(&log, OptedOut("c1", kPhone, w, 99)).seq).key_no;
  log.SetKeyStore(keys);  // a new sealer, as after a restart: its first 16 events name no key
  const uint64_t task = Put(&log, TaskDraft(kTaskCreated, "c1")).seq;
  ASSERT_NE(ReadOne(log, task).key_no, 0u);
  EXPECT_NE(ReadOne(log, task).key_no, key) << "a key of its own";
  const uint64_t other = Put(&log, TaskDraft(kTaskCreated, "c2")).seq;

  EraseOutcome out;
  ASSERT_TRUE(EraseContact(&log, keys.get(), {"t", "c1", "request", "cli", {}}, &out).ok());
  EXPECT_EQ(out.erasure.events, 18u + 1u) << "its stream's 18 events and its task";
  EXPECT_TRUE(ReadOne(log, task).erased());
  EXPECT_FALSE(ReadOne(log, other).erased());
}

// A message.logged of `contact` on `channel`, caused by `webhook`.
EventDraft Logged(const std::string& contact, const std::string& channel,
                  const std::string& message_key, const AppendOutcome& webhook) {
  DomainEvent d;
  d.type = std::string(ev::kMessageLogged);
  d.contact_id = contact;
  d.system = "verity";
  d.channel = channel;
  d.message_key = message_key;
  d.fields = {{"direction", "inbound"}};
  if (channel == "call") d.fields["status"] = "completed";
  d.webhook_seq = webhook.seq;
  return ToDraft(d, "t", ContactStream(contact), webhook.id, webhook.id);
}

TEST(ErasureTest, RowsThatBeginWithTheirContactNeedNoIndexAndGoWithIt) {
  MemoryEventLog log;
  AppendOutcome w = Put(&log, Webhook("{}", "w1"));
  AppendOutcome w2 = Put(&log, Webhook("{}", "w2"));
  Put(&log, Created("c1", kPhone, w));
  Put(&log, Logged("c1", "sms", "text-1", w));
  Put(&log, Logged("c1", "call", "call-1", w));
  Put(&log, Created("c10", kOtherPhone, w2));  // an id that begins like c1's
  Put(&log, Logged("c10", "sms", "text-2", w2));
  CampaignTasksProjection live_p, rebuilt_p;
  Folded live, rebuilt;
  live.Fold(live_p, All(log));
  auto rows_of = [](const Folded& f, const std::string& prefix) {
    int n = 0;
    for (const auto& [k, v] : f.kv) n += k.rfind(prefix, 0) == 0;
    return n;
  };
  EXPECT_EQ(rows_of(live, "i/t/c1/"), 1);
  EXPECT_EQ(rows_of(live, "d/t/c1/"), 1);
  EXPECT_EQ(rows_of(live, "i/t/c10/"), 1);
  EXPECT_EQ(rows_of(live, "~o/"), 0) << "the rows are found by their prefix";

  const uint64_t before = log.LastSequence();
  EventDraft erased;
  erased.tenant = "t";
  erased.stream = ContactStream("c1");
  erased.type = std::string(kContactErasedType);
  erased.payload = "{}";
  Put(&log, erased);
  live.Fold(live_p, All(log, before + 1));
  rebuilt.Fold(rebuilt_p, All(log));
  EXPECT_EQ(live.kv, rebuilt.kv);
  EXPECT_EQ(rows_of(live, "i/t/c1/"), 0);
  EXPECT_EQ(rows_of(live, "d/t/c1/"), 0);
  EXPECT_EQ(rows_of(live, "i/t/c10/"), 1) << "another contact's rows stay";
}

TEST(ErasureTest, AKeyNamesItsContactOnlyUpToABoundary) {
  EXPECT_TRUE(NamesContact("p/c1:ghl:7", "c1", "pk"));
  EXPECT_TRUE(NamesContact("k/c1", "c1", "pk"));
  EXPECT_TRUE(NamesContact("f/c1/phone", "c1", "fd"));
  EXPECT_FALSE(NamesContact("p/c10:ghl:7", "c1", "pk")) << "another contact's id beginning alike";
  EXPECT_FALSE(NamesContact("f/c1/phone", "c1", "pk")) << "not one of the kinds";
  EXPECT_FALSE(NamesContact("p/default/+12055550142", "c1", "p"));
  EXPECT_TRUE(NamesTenantContact("i/t/c1/00000000000000000001/k", "t", "c1", "di"));
  EXPECT_TRUE(NamesTenantContact("d/t/c1", "t", "c1", "di"));
  EXPECT_FALSE(NamesTenantContact("i/t/c10/00000000000000000001/k", "t", "c1", "di"))
      << "another contact's id beginning alike";
  EXPECT_FALSE(NamesTenantContact("i/t2/c1/1/k", "t", "c1", "di")) << "another tenant";
  EXPECT_FALSE(NamesTenantContact("s/t/c1/1/k", "t", "c1", "di")) << "not one of the kinds";
  EXPECT_FALSE(NamesTenantContact("i/tc1", "t", "c1", "di"));
}

TEST(KeyStoreTest, KeysSurviveAReopenAndDestroyedOnesLeaveTheFiles) {
  testing::TempDir dir;
  const std::string path = dir.Sub("keys");
  uint64_t a = 0, b = 0;
  std::string ka, kb;
  {
    std::unique_ptr<RocksDbKeyStore> ks;
    ASSERT_TRUE(RocksDbKeyStore::Open(path, false, &ks).ok());
    ASSERT_TRUE(ks->NewKey(&a, &ka).ok());
    ASSERT_TRUE(ks->NewKey(&b, &kb).ok());
    EXPECT_NE(a, b);
    EXPECT_EQ(ka.size(), 32u);
  }
  std::unique_ptr<RocksDbKeyStore> ks;
  ASSERT_TRUE(RocksDbKeyStore::Open(path, false, &ks).ok());
  std::string got;
  ASSERT_EQ(ks->Get(a, &got), KeyStore::Found::kKey);
  EXPECT_EQ(got, ka);
  uint64_t c = 0;
  ASSERT_TRUE(ks->NewKey(&c, &got).ok());
  EXPECT_GT(c, b) << "numbers are never reused after a restart";
  ASSERT_TRUE(ks->Destroy({a}).ok());
  EXPECT_EQ(ks->Get(a, &got), KeyStore::Found::kDestroyed);
  EXPECT_EQ(ks->Get(b, &got), KeyStore::Found::kKey);
  EXPECT_EQ(ks->Get(999999, &got), KeyStore::Found::kMissing);
  // No file of the store holds the destroyed key's bytes any more.
  for (const auto& f : std::filesystem::directory_iterator(path)) {
    std::ifstream in(f.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find(ka), std::string::npos) << f.path();
  }
  const std::string hash = ks->HashKey();
  ks.reset();
  ASSERT_TRUE(RocksDbKeyStore::Open(path, false, &ks).ok());
  EXPECT_EQ(ks->HashKey(), hash);
  EXPECT_EQ(ks->Get(a, &got), KeyStore::Found::kDestroyed);
}

// A key read from disk brings the next ones into the cache (a reader going
// through the log asks for them next); a destroyed key never comes back
// from there.
TEST(KeyStoreTest, AReadBringsTheNextKeysButNeverADestroyedOne) {
  testing::TempDir dir;
  const std::string path = dir.Sub("keys");
  std::map<uint64_t, std::string> made;
  {
    std::unique_ptr<RocksDbKeyStore> ks;
    ASSERT_TRUE(RocksDbKeyStore::Open(path, false, &ks).ok());
    for (int i = 0; i < 600; ++i) {  // more than two pools
      uint64_t no = 0;
      std::string key;
      ASSERT_TRUE(ks->NewKey(&no, &key).ok());
      made[no] = key;
    }
  }
  std::unique_ptr<RocksDbKeyStore> ks;
  ASSERT_TRUE(RocksDbKeyStore::Open(path, false, &ks).ok());
  const uint64_t first = made.begin()->first;
  std::string got;
  ASSERT_EQ(ks->Get(first, &got), KeyStore::Found::kKey);  // reads ahead
  ASSERT_TRUE(ks->Destroy({first + 5}).ok());
  for (const auto& [no, key] : made) {
    if (no == first + 5) {
      EXPECT_EQ(ks->Get(no, &got), KeyStore::Found::kDestroyed);
      continue;
    }
    ASSERT_EQ(ks->Get(no, &got), KeyStore::Found::kKey) << no;
    EXPECT_EQ(got, key) << no;
  }
}

// The compression of the events family's table files in `dir`, by
// RocksDB's name ("NoCompression", "LZ4"); empty when there are none.
std::set<std::string> EventsFileCompression(const std::string& dir) {
  std::set<std::string> found;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.path().extension() != ".sst") continue;
    rocksdb::Options o;
    rocksdb::SstFileReader reader(o);
    if (!reader.Open(f.path().string()).ok()) continue;
    auto props = reader.GetTableProperties();
    if (props && props->column_family_name == "events") found.insert(props->compression_name);
  }
  return found;
}

TEST(SealingTest, ASealingLogSpendsNoCompressionOnCiphertext) {
  for (bool sealing : {true, false}) {
    testing::TempDir dir;
    RocksDbLogOptions o;
    o.path = dir.Sub("log");
    if (sealing) {
      std::unique_ptr<RocksDbKeyStore> ks;
      ASSERT_TRUE(RocksDbKeyStore::Open(dir.Sub("keys"), false, &ks).ok());
      o.keys = std::move(ks);
    }
    std::unique_ptr<RocksDbEventLog> log;
    ASSERT_TRUE(RocksDbEventLog::Open(o, &log).ok());
    const std::string body = "{\"text\":\"" + std::string(1500, 'a') + "\"}";
    for (int i = 0; i < 20; ++i) Put(log.get(), Webhook(body, "w" + std::to_string(i)));
    ASSERT_TRUE(log->CompactDerived().ok());  // flushes every family
    EXPECT_EQ(EventsFileCompression(o.path),
              std::set<std::string>{sealing ? "NoCompression" : "LZ4"})
        << (sealing ? "sealed" : "clear");
    log->Close();
  }
}

// Read and ReadStream open a sealed payload straight from its record
// (PayloadSealer::OpenFrom); they give what decoding the record and
// Unseal give: opened, erased (key destroyed, or one made and forgotten),
// and clear.
TEST(SealingTest, ReadsOpenFromTheRecordAsUnsealDoes) {
  testing::TempDir dir;
  RocksDbLogOptions o;
  o.path = dir.Sub("log");
  std::unique_ptr<RocksDbKeyStore> ks;
  ASSERT_TRUE(RocksDbKeyStore::Open(dir.Sub("keys"), false, &ks).ok());
  std::shared_ptr<RocksDbKeyStore> keys = std::move(ks);
  o.keys = keys;
  std::unique_ptr<RocksDbEventLog> log;
  ASSERT_TRUE(RocksDbEventLog::Open(o, &log).ok());
  AppendOutcome w = Put(log.get(), Webhook(std::string("{\"phone\":\"") + kPhone + "\"}", "w1"));
  AppendOutcome w2 = Put(log.get(), Webhook("{}", "w2"));
  Put(log.get(), Created("c1", kPhone, w));
  Put(log.get(), Created("c2", kOtherPhone, w2));
  EraseOutcome out;
  ASSERT_TRUE(EraseContact(log.get(), keys.get(), {"t", "c1", "", "cli", {}}, &out).ok());
  Put(log.get(), OptedOut("c1", kPhone, w, 7));  // sealed under a key forgotten at once
  std::vector<Event> read = All(*log);
  ASSERT_EQ(read.size(), log->LastSequence());
  std::set<Event::Sealing> seen;
  for (const Event& got : read) {
    Event want;
    ASSERT_TRUE(DecodeRecord(RawRecord(*log, got.seq), &want).ok());
    ASSERT_TRUE(log->Unseal(&want).ok());
    EXPECT_EQ(got.sealing, want.sealing) << got.seq;
    EXPECT_EQ(got.payload, want.payload) << got.seq;
    EXPECT_EQ(got.key_no, want.key_no) << got.seq;
    seen.insert(got.sealing);
  }
  EXPECT_EQ(seen, (std::set<Event::Sealing>{Event::Sealing::kClear, Event::Sealing::kOpened,
                                             Event::Sealing::kErased}));
  std::vector<Event> stream;
  ASSERT_TRUE(log->ReadStream("t", ContactStream("c2"), 1, 10, &stream).ok());
  ASSERT_EQ(stream.size(), 1u);
  EXPECT_EQ(stream[0].sealing, Event::Sealing::kOpened);
  EXPECT_NE(stream[0].payload.find(kOtherPhone), std::string::npos);
  log->Close();
  log.reset();
  // Opened with a key store that lacks the keys: left sealed, its key named.
  ASSERT_TRUE(RocksDbKeyStore::Open(dir.Sub("other-keys"), false, &ks).ok());
  o.keys = std::move(ks);
  ASSERT_TRUE(RocksDbEventLog::Open(o, &log).ok());
  const Event left = ReadOne(*log, w2.seq);
  Event want;
  ASSERT_TRUE(DecodeRecord(RawRecord(*log, w2.seq), &want).ok());
  EXPECT_EQ(left.sealing, Event::Sealing::kSealed);
  EXPECT_EQ(left.payload, want.payload) << "the sealed bytes as the record holds them";
  ASSERT_TRUE(log->Unseal(&want).ok());
  EXPECT_EQ(left.key_no, want.key_no);
  EXPECT_NE(left.key_no, 0u);
  log->Close();
}

TEST(ErasureTest, ARestoredOlderKeyStoreIsErasedAgainFromTheLog) {
  testing::TempDir dir;
  std::shared_ptr<RocksDbKeyStore> keys;
  std::unique_ptr<RocksDbEventLog> log;
  RocksDbLogOptions o;
  o.path = dir.Sub("log");
  auto open = [&] {
    std::unique_ptr<RocksDbKeyStore> ks;
    ASSERT_TRUE(RocksDbKeyStore::Open(dir.Sub("keys"), false, &ks).ok());
    keys = std::move(ks);
    o.keys = keys;
    ASSERT_TRUE(RocksDbEventLog::Open(o, &log).ok());
  };
  auto close = [&] {
    log->Close();
    log.reset();
    o.keys.reset();
    keys.reset();
  };
  open();
  AppendOutcome w = Put(log.get(), Webhook("{}", "w1"));
  AppendOutcome c = Put(log.get(), Created("c1", kPhone, w));
  close();
  // A copy of the key store, taken before the erasure.
  std::filesystem::copy(dir.Sub("keys"), dir.Sub("keys-copy"));
  open();
  // The contact's key is found again from its stream after the reopen.
  AppendOutcome c2 = Put(log.get(), OptedOut("c1", kPhone, w, 5));
  EXPECT_EQ(ReadOne(*log, c2.seq).key_no, ReadOne(*log, c.seq).key_no);
  EraseOutcome out;
  ASSERT_TRUE(EraseContact(log.get(), keys.get(), {"t", "c1", "", "cli", {}}, &out).ok());
  EXPECT_TRUE(ReadOne(*log, c.seq).erased());
  close();
  // The operator restores the older copy of the keys.
  std::filesystem::remove_all(dir.Sub("keys"));
  std::filesystem::rename(dir.Sub("keys-copy"), dir.Sub("keys"));
  open();
  EXPECT_FALSE(ReadOne(*log, c.seq).erased()) << "the restored copy still had the key";
  uint64_t applied = 0;
  ASSERT_TRUE(ApplyErasures(log.get(), keys.get(), &applied).ok());
  EXPECT_EQ(applied, 1u);
  EXPECT_TRUE(ReadOne(*log, c.seq).erased());
  EXPECT_TRUE(ReadOne(*log, w.seq).erased());
  EXPECT_EQ(keys->ErasuresThrough(), log->LastSequence());
  EXPECT_TRUE(log->VerifyChain().ok);
  ASSERT_TRUE(ApplyErasures(log.get(), keys.get(), &applied).ok());
  EXPECT_EQ(applied, 0u) << "nothing new";
  // A tool beside it reads through a read-only key store.
  std::unique_ptr<RocksDbKeyStore> ro;
  ASSERT_TRUE(RocksDbKeyStore::Open(dir.Sub("keys"), true, &ro).ok());
  std::string key;
  EXPECT_EQ(ro->Get(ReadOne(*log, c.seq).key_no, &key), KeyStore::Found::kDestroyed);
  close();
}

}  // namespace
}  // namespace dfm
