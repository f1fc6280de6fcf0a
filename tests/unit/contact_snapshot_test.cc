// The contact snapshot codec (sync/contact_snapshot.h) and the store that
// writes snapshots off the caller's thread (storage/snapshot_store.h).
#include <gtest/gtest.h>

#include "storage/memory_event_log.h"
#include "storage/snapshot_store.h"
#include "sync/contact_snapshot.h"

namespace dfm {
namespace {

// A state with every member set to something other than its default.
ContactState Full() {
  ContactState s;
  s.contact_id = "c-1";
  s.exists = true;
  s.deleted = true;
  s.deleted_at_us = 1'700'000'000'000'007;
  s.deleted_in = "ghl";
  s.deleted_record = "g0";
  s.fields["first_name"] = Attributed{"Ada", "ghl", 1'700'000'000'000'000};
  s.fields["phone"] = Attributed{"+12055550142", "aloware", -5};
  s.links = {{"ghl", "g1"}, {"aloware", "7"}};
  s.told["ghl"] = {{"g0", {"sms"}}, {"g1", {"email", "sms"}}};
  s.told["aloware"]["7"] = {"call", "sms"};
  s.known["ghl"] = {{"first_name", "Ada"}, {"phone", "+12055550142"}};
  s.pushed["aloware"]["first_name"] = {{"Ada", 11}, {"Ad", 12}};
  s.pending["verity"] = {{"email", "ada@example.com"}};
  s.consent["sms"] = ContactState::ChannelConsent{true, 42, true, "keyword STOP via verity"};
  s.consent["email"] = ContactState::ChannelConsent{false, 43, false, "", 41};
  s.known_consent["ghl"]["sms"] = ContactState::HeldConsent{true, 44, true};
  s.pending_consent["aloware"]["call"] = ContactState::PendingConsent{true, "p-9", true};
  s.last_outbound_us["sms"] = 45;
  ContactState::MessageState m;
  m.origin = "verity";
  m.channel = "sms";
  m.direction = "outbound";
  m.status = "delivered";
  m.ids = {{"verity", "m1"}, {"ghl", "g-m1"}};
  m.delivery_decided = true;
  m.note = "recording";
  m.tag = "disposition: answered";
  m.last_us = 46;
  s.messages["verity:m1"] = m;
  s.message_keys = {{"verity\nm1", "verity:m1"}, {"ghl\ng-m1", "verity:m1"}};
  s.pending_sends["p-1"] = ContactState::PendingSend{"verity:m1", "sms", "verity"};
  s.pending_records["p-2"] = ContactState::PendingRecord{"verity:m1", "message", "inbound", "hi"};
  s.message_memory_us = 99;  // configuration: not kept
  s.next_forget_us = 47;
  s.last_fact_seq = 48;
  s.last_fact_index = 2;
  s.last_event_seq = 49;
  return s;
}

OutstandingPush Push() {
  OutstandingPush o;
  o.request.type = "push.requested";
  o.request.contact_id = "c-1";
  o.request.system = "aloware";
  o.request.push_id = "c-1:aloware:1:upsert";
  o.request.op = "upsert";
  o.request.priority = 10;
  o.request.fields = {{"phone", "+12055550142"}};
  o.request_id = *EventId::Parse("01JD0000000000000000000001");
  o.correlation_id = *EventId::Parse("01JD0000000000000000000002");
  return o;
}

TEST(ContactSnapshotTest, EveryMemberComesBack) {
  const ContactState s = Full();
  const std::string bytes = EncodeContactSnapshot(s, {Push()});
  ContactState back;
  back.message_memory_us = 7;
  std::vector<OutstandingPush> outstanding;
  ASSERT_TRUE(DecodeContactSnapshot(bytes, &back, &outstanding).ok());
  // What the state holds: encoded again, the same bytes; and spot checks
  // of the nested members.
  EXPECT_EQ(EncodeContactSnapshot(back, outstanding), bytes);
  EXPECT_EQ(back.contact_id, "c-1");
  EXPECT_TRUE(back.deleted);
  EXPECT_EQ(back.deleted_at_us, 1'700'000'000'000'007);
  EXPECT_EQ(back.deleted_in, "ghl");
  EXPECT_EQ(back.deleted_record, "g0");
  EXPECT_EQ(back.fields.at("phone"), (Attributed{"+12055550142", "aloware", -5}));
  EXPECT_EQ(back.pushed.at("aloware").at("first_name").at("Ad"), 12);
  EXPECT_EQ(back.told.at("ghl").at("g1"), (std::set<std::string>{"email", "sms"}));
  EXPECT_EQ(back.consent.at("sms").held_by, "keyword STOP via verity");
  EXPECT_EQ(back.consent.at("email").person_in_us, 41);
  EXPECT_TRUE(back.known_consent.at("ghl").at("sms").permanent);
  EXPECT_EQ(back.pending_consent.at("aloware").at("call").push_id, "p-9");
  EXPECT_TRUE(back.pending_consent.at("aloware").at("call").refused);
  EXPECT_EQ(back.messages.at("verity:m1").ids.at("ghl"), "g-m1");
  EXPECT_EQ(back.messages.at("verity:m1").tag, "disposition: answered");
  EXPECT_EQ(back.pending_records.at("p-2").body, "hi");
  EXPECT_EQ(back.last_event_seq, 49u);
  EXPECT_EQ(back.message_memory_us, 7) << "configuration is the reader's, not the snapshot's";
  ASSERT_EQ(outstanding.size(), 1u);
  EXPECT_EQ(outstanding[0].request, Push().request);
  EXPECT_EQ(outstanding[0].request_id, Push().request_id);
  EXPECT_EQ(outstanding[0].correlation_id, Push().correlation_id);
}

TEST(ContactSnapshotTest, DamageAndOtherRulesAreRefused) {
  const std::string bytes = EncodeContactSnapshot(Full(), {Push()});
  ContactState back;
  std::vector<OutstandingPush> outstanding;
  for (size_t cut : {size_t{0}, size_t{3}, size_t{5}, bytes.size() / 2, bytes.size() - 1})
    EXPECT_TRUE(DecodeContactSnapshot(bytes.substr(0, cut), &back, &outstanding).IsCorruption())
        << "cut at " << cut;
  EXPECT_TRUE(DecodeContactSnapshot(bytes + "x", &back, &outstanding).IsCorruption());
  std::string other_version = bytes;
  other_version[4] = 4;  // the format before consent.person_in
  EXPECT_TRUE(DecodeContactSnapshot(other_version, &back, &outstanding).IsCorruption());
  std::string other_rules = bytes;
  other_rules[5] = static_cast<char>(kContactRulesVersion + 1);
  Status s = DecodeContactSnapshot(other_rules, &back, &outstanding);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  // A map count past the bytes left is damage, not an allocation.
  std::string huge = bytes.substr(0, 6);
  const char tail[] = "\x03" "c-1" "\x01\x00" "\xff\xff\xff\xff\x0f";
  huge.append(tail, sizeof(tail) - 1);
  EXPECT_TRUE(DecodeContactSnapshot(huge, &back, &outstanding).IsCorruption());
}

TEST(SnapshotStoreTest, TheNewestPutIsReadBeforeAndAfterItIsWritten) {
  MemoryEventLog log;
  {
    SnapshotStore store(&log, "snaps");
    std::string v;
    EXPECT_TRUE(store.Get("a", &v).IsNotFound());
    store.Put("a", 5, "one");
    store.Put("a", 6, "two");
    ASSERT_TRUE(store.Get("a", &v).ok());
    EXPECT_EQ(v, "two");
    store.Flush();
    ASSERT_TRUE(store.Get("a", &v).ok());
    EXPECT_EQ(v, "two");
    EXPECT_GE(store.written(), 1u);
    EXPECT_EQ(store.failed(), 0u);
    store.Put("b", 7, "three");
  }  // the destructor writes what waits
  std::string v;
  ASSERT_TRUE(log.GetConsumerState("snaps", "b", &v).ok());
  EXPECT_EQ(v, "three");
  uint64_t cp = 0;
  ASSERT_TRUE(log.ReadCheckpoint("snaps", &cp).ok());
  EXPECT_EQ(cp, 7u);
}

// An erased person's snapshot: deleted, in place of one still waiting, and
// one their actor makes before it hears of the erasure is never written.
TEST(SnapshotStoreTest, AnErasedKeyIsDeletedAndNeverPutAgain) {
  MemoryEventLog log;
  SnapshotStore store(&log, "snaps");
  store.Put("ann", 5, "Ann's state");
  store.Flush();
  std::string v;
  ASSERT_TRUE(log.GetConsumerState("snaps", "ann", &v).ok());
  store.Put("ann", 6, "Ann's newer state");  // waiting when the erasure comes
  store.Erase("ann");
  EXPECT_TRUE(store.Get("ann", &v).IsNotFound());
  store.Put("ann", 7, "made by an actor that has not heard");
  EXPECT_TRUE(store.Get("ann", &v).IsNotFound());
  store.Put("bob", 8, "Bob's state");
  store.Flush();
  EXPECT_TRUE(log.GetConsumerState("snaps", "ann", &v).IsNotFound()) << "deleted in the log";
  ASSERT_TRUE(log.GetConsumerState("snaps", "bob", &v).ok());
}

}  // namespace
}  // namespace dfm
