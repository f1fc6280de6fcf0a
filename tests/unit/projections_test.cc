// Projections: the folds directly, and live processing against a rebuild
// from sequence 1 on both EventLog implementations.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include "campaigns/customer.h"
#include "campaigns/task.h"
#include "config/config.h"
#include "events/sealing.h"
#include "projections/runner.h"
#include "projections/sync_projections.h"
#include "storage/memory_event_log.h"
#include "storage/rocksdb_event_log.h"
#include "sync/contact_model.h"
#include "tests/support/faulty_fs.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_logs.h"

namespace dfm {
namespace {

// A projection state over an in-memory base that commits into it.
struct MemBase {
  std::map<std::string, std::string> kv;
  ProjectionState State() {
    return ProjectionState([this](std::string_view k, std::string* v) {
      auto it = kv.find(std::string(k));
      if (it == kv.end()) return Status::NotFound("");
      *v = it->second;
      return Status::OK();
    });
  }
  void Commit(ProjectionState* st) {
    for (auto& op : st->TakeOps()) {
      if (op.erase) {
        kv.erase(op.key);
      } else {
        kv[op.key] = op.value;
      }
    }
  }
};

Event AsEvent(const DomainEvent& d, uint64_t seq) {
  Event e;
  e.seq = seq;
  e.type = d.type;
  e.tenant = "t";
  e.stream = ContactStream(d.contact_id);
  e.payload = EncodeDomainEvent(d);
  return e;
}

TEST(MappingsProjection, LinksAndMovesIdentities) {
  MemBase base;
  MappingsProjection p;
  auto st = base.State();
  DomainEvent c;
  c.type = std::string(ev::kContactCreated);
  c.contact_id = "c1";
  c.system = "ghl";
  c.external_id = "g1";
  c.fields = {{"phone", "+12055550142"}, {"email", "a@x.io"}};
  p.Fold(AsEvent(c, 1), &st);
  DomainEvent ch;
  ch.type = std::string(ev::kContactChanged);
  ch.contact_id = "c1";
  ch.system = "ghl";
  ch.changes = {{"phone", "+12055550142", "+12055550199"}};
  p.Fold(AsEvent(ch, 2), &st);
  DomainEvent ok;
  ok.type = std::string(ev::kPushSucceeded);
  ok.contact_id = "c1";
  ok.system = "aloware";
  ok.external_id = "77";
  ok.push_id = "c1:aloware:1";
  p.Fold(AsEvent(ok, 3), &st);
  base.Commit(&st);
  EXPECT_EQ(base.kv["x/t/ghl/g1"], "c1");
  EXPECT_EQ(base.kv["x/t/aloware/77"], "c1");
  EXPECT_EQ(base.kv["c/c1/aloware"], "77");
  EXPECT_EQ(base.kv["p/t/+12055550199"], "c1");
  EXPECT_EQ(base.kv.count("p/t/+12055550142"), 0u);
  EXPECT_EQ(base.kv["e/t/a@x.io"], "c1");
}

// Contact c1's GoHighLevel opt-out push `push_id` answered: it set the
// records `ids`, `external_id` the one it reports.
DomainEvent OptOutSet(const std::string& push_id, const std::string& external_id,
                      const std::string& ids) {
  DomainEvent ok;
  ok.type = std::string(ev::kPushSucceeded);
  ok.contact_id = "c1";
  ok.system = "ghl";
  ok.op = "opt_out";
  ok.external_id = external_id;
  ok.push_id = push_id;
  ok.fields["answer.ids"] = ids;
  return ok;
}

TEST(MappingsProjection, EveryRecordAConsentPushSetIsThePersons) {
  MemBase base;
  base.kv["x/t/ghl/g9"] = "c2";  // held by another contact: stays its
  MappingsProjection p;
  auto st = base.State();
  p.Fold(AsEvent(OptOutSet("c1:ghl:1:opt_out", "g1", "g1,g0,g9"), 1), &st);
  base.Commit(&st);
  EXPECT_EQ(base.kv["c/c1/ghl"], "g1") << "its link stays the one record";
  EXPECT_EQ(base.kv["x/t/ghl/g1"], "c1");
  EXPECT_EQ(base.kv["x/t/ghl/g0"], "c1") << "the older duplicate maps to the person";
  EXPECT_EQ(base.kv["x/t/ghl/g9"], "c2");
}

// An identity conflict's opt-out pushed to the duplicate's system sets
// every record of the address there, the duplicate's too: none of them
// becomes the person's (the conflict stays for somebody to settle).
TEST(MappingsProjection, AConflictsOptOutPushLinksNoRecord) {
  MemBase base;
  MappingsProjection p;
  auto st = base.State();
  p.Fold(AsEvent(OptOutSet("c1:ghl:1:opt_out:duplicate", "g-dup", "g-own,g-dup"), 1), &st);
  base.Commit(&st);
  EXPECT_EQ(base.kv.count("c/c1/ghl"), 0u);
  EXPECT_EQ(base.kv.count("x/t/ghl/g-dup"), 0u);
  EXPECT_EQ(base.kv.count("x/t/ghl/g-own"), 0u);
}

TEST(MappingsProjection, AMessageIdIsNoContactMapping) {
  MemBase base;
  MappingsProjection p;
  auto st = base.State();
  DomainEvent in;  // a text that arrived through Verity
  in.type = std::string(ev::kMessageLogged);
  in.contact_id = "c1";
  in.system = "verity";
  in.external_id = "vm-9";
  in.message_key = "msg-1";
  p.Fold(AsEvent(in, 1), &st);
  DomainEvent pushed;  // ...written to the GoHighLevel conversation
  pushed.type = std::string(ev::kPushSucceeded);
  pushed.contact_id = "c1";
  pushed.system = "ghl";
  pushed.external_id = "gm-3";
  pushed.message_key = "msg-1";
  pushed.op = "message";
  pushed.push_id = "c1:ghl:1";
  p.Fold(AsEvent(pushed, 2), &st);
  DomainEvent note = pushed;  // a call's note names the call: its id is the note's, not mapped
  note.op = "note";
  note.external_id = "note-7";
  p.Fold(AsEvent(note, 3), &st);
  base.Commit(&st);
  // The ids of a message, and of a note about it, are not the contact's:
  // nothing is mapped.
  EXPECT_TRUE(base.kv.empty()) << base.kv.begin()->first;
}

TEST(OptOutRegistryProjection, CurrentStatusAndFullHistoryPerChannel) {
  MemBase base;
  OptOutRegistryProjection p;
  auto st = base.State();
  DomainEvent out;
  out.type = std::string(ev::kOptedOut);
  out.contact_id = "c1";
  out.system = "verity";
  out.external_id = "vm-9";
  out.reason = "keyword STOP";
  out.channel = "sms";
  out.fields = {{"phone", "+12055550142"}};
  p.Fold(AsEvent(out, 4), &st);
  DomainEvent dnc = out;  // Aloware's DNC: every channel of phone and email
  dnc.system = "aloware";
  dnc.external_id = "77";
  dnc.reason = "is_dnc";
  dnc.channel = "sms,call,email";
  dnc.fields = {{"phone", "+12055550142"}, {"email", "a@x.io"}};
  p.Fold(AsEvent(dnc, 5), &st);
  DomainEvent in = out;
  in.type = std::string(ev::kOptedIn);
  in.external_id = "vm-12";
  in.reason = "keyword START";
  in.source_time_us = 300;
  p.Fold(AsEvent(in, 9), &st);
  DomainEvent late = in;  // an older opt-in recorded after the newer one
  late.external_id = "vm-11";
  late.source_time_us = 250;
  p.Fold(AsEvent(late, 10), &st);
  DomainEvent again = out;  // an opt-out older than the opt-in: history only
  again.source_time_us = 200;
  p.Fold(AsEvent(again, 11), &st);
  base.Commit(&st);
  // Without a source time the recorded time counts (0 in these events).
  EXPECT_EQ(base.kv["o/t/+12055550142/sms"],
            "in 00000000000000000300 00000000000000000009 verity c1");
  EXPECT_EQ(base.kv["o/t/+12055550142/call"],
            "out 00000000000000000000 00000000000000000005 aloware c1");
  EXPECT_EQ(base.kv["o/t/a@x.io/email"],
            "out 00000000000000000000 00000000000000000005 aloware c1");
  int sms_history = 0;
  for (const auto& [k, v] : base.kv)
    if (k.rfind("h/t/+12055550142/sms/", 0) == 0) sms_history++;
  EXPECT_EQ(sms_history, 5);  // every one is kept, in the order recorded
  const std::string& first = base.kv["h/t/+12055550142/sms/00000000000000000004"];
  EXPECT_NE(first.find("\"status\":\"out\""), std::string::npos);
  EXPECT_NE(first.find("\"cause\":\"vm-9\""), std::string::npos);
  EXPECT_NE(first.find("\"reason\":\"keyword STOP\""), std::string::npos);
}

// Times before 1970 (a vendor's zero date) order as numbers: of two, the
// later one (-5 µs) is the current status, though its text sorts first.
TEST(OptOutRegistryProjection, TimesBefore1970OrderAsNumbers) {
  MemBase base;
  OptOutRegistryProjection p;
  auto st = base.State();
  DomainEvent in;
  in.type = std::string(ev::kOptedIn);
  in.contact_id = "c1";
  in.system = "verity";
  in.channel = "sms";
  in.fields = {{"phone", "+12055550142"}};
  in.source_time_us = -5;
  p.Fold(AsEvent(in, 1), &st);
  DomainEvent out = in;  // earlier, recorded later: history only
  out.type = std::string(ev::kOptedOut);
  out.source_time_us = -10;
  p.Fold(AsEvent(out, 2), &st);
  base.Commit(&st);
  EXPECT_EQ(base.kv["o/t/+12055550142/sms"].substr(0, 3), "in ") << base.kv["o/t/+12055550142/sms"];
}

// An event of contact c1's push `push` to Aloware.
DomainEvent PushEvent(std::string_view type, const std::string& push, const std::string& outcome) {
  DomainEvent d;
  d.type = std::string(type);
  d.contact_id = "c1";
  d.system = "aloware";
  d.push_id = push;
  d.outcome = outcome;
  return d;
}

TEST(SyncStatusProjection, CountsPushStates) {
  MemBase base;
  SyncStatusProjection p;
  auto fold = [&](std::string_view type, const std::string& push, const std::string& outcome) {
    auto st = base.State();
    p.Fold(AsEvent(PushEvent(type, push, outcome), 0), &st);
    base.Commit(&st);
  };
  fold(ev::kPushRequested, "p1", "");
  fold(ev::kPushRequested, "p2", "");
  EXPECT_EQ(base.kv["n/t/aloware/pending"], "2");
  fold(ev::kPushAttempted, "p1", "retry");
  fold(ev::kPushSucceeded, "p1", "");
  fold(ev::kPushAttempted, "p2", "failed");
  fold(ev::kPushDeadLettered, "p2", "");
  EXPECT_EQ(base.kv.count("n/t/aloware/pending"), 0u);
  EXPECT_EQ(base.kv.count("n/t/aloware/retrying"), 0u);
  EXPECT_EQ(base.kv["n/t/aloware/succeeded"], "1");
  EXPECT_EQ(base.kv["n/t/aloware/dead"], "1");
  EXPECT_EQ(base.kv["k/c1"], "succeeded=1 dead=1");  // one key per contact
  EXPECT_EQ(base.kv["p/p2"], "dead aloware c1 t");
  fold(ev::kPushRequested, "p3", "");
  EXPECT_EQ(base.kv["k/c1"], "pending=1 succeeded=1 dead=1");
  fold(ev::kPushSucceeded, "p3", "");
  EXPECT_EQ(base.kv["k/c1"], "succeeded=2 dead=1");
  // A mark withdrawn at the start (WithdrawnAtStart) was not given up on.
  fold(ev::kPushRequested, "p4", "");
  fold(ev::kPushDeadLettered, "p4", "withdrawn");
  EXPECT_EQ(base.kv["p/p4"], "cancelled aloware c1 t");
  EXPECT_EQ(base.kv["n/t/aloware/dead"], "1");
  EXPECT_EQ(base.kv["n/t/aloware/cancelled"], "1");
}

TEST(ContactViewProjection, KeepsEachFieldWithTheSystemThatSetIt) {
  MemBase base;
  ContactViewProjection p;
  auto fold = [&](const DomainEvent& d) {
    auto st = base.State();
    p.Fold(AsEvent(d, 0), &st);
    base.Commit(&st);
  };
  DomainEvent c;
  c.type = std::string(ev::kContactCreated);
  c.contact_id = "c1";
  c.system = "ghl";
  c.fields = {{"first_name", "Ada"}, {"phone", "+12055550142"}};
  fold(c);
  EXPECT_EQ(base.kv["f/c1/first_name"], "ghl Ada");
  EXPECT_EQ(base.kv["f/c1/phone"], "ghl +12055550142");
  DomainEvent gone;
  gone.type = std::string(ev::kContactDeleted);
  gone.contact_id = "c1";
  fold(gone);
  EXPECT_EQ(base.kv["d/c1"], "1");
  DomainEvent ch;
  ch.type = std::string(ev::kContactChanged);
  ch.contact_id = "c1";
  ch.system = "aloware";
  ch.changes = {{"first_name", "Ada", "Ada Marie"}};
  fold(ch);
  EXPECT_EQ(base.kv["f/c1/first_name"], "aloware Ada Marie");
  EXPECT_EQ(base.kv["f/c1/phone"], "ghl +12055550142");
  EXPECT_EQ(base.kv.count("d/c1"), 0u);  // written to again: not deleted
  EXPECT_EQ(base.kv.size(), 2u);  // its own rows name it: no owner index (Projection::OwnKinds)
}

TEST(SyncStatusProjection, ASendRefusedBeforeItWentOutIsCancelledNotPending) {
  MemBase base;
  SyncStatusProjection p;
  DomainEvent d;
  d.contact_id = "c1";
  d.system = "twilio";
  d.push_id = "p1";
  for (std::string_view type : {ev::kPushRequested, ev::kMessageRefused}) {
    d.type = std::string(type);
    auto st = base.State();
    p.Fold(AsEvent(d, 0), &st);
    base.Commit(&st);
  }
  EXPECT_EQ(base.kv["p/p1"], "cancelled twilio c1 t");
  EXPECT_EQ(base.kv.count("n/t/twilio/pending"), 0u);
  EXPECT_EQ(base.kv["n/t/twilio/cancelled"], "1");
  EXPECT_EQ(base.kv["k/c1"], "cancelled=1");  // nothing pending: the router recovers nothing
}

// Appends what the contact model decides for a stream of facts about a few
// people, as the actors would, plus push outcomes.
void AppendHistory(EventLog* log, int round) {
  SyncContext ctx;
  ApplyBuiltinDefaults(&ctx);
  ctx.targets["ghl"] = {"first_name", "last_name", "email", "phone"};
  ctx.targets["aloware"] = {"first_name", "last_name", "email", "phone"};
  for (int person = 0; person < 5; ++person) {
    std::string cid = "c" + std::to_string(person);
    ContactState state;
    std::vector<Event> past;
    ASSERT_TRUE(log->ReadStream("default", ContactStream(cid), 1, 100000, &past).ok());
    for (const auto& e : past) {
      DomainEvent d;
      ASSERT_TRUE(DecodeDomainEvent(e.type, e.payload, &d).ok());
      Apply(&state, d, e.seq, e.recorded_at_us);
    }
    state.contact_id = cid;
    ContactFact f;
    f.system = (round + person) % 2 ? "ghl" : "aloware";
    f.external_id = f.system + "-" + std::to_string(person);
    f.fields = {{"phone", "+1205555" + std::to_string(1000 + person * 10 + round % 3)},
                {"email", "p" + std::to_string(person) + "@x.io"},
                {"first_name", "N" + std::to_string(round)}};
    f.source_time_us = 1000 * (round + 1);
    f.webhook_seq = log->LastSequence() + 1;
    ctx.now_us = f.source_time_us;
    std::vector<EventDraft> drafts;
    for (const auto& d : Decide(state, f, ctx)) {
      drafts.push_back(ToDraft(d, "default",
                               d.contact_id.empty() ? SourceStream(f.system) : ContactStream(cid),
                               EventId(), EventId()));
      if (d.type == ev::kPushRequested && person % 2 == 0) {
        DomainEvent ok;
        ok.type = std::string(person % 4 == 0 ? ev::kPushSucceeded : ev::kPushDeadLettered);
        ok.contact_id = cid;
        ok.system = d.system;
        ok.external_id = d.system + "-x" + std::to_string(person);
        ok.push_id = d.push_id;
        drafts.push_back(ToDraft(ok, "default", ContactStream(cid), EventId(), EventId()));
      }
    }
    if (person % 2 == 0 && round % 4 == person % 4) {  // what the enrichment system answered
      DomainEvent en;
      en.type = std::string(ev::kContactEnriched);
      en.contact_id = cid;
      en.system = "apollo";
      en.fields = {{"title", "T" + std::to_string(round)}};
      if (person == 4) {
        en.fields["asked.company_domain"] = "x.io";
      } else {
        en.fields["asked.email"] = "p" + std::to_string(person) + "@x.io";
      }
      drafts.push_back(ToDraft(en, "default", ContactStream(cid), EventId(), EventId()));
    }
    if (person % 2 == 1) {  // an opt-out or an opt-in
      DomainEvent o;
      o.type = std::string(round % 3 == 0 ? ev::kOptedIn : ev::kOptedOut);
      o.contact_id = cid;
      o.system = "aloware";
      o.channel = round % 2 ? "sms" : "sms,call";
      o.fields = {{"phone", "+1205555" + std::to_string(1000 + person)}};
      drafts.push_back(ToDraft(o, "default", ContactStream(cid), EventId(), EventId()));
    }
    if (person % 3 == 0) {  // a text on the contact's conversation, mapped to GoHighLevel
      DomainEvent m;
      m.type = std::string(ev::kMessageLogged);
      m.contact_id = cid;
      m.system = "verity";
      m.external_id = "vm-" + std::to_string(round) + "-" + std::to_string(person);
      m.message_key = "msg-" + std::to_string(round) + "-" + std::to_string(person);
      DomainEvent ok = m;
      ok.type = std::string(ev::kPushSucceeded);
      ok.system = "ghl";
      ok.external_id = "gm-" + std::to_string(round) + "-" + std::to_string(person);
      for (const auto* d : {&m, &ok})
        drafts.push_back(ToDraft(*d, "default", ContactStream(cid), EventId(), EventId()));
    }
    if (person % 4 == 1) {  // a message recorded in Genesys, which answered its conversation
      DomainEvent g;
      g.type = std::string(ev::kPushSucceeded);
      g.contact_id = cid;
      g.system = "genesys";
      g.op = "message";
      g.external_id = "g-" + std::to_string(round) + "-" + std::to_string(person);
      g.message_key = "whatsapp:wamid-" + std::to_string(round) + "-" + std::to_string(person);
      g.fields = {{"phone", "+1205555" + std::to_string(1000 + person)},
                  {"our_number", "+15550001111"},
                  {"answer.conversation_id", "conv-" + std::to_string(person) + "-" + std::to_string(round / 4)}};
      drafts.push_back(ToDraft(g, "default", ContactStream(cid), EventId(), EventId()));
    }
    // A customer's payment made by the person, and the person's task of a
    // campaign moving one step a round (the campaign projections).
    if (round == 0 && person == 0)
      drafts.push_back(CustomerDraft("default", Customer{"acme", "Acme", true, 0, {}}, true));
    drafts.push_back(PaymentDraft("default", "acme",
                                  Payment{"5.00", "USD", "inv-" + std::to_string(round) + "-" + cid,
                                          cid, 0}));
    static const std::string_view kLife[] = {kTaskCreated, kTaskClaimed, kTaskDone};
    TaskEvent t;
    t.type = std::string(kLife[std::min(round, 2)]);
    t.campaign = "spring";
    t.contact = cid;
    t.due_us = 1000;
    t.claim = 1;
    t.agent = "sms";
    t.lease_until_us = 1000000;
    t.channel = "sms";
    drafts.push_back(TaskEventDraft("default", t));
    for (auto& d : drafts) ASSERT_TRUE(log->Append(std::move(d), nullptr).ok());
  }
}

std::map<std::string, std::string> Snapshot(const EventLog* log, const std::string& name) {
  std::map<std::string, std::string> out;
  EXPECT_TRUE(log->ScanConsumerState(name, "",
                                     [&](std::string_view k, std::string_view v) {
                                       out[std::string(k)] = std::string(v);
                                       return true;
                                     })
                  .ok());
  return out;
}

// The router's start reads u/ rows: one per push still pending or retrying,
// gone once it settles either way or its contact is erased.
TEST(SyncStatusProjection, KeepsARowForEachUnsettledPushOnly) {
  MemoryEventLog log;
  SyncStatusProjection p;
  auto fold = [&](std::string_view type, const std::string& push, const std::string& outcome) {
    EventDraft d = ToDraft(PushEvent(type, push, outcome), "t", ContactStream("c1"), {}, {});
    ASSERT_TRUE(log.Append(std::move(d), nullptr).ok());
    ASSERT_TRUE(ProjectionRunner(&log, &p).CatchUp().ok());
  };
  auto unsettled = [&] {
    std::vector<std::string> keys;
    for (const auto& [k, v] : Snapshot(&log, p.name()))
      if (k.rfind(SyncStatusProjection::kUnsettledPrefix, 0) == 0) keys.push_back(k);
    return keys;
  };
  for (const char* push : {"c1:1", "c1:2", "c1:3", "c1:4"}) fold(ev::kPushRequested, push, "");
  EXPECT_EQ(unsettled(), (std::vector<std::string>{"u/c1:1", "u/c1:2", "u/c1:3", "u/c1:4"}));
  SyncStatusProjection::Unsettled u;
  ASSERT_TRUE(SyncStatusProjection::ParseUnsettled(Snapshot(&log, p.name())["u/c1:1"], &u));
  EXPECT_EQ(u.system, "aloware");
  EXPECT_EQ(u.contact_id, "c1");
  EXPECT_EQ(u.tenant, "t");
  fold(ev::kPushAttempted, "c1:1", "retry");
  EXPECT_EQ(unsettled().size(), 4u) << "retrying is still unsettled";
  fold(ev::kPushSucceeded, "c1:1", "");
  fold(ev::kPushDeadLettered, "c1:2", "");
  fold(ev::kMessageRefused, "c1:3", "");
  EXPECT_EQ(unsettled(), (std::vector<std::string>{"u/c1:4"}));
  fold(ev::kPushRequested, "c1:1", "");  // asked again once settled: changes nothing
  EXPECT_EQ(unsettled(), (std::vector<std::string>{"u/c1:4"}));
  fold(ev::kPushAttempted, "c1:5", "retry");  // its request not seen: unsettled all the same
  fold(ev::kPushAttempted, "c1:4", "failed");  // not to be retried: leaves the state as it is
  EXPECT_EQ(unsettled(), (std::vector<std::string>{"u/c1:4", "u/c1:5"}));
  EventDraft erased;
  erased.tenant = "t";
  erased.stream = ContactStream("c1");
  erased.type = std::string(kContactErasedType);
  erased.payload = "{}";
  ASSERT_TRUE(log.Append(std::move(erased), nullptr).ok());
  ASSERT_TRUE(ProjectionRunner(&log, &p).CatchUp().ok());
  EXPECT_TRUE(unsettled().empty()) << "an erased contact's open pushes are forgotten";
  EXPECT_FALSE(SyncStatusProjection::ParseUnsettled("aloware c1", &u));
  EXPECT_FALSE(SyncStatusProjection::ParseUnsettled("aloware  t", &u));
}

class ProjectionRebuild : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    log_ = testing::OpenTestLog(GetParam(), dir_);
    ASSERT_TRUE(log_);
  }
  testing::TempDir dir_;
  std::unique_ptr<EventLog> log_;
};

TEST_P(ProjectionRebuild, RebuildEqualsLiveProcessing) {
  SyncProjections projections;
  std::vector<Projection*> all = projections.All();
  // Live: fold after every round, with a runner made afresh now and then
  // (a restart resumes from the checkpoint).
  for (int round = 0; round < 12; ++round) {
    AppendHistory(log_.get(), round);
    if (round % 3 == 2) {
      // One runner reading once for them all, as the service runs them.
      ProjectionRunner::Options o;
      o.batch = round % 4 + 1;
      ProjectionRunner runner(log_.get(), all, o);
      ASSERT_TRUE(runner.CatchUp().ok());
      EXPECT_EQ(runner.checkpoint(), log_->LastSequence());
      continue;
    }
    for (auto* p : all) {
      ProjectionRunner runner(log_.get(), p, round % 4 + 1);
      ASSERT_TRUE(runner.CatchUp().ok());
      EXPECT_EQ(runner.checkpoint(), log_->LastSequence());
    }
  }
  auto has_prefix = [](const std::map<std::string, std::string>& m, const std::string& prefix) {
    auto it = m.lower_bound(prefix);
    return it != m.end() && it->first.compare(0, prefix.size(), prefix) == 0;
  };
  for (const char* prefix : {"x/", "p/", "c/"})
    EXPECT_TRUE(has_prefix(Snapshot(log_.get(), "mappings"), prefix)) << prefix;
  for (const char* prefix : {"o/", "h/"})
    EXPECT_TRUE(has_prefix(Snapshot(log_.get(), "opt_outs"), prefix)) << prefix;
  for (auto* p : all) {
    auto live = Snapshot(log_.get(), p->name());
    ASSERT_FALSE(live.empty()) << p->name();
    ProjectionRunner runner(log_.get(), p);
    uint64_t reported = 0;
    ASSERT_TRUE(runner.Rebuild([&](uint64_t seq) { reported = seq; }).ok());
    EXPECT_EQ(reported, log_->LastSequence());
    EXPECT_EQ(Snapshot(log_.get(), p->name()), live) << p->name();
  }
  auto m = Snapshot(log_.get(), "mappings");
  EXPECT_EQ(m["x/default/ghl/ghl-1"], "c1");
  auto s = Snapshot(log_.get(), "sync_status");
  EXPECT_FALSE(s["n/default/ghl/dead"].empty());
}

// A projection whose key layout can be set: it counts the events it folds
// under a key that names the layout.
class LayoutProjection : public Projection {
 public:
  explicit LayoutProjection(int layout) : layout_(layout) {}
  std::string name() const override { return "counted"; }
  int layout() const override { return layout_; }
  bool Uses(std::string_view) const override { return true; }
  void FoldDecoded(const Event&, const DomainEvent*, ProjectionState* st) override {
    st->Add("n" + std::to_string(layout_), 1);
  }

 private:
  int layout_;
};

TEST_P(ProjectionRebuild, StateOfAnotherLayoutIsFoldedAgainFromTheStart) {
  for (int round = 0; round < 2; ++round) AppendHistory(log_.get(), round);
  const uint64_t head = log_->LastSequence();
  const std::string all = std::to_string(head);
  LayoutProjection v1(1), v2(2), v3(3);
  ASSERT_TRUE(ProjectionRunner(log_.get(), &v1).CatchUp().ok());
  // Layout 1 writes no mark: the state of builds before layouts existed.
  EXPECT_EQ(Snapshot(log_.get(), "counted"), (std::map<std::string, std::string>{{"n1", all}}));
  // A build with layout 2 finds no mark (layout 1), drops and folds again
  // (with the rebuild's pipeline); a projection beside it of an unchanged
  // layout just catches up.
  MappingsProjection mappings;
  ASSERT_TRUE(ProjectionRunner(log_.get(), &mappings).CatchUp().ok());
  const auto mappings_before = Snapshot(log_.get(), "mappings");
  ASSERT_TRUE(ProjectionRunner(log_.get(), {&v2, &mappings}).CatchUp().ok());
  EXPECT_EQ(Snapshot(log_.get(), "counted"),
            (std::map<std::string, std::string>{{"n2", all}, {kLayoutKey, "2"}}));
  EXPECT_EQ(Snapshot(log_.get(), "mappings"), mappings_before);
  // The same layout resumes from its checkpoint: nothing folded twice.
  AppendHistory(log_.get(), 2);
  const std::string more = std::to_string(log_->LastSequence());
  ASSERT_TRUE(ProjectionRunner(log_.get(), &v2).CatchUp().ok());
  EXPECT_EQ(Snapshot(log_.get(), "counted")["n2"], more);
  // A rebuild (in bulk or not) marks its state too; the service's
  // background runner (Start) drops a state of another layout as CatchUp
  // does.
  ASSERT_TRUE(ProjectionRunner(log_.get(), &v3).Rebuild().ok());
  EXPECT_EQ(Snapshot(log_.get(), "counted"),
            (std::map<std::string, std::string>{{"n3", more}, {kLayoutKey, "3"}}));
  ProjectionRunner::Options o;
  o.min_read_interval = std::chrono::milliseconds(0);
  ProjectionRunner background(log_.get(), {&v2}, o);
  ASSERT_TRUE(background.Start().ok());
  for (int i = 0; i < 500 && background.checkpoint() < log_->LastSequence(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  background.Stop();
  ASSERT_TRUE(background.status().ok()) << background.status().ToString();
  EXPECT_EQ(Snapshot(log_.get(), "counted"),
            (std::map<std::string, std::string>{{"n2", more}, {kLayoutKey, "2"}}));
}

// An upgrade's CatchUp drops a state of another layout once (the drop is a
// synced delete and a compaction on RocksDB), not once on finding it and
// again in the rebuild.
TEST(ProjectionRunner, CatchUpDropsAStateOfAnotherLayoutOnce) {
  class CountingLog : public MemoryEventLog {
   public:
    Status DropConsumer(std::string_view consumer) override {
      ++drops;
      return MemoryEventLog::DropConsumer(consumer);
    }
    int drops = 0;
  };
  CountingLog log;
  AppendHistory(&log, 0);
  LayoutProjection v1(1), v2(2);
  ASSERT_TRUE(ProjectionRunner(&log, &v1).CatchUp().ok());
  log.drops = 0;
  ASSERT_TRUE(ProjectionRunner(&log, &v2).CatchUp().ok());
  EXPECT_EQ(log.drops, 1);
  EXPECT_EQ(Snapshot(&log, "counted"),
            (std::map<std::string, std::string>{{"n2", std::to_string(log.LastSequence())},
                                                {kLayoutKey, "2"}}));
  // The same layout again: nothing dropped.
  log.drops = 0;
  ASSERT_TRUE(ProjectionRunner(&log, &v2).CatchUp().ok());
  EXPECT_EQ(log.drops, 0);
}

// A partition stopping while it starts (Options::cancel): the catch-up
// ends short of the head and an upgrade's rebuild ends Unavailable; the
// next start, not cancelled, folds everything as if neither had run.
TEST(ProjectionRunner, ACancelEndsTheCatchUpAndTheRebuildShortOfTheHead) {
  MemoryEventLog log;
  AppendHistory(&log, 0);
  LayoutProjection v1(1), v2(2);
  std::atomic<bool> cancel{true};
  ProjectionRunner::Options o;
  o.cancel = &cancel;
  {
    ProjectionRunner runner(&log, std::vector<Projection*>{&v1}, o);
    ASSERT_TRUE(runner.CatchUp().ok());
    EXPECT_EQ(runner.checkpoint(), 0u) << "folded after the cancel";
  }
  ASSERT_TRUE(ProjectionRunner(&log, &v1).CatchUp().ok());
  {
    ProjectionRunner runner(&log, std::vector<Projection*>{&v2}, o);
    Status s = runner.CatchUp();
    EXPECT_FALSE(s.ok()) << "the rebuild of layout 2 ran to its end after the cancel";
  }
  cancel.store(false);
  ASSERT_TRUE(ProjectionRunner(&log, std::vector<Projection*>{&v2}, o).CatchUp().ok());
  EXPECT_EQ(Snapshot(&log, "counted"),
            (std::map<std::string, std::string>{{"n2", std::to_string(log.LastSequence())},
                                                {kLayoutKey, "2"}}));
}

TEST(ProjectionRunner, StartDoesNotFoldWhereItCannotTellWhereAProjectionStands) {
  testing::TempDir dir;
  auto fs = std::make_shared<testing::FaultyFs>();
  RocksDbLogOptions o;
  o.path = dir.Sub("db");
  o.file_system = fs;
  std::unique_ptr<RocksDbEventLog> log;
  ASSERT_TRUE(RocksDbEventLog::Open(o, &log).ok());
  AppendHistory(log.get(), 0);
  LayoutProjection v1(1), v2(2);
  ASSERT_TRUE(ProjectionRunner(log.get(), &v1).CatchUp().ok());
  const auto before = Snapshot(log.get(), "counted");
  // State of layout 1 must be dropped before layout 2 folds, and the drop
  // cannot be written: Start says so and folds nothing onto the old state.
  fs->FailWrites(true);
  ProjectionRunner runner(log.get(), &v2);
  EXPECT_FALSE(runner.Start().ok());
  runner.Stop();
  fs->FailWrites(false);
  EXPECT_EQ(Snapshot(log.get(), "counted"), before);
}

TEST_P(ProjectionRebuild, SharedRunnerFoldsEachFromItsOwnCheckpointAndCommitsLazily) {
  MappingsProjection mappings;
  OptOutRegistryProjection opt_outs;
  for (int round = 0; round < 4; ++round) AppendHistory(log_.get(), round);
  // Only mappings is caught up: the shared runner must bring opt_outs from
  // 0 without folding anything into mappings twice.
  ASSERT_TRUE(ProjectionRunner(log_.get(), &mappings).CatchUp().ok());
  auto mappings_before = Snapshot(log_.get(), "mappings");
  ProjectionRunner::Options o;
  o.batch = 3;
  o.min_read_interval = std::chrono::milliseconds(0);
  o.checkpoint_interval = std::chrono::hours(1);  // only Stop moves idle checkpoints
  ProjectionRunner runner(log_.get(), {&mappings, &opt_outs}, o);
  ASSERT_TRUE(runner.Start().ok());
  for (int round = 4; round < 8; ++round) AppendHistory(log_.get(), round);
  uint64_t head = log_->LastSequence();
  for (int i = 0; i < 500 && runner.checkpoint() < head; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(runner.checkpoint(), head);
  runner.Stop();
  ASSERT_TRUE(runner.status().ok()) << runner.status().ToString();
  for (const char* name : {"mappings", "opt_outs"}) {
    uint64_t cp = 0;
    ASSERT_TRUE(log_->ReadCheckpoint(name, &cp).ok());
    EXPECT_EQ(cp, head) << name << ": Stop commits the checkpoint of what was folded";
  }
  EXPECT_NE(Snapshot(log_.get(), "mappings"), mappings_before);
  // The same state as folding each alone from scratch.
  auto live_m = Snapshot(log_.get(), "mappings");
  auto live_o = Snapshot(log_.get(), "opt_outs");
  ASSERT_TRUE(ProjectionRunner(log_.get(), &mappings).Rebuild().ok());
  ASSERT_TRUE(ProjectionRunner(log_.get(), &opt_outs).Rebuild().ok());
  EXPECT_EQ(Snapshot(log_.get(), "mappings"), live_m);
  EXPECT_EQ(Snapshot(log_.get(), "opt_outs"), live_o);
}

TEST_P(ProjectionRebuild, OneRunnerRebuildsAllTogetherAndSpillsAsLiveProcessingFolds) {
  SyncProjections projections;
  std::vector<Projection*> all = projections.All();
  for (int round = 0; round < 10; ++round) {
    AppendHistory(log_.get(), round);
    ProjectionRunner::Options o;
    o.batch = 5;
    ASSERT_TRUE(ProjectionRunner(log_.get(), all, o).CatchUp().ok());
  }
  std::map<std::string, std::map<std::string, std::string>> live;
  for (auto* p : all) live[p->name()] = Snapshot(log_.get(), p->name());
  // Small batches and a tiny spill: each projection commits in the middle
  // of the rebuild and reads its committed state back afterwards.
  for (size_t spill : {size_t{7}, size_t{1} << 22}) {
    ProjectionRunner::Options o;
    o.batch = 4;
    o.rebuild_spill_keys = spill;
    ProjectionRunner runner(log_.get(), all, o);
    std::vector<uint64_t> reported;
    ASSERT_TRUE(runner.Rebuild([&](uint64_t seq) { reported.push_back(seq); }).ok());
    EXPECT_EQ(runner.checkpoint(), log_->LastSequence());
    ASSERT_FALSE(reported.empty());
    EXPECT_EQ(reported.back(), log_->LastSequence());
    EXPECT_TRUE(std::is_sorted(reported.begin(), reported.end()));
    for (auto* p : all) {
      EXPECT_EQ(Snapshot(log_.get(), p->name()), live[p->name()]) << p->name() << " " << spill;
      uint64_t cp = 0;
      ASSERT_TRUE(log_->ReadCheckpoint(p->name(), &cp).ok());
      EXPECT_EQ(cp, log_->LastSequence()) << p->name();
    }
  }
}

// Enough contacts that a rebuild's state goes through the bulk commit's
// table files on RocksDB (BulkCommitConsumer writes smaller ones inline).
TEST_P(ProjectionRebuild, BigStateRebuildsInBulkAsLiveProcessingFolds) {
  constexpr int kContacts = 20000;  // 4 mappings keys each: past the bulk threshold
  std::vector<EventDraft> drafts;
  for (int i = 0; i < kContacts; ++i) {
    DomainEvent d;
    d.type = std::string(ev::kContactCreated);
    d.contact_id = "c" + std::to_string(i);
    d.system = "ghl";
    d.external_id = "g" + std::to_string(i);
    d.fields = {{"phone", "+1205" + std::to_string(5000000 + i)},
                {"email", "p" + std::to_string(i) + "@x.io"}};
    drafts.push_back(ToDraft(d, "default", ContactStream(d.contact_id), EventId(), EventId()));
    if (i % 4 == 0) {  // the id moves: the old one is erased
      d.type = std::string(ev::kContactLinked);
      d.external_id = "g" + std::to_string(i) + "b";
      drafts.push_back(ToDraft(d, "default", ContactStream(d.contact_id), EventId(), EventId()));
    }
    if (drafts.size() >= 1000 || i + 1 == kContacts) {
      ASSERT_TRUE(log_->Append(std::move(drafts), nullptr).ok());
      drafts.clear();
    }
  }
  MappingsProjection mappings;
  ASSERT_TRUE(ProjectionRunner(log_.get(), &mappings, 4096).CatchUp().ok());
  auto live = Snapshot(log_.get(), "mappings");
  ASSERT_GT(live.size(), 65536u);
  EXPECT_EQ(live["x/default/ghl/g8b"], "c8");
  EXPECT_EQ(live.count("x/default/ghl/g8"), 0u);
  ProjectionRunner runner(log_.get(), &mappings);
  ASSERT_TRUE(runner.Rebuild().ok());
  EXPECT_EQ(Snapshot(log_.get(), "mappings"), live);
  uint64_t cp = 0;
  ASSERT_TRUE(log_->ReadCheckpoint("mappings", &cp).ok());
  EXPECT_EQ(cp, log_->LastSequence());
  // The table files were moved into the database or removed.
  if (GetParam() == "rocksdb") {
    for (const auto& f : std::filesystem::directory_iterator(dir_.Sub("db")))
      EXPECT_EQ(f.path().filename().string().rfind("bulk-", 0), std::string::npos) << f.path();
  }
}

// A rebuild's biggest state (past half a million keys) is written as two
// table files side by side and ingested at once: every key lands, in
// order, and the checkpoint with them.
TEST_P(ProjectionRebuild, AStateOfHalfAMillionKeysGoesInTwoFilesAtOnce) {
  constexpr int kKeys = 600000;
  std::vector<std::string> keys;
  keys.reserve(kKeys);
  for (int i = 0; i < kKeys; ++i) {
    char k[24];
    std::snprintf(k, sizeof(k), "%c/%07d", "cepx~"[i % 5], i);
    keys.push_back(k);
  }
  std::sort(keys.begin(), keys.end());
  StateEntryRefs entries;
  for (const auto& k : keys) entries.push_back({k, k});
  ASSERT_TRUE(log_->BulkCommitConsumer("c", 7, entries).ok());
  auto state = Snapshot(log_.get(), "c");
  ASSERT_EQ(state.size(), static_cast<size_t>(kKeys));
  EXPECT_EQ(state.begin()->first, keys.front());
  EXPECT_EQ(state.rbegin()->first, keys.back());
  EXPECT_EQ(state[keys[kKeys / 2 - 1]], keys[kKeys / 2 - 1]);  // either side of the cut
  EXPECT_EQ(state[keys[kKeys / 2]], keys[kKeys / 2]);
  uint64_t cp = 0;
  ASSERT_TRUE(log_->ReadCheckpoint("c", &cp).ok());
  EXPECT_EQ(cp, 7u);
  if (GetParam() == "rocksdb") {
    for (const auto& f : std::filesystem::directory_iterator(dir_.Sub("db")))
      EXPECT_EQ(f.path().filename().string().rfind("bulk-", 0), std::string::npos) << f.path();
  }
}

TEST_P(ProjectionRebuild, BulkCommitReplacesKeysErasesAndMovesTheCheckpointTogether) {
  ASSERT_TRUE(log_->CommitConsumer("c", 5, {{"a/1", "old", false}, {"z/gone", "x", false}}).ok());
  std::vector<std::string> keys, values;
  for (int i = 0; i < 70000; ++i) {
    char k[16];
    std::snprintf(k, sizeof(k), "k/%06d", i);
    keys.push_back(k);
    values.push_back("v" + std::to_string(i));
  }
  keys.insert(keys.begin(), "a/1");
  values.insert(values.begin(), "new");
  StateEntryRefs entries;
  for (size_t i = 0; i < keys.size(); ++i) entries.push_back({keys[i], values[i]});
  entries.push_back({"z/gone", "", true});  // erased
  ASSERT_TRUE(log_->BulkCommitConsumer("c", 9, entries).ok());
  auto state = Snapshot(log_.get(), "c");
  EXPECT_EQ(state.size(), 70001u);
  EXPECT_EQ(state["a/1"], "new");
  EXPECT_EQ(state["k/069999"], "v69999");
  EXPECT_EQ(state.count("z/gone"), 0u);
  uint64_t cp = 0;
  ASSERT_TRUE(log_->ReadCheckpoint("c", &cp).ok());
  EXPECT_EQ(cp, 9u);
  // Another consumer's state is untouched by it.
  EXPECT_TRUE(Snapshot(log_.get(), "d").empty());
  if (GetParam() != "rocksdb") return;
  // A table file a crash left before it was ingested is removed at open.
  log_.reset();
  std::string stale = dir_.Sub("db") + "/bulk-1-0-state.sst";
  std::FILE* f = std::fopen(stale.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  log_ = testing::OpenTestLog(GetParam(), dir_);
  ASSERT_TRUE(log_);
  EXPECT_FALSE(std::filesystem::exists(stale));
  EXPECT_EQ(Snapshot(log_.get(), "c").size(), 70001u);
  // Dropping it deletes its table files whole; the other consumer and the
  // next bulk commit of the same one are untouched by that.
  ASSERT_TRUE(log_->CommitConsumer("d", 4, {{"k/000001", "d's"}}).ok());
  ASSERT_TRUE(log_->DropConsumer("c").ok());
  EXPECT_TRUE(Snapshot(log_.get(), "c").empty());
  ASSERT_TRUE(log_->ReadCheckpoint("c", &cp).ok());
  EXPECT_EQ(cp, 0u);
  EXPECT_EQ(Snapshot(log_.get(), "d")["k/000001"], "d's");
  entries.resize(70000);
  ASSERT_TRUE(log_->BulkCommitConsumer("c", 11, entries).ok());
  EXPECT_EQ(Snapshot(log_.get(), "c").size(), 70000u);
  EXPECT_EQ(Snapshot(log_.get(), "c")["k/069998"], "v69998");
  EXPECT_EQ(Snapshot(log_.get(), "d").size(), 1u);
}

TEST(ProjectionState, OpsComeOutSortedOnceEachAndAddReadsTheBase) {
  MemBase base;
  base.kv["b"] = "1";
  auto st = base.State();
  st.Put("c", "3");
  st.Add("b", 2);
  st.Put("a", "x");
  st.Erase("a");
  st.Add("d", 4);
  EXPECT_EQ(*st.Peek("b"), "3");
  EXPECT_EQ(st.Peek("missing"), std::nullopt);
  auto ops = st.TakeOps();
  ASSERT_EQ(ops.size(), 4u);
  EXPECT_EQ(ops[0].key, "a");
  EXPECT_TRUE(ops[0].erase);
  EXPECT_EQ(ops[1].key, "b");
  EXPECT_EQ(ops[1].value, "3");
  EXPECT_EQ(ops[2].key, "c");
  EXPECT_EQ(ops[3].key, "d");
  EXPECT_EQ(ops[3].value, "4");
  EXPECT_TRUE(st.empty());
}

// The commit's order is the keys' byte order, whatever they share: long
// common prefixes (sorted a chunk at a time), keys that are prefixes of
// others, zero bytes that the chunks' padding must not confuse with an
// end, and runs short enough to be sorted whole.
TEST(ProjectionState, EntriesComeOutInByteOrderWhateverTheKeysShare) {
  std::vector<std::string> keys;
  const std::string shared = "x/default/ghl/";
  for (int i = 0; i < 3000; ++i) {
    std::string k = shared + std::to_string(i * 7919 % 3001);
    keys.push_back(k);
    if (i % 3 == 0) keys.push_back(k + std::string(1, '\0'));
    if (i % 5 == 0) keys.push_back(k + std::string(20, 'z') + std::to_string(i));
  }
  for (size_t len = 0; len < 40; ++len) keys.push_back(std::string(len, 'a'));
  for (size_t len = 1; len < 40; ++len) keys.push_back(std::string(len, '\0'));
  keys.push_back(std::string("p\0\0\0\0\0\0\0\0", 9));
  keys.push_back(std::string("p\0\0\0\0\0\0\0", 8));
  keys.push_back("p");
  MemBase base;
  auto st = base.State();
  for (const auto& k : keys) st.Put(k, "v");
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::vector<StateOp> ops = st.TakeOps();
  ASSERT_EQ(ops.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) ASSERT_EQ(ops[i].key, keys[i]) << i;
}

// An overlay big enough to be sorted on two threads (a rebuild's) comes
// out in the same order as a small one, the cut between the threads'
// parts falling between two first bytes.
TEST(ProjectionState, ABigOverlaySortsOnTwoThreadsInByteOrder) {
  std::vector<std::string> keys;
  for (int i = 0; i < 300000; ++i) {
    keys.push_back(std::string(1, "~xpfec"[i % 6]) + "/default/" +
                   std::to_string(static_cast<int64_t>(i) * 7919 % 300007));
  }
  keys.push_back("");
  MemBase base;
  auto st = base.State();
  for (const auto& k : keys) st.Put(k, "v");
  std::sort(keys.begin(), keys.end());
  std::vector<StateOp> ops = st.TakeOps();
  ASSERT_EQ(ops.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) ASSERT_EQ(ops[i].key, keys[i]) << i;
}

// Scans of a big overlay (a rebuild's erasures) answer the same once it is
// searched through its sorted index as while it was walked: keys put,
// erased and given longer values (which moves their entries) before and
// after the index was built, the base's keys under the overlay's, and
// nothing stale after the overlay is cleared.
TEST(ProjectionState, ScansOfABigOverlayAnswerAlikeWalkedOrIndexed) {
  MemBase base;
  for (int i = 0; i < 50; ++i) base.kv["~o/c" + std::to_string(i) + "\nbase"] = "b";
  auto st = base.State();
  st.SetBaseScanner([&](std::string_view prefix,
                        const std::function<bool(std::string_view, std::string_view)>& fn) {
    for (auto it = base.kv.lower_bound(std::string(prefix));
         it != base.kv.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
      fn(it->first, it->second);
    return Status::OK();
  });
  std::map<std::string, std::string> model = base.kv;
  auto put = [&](const std::string& k, const std::string& v) {
    st.Put(k, v);
    model[k] = v;
  };
  auto erase = [&](const std::string& k) {
    st.Erase(k);
    model.erase(k);
  };
  auto expect_scan = [&](const std::string& prefix, int round) {
    std::vector<std::pair<std::string, std::string>> want;
    for (auto it = model.lower_bound(prefix);
         it != model.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
      want.push_back(*it);
    EXPECT_EQ(st.Scan(prefix), want) << prefix << " in round " << round;
  };
  for (int round = 0; round < 12; ++round) {  // the first ones walk, then the index
    for (int i = 0; i < 3000; ++i) {
      const std::string c = "c" + std::to_string((round * 3000 + i) % 7000);
      put("~o/" + c + "\nx/" + std::to_string(round), "");
      put("f/" + c + "/r" + std::to_string(round), std::string(round + 1, 'v'));
      if (i % 5 == 0) put("f/" + c + "/name", std::string(round * 9 + 1, 'n'));  // grows: moves
      if (i % 7 == 0) erase("~o/" + c + "\nx/" + std::to_string(round ? round - 1 : 0));
    }
    for (int c : {0, 1, 7, 12, 49, 6999}) {
      expect_scan("~o/c" + std::to_string(c) + "\n", round);
      expect_scan("f/c" + std::to_string(c), round);
    }
    expect_scan("zzz", round);
  }
  st.Clear();
  model = base.kv;
  put("~o/c1\nnew", "");
  expect_scan("~o/c1\n", 99);
}

// Clear leaves an empty table whether it kept its slots (a live batch's
// size) or gave them back (a rebuild's), and the table fills again.
TEST(StateTable, ClearedTablesStartEmptyWhetherTheirSlotsAreKeptOrNot) {
  for (int keys : {100, 20000}) {
    StateTable t;
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < keys; ++i) t.Set("r" + std::to_string(round) + "/" + std::to_string(i), "v");
      EXPECT_EQ(t.size(), static_cast<size_t>(keys));
      if (round > 0) {
        EXPECT_EQ(t.Find("r" + std::to_string(round - 1) + "/0"), nullptr) << keys;
      }
      EXPECT_EQ(t.Find("r" + std::to_string(round) + "/" + std::to_string(keys - 1))->value(), "v");
      t.Clear();
      EXPECT_EQ(t.size(), 0u);
      size_t seen = 0;
      t.ForEach([&](const StateTable::Entry&) { ++seen; });
      EXPECT_EQ(seen, 0u) << keys;
    }
  }
}

TEST(StateTable, KeepsEveryKeyThroughGrowthAndValuesThatOutgrowTheirRoom) {
  StateTable t;
  bool inserted = false;
  // Several doublings of the slots; slot arrays and arena blocks past
  // 2 MiB (util/huge_pages.h) too.
  constexpr int kKeys = 200000;
  for (int i = 0; i < kKeys; ++i) {
    StateTable::Slot* s = t.FindOrInsert("key/" + std::to_string(i), &inserted);
    ASSERT_TRUE(inserted);
    EXPECT_EQ(s->entry->value(), std::nullopt);  // inserted absent
    if (i % 3 != 0) t.Assign(s, std::to_string(i));
  }
  EXPECT_EQ(t.size(), static_cast<size_t>(kKeys));
  // A value far longer than its room moves the entry; a shorter one stays.
  StateTable::Slot* s = t.FindOrInsert("key/1", &inserted);
  EXPECT_FALSE(inserted);
  const std::string long_value(300, 'v');
  t.Assign(s, long_value);
  t.Assign(t.FindOrInsert("key/2", &inserted), "");
  StateTable::MakeAbsent(t.FindOrInsert("key/4", &inserted));
  t.Assign(t.FindOrInsert("", &inserted), "empty key");
  EXPECT_TRUE(inserted);
  t.Set("key/7", "seven, set again");  // present: assigned
  t.Set("set/new", "inserted with its value");
  EXPECT_EQ(t.Find("set/new")->value(), "inserted with its value");
  EXPECT_EQ(t.Find("key/7")->value(), "seven, set again");
  for (int i = 0; i < kKeys; ++i) {
    const StateTable::Entry* e = t.Find("key/" + std::to_string(i));
    ASSERT_NE(e, nullptr) << i;
    std::optional<std::string_view> v = e->value();
    if (i == 1) {
      EXPECT_EQ(v, long_value);
    } else if (i == 2) {
      EXPECT_EQ(v, "");
    } else if (i == 7) {
      EXPECT_EQ(v, "seven, set again");
    } else if (i % 3 == 0 || i == 4) {
      EXPECT_EQ(v, std::nullopt) << i;
    } else {
      EXPECT_EQ(v, std::to_string(i));
    }
  }
  EXPECT_EQ(t.Find("key/" + std::to_string(kKeys)), nullptr);
  EXPECT_EQ(t.Find("")->value(), "empty key");
  size_t seen = 0;
  t.ForEach([&](const StateTable::Entry&) { ++seen; });
  EXPECT_EQ(seen, static_cast<size_t>(kKeys) + 2);  // a moved entry once
  t.Clear();
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.Find("key/5"), nullptr);
  t.Assign(t.FindOrInsert("key/5", &inserted), "again");
  EXPECT_TRUE(inserted);
  EXPECT_EQ(t.Find("key/5")->value(), "again");
}

INSTANTIATE_TEST_SUITE_P(Both, ProjectionRebuild, ::testing::Values("memory", "rocksdb"));

}  // namespace
}  // namespace dfm
