// HaloPSA's pure parts (connectors/halopsa/): the custom field mapping and
// the types that can hold it, matching a Client by name or domain, and
// reading its users from webhooks (docs/vendors/halopsa.md).
#include <gtest/gtest.h>

#include "connectors/halopsa/clients_cache.h"
#include "connectors/halopsa/halopsa.h"
#include "tests/support/mapper_input.h"
#include "util/clock.h"

namespace dfm {
namespace {

TEST(HaloCustomFields, MappedByConfigurationAndCheckedForType) {
  std::string problem;
  auto m = ParseHaloCustomFields(" linkedin_url = CFLinkedIn,industry=CFIndustry ", &problem);
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, (HaloCustomFields{{"linkedin_url", "CFLinkedIn"}, {"industry", "CFIndustry"}}));
  EXPECT_TRUE(ParseHaloCustomFields("", &problem)->empty());
  EXPECT_FALSE(ParseHaloCustomFields("CFLinkedIn", &problem));
  EXPECT_NE(problem.find("<field>=<HaloPSA custom field name>"), std::string::npos);
  EXPECT_FALSE(ParseHaloCustomFields("phone=CFPhone", &problem)) << "phone is a Users field";

  EXPECT_EQ(HaloFieldTypeProblem("industry", 0, 0), "");
  EXPECT_EQ(HaloFieldTypeProblem("industry", 1, 0), "") << "memo";
  EXPECT_EQ(HaloFieldTypeProblem("linkedin_url", 0, 5), "");
  EXPECT_EQ(HaloFieldTypeProblem("company_size", 0, 1), "");
  EXPECT_EQ(HaloFieldTypeProblem("industry", 0, 1), "is a text field that takes only whole numbers");
  EXPECT_EQ(HaloFieldTypeProblem("industry", 4, 0), "is not a text field (type 4)");
}

TEST(HaloClients, MatchedByNameThenDomainOrWebsite) {
  std::vector<HaloClientRecord> read;
  int64_t total = 0;
  ASSERT_TRUE(ReadHaloClients(R"({"record_count": 3, "clients": [
      {"id": 1, "name": "Walk-in", "main_site_id": 1},
      {"id": 12, "name": "Acme Inc", "domain": "ACME.io", "main_site_id": 21.0},
      {"id": 13, "name": "Globex", "website": "https://www.globex.com/about", "main_site_id": 0}]})",
                              false, &read, &total));
  EXPECT_EQ(total, 3);
  ASSERT_EQ(read.size(), 3u);
  EXPECT_EQ(read[1].main_site_id, 21) << "ids come as doubles too";
  HaloClientsCache cache;
  EXPECT_FALSE(cache.Fresh(0));
  cache.Replace(read, 1000, 0);
  EXPECT_TRUE(cache.Fresh(1000 + HaloClientsCache::kFreshUs - 1));
  EXPECT_FALSE(cache.Fresh(1000 + HaloClientsCache::kFreshUs));
  EXPECT_EQ(cache.Find("acme inc", "")->id, 12);
  EXPECT_EQ(cache.Find("", "acme.io")->id, 12);
  EXPECT_EQ(cache.Find("", "globex.com")->id, 13) << "the website's host";
  EXPECT_EQ(cache.Find("Initech", "globex.com")->id, 13) << "no such name: the domain";
  EXPECT_FALSE(cache.Find("Initech", "initech.com"));
  EXPECT_EQ(HostOfWebsite("HTTP://WWW.Acme.io:443/x"), "acme.io");
  std::vector<HaloClientRecord> one;
  EXPECT_FALSE(ReadHaloClients(R"({"name": "no id"})", true, &one, nullptr));
}

// Issue 51: three contacts of one new company at once made three Clients.
// The first miss creates; the others (by name or by domain) wait for it
// and are filed under its Client; a failed creation lets one of them try.
TEST(HaloClients, ACreationIsSingleFlightPerCompany) {
  HaloClientsCache cache;
  cache.Replace({}, 1000, 0);
  std::vector<int64_t> filed;
  auto waiter = [&](const std::optional<HaloClientRecord>& c) { filed.push_back(c ? c->id : -1); };
  bool creator = false;
  EXPECT_FALSE(cache.FindOrJoin("Umbrella Labs", "umbrella-labs.com", waiter, &creator));
  EXPECT_TRUE(creator);
  EXPECT_FALSE(cache.FindOrJoin("umbrella labs ", "", waiter, &creator));
  EXPECT_FALSE(creator) << "the same name: it waits";
  EXPECT_FALSE(cache.FindOrJoin("", "umbrella-labs.com", waiter, &creator));
  EXPECT_FALSE(creator) << "the same domain: it waits";
  EXPECT_FALSE(cache.FindOrJoin("Initrode Labs", "", waiter, &creator));
  EXPECT_TRUE(creator) << "another company creates its own";
  EXPECT_TRUE(filed.empty());
  cache.Created("Umbrella Labs", "umbrella-labs.com", HaloClientRecord{40, "Umbrella Labs", "umbrella-labs.com", "", 7},
                2000);
  EXPECT_EQ(filed, (std::vector<int64_t>{40, 40}));
  EXPECT_EQ(cache.FindOrJoin("UMBRELLA LABS", "", waiter, &creator)->id, 40);
  EXPECT_FALSE(creator);
  // A creation that fails tells its waiters to look again.
  filed.clear();
  EXPECT_FALSE(cache.FindOrJoin("initrode labs", "", waiter, &creator));
  cache.Created("Initrode Labs", "", std::nullopt, 3000);
  EXPECT_EQ(filed, (std::vector<int64_t>{-1}));
  EXPECT_FALSE(cache.FindOrJoin("Initrode Labs", "", waiter, &creator));
  EXPECT_TRUE(creator) << "nobody creates it now: the next one does";
}

// A list walked while a creation ran (it began before HaloPSA had the new
// Client) no longer erases it: the next contact of that company found
// nothing and made a second one.
TEST(HaloClients, AListBegunBeforeACreationKeepsIt) {
  HaloClientsCache cache;
  cache.Add(HaloClientRecord{40, "Umbrella Labs", "umbrella-labs.com", "", 7}, 2000);
  cache.Replace({HaloClientRecord{1, "Walk-in", "", "", 1}}, 3000, /*listed_from_us=*/1500);
  EXPECT_EQ(cache.Find("Umbrella Labs", "")->id, 40);
  cache.Replace({HaloClientRecord{1, "Walk-in", "", "", 1}}, 9000, /*listed_from_us=*/2500);
  EXPECT_FALSE(cache.Find("Umbrella Labs", "")) << "a walk begun after it and not finding it: gone";
  cache.Invalidate();
  EXPECT_FALSE(cache.Fresh(9001)) << "an unanswered creation: the next miss lists again";
}

// Duplicates HaloPSA holds anyway: the lowest id, always, and named.
TEST(HaloClients, AmongDuplicatesTheLowestIdAndTheyAreNamed) {
  HaloClientsCache cache;
  cache.Replace({HaloClientRecord{15, "Umbrella Labs", "", "", 3}, HaloClientRecord{12, "umbrella labs", "", "", 2},
                 HaloClientRecord{20, "Globex", "globex.com", "", 4}},
                1000, 0);
  EXPECT_EQ(cache.Find("Umbrella Labs", "")->id, 12);
  auto groups = cache.Duplicates();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0][0].id, 12);
  EXPECT_EQ(cache.DuplicatesText(),
            "HaloPSA holds 2 Clients for \"umbrella labs\" (ids 12, 15): new users go to 12.");
}

TEST(HaloMapper, AUsersWebhookIsOneFactOtherEventsNone) {
  MapperSettings s = testing::UsSettings();
  SystemSettings table = {{"user_events", "new user created, user updated"},
                          {"custom_fields", "linkedin_url=CFLinkedIn"}};
  s.system = &table;
  std::vector<ContactFact> facts;
  ASSERT_TRUE(MapHaloWebhook(testing::Webhook("halopsa", R"({"id": "9b1c", "event": "user updated",
      "object_id": 104, "user": {"id": 104, "firstname": "Hal", "surname": "Jordan",
      "emailaddress": "Hal@Globex.com", "phonenumber": "", "mobilenumber": "(205) 555-0311",
      "title": "Buyer", "client_name": "Globex", "site_id": 18.0,
      "customfields": [{"id": 201, "name": "CFLinkedIn", "value": "http://linkedin.com/in/hal"},
                       {"id": 202, "name": "CFIndustry", "value": "energy"}]}})"),
                             s, &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].external_id, "104");
  EXPECT_EQ(facts[0].fields, (std::map<std::string, std::string>{
                                 {"first_name", "Hal"}, {"last_name", "Jordan"}, {"email", "hal@globex.com"},
                                 {"phone", "+12055550311"}, {"title", "Buyer"}, {"company_name", "Globex"},
                                 {"linkedin_url", "http://linkedin.com/in/hal"}}))
      << "the mobile number when there is no phone; unmapped custom fields left out";
  facts.clear();
  ASSERT_TRUE(MapHaloWebhook(testing::Webhook("halopsa", R"({"id": "x", "event": "ticket status changed",
      "object_id": 4242, "ticket": {"id": 4242}})"), s, &facts).ok());
  EXPECT_TRUE(facts.empty());
  Status st = MapHaloWebhook(testing::Webhook("halopsa", R"({"id": "y", "event": "new user created",
      "object_id": 5})"), s, &facts);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("full object"), std::string::npos);
}

TEST(HaloWebhooks, BasicAuthOrNoneOnlyWhenAllowedAndTheEnvelopesId) {
  SystemSettings s = {{"auth", "basic"},    {"allow_unauthenticated", "false"}, {"username", "hook"},
                      {"password", "p4ss"}, {"user_events", "user updated"},     {"custom_fields", ""}};
  std::vector<SettingProblem> problems;
  auto source = NewHaloWebhookSource(s, &problems);
  ASSERT_TRUE(source) << problems.size();
  std::map<std::string, std::string, std::less<>> headers = {{"authorization", "Basic aG9vazpwNHNz"}};
  InboundRequest req;
  req.headers = &headers;
  req.body = R"({"id": "3f2a", "event": "user updated", "timestamp": "2026-11-23T10:00:00.000Z"})";
  std::string scheme;
  ASSERT_TRUE(source->Verify(req, &scheme).ok());
  EXPECT_EQ(scheme, "basic");
  WebhookIdentity id;
  ASSERT_TRUE(source->Identify(req, &id).ok());
  EXPECT_EQ(id.provider_event_id, "3f2a");
  EXPECT_TRUE(id.source_time_us.has_value());
  headers["authorization"] = "Basic aG9vazp3cm9uZw==";
  EXPECT_EQ(source->Verify(req, &scheme).code(), Status::Code::kUnauthenticated);
  headers.clear();
  EXPECT_EQ(source->Verify(req, &scheme).code(), Status::Code::kUnauthenticated);
  // Batched deliveries (v2.164+): every envelope checked, one id for the batch.
  req.body = R"([{"id": "a", "event": "user updated", "timestamp": "2026-11-23T10:00:00.000Z"},
                 {"id": "b", "event": "user updated", "timestamp": "2026-11-23T10:00:05.000Z"}])";
  id = WebhookIdentity{};
  ASSERT_TRUE(source->Identify(req, &id).ok());
  EXPECT_EQ(id.provider_event_id, "ids:a,b");
  EXPECT_EQ(*id.source_time_us - *ParseIso8601Micros("2026-11-23T10:00:00.000Z"), 5'000'000);
  req.body = R"([{"id": "a", "event": "user updated"}])";
  ASSERT_TRUE(source->Identify(req, &id).ok());
  EXPECT_EQ(id.provider_event_id, "a") << "one element is its own id, as unbatched";
  for (const char* bad : {"[]", R"([{"id": "a", "event": "user updated"}, 3])",
                          R"([{"id": "a", "event": "user updated"}, {"event": "user updated"}])"}) {
    req.body = bad;
    EXPECT_EQ(source->Identify(req, &id).code(), Status::Code::kInvalidArgument) << bad;
  }

  s["auth"] = "none";
  problems.clear();
  EXPECT_FALSE(NewHaloWebhookSource(s, &problems));
  s["allow_unauthenticated"] = "true";
  problems.clear();
  EXPECT_TRUE(NewHaloWebhookSource(s, &problems));
}

}  // namespace
}  // namespace dfm
