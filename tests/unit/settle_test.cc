// Settling identity conflicts (sync/settle.h): the request's body, the
// settlement's event, and which of a webhook's facts it is about.
#include "sync/settle.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <sstream>

#include "replay-tools/cli.h"
#include "replay-tools/conflicts.h"
#include "replay-tools/tool_log.h"
#include "storage/memory_event_log.h"
#include "storage/rocksdb_event_log.h"
#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

// An identity.conflict as the router records it, appended to `log`.
Event AppendConflict(EventLog* log, const std::string& tenant = "default") {
  DomainEvent c;
  c.type = std::string(ev::kIdentityConflict);
  c.system = "aloware";
  c.external_id = "al-9";
  c.candidates = {{"contact-a", "phone"}, {"contact-b", "email"}};
  c.fields = {{"phone", "+12055550142"}, {"email", "bob@example.com"}};
  c.webhook_seq = 7;
  EventId webhook = EventId::FromBytes(std::string(16, '\x07'));
  EventDraft d = ToDraft(c, tenant, SourceStream("aloware"), webhook, webhook);
  AppendOutcome out;
  EXPECT_TRUE(log->Append(std::move(d), &out).ok());
  std::vector<Event> read;
  EXPECT_TRUE(log->Read(out.seq, 1, &read).ok());
  return read.at(0);
}

TEST(SettleRequestTest, BodyNamesTheConflictAndOneChoice) {
  SettleRequest r;
  ASSERT_TRUE(
      DecodeSettleRequest(R"({"conflict":12,"contact":"contact-a","reason":"same person"})", &r)
          .ok());
  EXPECT_EQ(r.conflict_seq, 12u);
  EXPECT_EQ(r.contact_id, "contact-a");
  EXPECT_FALSE(r.dismiss);
  EXPECT_EQ(r.reason, "same person");
  SettleRequest back;
  ASSERT_TRUE(DecodeSettleRequest(EncodeSettleRequest(r), &back).ok());
  EXPECT_EQ(back.conflict_seq, 12u);
  EXPECT_EQ(back.contact_id, "contact-a");
  EXPECT_EQ(back.reason, "same person");

  ASSERT_TRUE(DecodeSettleRequest(R"({"conflict":12,"dismiss":true})", &r).ok());
  EXPECT_TRUE(r.dismiss);
  EXPECT_TRUE(r.contact_id.empty());

  for (const char* bad :
       {"not json", "[]", R"({"contact":"contact-a"})", R"({"conflict":0,"contact":"contact-a"})",
        R"({"conflict":"12","contact":"contact-a"})", R"({"conflict":12})",
        R"({"conflict":12,"contact":"contact-a","dismiss":true})",
        R"({"conflict":12,"dismiss":false})"}) {
    Status s = DecodeSettleRequest(bad, &r);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << bad;
  }
}

TEST(PlanSettlementTest, SettlementCopiesTheConflictAndIsCausedByIt) {
  MemoryEventLog log;
  Event conflict = AppendConflict(&log);
  SettleRequest r{conflict.seq, "contact-b", false, "new email"};
  EventDraft d;
  ASSERT_TRUE(PlanSettlement(conflict, "default", r, &d).ok());
  EXPECT_EQ(d.type, ev::kIdentitySettled);
  EXPECT_EQ(d.tenant, "default");
  EXPECT_EQ(d.stream, conflict.stream);
  EXPECT_EQ(d.causation_id, conflict.id);
  EXPECT_EQ(d.correlation_id, conflict.correlation_id) << "followed from the webhook";
  EXPECT_EQ(d.idempotency_system, "dfm");
  EXPECT_EQ(d.idempotency_key, SettleIdempotencyKey(conflict.seq));
  DomainEvent s;
  ASSERT_TRUE(DecodeDomainEvent(d.type, d.payload, &s).ok());
  EXPECT_EQ(s.contact_id, "contact-b");
  EXPECT_EQ(s.system, "aloware");
  EXPECT_EQ(s.external_id, "al-9");
  EXPECT_EQ(s.webhook_seq, 7u);
  EXPECT_EQ(s.candidates.size(), 2u);
  EXPECT_EQ(s.fields.at("email"), "bob@example.com");
  EXPECT_EQ(s.reason, "new email");

  // Each conflict is settled once: a second settlement is a duplicate.
  AppendOutcome first, second;
  ASSERT_TRUE(log.Append(d, &first).ok());
  EventDraft again;
  ASSERT_TRUE(PlanSettlement(conflict, "default", {conflict.seq, "", true, ""}, &again).ok());
  ASSERT_TRUE(log.Append(std::move(again), &second).ok());
  EXPECT_TRUE(second.duplicate);
  EXPECT_EQ(second.seq, first.seq);
}

TEST(PlanSettlementTest, RefusesWhatIsNotItsConflictOrCandidate) {
  MemoryEventLog log;
  Event conflict = AppendConflict(&log);
  EventDraft d;
  Status s = PlanSettlement(conflict, "default", {conflict.seq, "contact-z", false, ""}, &d);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("contact-a, contact-b"), std::string::npos) << s.message();
  s = PlanSettlement(conflict, "acme", {conflict.seq, "contact-a", false, ""}, &d);
  EXPECT_NE(s.message().find("tenant default"), std::string::npos) << s.message();
  s = PlanSettlement(conflict, "default", {conflict.seq + 1, "contact-a", false, ""}, &d);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << "the request names another event";
  Event other = conflict;
  other.type = std::string(ev::kFactRejected);
  s = PlanSettlement(other, "default", {conflict.seq, "contact-a", false, ""}, &d);
  EXPECT_NE(s.message().find("not an identity.conflict"), std::string::npos) << s.message();
  EXPECT_TRUE(PlanSettlement(conflict, "default", {conflict.seq, "", true, ""}, &d).ok());
  DomainEvent dismissed;
  ASSERT_TRUE(DecodeDomainEvent(d.type, d.payload, &dismissed).ok());
  EXPECT_TRUE(dismissed.contact_id.empty());
}

TEST(SettledFactsTest, SameSystemIdAndFieldsElseSameSystemAndId) {
  DomainEvent settled;
  settled.system = "aloware";
  settled.external_id = "al-9";
  settled.fields = {{"phone", "+12055550142"}, {"email", "bob@example.com"}};
  auto fact = [](std::string system, std::string id, std::map<std::string, std::string> f) {
    ContactFact c;
    c.system = std::move(system);
    c.external_id = std::move(id);
    c.fields = std::move(f);
    return c;
  };
  std::vector<ContactFact> facts = {
      fact("aloware", "al-9", {{"phone", "+12055550142"}}), fact("aloware", "al-9", settled.fields),
      fact("ghl", "al-9", settled.fields), fact("aloware", "al-8", settled.fields)};
  EXPECT_EQ(SettledFacts(facts, settled), (std::vector<size_t>{1}));
  facts.erase(facts.begin() + 1);  // the mapper reads the webhook differently now
  EXPECT_EQ(SettledFacts(facts, settled), (std::vector<size_t>{0}));
  facts.erase(facts.begin());
  EXPECT_TRUE(SettledFacts(facts, settled).empty());
}

// `dfm conflicts` and `dfm conflicts settle` with the service stopped: the
// settlement is appended directly, once; the list shows what is open.
TEST(ConflictsCommandTest, SettleWithTheServiceStoppedAndList) {
  testing::TempDir dir;
  uint64_t first = 0, second = 0;
  {
    std::unique_ptr<RocksDbEventLog> log;
    RocksDbLogOptions o;
    o.path = dir.path();
    ASSERT_TRUE(RocksDbEventLog::Open(o, &log).ok());
    first = AppendConflict(log.get()).seq;
    second = AppendConflict(log.get()).seq;
    log->Close();
  }
  // No admin token: no service to ask, so the tool appends it itself.
  const std::string nowhere = "http://127.0.0.1:9";
  std::string how;
  uint64_t seq = 0;
  bool duplicate = true;
  Status s = SubmitSettlement(dir.path(), nowhere, "default", {first, "contact-z", false, ""}, &how,
                              &seq, &duplicate);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  ASSERT_TRUE(SubmitSettlement(dir.path(), nowhere, "default", {first, "contact-a", false, "ok"},
                               &how, &seq, &duplicate)
                  .ok());
  EXPECT_FALSE(duplicate);
  EXPECT_EQ(seq, second + 1);
  EXPECT_NE(how.find("appended to the log"), std::string::npos) << how;
  uint64_t again = 0;
  ASSERT_TRUE(SubmitSettlement(dir.path(), nowhere, "default", {first, "", true, ""}, &how, &again,
                               &duplicate)
                  .ok());
  EXPECT_TRUE(duplicate);
  EXPECT_EQ(again, seq);

  std::unique_ptr<RocksDbEventLog> tool;
  ASSERT_TRUE(OpenToolLog(dir.path(), &tool).ok());
  std::vector<ConflictRow> rows;
  ASSERT_TRUE(FindConflicts(*tool, "", false, &rows).ok());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].seq, first);
  EXPECT_EQ(rows[0].settled_seq, seq);
  EXPECT_EQ(rows[0].chosen, "contact-a");
  EXPECT_EQ(rows[0].reason, "ok");
  EXPECT_EQ(rows[1].settled_seq, 0u);
  std::ostringstream table, json;
  EXPECT_EQ(PrintConflicts(rows, false, false, table), 1) << "one is open";
  EXPECT_NE(table.str().find("settled: contact-a (event " + std::to_string(seq) + ")"),
            std::string::npos)
      << table.str();
  EXPECT_EQ(table.str().find("bob@example.com"), std::string::npos) << "masked";
  EXPECT_EQ(table.str().find("(event " + std::to_string(seq) + "): ok"), std::string::npos)
      << "the note only with --reveal";
  std::ostringstream revealed;
  PrintConflicts(rows, false, true, revealed);
  EXPECT_NE(revealed.str().find("(event " + std::to_string(seq) + "): ok"), std::string::npos)
      << revealed.str();
  EXPECT_EQ(PrintConflicts(rows, true, true, json), 1);
  EXPECT_NE(json.str().find(R"("state":"open")"), std::string::npos) << json.str();
  EXPECT_NE(json.str().find("bob@example.com"), std::string::npos) << "--reveal";

  ASSERT_TRUE(FindConflicts(*tool, "", true, &rows).ok());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].seq, second);
  ASSERT_TRUE(FindConflicts(*tool, "acme", false, &rows).ok());
  EXPECT_TRUE(rows.empty());
  std::ostringstream none;
  EXPECT_EQ(PrintConflicts(rows, false, false, none), 0);
  EXPECT_EQ(none.str(), "no identity conflicts\n");
}

// `dfm conflicts settle` takes exactly one of --contact and --dismiss: the
// parser refuses none or both (CLI11's exit codes, docs/replay-tools.md).
TEST(ConflictsCommandTest, SettleTakesExactlyOneChoice) {
  auto parse = [](const std::string& line) {
    CLI::App app;
    std::string config;
    ReplayTools tools(&app, &config);
    app.parse(line, false);
  };
  EXPECT_THROW(parse("conflicts settle 5"), CLI::ParseError);
  EXPECT_THROW(parse("conflicts settle 5 --contact c1 --dismiss"), CLI::ParseError);
  EXPECT_THROW(parse("conflicts settle --contact c1"), CLI::ParseError)
      << "the conflict is required";
  EXPECT_NO_THROW(parse("conflicts settle 5 --contact c1 --reason checked"));
  EXPECT_NO_THROW(parse("conflicts settle 5 --dismiss"));
}

}  // namespace
}  // namespace dfm
