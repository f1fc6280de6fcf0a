// A text the vendor could send twice (VendorClient::MayApplyTwice) whose
// request was answered "not done" (a 429, a refused token, the vendor's
// own "unavailable": PushResult::not_done) or never left (not_sent)
// waits to go again; a restart during that wait sends it once under its
// next generation (push.held says the last one never went) instead of
// dead-lettering it as a request that may have gone. A bare 5xx (a
// gateway's) is not taken for "not done" (docs/sync-rules.md, "Delivery
// policy").
#include <gtest/gtest.h>

#include "tests/support/actor_fixture.h"

namespace dfm {
namespace {

class RetriedSend : public testing::ActorTest {
 protected:
  // A vendor's answer `status`, with a Retry-After when given.
  static PushResult Answered(int status, int64_t retry_after_us = 0) {
    PushResult r;
    r.http_status = status;
    r.requests = 1;
    if (retry_after_us) r.retry_after_us = retry_after_us;
    return r;
  }
  // The vendor's own "unavailable, not taken" (its error body).
  static PushResult Unavailable(int64_t retry_after_us = 0) {
    PushResult r = Answered(503, retry_after_us);
    r.not_done = true;
    return r;
  }

  // The text "p-send-<contact>" to `contact`, sent through a new connector on `client`
  // (its sends not idempotent) and answered `r`; the push.
  PushOrder SendAnswered(const std::shared_ptr<testing::ScriptedClient>& client,
                         const PushResult& r, caf::actor* connector,
                         const std::string& contact = "c1") {
    client->sends_not_idempotent = true;
    *connector = Connector(client);
    PushOrder send = Order("p-send-" + contact, contact);
    send.request.op = "send";
    caf::anon_send(*connector, send);
    sched_->run();
    EXPECT_EQ(client->pushes.size(), 1u);
    if (!client->pushes.empty()) client->pushes[0].done(r);
    sched_->run();
    return send;
  }

  // The text "p-send" to c1 handed to a new connector on `client` (its
  // sends not idempotent) with settings `s` otherwise.
  void SendText(const std::shared_ptr<testing::ScriptedClient>& client, ConnectorSettings s) {
    client->sends_not_idempotent = true;
    s.client = client;
    auto c = Connector(s);
    PushOrder send = Order("p-send", "c1");
    send.request.op = "send";
    caf::anon_send(c, send);
    sched_->run();
  }

  // The reason of the push.held in the log ("" when none).
  std::string HeldReason() {
    std::vector<Event> all;
    EXPECT_TRUE(log_.Read(1, 1000, &all).ok());
    for (const auto& e : all)
      if (e.type == ev::kPushHeld) return e.payload;
    return "";
  }

  // The service restarts during the wait after `r`: the next run sends
  // the text once, under the next generation; a run after that, killed
  // before its answer, finds that one recorded without a hold and does
  // not risk it twice.
  void GoesOnceAfterARestart(const PushResult& r, const std::string& reason) {
    auto first = std::make_shared<testing::ScriptedClient>();
    caf::actor c;
    PushOrder send = SendAnswered(first, r, &c);
    ASSERT_EQ(TypesIn("contact:c1"), (std::vector<std::string>{"push.sending", "push.held"}));
    EXPECT_NE(HeldReason().find(reason), std::string::npos) << HeldReason();
    EXPECT_EQ(first->pushes.size(), 1u) << "the wait is not over";
    caf::anon_send_exit(c, caf::exit_reason::kill);
    sched_->run();

    auto second = std::make_shared<testing::ScriptedClient>();
    auto next = Rerun(second, send);
    ASSERT_EQ(second->pushes.size(), 1u) << "it never went: it goes";
    EXPECT_EQ(DeadLetterReason(), "");
    EXPECT_EQ(TypesIn("contact:c1"),
              (std::vector<std::string>{"push.sending", "push.held", "push.sending"}));

    caf::anon_send_exit(next, caf::exit_reason::kill);
    sched_->run();
    auto third = std::make_shared<testing::ScriptedClient>();
    Rerun(third, send);
    EXPECT_TRUE(third->pushes.empty()) << "the second run may have sent it";
    EXPECT_NE(DeadLetterReason().find("begun before a restart"), std::string::npos);
  }
};

TEST_F(RetriedSend, ARateLimitedTextGoesOnceAfterARestart) {
  PushResult r = Answered(429, 30'000'000);
  GoesOnceAfterARestart(r, "rate limited (HTTP 429)");
}

TEST_F(RetriedSend, ATextThatNeverLeftGoesOnceAfterARestart) {
  PushResult r;
  r.not_sent = true;
  r.detail = "could not connect";
  GoesOnceAfterARestart(r, "not sent (could not connect)");
}

TEST_F(RetriedSend, ATextTheVendorSaidItDidNotTakeGoesOnceAfterARestart) {
  GoesOnceAfterARestart(Unavailable(), "answered HTTP 503 (not done)");
}

// A bare 503 or 408 (no word of the vendor's) may come from a gateway
// whose vendor took the text: it is not held.
TEST_F(RetriedSend, ABareUnavailableIsNotHeld) {
  for (int status : {503, 408}) {
    auto client = std::make_shared<testing::ScriptedClient>();
    caf::actor c;
    const std::string contact = "c" + std::to_string(status);
    SendAnswered(client, Answered(status), &c, contact);
    EXPECT_EQ(TypesIn("contact:" + contact), (std::vector<std::string>{"push.sending"})) << status;
  }
}

// A gateway's 504 may hide an origin that took the text: no hold, before
// or after a later "not done" under the same generation, so a restart
// during the wait does not send it again.
TEST_F(RetriedSend, ATextAGatewayTimedOutIsNotHeld) {
  auto first = std::make_shared<testing::ScriptedClient>();
  caf::actor c;
  PushOrder send = SendAnswered(first, Answered(504), &c);
  EXPECT_EQ(TypesIn("contact:c1"), (std::vector<std::string>{"push.sending"}));
  Advance(60'000'000);
  ASSERT_EQ(first->pushes.size(), 2u) << "tried again in the same run, as ever";
  first->pushes[1].done(Answered(429, 1'000'000));
  sched_->run();
  EXPECT_EQ(TypesIn("contact:c1"), (std::vector<std::string>{"push.sending"}))
      << "the 504's request may have gone";
  caf::anon_send_exit(c, caf::exit_reason::kill);
  sched_->run();
  auto second = std::make_shared<testing::ScriptedClient>();
  Rerun(second, send);
  EXPECT_TRUE(second->pushes.empty());
  EXPECT_NE(DeadLetterReason().find("begun before a restart"), std::string::npos);
}

// The last attempt answered "not done": dead-lettered, nothing held.
TEST_F(RetriedSend, ATextOutOfAttemptsIsNotHeld) {
  auto client = std::make_shared<testing::ScriptedClient>();
  ConnectorSettings s = Settings(client);
  s.backoff.max_attempts = 1;
  SendText(client, s);
  ASSERT_EQ(client->pushes.size(), 1u);
  client->pushes[0].done(Answered(503));
  sched_->run();
  EXPECT_EQ(TypesIn("contact:c1"), (std::vector<std::string>{"push.sending"}));
  EXPECT_NE(DeadLetterReason().find("retries exhausted"), std::string::npos) << DeadLetterReason();
}

// A refused token: the grant is refreshed, the text waits for it; a
// restart before the refresh's answer sends it once.
TEST_F(RetriedSend, ATextWhoseTokenWasRefusedGoesOnceAfterARestart) {
  auto first = std::make_shared<testing::ScriptedClient>();
  first->oauth = true;
  PushResult r = Answered(401);
  r.auth_rejected = true;
  caf::actor c;
  PushOrder send = SendAnswered(first, r, &c);
  EXPECT_EQ(first->refreshes.size(), 1u) << "the grant is refreshed";
  ASSERT_EQ(TypesIn("contact:c1"), (std::vector<std::string>{"push.sending", "push.held"}));
  EXPECT_NE(HeldReason().find("token refused (HTTP 401)"), std::string::npos);
  caf::anon_send_exit(c, caf::exit_reason::kill);
  sched_->run();

  auto second = std::make_shared<testing::ScriptedClient>();
  Rerun(second, send);
  EXPECT_EQ(second->pushes.size(), 1u);
  EXPECT_EQ(DeadLetterReason(), "");
}

// In one run the retry goes once its wait is over, recorded anew; a push
// the vendor cannot do twice (an upsert) records nothing.
TEST_F(RetriedSend, TheRetryIsRecordedUnderTheNextGeneration) {
  auto client = std::make_shared<testing::ScriptedClient>();
  PushResult r = Answered(429, 30'000'000);
  caf::actor c;
  SendAnswered(client, r, &c);
  Advance(29'000'000);
  EXPECT_EQ(client->pushes.size(), 1u) << "Retry-After is kept";
  Advance(1'000'000);
  ASSERT_EQ(client->pushes.size(), 2u);
  EXPECT_EQ(TypesIn("contact:c1"),
            (std::vector<std::string>{"push.sending", "push.held", "push.sending"}))
      << "recorded before the retry went";
  client->Answer(1, 200, "m-1");
  sched_->run();
  EXPECT_EQ(DeadLetterReason(), "");

  caf::anon_send(c, Order("p-upsert", "c2"));
  sched_->run();
  ASSERT_EQ(client->pushes.size(), 3u);
  client->pushes[2].done(r);
  sched_->run();
  EXPECT_TRUE(TypesIn("contact:c2").empty());
}

// A push.held the log refuses is written again while the text waits out
// its Retry-After (a 503's: no rate limit holds it), which stays whole:
// the text goes when it is over, its hold on record first.
TEST_F(RetriedSend, ARefusedHoldIsWrittenAgainAndTheWaitKept) {
  auto client = std::make_shared<testing::ScriptedClient>();
  PushResult r = Unavailable(30'000'000);
  log_.FailWritesAfter(1);  // the push.sending is written, its push.held refused
  caf::actor c;
  SendAnswered(client, r, &c);
  ASSERT_EQ(TypesIn("contact:c1"), (std::vector<std::string>{"push.sending"}));
  log_.FailWrites(false);
  Advance(env_->append_retry_us);
  EXPECT_EQ(TypesIn("contact:c1"), (std::vector<std::string>{"push.sending", "push.held"}))
      << "written again during the wait";
  EXPECT_EQ(client->pushes.size(), 1u) << "the Retry-After was cut short";
  Advance(30'000'000);
  EXPECT_EQ(client->pushes.size(), 2u);
  EXPECT_EQ(TypesIn("contact:c1"),
            (std::vector<std::string>{"push.sending", "push.held", "push.sending"}));
}

// The same after a short backoff (no Retry-After): the wake
// for the backoff comes before the hold may be written again, and finds
// it not due; the hold is still written, and the text goes, with no other
// message to the connector.
TEST_F(RetriedSend, ARefusedHoldIsWrittenAgainAfterAShortBackoff) {
  auto client = std::make_shared<testing::ScriptedClient>();
  log_.FailWritesAfter(1);
  caf::actor c;
  SendAnswered(client, Unavailable(), &c);
  ASSERT_EQ(TypesIn("contact:c1"), (std::vector<std::string>{"push.sending"}));
  log_.FailWrites(false);
  for (int i = 0; i < 200; ++i) Advance(10'000);  // each wake as it falls due
  ASSERT_EQ(client->pushes.size(), 2u);
  EXPECT_EQ(TypesIn("contact:c1"),
            (std::vector<std::string>{"push.sending", "push.held", "push.sending"}));
}

// A request unanswered (it may have gone) after 429s of a spent daily cap,
// which spend no attempt: the text is dead-lettered, never sent again,
// however many requests its free tries took.
TEST_F(RetriedSend, AnUnansweredTextAfterTheDailyCapsTriesIsNotSentAgain) {
  auto client = std::make_shared<testing::ScriptedClient>();
  ConnectorSettings s = Settings(client);
  s.daily_limit = 1000;
  s.backoff.max_attempts = 2;
  SendText(client, s);
  PushResult spent = Answered(429);
  spent.daily_remaining = 0;
  for (size_t i = 0; i < 2; ++i) {  // the cap spent on two days
    ASSERT_EQ(client->pushes.size(), i + 1);
    client->pushes[i].done(spent);
    sched_->run();
    Advance(25 * 3'600'000'000LL);
  }
  ASSERT_EQ(client->pushes.size(), 3u);
  PushResult lost;  // the third request's connection dropped after it went
  lost.detail = "timed out";
  client->pushes[2].done(lost);
  sched_->run();
  Advance(25 * 3'600'000'000LL);
  EXPECT_EQ(client->pushes.size(), 3u) << "sent again though it may have gone";
  EXPECT_NE(DeadLetterReason().find("may have done it"), std::string::npos) << DeadLetterReason();
}

}  // namespace
}  // namespace dfm
