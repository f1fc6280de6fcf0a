// Projections: the folds directly, and live processing against a rebuild
// from sequence 1 on both EventLog implementations.
#include <gtest/gtest.h>

#include <map>

#include "projections/runner.h"
#include "projections/sync_projections.h"
#include "storage/memory_event_log.h"
#include "storage/rocksdb_event_log.h"
#include "sync/contact_model.h"
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

TEST(SyncStatusProjection, CountsPushStates) {
  MemBase base;
  SyncStatusProjection p;
  auto fold = [&](std::string_view type, const std::string& push, const std::string& outcome) {
    DomainEvent d;
    d.type = std::string(type);
    d.contact_id = "c1";
    d.system = "aloware";
    d.push_id = push;
    d.outcome = outcome;
    auto st = base.State();
    p.Fold(AsEvent(d, 0), &st);
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
  EXPECT_EQ(base.kv["k/c1/dead"], "1");
  EXPECT_EQ(base.kv["p/p2"], "dead aloware c1 t");
}

// Appends what the contact model decides for a stream of facts about a few
// people, as the actors would, plus push outcomes.
void AppendHistory(EventLog* log, int round) {
  SyncContext ctx;
  ctx.policy = MergePolicy::Defaults();
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
      drafts.push_back(ToDraft(d, "default", d.contact_id.empty() ? SourceStream(f.system)
                                                                 : ContactStream(cid),
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
    for (auto& d : drafts) ASSERT_TRUE(log->Append(std::move(d), nullptr).ok());
  }
}

std::map<std::string, std::string> Snapshot(const EventLog* log, const std::string& name) {
  std::map<std::string, std::string> out;
  EXPECT_TRUE(log->ScanConsumerState(name, "", [&](std::string_view k, std::string_view v) {
                     out[std::string(k)] = std::string(v);
                     return true;
                   })
                  .ok());
  return out;
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
  MappingsProjection mappings;
  ContactViewProjection contacts;
  SyncStatusProjection status;
  std::vector<Projection*> all = {&mappings, &contacts, &status};
  // Live: fold after every round, with a runner made afresh now and then
  // (a restart resumes from the checkpoint).
  for (int round = 0; round < 12; ++round) {
    AppendHistory(log_.get(), round);
    for (auto* p : all) {
      ProjectionRunner runner(log_.get(), p, round % 4 + 1);
      ASSERT_TRUE(runner.CatchUp().ok());
      EXPECT_EQ(runner.checkpoint(), log_->LastSequence());
    }
  }
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

INSTANTIATE_TEST_SUITE_P(Both, ProjectionRebuild, ::testing::Values("memory", "rocksdb"));

}  // namespace
}  // namespace dfm
