#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "util/clock.h"
#include "util/crypto.h"
#include "util/huge_pages.h"
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
  // Days past their month's end (2028 is a leap year, 2100 is not).
  EXPECT_FALSE(ParseIso8601Micros("2026-02-31T09:00:00Z"));
  EXPECT_FALSE(ParseIso8601Micros("2026-04-31T09:00:00Z"));
  EXPECT_FALSE(ParseIso8601Micros("2026-02-29T09:00:00Z"));
  EXPECT_FALSE(ParseIso8601Micros("2100-02-29T09:00:00Z"));
  EXPECT_TRUE(ParseIso8601Micros("2028-02-29T09:00:00Z"));
  EXPECT_TRUE(ParseIso8601Micros("2000-02-29T09:00:00Z"));
  EXPECT_TRUE(ParseIso8601Micros("2026-12-31T23:59:59Z"));
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

TEST(Encoding, HexDecodeTakesEveryDigitOfBothCasesAndNothingElse) {
  for (int c = 0; c < 256; ++c) {
    std::string text = {'0', static_cast<char>(c)};
    bool digit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    EXPECT_EQ(HexDecode(text).has_value(), digit) << c;
  }
  EXPECT_EQ(HexDecode("00ff7fFE"), std::string("\x00\xff\x7f\xfe", 4));
  EXPECT_EQ(HexDecode(""), std::string());
}

// Known answers: RFC 4231 (HMAC-SHA256) and RFC 2202 (HMAC-SHA1) cases 1
// and 6 (a key longer than a block is hashed first), a key of exactly one
// block and an empty key (Python's hmac module), and FIPS 180-2 for SHA-256.
TEST(Hmac, KnownAnswers) {
  auto mac = [](HmacKey::Digest d, const std::string& key, std::string_view data) {
    return HexEncode(HmacKey(d, key).Mac(data));
  };
  const auto k256 = HmacKey::Digest::kSha256;
  const auto k1 = HmacKey::Digest::kSha1;
  const std::string large = "Test Using Larger Than Block-Size Key - Hash Key First";
  EXPECT_EQ(mac(k256, std::string(20, '\x0b'), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(mac(k256, std::string(131, '\xaa'), large),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_EQ(mac(k1, std::string(20, '\x0b'), "Hi There"),
            "b617318655057264e28bc0b6fb378c8ef146be00");
  EXPECT_EQ(mac(k1, std::string(80, '\xaa'), large), "aa4ae5e15272d00e95705637ce8a3b55ed402112");
  EXPECT_EQ(mac(k256, std::string(64, 'k'), "exactly one block key"),
            "e73e6474ed2f863bbf5500617c3b577e141d3c1543e1563f3630b762d038f14c");
  EXPECT_EQ(mac(k1, std::string(64, 'k'), "exactly one block key"),
            "1a107a9c53e5d5f87756a45cd8f1eba498d560c3");
  EXPECT_EQ(mac(k256, "", ""), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  EXPECT_EQ(HexEncode(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Hmac, OneKeyGivesTheSameMacEveryTimeAndPartsMacLikeTheirConcatenation) {
  HmacKey key(HmacKey::Digest::kSha256, "secret");
  std::string once = key.Mac("https://example.test/hookFromA");
  EXPECT_EQ(key.Mac("https://example.test/hookFromA"), once);  // the prepared state is unchanged
  EXPECT_EQ(key.MacOfParts({"https://example.test/hook", "From", "A"}), once);
  EXPECT_EQ(key.MacOfParts({}), key.Mac(""));
  EXPECT_NE(key.Mac("https://example.test/hookFromB"), once);
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
  EXPECT_EQ(MaskDigitRuns("p:16505551234:marketing_messages:stop:42"),
            "p:16*******34:marketing_messages:stop:42");
  EXPECT_EQ(MaskDigitRuns("g-123456"), "g-123456") << "short runs kept: not a phone";
}

// A caller's text could close a quoted log value and forge fields of its
// own ("detail=\"x\" status=200"), or a line of its own.
TEST(Logging, CallerTextStaysInsideItsQuotedValue) {
  EXPECT_EQ(LogText("text/plain\" forged=\"1"), "text/plain\\\" forged=\\\"1");
  EXPECT_EQ(LogText("a\nb\rc\\d"), "a\\x0ab\\x0dc\\\\d");
  EXPECT_EQ(LogText("caf\xc3\xa9"), "caf\\xc3\\xa9");
  EXPECT_EQ(LogText(std::string(300, 'x'), 10), "xxxxxxxxxx...");
  EXPECT_EQ(LogText("/webhooks/verity"), "/webhooks/verity");
}

// The mapping holding `p`, from /proc/self/smaps: its bounds and its
// VmFlags line (all empty when none holds it).
struct Mapping {
  uintptr_t lo = 0, hi = 0;
  std::string flags;
};
Mapping MappingOf(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto at = reinterpret_cast<uintptr_t>(p);
  Mapping m;
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find('-') < 17) {
      inside = lo <= at && at < hi;
      if (inside) {
        m.lo = lo;
        m.hi = hi;
      }
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      m.flags = line;
      return m;
    }
  }
  return Mapping{};
}

bool Advised(const Mapping& m) { return m.flags.find(" hg") != std::string::npos; }

TEST(HugePages, BigPiecesAreAlignedAndAdvisedSmallOnesAreOrdinary) {
  // Without transparent huge pages madvise refuses the advice: the
  // memory is there all the same, on small pages.
  const bool thp = static_cast<bool>(std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled"));
  const size_t big = kMinHugePiece + 12345;  // not a whole number of huge pages
  const size_t mapped = (big + 4095) / 4096 * 4096;
  auto* p = static_cast<char*>(AllocateMaybeHuge(big));
  const auto at = reinterpret_cast<uintptr_t>(p);
  EXPECT_EQ(at % kHugePageBytes, 0u);
  const Mapping m = MappingOf(p);
  if (thp) {
    EXPECT_TRUE(Advised(m)) << m.flags;
    // Advised apart, the mapping is exactly the piece: the slack before
    // and after it was given back.
    EXPECT_EQ(m.lo, at);
    EXPECT_EQ(m.hi, at + mapped);
  }
  std::memset(p, 0x5a, big);  // every byte is there
  EXPECT_EQ(p[big - 1], 0x5a);
  FreeMaybeHuge(p, big);
  const Mapping gone = MappingOf(p);
  EXPECT_FALSE(Advised(gone) && gone.lo == at && gone.hi == at + mapped) << "still mapped";

  // Below the cut (a live batch's items): the ordinary heap, not advised
  // (unless glibc is told to advise its own: GLIBC_TUNABLES).
  auto* small = static_cast<char*>(AllocateMaybeHuge(kMinHugePiece - 1));
  std::memset(small, 1, kMinHugePiece - 1);
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (!tunables || !std::strstr(tunables, "hugetlb")) {
    EXPECT_FALSE(Advised(MappingOf(small)));
  }
  FreeMaybeHuge(small, kMinHugePiece - 1);
}

TEST(HugePages, AVectorKeepsItsElementsAsItGrowsOntoHugePages) {
  std::vector<uint64_t, HugePageAllocator<uint64_t>> v;
  for (uint64_t i = 0; i < 1000000; ++i) v.push_back(i * 7);  // 8 MB: past the cut
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kHugePageBytes, 0u);
  for (uint64_t i = 0; i < v.size(); i += 9973) ASSERT_EQ(v[i], i * 7);
  v.clear();
  v.shrink_to_fit();
  EXPECT_EQ(v.capacity(), 0u);
}

}  // namespace
}  // namespace dfm
