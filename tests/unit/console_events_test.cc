// GET /v1/events in pages (docs/http-api.md): `after` and `next_after`, a
// reader's cursor over the log.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <sstream>

#include "replay-tools/events_command.h"
#include "tests/support/console_fixture.h"

namespace dfm {
namespace {

class ConsoleEventsTest : public ConsoleTest {
 protected:
  struct Page {
    std::vector<uint64_t> seqs;
    uint64_t next_after = 0;
  };

  // A note of `tenant` on a stream of its own.
  uint64_t Note(const std::string& tenant, const std::string& type = "admin.action") {
    EventDraft d;
    d.tenant = tenant;
    d.stream = "admin";
    d.type = type;
    d.payload = R"({"action":"note","target":"t"})";
    AppendOutcome out;
    EXPECT_TRUE(log_.Append(std::move(d), &out).ok());
    return out.seq;
  }

  Page Get(const std::string& target, const std::string& key) {
    ApiResponse a = Call("GET", target, key);
    EXPECT_EQ(a.status, 200) << target << ": " << a.body;
    Page p;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(a.body).get(doc) != simdjson::SUCCESS) {
      ADD_FAILURE() << a.body;
      return p;
    }
    EXPECT_EQ(doc["next_after"].get(p.next_after), simdjson::SUCCESS) << a.body;
    for (simdjson::dom::element e : doc["items"].get_array()) {
      uint64_t seq = 0;
      EXPECT_EQ(e["seq"].get(seq), simdjson::SUCCESS);
      p.seqs.push_back(seq);
    }
    return p;
  }

  // Every page of `query` from the start, `limit` at a time: the events in
  // the order read; `pages` counts the pages asked for.
  std::vector<uint64_t> PageThrough(const std::string& query, const std::string& key, int limit,
                                    int* pages, uint64_t* last_next = nullptr) {
    std::vector<uint64_t> all;
    uint64_t after = 0;
    for (*pages = 1; *pages < 100; ++*pages) {
      Page p = Get("/v1/events?limit=" + std::to_string(limit) + "&after=" +
                       std::to_string(after) + query,
                   key);
      all.insert(all.end(), p.seqs.begin(), p.seqs.end());
      EXPECT_GE(p.next_after, after) << "a cursor never goes back";
      if (p.seqs.empty()) {
        if (last_next) *last_next = p.next_after;
        break;
      }
      after = p.next_after;
    }
    return all;
  }
};

TEST_F(ConsoleEventsTest, PagesVisitEveryMatchingEventOnceInOrder) {
  Start();
  const std::string viewer = MakeKey("viewer", "default");
  for (int i = 0; i < 23; ++i) {
    Note("default", i % 3 == 0 ? "sync.paused" : "admin.action");
    if (i % 4 == 0) Note("acme");  // another tenant's: never shown, still passed over
  }
  Note("acme");
  Note("acme");
  const uint64_t head = log_.LastSequence();

  const std::vector<uint64_t> whole = Get("/v1/events?limit=10000", viewer).seqs;
  ASSERT_GE(whole.size(), 23u);
  int pages = 0;
  uint64_t last_next = 0;
  EXPECT_EQ(PageThrough("", viewer, 5, &pages, &last_next), whole);
  EXPECT_EQ(pages, static_cast<int>((whole.size() + 4) / 5) + 1);
  EXPECT_EQ(last_next, head) << "the end of the log: past the other tenant's last events";

  // With a filter, the cursor passes over what it leaves out.
  std::vector<uint64_t> paused;
  for (uint64_t s : Get("/v1/events?type=sync.paused", viewer).seqs) paused.push_back(s);
  ASSERT_EQ(paused.size(), 8u);
  EXPECT_EQ(PageThrough("&type=sync.paused", viewer, 3, &pages), paused);

  // A reader at the end gets what comes next, and only that.
  const uint64_t later = Note("default");
  Note("acme");
  Page next = Get("/v1/events?after=" + std::to_string(head), viewer);
  EXPECT_EQ(next.seqs, std::vector<uint64_t>{later});
  EXPECT_EQ(next.next_after, log_.LastSequence());
  EXPECT_TRUE(Get("/v1/events?after=" + std::to_string(next.next_after), viewer).seqs.empty());
}

TEST_F(ConsoleEventsTest, APageFullToItsLimitEndsAtItsLastEvent) {
  Start();
  const std::string viewer = MakeKey("viewer", "default");
  const uint64_t first = Note("default");
  const uint64_t second = Note("default");
  Note("default");
  Page p = Get("/v1/events?type=admin.action&limit=2&after=" + std::to_string(first - 1), viewer);
  EXPECT_EQ(p.seqs, (std::vector<uint64_t>{first, second}));
  EXPECT_EQ(p.next_after, second) << "the third event is still to be read";
}

// A contact's pages count its own events; each brings what caused it
// (here a webhook) unless an earlier page brought that. A webhook read
// before its decision was recorded comes with the decision's page, though
// its own number is below that page's `after`.
TEST_F(ConsoleEventsTest, AContactsPagesBringEachCauseWithItsFirstDecision) {
  Start();
  const std::string viewer = MakeKey("viewer", "default");
  AddContact("default", "c1");
  EventDraft w;
  w.tenant = "default";
  w.stream = "source:ghl";
  w.type = "webhook.received";
  w.payload = "{}";
  AppendOutcome webhook;
  ASSERT_TRUE(log_.Append(std::move(w), &webhook).ok());
  const std::string q = "/v1/events?contact=contact:c1";

  Page first = Get(q + "&after=0", viewer);
  ASSERT_EQ(first.seqs.size(), 1u) << "contact.created; the webhook not yet decided";
  EXPECT_EQ(first.next_after, log_.LastSequence());

  auto decide = [&] {  // a change of c1 the webhook caused
    DomainEvent d;
    d.type = std::string(ev::kContactChanged);
    d.contact_id = "c1";
    d.system = "ghl";
    d.external_id = "g-c1";
    d.fields = {{"first_name", "Ada"}};
    AppendOutcome out;
    EXPECT_TRUE(
        log_.Append(ToDraft(d, "default", ContactStream("c1"), webhook.id, webhook.id), &out).ok());
    return out.seq;
  };
  const uint64_t decided = decide();
  {  // the cause cannot be read now: no page, not a page without it
    EventFilter f;
    f.by_contact = true;
    f.contacts = {{"default", "c1"}};
    f.after_seq = first.next_after;
    std::ostringstream out, err;
    log_.FailReads(true);  // Read only: the contact's stream still reads
    const int rc = ListEvents(log_, f, /*json=*/true, /*reveal=*/false, out, err);
    log_.FailReads(false);
    EXPECT_EQ(rc, 2) << out.str();
    EXPECT_EQ(out.str(), "");
  }
  Page second = Get(q + "&after=" + std::to_string(first.next_after), viewer);
  EXPECT_EQ(second.seqs, (std::vector<uint64_t>{webhook.seq, decided}))
      << "the webhook with its decision, older than after as it is";
  const uint64_t again = decide();
  Page third = Get(q + "&after=" + std::to_string(second.next_after), viewer);
  EXPECT_EQ(third.seqs, std::vector<uint64_t>{again}) << "its cause was on the page before";

  // The first page of one: the decision and its cause together, the
  // cursor at the decision.
  Page one = Get(q + "&limit=1&after=" + std::to_string(first.seqs[0]), viewer);
  EXPECT_EQ(one.seqs, (std::vector<uint64_t>{webhook.seq, decided}));
  EXPECT_EQ(one.next_after, decided);
  // Paged one at a time from the start: the events of one read, each once.
  std::vector<uint64_t> paged;
  uint64_t after = 0;
  for (int i = 0; i < 10; ++i) {
    Page p = Get(q + "&limit=1&after=" + std::to_string(after), viewer);
    if (p.seqs.empty()) break;
    paged.insert(paged.end(), p.seqs.begin(), p.seqs.end());
    after = p.next_after;
  }
  std::sort(paged.begin(), paged.end());  // a cause comes with its decision's page
  EXPECT_EQ(paged, Get(q, viewer).seqs);
}

// A read bounded by the head its caller took first shows nothing past it,
// and its cursor stays at it.
TEST_F(ConsoleEventsTest, AReadEndsAtTheHeadItsCallerTook) {
  Start();
  const uint64_t first = Note("default");
  const uint64_t taken = Note("default");
  Note("default");
  EventFilter f;
  f.until_seq = taken;
  std::ostringstream out, err;
  uint64_t next_after = 0;
  ASSERT_EQ(ListEvents(log_, f, /*json=*/true, /*reveal=*/false, out, err, &next_after), 0);
  EXPECT_NE(out.str().find("\"seq\":" + std::to_string(first) + ","), std::string::npos)
      << out.str();
  EXPECT_EQ(out.str().find("\"seq\":" + std::to_string(taken + 1) + ","), std::string::npos)
      << out.str();
  EXPECT_EQ(next_after, taken);
}

TEST_F(ConsoleEventsTest, AnAfterThatIsNotASequenceNumberIsRefused) {
  Start();
  const std::string viewer = MakeKey("viewer", "default");
  for (const char* bad : {"abc", "-1", "1.5", "1234567890123456789", "%20"}) {
    ApiResponse a = Call("GET", std::string("/v1/events?after=") + bad, viewer);
    EXPECT_EQ(a.status, 400) << bad;
    EXPECT_NE(a.body.find(R"(\"after\" must be)"), std::string::npos) << a.body;
  }
  EXPECT_EQ(Call("GET", "/v1/events?after=0", viewer).status, 200);
  EXPECT_EQ(Get("/v1/events?after=999999", viewer).next_after, 999999u)
      << "past the head: nothing, and the cursor stays";
}

}  // namespace
}  // namespace dfm
