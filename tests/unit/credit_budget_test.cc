// The daily credit budget (actors/connector_actor.h; issue 51): a credit is
// reserved before a question goes, durably; a rate-limit hold holds none;
// the budget is never exceeded, whatever the order of holds, restarts and
// concurrency.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "tests/support/actor_fixture.h"

namespace dfm {
namespace {

constexpr int64_t kDayUs = 86400LL * 1000000;

// A paid lookup: each question may cost one credit, and costs one when the
// answer says so.
class PaidClient : public testing::ScriptedClient {
 public:
  int MaxCredits(const PushRequest& req) const override { return req.op == "enrich" ? 1 : 0; }
  // Answers question `i`: 200 and `credits`, or a 429 (nothing done).
  void Reply(size_t i, int status, int credits, int64_t retry_after_us = 0) {
    PushResult r;
    r.http_status = status;
    r.requests = 1;
    r.credits = credits;
    if (retry_after_us) r.retry_after_us = retry_after_us;
    if (status == 200) r.answered = {{"title", "Buyer"}};
    pushes.at(i).done(r);
    answered.push_back(i);
  }
  std::vector<size_t> answered;
  size_t Open() const { return pushes.size() - answered.size(); }
};

class CreditBudget : public testing::ActorTest {
 protected:
  caf::actor Apollo(std::shared_ptr<PaidClient> client, int64_t budget = 3) {
    ConnectorSettings s = Settings(client);
    s.system = "apollo";
    s.daily_credit_budget = budget;
    s.concurrency = 8;
    return Connector(s);
  }
  void Ask(const caf::actor& apollo, int n) {
    PushOrder o = Order("c" + std::to_string(n) + ":apollo:" + std::to_string(n) + ":enrich",
                        "c" + std::to_string(n));
    o.request.system = "apollo";
    o.request.op = "enrich";
    o.request.fields = {{"email", "p" + std::to_string(n) + "@example.com"}};
    caf::anon_send(apollo, o);
    sched_->run();
  }
  // What the log's consumer state holds for the day: spent with reserved.
  int64_t Stored() {
    std::string v;
    if (!log_.GetConsumerState("credits", CredentialsKey("default", "apollo"), &v).ok()) return 0;
    return std::strtoll(v.c_str() + v.find('\n') + 1, nullptr, 10);
  }
};

// Five questions at once under a budget of three: three go, each reserved
// (and stored) before it went; the rest wait for the next UTC day.
TEST_F(CreditBudget, NoMoreQuestionsGoThanTheBudgetHasCreditsFor) {
  auto client = std::make_shared<PaidClient>();
  auto apollo = Apollo(client);
  for (int n = 0; n < 5; ++n) Ask(apollo, n);
  EXPECT_EQ(client->pushes.size(), 3u);
  EXPECT_EQ(Stored(), 3) << "reserved before they went";
  for (size_t i = 0; i < 3; ++i) client->Reply(i, 200, 1);
  sched_->run();
  EXPECT_EQ(client->pushes.size(), 3u) << "the day's budget is spent";
  Advance(kDayUs);
  EXPECT_EQ(client->pushes.size(), 5u) << "the next UTC day";
}

// A no-match costs nothing: its reservation goes to the next question.
TEST_F(CreditBudget, AnAnswerThatCostNothingFreesItsCredit) {
  auto client = std::make_shared<PaidClient>();
  auto apollo = Apollo(client);
  for (int n = 0; n < 5; ++n) Ask(apollo, n);
  client->Reply(0, 200, 0);
  sched_->run();
  EXPECT_EQ(client->pushes.size(), 4u);
  EXPECT_EQ(Stored(), 3);
}

// Issue 51: a rate-limit hold released four questions in one millisecond
// and five people were matched under a budget of three. Questions held by
// a rate limit hold no credit and are checked again when they may go.
TEST_F(CreditBudget, ARateLimitHoldReleasesNoMoreThanTheBudget) {
  auto client = std::make_shared<PaidClient>();
  auto apollo = Apollo(client);
  for (int n = 0; n < 5; ++n) Ask(apollo, n);
  ASSERT_EQ(client->pushes.size(), 3u);
  for (size_t i = 0; i < 3; ++i) client->Reply(i, 429, 0, 2'000'000);  // nothing done
  sched_->run();
  EXPECT_LE(client->Open(), 3u) << "a refused question frees its credit for one waiting";
  EXPECT_LE(Stored(), 3);
  int spent = 0;  // every question that goes is matched
  for (int step = 0; step < 30; ++step) {
    for (size_t i = 0; i < client->pushes.size(); ++i)
      if (std::find(client->answered.begin(), client->answered.end(), i) == client->answered.end()) {
        client->Reply(i, 200, 1);
        ++spent;
      }
    Advance(3'000'000);  // the holds end
  }
  EXPECT_EQ(spent, 3);
  EXPECT_EQ(Stored(), 3);
}

// A question asked and left unanswered by a crash counts as spent: the
// next run starts from the stored reservations and asks no more than the
// budget has left, then goes on the next day.
TEST_F(CreditBudget, ReservationsSurviveARestartAsSpent) {
  auto client = std::make_shared<PaidClient>();
  {
    auto apollo = Apollo(client);
    for (int n = 0; n < 5; ++n) Ask(apollo, n);
    client->Reply(0, 200, 1);
    sched_->run();
    ASSERT_EQ(client->pushes.size(), 3u) << "one spent and two reserved: no room";
    caf::anon_send_exit(apollo, caf::exit_reason::kill);  // kill -9: two questions open
    sched_->run();
  }
  EXPECT_EQ(Stored(), 3);
  auto again = std::make_shared<PaidClient>();
  auto apollo = Apollo(again);
  for (int n = 1; n < 5; ++n) Ask(apollo, n);  // the contacts order theirs again
  EXPECT_TRUE(again->pushes.empty()) << "three spent or asked: none left today";
  Advance(kDayUs);
  EXPECT_EQ(again->pushes.size(), 3u);
}

// Property: whatever the order of answers (matches, no-matches, 429s,
// transport errors after the request went), holds and restarts, the
// credits the vendor charged in a day never pass the budget.
TEST_F(CreditBudget, TheBudgetHoldsWhateverTheOrder) {
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    std::mt19937 rng(seed);
    auto client = std::make_shared<PaidClient>();
    int charged = 0;  // what the vendor did: matches and unanswered work
    auto apollo = Apollo(client, 4);
    for (int n = 0; n < 9; ++n) Ask(apollo, 100 * static_cast<int>(seed) + n);
    for (int step = 0; step < 60 && client->Open() > 0; ++step) {
      std::vector<size_t> open;
      for (size_t i = 0; i < client->pushes.size(); ++i)
        if (std::find(client->answered.begin(), client->answered.end(), i) == client->answered.end())
          open.push_back(i);
      const size_t i = open[rng() % open.size()];
      switch (rng() % 4) {
        case 0: client->Reply(i, 200, 1); charged++; break;
        case 1: client->Reply(i, 200, 0); break;
        case 2: client->Reply(i, 429, 0, 1'000'000); break;
        default: {  // done, then no answer (a timeout)
          PushResult r;
          r.http_status = 0;
          r.requests = 1;
          client->pushes.at(i).done(r);
          client->answered.push_back(i);
          charged++;
        }
      }
      sched_->run();
      Advance(1'100'000 + rng() % 30'000'000);
      ASSERT_LE(charged, 4) << "seed " << seed;
    }
    caf::anon_send_exit(apollo, caf::exit_reason::kill);
    sched_->run();
    Advance(kDayUs - clock_.NowMicros() % kDayUs + 3'600'000'000LL);  // 01:00 the next UTC day
  }
}

}  // namespace
}  // namespace dfm
