#include <gtest/gtest.h>

#include "util/clock.h"
#include "util/crypto.h"
#include "util/json.h"
#include "util/logging.h"

namespace dfm {
namespace {

TEST(Iso8601, ParsesVendorFormats) {
  EXPECT_EQ(ParseIso8601Micros("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseIso8601Micros("2026-11-20T15:04:05.123Z"), int64_t{1795187045123000});
  EXPECT_EQ(ParseIso8601Micros("2026-11-20T16:04:05.123+01:00"), int64_t{1795187045123000});
  EXPECT_EQ(ParseIso8601Micros("2026-11-20 15:04:05"), int64_t{1795187045000000});
  EXPECT_FALSE(ParseIso8601Micros("2026-13-20T15:04:05Z"));
  EXPECT_FALSE(ParseIso8601Micros("yesterday"));
  EXPECT_FALSE(ParseIso8601Micros("2026-11-20T15:04:05Zjunk"));
  EXPECT_EQ(FormatIso8601Micros(1795187045123000), "2026-11-20T15:04:05.123000Z");
}

TEST(Encoding, HexAndBase64) {
  EXPECT_EQ(HexEncode("\x01\xab"), "01ab");
  EXPECT_EQ(HexDecode("01AB"), std::string("\x01\xab"));
  EXPECT_FALSE(HexDecode("0"));
  EXPECT_FALSE(HexDecode("zz"));
  EXPECT_EQ(Base64Encode("hello"), "aGVsbG8=");
  EXPECT_EQ(Base64Decode("aGVsbG8="), std::string("hello"));
  EXPECT_EQ(Base64Decode("aGk="), std::string("hi"));
  EXPECT_FALSE(Base64Decode("a"));
  EXPECT_FALSE(Base64Decode("a*b="));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
}

TEST(Json, EscapesAndRepairs) {
  std::string out;
  AppendJsonString(&out, "a\"b\\c\n\x01 \xc3\xa9 \xff");
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\u0001 \xc3\xa9 \xEF\xBF\xBD\"");
  EXPECT_EQ(JsonObject().Str("a", "x").Int("b", -1).Bool("c", true).Null("d").Finish(),
            R"({"a":"x","b":-1,"c":true,"d":null})");
}

TEST(Json, ArraysOfStringsAndOfJsonTexts) {
  EXPECT_EQ(JsonArray().Finish(), "[]");
  EXPECT_EQ(JsonArray().Str("a\"").Str("b").Finish(), R"(["a\"","b"])");
  EXPECT_EQ(JsonArray().Raw(JsonObject().Int("n", 1).Finish()).Raw("2").Finish(), R"([{"n":1},2])");
}

TEST(Masking, HidesPersonalData) {
  EXPECT_EQ(MaskPhone("+12055550142"), "+12*******42");
  EXPECT_EQ(MaskEmail("john.deo@example.com"), "j***@example.com");
  EXPECT_EQ(MaskBody("STOP"), "<4 bytes>");
}

}  // namespace
}  // namespace dfm
