// An erasure at the connectors (contact.erased): the person's pushes still
// waiting never go, their consent pushes still land.
#include <gtest/gtest.h>

#include <set>

#include "app/erase.h"
#include "storage/key_store.h"
#include "tests/support/actor_fixture.h"

namespace dfm {
namespace {

using testing::ActorTest;
using testing::kStart;
using testing::ScriptedClient;

// An upsert waiting for its retry (the vendor answered 503) when the
// person is erased: it never goes (it would make the person again in the
// vendor, whose webhook would bring them back here).
TEST_F(ActorTest, AnErasedPersonsPushWaitingForItsRetryNeverGoes) {
  auto keys = std::make_shared<MemoryKeyStore>();
  log_.SetKeyStore(keys);
  env_->subject_hash_key = keys->HashKey();
  auto client = std::make_shared<ScriptedClient>();
  caf::actor router = StartPeopleSync(client);
  DeliverWebhook(
      router, "ghl", "ghl/ContactCreate.json",
      {{"webhookId", "w1"}, {"id", "g-1"}, {"phone", "(205) 555-0142"}, {"firstName", "Ada"}},
      "w1");
  ASSERT_EQ(client->pushes.size(), 1u);
  const std::string contact = client->pushes[0].req.contact_id;
  client->Answer(0, 503);  // retried after a backoff
  sched_->run();
  EraseOutcome erased;
  ASSERT_TRUE(
      EraseContact(&log_, keys.get(), {"default", contact, "test", "test", {}}, &erased).ok());
  caf::anon_send(router, poll_atom::value);
  sched_->run();
  Advance(Backoff().max_us + 10'000'000);
  EXPECT_EQ(client->pushes.size(), 1u) << "the erased person's upsert went again";
}

// What an erased person said of their consent still lands: only their
// other pushes are dropped.
TEST_F(ActorTest, AnErasureDropsThePersonsPushesButTheirConsent) {
  auto client = std::make_shared<ScriptedClient>();
  auto c = Connector(client);
  PushOrder out = Order("p-out", "c1");
  out.request.op = "opt_out";
  out.request.channel = "sms";
  caf::anon_send(c, Order("p-up", "c1"));
  caf::anon_send(c, Order("p-other", "c2"));
  caf::anon_send(c, out);
  sched_->run();
  for (size_t i = 0; i < client->pushes.size(); ++i) client->Answer(i, 503);
  sched_->run();
  const size_t before = client->pushes.size();
  caf::anon_send(c, PushCancel{"default", "", "the contact was erased", "c1"});
  sched_->run();
  Advance(Backoff().max_us + 10'000'000);
  std::set<std::string> after;
  for (size_t i = before; i < client->pushes.size(); ++i)
    after.insert(client->pushes[i].req.push_id);
  EXPECT_EQ(after.count("p-up"), 0u) << "the erased person's upsert went";
  EXPECT_EQ(after.count("p-out"), 1u) << "their opt-out is kept";
  EXPECT_EQ(after.count("p-other"), 1u) << "another person's push is kept";
}

// The erasure reaches the contact's actor while its append is under way:
// the pushes that append asks for are not ordered once it lands (the
// router's cancel may have reached the connector before them).
TEST_F(ActorTest, PushesDecidedBeforeAnErasureButDurableAfterItAreNotOrdered) {
  env_->ctx.targets = {{"aloware", {"first_name", "phone"}}};
  auto client = std::make_shared<ScriptedClient>();
  env_->connectors[{"default", "aloware"}] = Connector(client);
  auto answers = std::make_shared<std::vector<uint64_t>>();
  auto contact = LoneContact(answers);
  ContactFact f;
  f.tenant = "default";
  f.system = "ghl";
  f.external_id = "g-1";
  f.fields = {{"first_name", "Ada"}, {"phone", "+12055550142"}};
  f.source_time_us = kStart;
  f.webhook_seq = 1;
  log_.StallWrites(true);
  caf::anon_send(contact, RoutedFact{f, 1});
  sched_->run();
  ASSERT_EQ(log_.Stalled(), 1u) << "the decision's append under way";
  caf::anon_send(contact, erase_atom::value);
  sched_->run();
  log_.StallWrites(false);
  ASSERT_TRUE(log_.ReleaseStalled());
  sched_->run();
  EXPECT_TRUE(client->pushes.empty()) << "an erased person's upsert was ordered";
  EXPECT_EQ(answers->size(), 1u) << "the fact is still answered";
}

}  // namespace
}  // namespace dfm
