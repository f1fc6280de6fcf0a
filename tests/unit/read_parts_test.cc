// A cluster read's answer too large for one NATS message, in parts
// (console/read_parts.h): the parts' grammar, the answering node's parked
// answers, and an opt-outs export of thousands of rows read through the
// console in cluster mode as a single node answers it.
#include "console/read_parts.h"

#include <gtest/gtest.h>

#include <future>

#include "console/console_internal.h"
#include "console/remote_read.h"
#include "storage/memory_event_log.h"
#include "sync/domain_event.h"
#include "tests/support/console_fixture.h"

namespace dfm {
namespace {

ApiResponse Whole(std::string body) {
  ApiResponse a;
  a.content_type = "text/csv; charset=utf-8";
  a.body = std::move(body);
  return a;
}

// Reads every part of `a` encoded at most `max` bytes each.
std::string Reassemble(const ApiResponse& a, size_t max, size_t* parts) {
  std::string got;
  *parts = 0;
  while (got.size() < a.body.size()) {
    std::string encoded = EncodeReadPart(a, "t1", got.size(), max);
    EXPECT_LE(encoded.size(), max);
    ReadPart p;
    if (!DecodeReadPart(encoded, &p)) {
      ADD_FAILURE() << "undecodable part at " << got.size();
      break;
    }
    EXPECT_EQ(p.offset, got.size());
    EXPECT_EQ(p.total, a.body.size());
    EXPECT_EQ(p.status, 200);
    EXPECT_EQ(p.content_type, a.content_type);
    got += p.body;
    ++*parts;
  }
  return got;
}

TEST(ReadPartsTest, PartsPutTogetherGiveTheAnswerByteForByte) {
  // Quotes, multi-byte characters and bytes that are no UTF-8 at all: the
  // parts carry the bytes as they are, none over its bound.
  std::string body;
  for (int i = 0; i < 3000; ++i)
    body += "\"row\",\"\xC3\xA9\xE2\x82\xAC\xFF\x80\"," + std::to_string(i) + "\n";
  size_t parts = 0;
  EXPECT_TRUE(Reassemble(Whole(body), 4096, &parts) == body);
  EXPECT_GT(parts, 10u);
  // A bound too small for any bytes with the part's other fields: three
  // bytes a part, and an end.
  std::string small = body.substr(0, 30), got;
  while (got.size() < small.size()) {
    ReadPart p;
    ASSERT_TRUE(DecodeReadPart(EncodeReadPart(Whole(small), "t1", got.size(), 64), &p));
    ASSERT_EQ(p.body.size(), std::min<size_t>(3, small.size() - got.size()));
    got += p.body;
  }
  EXPECT_EQ(got, small);
  ReadPart p;
  EXPECT_FALSE(DecodeReadPart(EncodeReadAnswer(Whole(body)), &p)) << "a whole answer is no part";
  for (
      const char* bad :
      {"", "{}",
       R"({"v":2,"status":200,"content_type":"x","token":"t","offset":3,"total":4,"body64":"YWI="})",
       R"({"v":2,"status":200,"content_type":"x","token":"","offset":0,"total":4,"body64":"YWI="})",
       R"({"v":2,"status":99,"content_type":"x","token":"t","offset":0,"total":4,"body64":"YWI="})",
       R"({"v":2,"status":200,"content_type":"x","token":"t","offset":0,"total":4,"body64":"Y!I="})"})
    EXPECT_FALSE(DecodeReadPart(bad, &p)) << bad;
}

TEST(ReadPartsTest, AParkedAnswerIsGivenOnlyToItsTenantInOrderUntilItsLastPart) {
  ParkedAnswers parked(1 << 20, 1 << 20, /*ttl_us=*/60'000'000);
  const std::string body(10'000, 'x');
  const std::string token = parked.Park("acme", Whole(body), 0);
  ASSERT_EQ(token.size(), 32u);
  EXPECT_EQ(parked.bytes(), body.size());
  std::string part;
  EXPECT_FALSE(parked.Part(token, "default", 0, 1, 4096, &part)) << "another tenant's";
  EXPECT_FALSE(parked.Part(std::string(32, '0'), "acme", 0, 1, 4096, &part));
  EXPECT_FALSE(parked.Part(token, "acme", 5000, 1, 4096, &part)) << "ahead of what was given";
  ASSERT_TRUE(parked.Part(token, "acme", 0, 1, 4096, &part));
  ReadPart p;
  ASSERT_TRUE(DecodeReadPart(part, &p));
  ASSERT_TRUE(parked.Part(token, "acme", 0, 1, 4096, &part)) << "a lost part asked again";
  uint64_t at = p.body.size();
  while (at < body.size()) {
    ASSERT_TRUE(parked.Part(token, "acme", at, 2, 4096, &part));
    ASSERT_TRUE(DecodeReadPart(part, &p));
    at += p.body.size();
  }
  EXPECT_EQ(parked.bytes(), 0u) << "let go once given whole";
  EXPECT_FALSE(parked.Part(token, "acme", 0, 3, 4096, &part));
}

TEST(ReadPartsTest, ParkedAnswersExpireAndTheirRoomIsBounded) {
  ParkedAnswers parked(25'000, 25'000, /*ttl_us=*/1'000);
  const std::string a = parked.Park("acme", Whole(std::string(10'000, 'a')), 0);
  const std::string b = parked.Park("acme", Whole(std::string(10'000, 'b')), 500);
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  EXPECT_NE(a, b);
  EXPECT_TRUE(parked.Park("acme", Whole(std::string(10'000, 'c')), 900).empty()) << "no room";
  std::string part;
  ASSERT_TRUE(parked.Part(b, "acme", 0, 900, 4096, &part));  // read: kept 1 ms more
  EXPECT_FALSE(parked.Park("acme", Whole(std::string(10'000, 'c')), 1'200).empty())
      << "the first expired";
  EXPECT_FALSE(parked.Part(a, "acme", 0, 1'200, 4096, &part));
  EXPECT_TRUE(parked.Part(b, "acme", 0, 1'200, 4096, &part));
  EXPECT_FALSE(parked.Part(b, "acme", 0, 3'000, 4096, &part));
  EXPECT_EQ(parked.bytes(), 0u);
  // Let go of when nobody asks (the console's poller, every second), and
  // of a tenant whose person is erased.
  parked.Park("acme", Whole(std::string(10'000, 'd')), 4'000);
  parked.Park("beta", Whole(std::string(10'000, 'e')), 4'000);
  parked.DropTenant("acme");
  EXPECT_EQ(parked.bytes(), 10'000u);
  parked.Expire(5'001);
  EXPECT_EQ(parked.bytes(), 0u);
  EXPECT_FALSE(parked.Fits(25'001));
}

// One tenant's large exports leave the others room: its answers together
// take at most its share, and what it lets go of is its own again.
TEST(ReadPartsTest, OneTenantsAnswersTakeNoMoreThanItsShareOfTheRoom) {
  ParkedAnswers parked(30'000, 15'000, /*ttl_us=*/60'000'000);
  EXPECT_TRUE(parked.Fits(15'000));
  EXPECT_FALSE(parked.Fits(15'001)) << "more than a tenant may ever hold";
  const std::string a = parked.Park("acme", Whole(std::string(10'000, 'a')), 0);
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(parked.Park("acme", Whole(std::string(10'000, 'b')), 1).empty())
      << "acme's share is taken";
  const std::string c = parked.Park("beta", Whole(std::string(10'000, 'c')), 2);
  EXPECT_FALSE(c.empty()) << "another tenant still has room";
  const std::string d = parked.Park("beta", Whole(std::string(5'000, 'd')), 3);
  EXPECT_FALSE(d.empty());
  EXPECT_EQ(parked.bytes(), 25'000u);
  EXPECT_TRUE(parked.Park("gamma", Whole(std::string(10'000, 'e')), 4).empty())
      << "the whole room bounds every tenant together";
  std::string part;
  ASSERT_TRUE(parked.Part(a, "acme", 0, 5, 1 << 20, &part));  // given whole: let go
  EXPECT_FALSE(parked.Park("acme", Whole(std::string(10'000, 'f')), 6).empty());
  parked.DropTenant("beta");
  EXPECT_EQ(parked.bytes(), 10'000u);
  EXPECT_FALSE(parked.Park("beta", Whole(std::string(15'000, 'g')), 7).empty())
      << "beta's share is whole again";
}

// An auditor's export of 5,000 opt-outs, several MiB, read on a node of a
// cluster whose partition's node holds the log: every message within what
// NATS carries, the answer the one a single node gives, byte for byte.
TEST_F(ConsoleTest, InClusterModeAnOptOutsExportLargerThanAMessageArrivesWhole) {
  Start();
  const std::string viewer = MakeKey("viewer", "*");
  for (int i = 0; i < 5000; ++i) {
    DomainEvent d;
    d.type = std::string(ev::kOptedOut);
    d.contact_id = "c-" + std::to_string(i);
    d.system = "verity";
    d.channel = "sms";
    d.actor = "person";
    d.reason = "keyword \"STOP\" — texted " + std::to_string(i);
    d.source_time_us = 1'795'000'000'000'000 + i;
    d.fields = {{"phone", "+1205555" + std::to_string(1000 + i)},
                {"email", "p" + std::to_string(i) + "@example.com"}};
    AppendOutcome out;
    ASSERT_TRUE(log_.Append(ToDraft(d, "default", ContactStream(d.contact_id), {}, {}), &out).ok());
  }
  const std::string json_route = "/v1/audit/opt-outs", csv_route = json_route + "?format=csv";
  const ApiResponse json_alone = Call("GET", json_route, viewer),
                    csv_alone = Call("GET", csv_route, viewer);
  ASSERT_EQ(json_alone.status, 200);
  ASSERT_GT(json_alone.body.size(), 2 * kMaxReadAnswer);

  // The partition's node reads the same log (its seqs and hashes too).
  size_t messages = 0, largest = 0;
  bool lose_parts = false, drop_parts = false;
  console_->SetRemoteReads(
      [&](const std::string&, std::string request, std::function<void(Status, std::string)> done) {
        RemoteRead rr;
        ASSERT_TRUE(DecodeRemoteRead(request, &rr));
        if (lose_parts && rr.route == kReadPartRoute)
          return done(Status::Unavailable("timed out"), "");
        if (drop_parts && rr.route == kReadPartRoute) console_->DropParkedAnswers("default");
        console_->AnswerRemoteRead(log_, std::move(request), [&, done](std::string answer) {
          ++messages;
          largest = std::max(largest, answer.size());
          done(Status::OK(), std::move(answer));
        });
      });
  const ApiResponse json = Call("GET", json_route, viewer);
  EXPECT_EQ(json.status, 200) << json.body.substr(0, 300);
  EXPECT_EQ(json.content_type, json_alone.content_type);
  EXPECT_TRUE(json.body == json_alone.body) << "the same answer as a single node's";
  EXPECT_GE(messages, 3u);
  EXPECT_LE(largest, kMaxReadAnswer);
  const ApiResponse csv = Call("GET", csv_route, viewer);
  EXPECT_EQ(csv.status, 200);
  EXPECT_EQ(csv.content_type, "text/csv; charset=utf-8");
  EXPECT_TRUE(csv.body == csv_alone.body);
  EXPECT_LE(largest, kMaxReadAnswer);

  // A part lost on its way (its node gone), or no longer held where it
  // was asked (the partition moved; an erasure): said so, never half an
  // export.
  lose_parts = true;
  const ApiResponse lost = Call("GET", json_route, viewer);
  EXPECT_EQ(lost.status, 503);
  EXPECT_NE(lost.body.find("owner_unreachable"), std::string::npos) << lost.body;
  EXPECT_EQ(HeaderOf(lost, "Retry-After"), "2");
  lose_parts = false;
  drop_parts = true;
  const ApiResponse gone = Call("GET", json_route, viewer);
  EXPECT_EQ(gone.status, 503);
  EXPECT_NE(gone.body.find("owner_unreachable"), std::string::npos) << gone.body;
  EXPECT_EQ(HeaderOf(gone, "Retry-After"), "2") << gone.body;

  // An asker that puts no parts together (the page's search; a node before
  // parts) is refused an answer too large, as before.
  std::promise<std::string> refused;
  console_->AnswerRemoteRead(log_, EncodeRemoteRead(RemoteRead{json_route, "default", {}, false}),
                             [&refused](std::string a) { refused.set_value(std::move(a)); });
  ApiResponse r;
  ASSERT_TRUE(DecodeReadAnswer(refused.get_future().get(), &r));
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("answer_too_large"), std::string::npos) << r.body;
}

// A first part announcing more than this node may put together (the other
// node's word): refused as too large, nothing more asked.
TEST_F(ConsoleTest, InClusterModeAnAnswerAnnouncedOverTheRoomIsRefusedAsTooLarge) {
  Start();
  const std::string viewer = MakeKey("viewer", "*");
  int asked = 0;
  console_->SetRemoteReads(
      [&](const std::string&, std::string, std::function<void(Status, std::string)> done) {
        ++asked;
        ApiResponse huge;
        huge.body = "[";
        std::string part = EncodeReadPart(huge, "t1", 0, 4096);
        const std::string total = "\"total\":1,";
        part.replace(part.find(total), total.size(),
                     "\"total\":" + std::to_string(kMaxTenantParkedAnswers + 1) + ",");
        done(Status::OK(), part);
      });
  const ApiResponse r = Call("GET", "/v1/audit/opt-outs", viewer);
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("answer_too_large"), std::string::npos) << r.body;
  EXPECT_EQ(asked, 1);
}

}  // namespace
}  // namespace dfm
