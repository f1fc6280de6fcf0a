// OptOutWatch (projections/opt_out_watch.h): what it answers after each
// Refresh is what ContactOptedOut reads from the projections, while it
// reads each person's answer again only after an event that may change it.
#include "projections/opt_out_watch.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "events/sealing.h"
#include "projections/audience_index.h"
#include "projections/runner.h"
#include "projections/sync_projections.h"
#include "storage/memory_event_log.h"
#include "sync/domain_event.h"
#include "sync/erasure.h"
#include "sync/fact.h"

namespace dfm {
namespace {

constexpr char kTenant[] = "acme";
const std::vector<std::string> kPeople = {"ann", "bob", "cat", "dan"};

class OptOutWatchTest : public testing::Test {
 protected:
  void Append(DomainEvent d, const std::string& tenant = kTenant) {
    std::vector<AppendOutcome> out;
    const EventId cause;
    ASSERT_TRUE(
        log_.Append({ToDraft(d, tenant, ContactStream(d.contact_id), cause, cause)}, &out).ok());
  }
  void Created(const std::string& contact, const std::string& field, const std::string& value) {
    DomainEvent d;
    d.type = std::string(ev::kContactCreated);
    d.contact_id = contact;
    d.system = "ghl";
    d.fields = {{field, value}};
    Append(d);
  }
  void Consent(const char* type, const std::string& contact, const std::string& phone,
               const std::string& tenant = kTenant) {
    DomainEvent d;
    d.type = type;
    d.contact_id = contact;
    d.system = "verity";
    d.channel = "sms";
    d.fields = {{fields::kPhone, phone}};
    Append(d, tenant);
  }
  void Fold() { ASSERT_TRUE(ProjectionRunner(&log_, {&view_, &registry_}).CatchUp().ok()); }
  // Every person's answer on sms and email, the watch's against a fresh
  // read of the projections.
  void ExpectAgrees(const char* when) {
    ASSERT_TRUE(watch_.Refresh().ok()) << when;
    for (const std::string& c : kPeople)
      for (const char* ch : {"sms", "email"})
        EXPECT_EQ(watch_.OptedOut(c, ch), ContactOptedOut(log_, kTenant, c, ch))
            << when << ": " << c << " " << ch;
  }

  MemoryEventLog log_;
  ContactViewProjection view_;
  OptOutRegistryProjection registry_;
  OptOutWatch watch_{&log_, kTenant};
};

TEST_F(OptOutWatchTest, AnswersAsTheProjectionsDoAfterEachChange) {
  Created("ann", fields::kPhone, "+12065550101");
  Created("bob", fields::kPhone, "+12065550102");
  Created("cat", fields::kPhone, "+12065550101");  // Ann's number too
  Created("dan", fields::kEmail, "dan@example.com");
  Fold();
  ExpectAgrees("at first");
  EXPECT_FALSE(watch_.OptedOut("bob", "sms"));
  EXPECT_EQ(watch_.remembered(), 8u);

  Consent(ev::kOptedOut.data(), "bob", "+12065550102");
  ExpectAgrees("appended, not folded: the projections do not say it yet");
  EXPECT_FALSE(watch_.OptedOut("bob", "sms"));
  Fold();
  ExpectAgrees("Bob's STOP folded");
  EXPECT_TRUE(watch_.OptedOut("bob", "sms"));

  Consent(ev::kOptedOut.data(), "ann", "+12065550101");
  Fold();
  ExpectAgrees("Ann's STOP: Cat shares her number");
  EXPECT_TRUE(watch_.OptedOut("cat", "sms"));

  DomainEvent moved;  // Dan takes Bob's number, opted out already
  moved.type = std::string(ev::kContactChanged);
  moved.contact_id = "dan";
  moved.system = "ghl";
  moved.changes = {{fields::kPhone, "", "+12065550102"}};
  Append(moved);
  Fold();
  ExpectAgrees("Dan's new number");
  EXPECT_TRUE(watch_.OptedOut("dan", "sms"));

  Consent(ev::kOptedIn.data(), "ann", "+12065550101");
  Consent(ev::kOptedOut.data(), "zed", "+12065550102", "other");  // another tenant's
  ASSERT_TRUE(ProjectionRunner(&log_, &registry_).CatchUp().ok());
  ExpectAgrees("the registry ahead of the contact view");
  EXPECT_FALSE(watch_.OptedOut("cat", "sms"));
  Fold();
  ExpectAgrees("Ann's START; another tenant's STOP of the same number");
  EXPECT_FALSE(watch_.OptedOut("cat", "sms"));
  EXPECT_TRUE(watch_.OptedOut("bob", "sms"));
}

TEST_F(OptOutWatchTest, KeepsAnswersUntilAnEventMayChangeThem) {
  Created("ann", fields::kPhone, "+12065550101");
  Created("bob", fields::kPhone, "+12065550102");
  Fold();
  ASSERT_TRUE(watch_.Refresh().ok());
  EXPECT_FALSE(watch_.OptedOut("ann", "sms"));
  EXPECT_FALSE(watch_.OptedOut("bob", "sms"));
  EXPECT_EQ(watch_.remembered(), 2u);
  Consent(ev::kOptedOut.data(), "bob", "+12065550102");
  Fold();
  ASSERT_TRUE(watch_.Refresh().ok());
  EXPECT_EQ(watch_.remembered(), 1u) << "Ann's answer kept, Bob's read again";
  EXPECT_TRUE(watch_.OptedOut("bob", "sms"));

  Erasure er;  // an erasure forgets rows: everything is read again
  er.contact_id = "ann";
  EventDraft erased;
  erased.tenant = kTenant;
  erased.stream = ContactStream("ann");
  erased.type = std::string(kContactErasedType);
  erased.payload = EncodeErasure(er);
  std::vector<AppendOutcome> out;
  ASSERT_TRUE(log_.Append({erased}, &out).ok());
  Fold();
  ASSERT_TRUE(watch_.Refresh().ok());
  EXPECT_EQ(watch_.remembered(), 0u);
  ExpectAgrees("after an erasure");

  ASSERT_TRUE(log_.DropConsumer(OptOutRegistryProjection::kName).ok());  // folded again
  ASSERT_TRUE(watch_.Refresh().ok());
  EXPECT_EQ(watch_.remembered(), 0u) << "the registry's checkpoint went back";
  Fold();
  ExpectAgrees("after the registry was folded again");
}

}  // namespace
}  // namespace dfm
