// Event ids, the record codec and the webhook.received payload codec,
// including a record stored by an older schema version.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "events/codec.h"
#include "events/describe.h"
#include "events/webhook_received.h"

namespace dfm {
namespace {

TEST(EventId, TextFormRoundTripsAndSorts) {
  EventIdGenerator gen;
  EventId a = gen.Next(1763661662000);
  EventId b = gen.Next(1763661662000);  // same millisecond: incremented
  EventId c = gen.Next(1763661662001);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_LT(a.ToString(), b.ToString());
  EXPECT_LT(b.ToString(), c.ToString());
  EXPECT_EQ(a.ToString().size(), 26u);
  EXPECT_EQ(EventId::Parse(a.ToString()).value(), a);
  EXPECT_EQ(a.TimestampMillis(), 1763661662000);
  EXPECT_EQ(c.TimestampMillis(), 1763661662001);
  // A clock that steps back still yields increasing ids.
  EventId d = gen.Next(1763661661000);
  EXPECT_LT(c, d);
}

// Two generators (two processes, or a restart within the same millisecond)
// do not repeat each other's ids, and each new millisecond draws a new
// random part rather than continuing the previous one's.
TEST(EventId, GeneratorsDrawTheirOwnRandomParts) {
  EventIdGenerator a, b;
  std::set<EventId> seen;
  for (int64_t ms = 1763661662000; ms < 1763661662000 + 200; ++ms) {
    EXPECT_TRUE(seen.insert(a.Next(ms)).second);
    EXPECT_TRUE(seen.insert(b.Next(ms)).second);
  }
  EventIdGenerator c;
  EventId x = c.Next(1763661663000), y = c.Next(1763661663001);
  EXPECT_NE(std::string(x.AsBytes().substr(6)), std::string(y.AsBytes().substr(6)));
  EXPECT_EQ(x.bytes[6] & 0x80, 0);  // room left to increment within a millisecond
}

// Every bit lands in its digit: the extremes, one bit at a time, and
// pseudo-random ids read back through Parse.
TEST(EventId, TextFormKeepsEveryBit) {
  EventId zero, max;
  for (auto& b : max.bytes) b = 0xFF;
  EXPECT_EQ(zero.ToString(), std::string(26, '0'));
  EXPECT_EQ(max.ToString(), "7" + std::string(25, 'Z'));
  for (int bit = 0; bit < 128; ++bit) {
    EventId one;
    one.bytes[static_cast<size_t>(15 - bit / 8)] = static_cast<uint8_t>(1u << (bit % 8));
    std::string text = one.ToString();
    const char* digits = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    std::string want(26, '0');
    want[static_cast<size_t>(25 - bit / 5)] = digits[1u << (bit % 5)];
    EXPECT_EQ(text, want) << bit;
  }
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (int i = 0; i < 1000; ++i) {
    EventId id;
    for (auto& b : id.bytes) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      b = static_cast<uint8_t>(x);
    }
    EXPECT_EQ(EventId::Parse(id.ToString()).value(), id);
  }
}

TEST(EventId, ParseRejectsBadText) {
  EXPECT_FALSE(EventId::Parse("short").has_value());
  EXPECT_FALSE(EventId::Parse("01JD8Z5K4N3M2P1Q0R9S8T7U6V").has_value());  // U is not Crockford
  EXPECT_FALSE(EventId::Parse("81JD8Z5K4N3M2P1Q0R9S8T7V6W").has_value());  // > 128 bits
  auto lower = EventId::Parse("01jd8z5k4n3m2p1q0r9s8t7v6w");
  ASSERT_TRUE(lower.has_value());
  EXPECT_EQ(lower->ToString(), "01JD8Z5K4N3M2P1Q0R9S8T7V6W");
}

Event SampleEvent() {
  Event e;
  e.seq = 42;
  EventIdGenerator gen;
  e.id = gen.Next(1763661662000);
  e.recorded_at_us = 1763661662123456;
  e.source_time_us = 1763661600000000;
  e.tenant = "acme";
  e.stream = "contact:c-1";
  e.type = "contact.changed";
  e.schema_version = 3;
  e.causation_id = gen.Next(1763661662001);
  e.correlation_id = gen.Next(1763661662002);
  e.prev_hash = Sha256("previous");
  e.payload = std::string("bin\0ary", 7);
  return e;
}

TEST(RecordCodec, RoundTripsEveryField) {
  Event e = SampleEvent();
  std::string rec = EncodeRecord(e);
  EXPECT_EQ(static_cast<uint8_t>(rec[0]), kRecordFormatVersion);
  Event d;
  ASSERT_TRUE(DecodeRecord(rec, &d).ok());
  EXPECT_EQ(d.seq, e.seq);
  EXPECT_EQ(d.id, e.id);
  EXPECT_EQ(d.recorded_at_us, e.recorded_at_us);
  EXPECT_EQ(d.source_time_us, e.source_time_us);
  EXPECT_EQ(d.tenant, e.tenant);
  EXPECT_EQ(d.stream, e.stream);
  EXPECT_EQ(d.type, e.type);
  EXPECT_EQ(d.schema_version, e.schema_version);
  EXPECT_EQ(d.causation_id, e.causation_id);
  EXPECT_EQ(d.correlation_id, e.correlation_id);
  EXPECT_EQ(d.prev_hash, e.prev_hash);
  EXPECT_EQ(d.payload, e.payload);
  e.source_time_us.reset();
  ASSERT_TRUE(DecodeRecord(EncodeRecord(e), &d).ok());
  EXPECT_FALSE(d.source_time_us.has_value());
}

TEST(RecordCodec, RejectsTruncatedTrailingAndUnknownFormats) {
  std::string rec = EncodeRecord(SampleEvent());
  Event d;
  for (size_t n = 0; n < rec.size(); ++n) {
    EXPECT_TRUE(DecodeRecord(rec.substr(0, n), &d).IsCorruption()) << "prefix of " << n;
  }
  EXPECT_TRUE(DecodeRecord(rec + "x", &d).IsCorruption());
  std::string future = rec;
  future[0] = 9;
  Status s = DecodeRecord(future, &d);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("format version 9"), std::string::npos);
}

WebhookReceived SampleWebhook() {
  WebhookReceived w;
  w.system = "twilio";
  w.provider_event_id = "SM1:received";
  w.id_source = "form.MessageSid:form.SmsStatus";
  w.verification = "hmac-sha1";
  w.request_id = "req-1";
  w.public_url = "https://hooks.example.com/webhooks/twilio";
  w.headers = {{"content-type", "application/x-www-form-urlencoded"}, {"x-twilio-signature", "abc="}};
  w.body = "Body=Hi&From=%2B12055550142";
  return w;
}

TEST(WebhookReceivedCodec, RoundTripsCurrentVersion) {
  WebhookReceived w = SampleWebhook(), d;
  ASSERT_TRUE(DecodeWebhookReceived(WebhookReceived::kSchemaVersion, EncodeWebhookReceived(w), &d).ok());
  EXPECT_EQ(d.system, w.system);
  EXPECT_EQ(d.provider_event_id, w.provider_event_id);
  EXPECT_EQ(d.id_source, w.id_source);
  EXPECT_EQ(d.verification, w.verification);
  EXPECT_EQ(d.request_id, w.request_id);
  EXPECT_EQ(d.public_url, w.public_url);
  EXPECT_EQ(d.headers, w.headers);
  EXPECT_EQ(d.body, w.body);
  EXPECT_EQ(d.Header("x-twilio-signature"), "abc=");
}

TEST(WebhookReceivedCodec, RejectsNewerVersionsAndGarbage) {
  WebhookReceived d;
  EXPECT_TRUE(DecodeWebhookReceived(99, EncodeWebhookReceived(SampleWebhook()), &d).IsCorruption());
  EXPECT_TRUE(DecodeWebhookReceived(2, "\x05zz", &d).IsCorruption());
}

// A record written by the first schema (v1) and kept in the repository as
// stored bytes: today's decoder must still read it.
TEST(WebhookReceivedCodec, UpcastsStoredVersion1Record) {
  std::ifstream in(std::string(DFM_SOURCE_DIR) + "/tests/data/webhook_received_v1.record.hex");
  ASSERT_TRUE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string hex = ss.str();
  while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r')) hex.pop_back();
  auto bytes = HexDecode(hex);
  ASSERT_TRUE(bytes.has_value());
  Event e;
  ASSERT_TRUE(DecodeRecord(*bytes, &e).ok());
  EXPECT_EQ(e.type, "webhook.received");
  EXPECT_EQ(e.schema_version, 1);
  EXPECT_EQ(e.id.ToString(), "01JD8Z5K4N3M2P1Q0R9S8T7V6W");
  WebhookReceived w;
  ASSERT_TRUE(DecodeWebhookReceived(e.schema_version, e.payload, &w).ok());
  EXPECT_EQ(w.system, "verity");
  EXPECT_EQ(w.provider_event_id, "message.received:msg_01JD8Z5K4N3M2P1Q0R9S8T7U6V");
  EXPECT_EQ(w.id_source, "unrecorded");
  EXPECT_EQ(w.verification, "unrecorded");
  EXPECT_EQ(w.Header("x-texting-signature"), "00ff");
  EXPECT_NE(w.body.find("message.received"), std::string::npos);
  // The describer reads it too.
  std::string json = DescribeEventJson(e, false);
  EXPECT_NE(json.find("\"schema_version\":1"), std::string::npos);
  EXPECT_NE(json.find("\"verification\":\"unrecorded\""), std::string::npos);
  EXPECT_EQ(json.find("message.received\\\""), std::string::npos);  // no body without asking
}

}  // namespace
}  // namespace dfm
