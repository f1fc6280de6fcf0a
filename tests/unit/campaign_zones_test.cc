// The recipient's local time for campaigns' quiet hours (campaigns/): the
// tz database's zone files and their POSIX rules, libphonenumber's time zone
// map as Debian ships it, and the window every zone of a number must be in.
#include <gtest/gtest.h>
#include <zlib.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "campaigns/phone_zones.h"
#include "campaigns/quiet_hours.h"
#include "campaigns/recipient_zones.h"
#include "campaigns/zone_rules.h"

namespace dfm {
namespace {

// Unix seconds of a UTC date and time.
int64_t Utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 +
         mi * 60 + s;
}

std::shared_ptr<const ZoneRules> Zone(const std::string& name) {
  std::shared_ptr<const ZoneRules> z;
  Status s = LoadZone(kZoneInfoDir, name, &z);
  EXPECT_TRUE(s.ok()) << s.ToString() << " (scripts/setup.sh installs tzdata)";
  return z;
}

// The campaign actor keeps raw pointers to the zones (ZoneChoice::Raw)
// past the choice: every caller must get the zone the cache keeps. Two
// threads loading a name at once each got their own copy, the loser's
// owned by its choice alone (freed under the actor's reads).
TEST(RecipientZonesTest, ThreadsLoadingOneZoneAtOnceGetTheOneItKeeps) {
  for (int round = 0; round < 100; ++round) {
    RecipientZones zones(nullptr);
    std::atomic<int> ready{0};
    std::vector<std::shared_ptr<const ZoneRules>> got(2);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < got.size(); ++i)
      threads.emplace_back([&, i] {
        ready++;
        while (ready.load() < static_cast<int>(got.size())) {
        }
        ASSERT_TRUE(zones.Zone("America/Chicago", &got[i]).ok());
      });
    for (auto& t : threads) t.join();
    std::shared_ptr<const ZoneRules> kept;
    ASSERT_TRUE(zones.Zone("America/Chicago", &kept).ok());
    for (const auto& z : got) ASSERT_EQ(z.get(), kept.get()) << "round " << round;
  }
}

TEST(PosixZone, ReadsTheRulesOfTheFootersAndTheirTransitions) {
  PosixZone ny;
  ASSERT_TRUE(ParsePosixZone("EST5EDT,M3.2.0,M11.1.0", &ny));
  EXPECT_EQ(ny.std_offset_s, -5 * 3600);
  EXPECT_EQ(ny.dst_offset_s, -4 * 3600);
  // 02:00 EST on the second Sunday of March 2026 (the 8th) is 07:00 UTC;
  // 02:00 EDT on the first Sunday of November (the 1st) is 06:00 UTC.
  EXPECT_EQ(ny.OffsetAt(Utc(2026, 3, 8, 6, 59, 59)), -5 * 3600);
  EXPECT_EQ(ny.OffsetAt(Utc(2026, 3, 8, 7)), -4 * 3600);
  EXPECT_EQ(ny.OffsetAt(Utc(2026, 11, 1, 5, 59, 59)), -4 * 3600);
  EXPECT_EQ(ny.OffsetAt(Utc(2026, 11, 1, 6)), -5 * 3600);

  PosixZone sydney;  // the southern hemisphere: daylight time across the new year
  ASSERT_TRUE(ParsePosixZone("AEST-10AEDT,M10.1.0,M4.1.0/3", &sydney));
  EXPECT_EQ(sydney.OffsetAt(Utc(2026, 1, 15)), 11 * 3600);
  EXPECT_EQ(sydney.OffsetAt(Utc(2026, 4, 4, 15, 59, 59)), 11 * 3600);  // 02:59:59 AEDT
  EXPECT_EQ(sydney.OffsetAt(Utc(2026, 4, 4, 16)), 10 * 3600);
  EXPECT_EQ(sydney.OffsetAt(Utc(2026, 10, 3, 16)), 11 * 3600);  // 02:00 AEST on the 4th

  PosixZone india, dublin, last;
  ASSERT_TRUE(ParsePosixZone("<+0530>-5:30", &india));
  EXPECT_EQ(india.OffsetAt(Utc(2026, 7, 1)), 19800);
  ASSERT_TRUE(ParsePosixZone("IST-1GMT0,M10.5.0,M3.5.0/1", &dublin));  // "daylight" time in winter
  EXPECT_EQ(dublin.OffsetAt(Utc(2026, 7, 1)), 3600);
  EXPECT_EQ(dublin.OffsetAt(Utc(2026, 1, 15)), 0);
  ASSERT_TRUE(
      ParsePosixZone("EET-2EEST,M3.5.0/3,M10.5.0/4", &last));  // week 5: the month's last Sunday
  EXPECT_EQ(last.OffsetAt(Utc(2026, 3, 29, 0, 59, 59)), 2 * 3600);
  EXPECT_EQ(last.OffsetAt(Utc(2026, 3, 29, 1)), 3 * 3600);

  PosixZone z;
  for (const char* bad : {"", "E5", "EST", "EST5EDT,M13.1.0,M11.1.0", "EST5EDT,M3.2.0",
                          "EST5EDT,M3.6.0,M11.1.0", "<+05>-5:99", "EST25"})
    EXPECT_FALSE(ParsePosixZone(bad, &z)) << bad;
}

TEST(ZoneRules, ReadsTheSystemsZoneFilesThroughTheirTransitionsAndPastThem) {
  auto ny = Zone("America/New_York");
  ASSERT_TRUE(ny);
  EXPECT_EQ(ny->OffsetAt(Utc(2026, 7, 1)), -4 * 3600);
  EXPECT_EQ(ny->OffsetAt(Utc(2026, 1, 15)), -5 * 3600);
  EXPECT_EQ(ny->OffsetAt(Utc(2091, 7, 1)), -4 * 3600);  // past the file's transitions: its rule
  EXPECT_EQ(ny->OffsetAt(Utc(1850, 1, 1)), -17762);     // before them: local mean time
  auto kolkata = Zone("Asia/Kolkata");
  ASSERT_TRUE(kolkata);
  EXPECT_EQ(kolkata->OffsetAt(Utc(2026, 7, 1)), 19800);
  auto lord_howe = Zone("Australia/Lord_Howe");  // half an hour of daylight time
  ASSERT_TRUE(lord_howe);
  EXPECT_EQ(lord_howe->OffsetAt(Utc(2026, 1, 15)), 11 * 3600);
  EXPECT_EQ(lord_howe->OffsetAt(Utc(2026, 7, 1)), 10 * 3600 + 1800);

  std::ifstream in(std::string(kZoneInfoDir) + "/America/New_York", std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  const std::string file = bytes.str();
  std::shared_ptr<const ZoneRules> z;
  EXPECT_TRUE(ZoneRules::Parse(file.substr(0, file.size() / 2), "cut", &z).IsCorruption());
  EXPECT_TRUE(
      ZoneRules::Parse("TZif2 and nothing else, really nothing at all", "junk", &z).IsCorruption());
  EXPECT_TRUE(LoadZone(kZoneInfoDir, "../../etc/passwd", &z).IsInvalidArgument());
  EXPECT_TRUE(LoadZone(kZoneInfoDir, "/etc/passwd", &z).IsInvalidArgument());
  EXPECT_TRUE(LoadZone(kZoneInfoDir, "Mars/Olympus_Mons", &z).IsNotFound());
}

TEST(QuietHours, AllowsOnlyWhenEveryZoneOfTheNumberIsInsideTheWindow) {
  QuietHours q;
  ASSERT_TRUE(ParseQuietHours("08:00-21:00", &q));
  EXPECT_EQ(FormatQuietHours(q), "08:00-21:00");
  auto ny = Zone("America/New_York"), la = Zone("America/Los_Angeles");
  ASSERT_TRUE(ny && la);
  const std::vector<const ZoneRules*> east{ny.get()}, both{ny.get(), la.get()};
  EXPECT_FALSE(AllowedAt(q, east, Utc(2026, 7, 1, 11, 59)));  // 07:59 EDT
  EXPECT_TRUE(AllowedAt(q, east, Utc(2026, 7, 1, 12)));
  EXPECT_FALSE(AllowedAt(q, east, Utc(2026, 7, 2, 1)));  // 21:00 EDT
  EXPECT_EQ(NextAllowed(q, east, Utc(2026, 7, 1, 11, 30)), Utc(2026, 7, 1, 12));
  EXPECT_EQ(NextAllowed(q, east, Utc(2026, 7, 2, 1, 30)), Utc(2026, 7, 2, 12));
  EXPECT_EQ(NextAllowed(q, east, Utc(2026, 7, 1, 13, 0, 20)), Utc(2026, 7, 1, 13, 1))
      << "a whole minute";
  // New York and Los Angeles both awake: 15:00 to 01:00 UTC in July.
  EXPECT_FALSE(AllowedAt(q, both, Utc(2026, 7, 1, 14, 59)));
  EXPECT_EQ(NextAllowed(q, both, Utc(2026, 7, 1, 12, 30)), Utc(2026, 7, 1, 15));
  // Across the change to daylight time: 08:00 EDT on March 8, 2026 is 12:00 UTC.
  EXPECT_EQ(NextAllowed(q, east, Utc(2026, 3, 8, 5)), Utc(2026, 3, 8, 12));
  // Windows that never meet: nobody is reached.
  auto kolkata = Zone("Asia/Kolkata");
  ASSERT_TRUE(ParseQuietHours("09:00-10:00", &q));
  EXPECT_EQ(NextAllowed(q, {kolkata.get(), la.get()}, Utc(2026, 7, 1)), std::nullopt);
  EXPECT_EQ(NextAllowed(q, {}, Utc(2026, 7, 1)), std::nullopt);
  EXPECT_FALSE(AllowedAt(q, {}, Utc(2026, 7, 1)));
  // A window across midnight.
  ASSERT_TRUE(ParseQuietHours("22:00-06:00", &q));
  EXPECT_TRUE(AllowedAt(q, east, Utc(2026, 7, 1, 3)));    // 23:00 EDT
  EXPECT_FALSE(AllowedAt(q, east, Utc(2026, 7, 1, 12)));  // 08:00 EDT
  EXPECT_EQ(NextAllowed(q, east, Utc(2026, 7, 1, 12)), Utc(2026, 7, 2, 2));

  for (const char* bad : {"8-21", "25:00-01:00", "08:00-08:00", "08:00", "08:0a-21:00", ""})
    EXPECT_FALSE(ParseQuietHours(bad, &q)) << bad;
}

// A Java object stream of `data` as block data, cut in blocks as Java does.
std::string JavaStream(const std::string& data) {
  std::string s("\xAC\xED\x00\x05", 4);
  for (size_t at = 0; at < data.size(); at += 1024) {
    const std::string part = data.substr(at, 1024);
    if (part.size() < 256) {
      s += '\x77';
      s += static_cast<char>(part.size());
    } else {
      s += '\x7A';
      for (int k = 3; k >= 0; --k) s += static_cast<char>((part.size() >> (8 * k)) & 0xFF);
    }
    s += part;
  }
  return s;
}

void Be(std::string* out, uint32_t v, int bytes) {
  for (int k = bytes - 1; k >= 0; --k) *out += static_cast<char>((v >> (8 * k)) & 0xFF);
}

void Utf(std::string* out, const std::string& s) {
  Be(out, static_cast<uint32_t>(s.size()), 2);
  *out += s;
}

// A flyweight map as PhonePrefixMap writes it: "1" (the country), 1205, 1212.
std::string SmallMap(uint32_t first_length = 1) {
  std::string d;
  d += '\x01';   // flyweight
  Be(&d, 4, 4);  // prefix size
  Be(&d, 2, 4);  // index size
  Be(&d, 2, 4);  // two lengths
  Be(&d, first_length, 4);
  Be(&d, 4, 4);
  Be(&d, 3, 4);  // the pool
  Utf(&d, "America/Chicago");
  Utf(&d, "America/New_York");
  Utf(&d, "America/New_York&America/Chicago&America/Denver&America/Los_Angeles");
  Be(&d, 3, 4);  // entries
  Be(&d, 1, 4);
  Be(&d, 2, 2);
  Be(&d, 1205, 4);
  Be(&d, 0, 2);
  Be(&d, 1212, 4);
  Be(&d, 1, 2);
  return JavaStream(d);
}

// A zip archive holding `data` deflated as `name`.
std::string Zip(const std::string& name, const std::string& data) {
  std::string packed(compressBound(data.size()) + 64, '\0');
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(packed.data());
  z.avail_out = static_cast<uInt>(packed.size());
  deflate(&z, Z_FINISH);
  packed.resize(z.total_out);
  deflateEnd(&z);
  auto le = [](std::string* out, uint32_t v, int bytes) {
    for (int k = 0; k < bytes; ++k) *out += static_cast<char>((v >> (8 * k)) & 0xFF);
  };
  std::string zip, dir;
  zip += std::string("PK\x03\x04", 4);
  le(&zip, 20, 2), le(&zip, 0, 2), le(&zip, 8, 2), le(&zip, 0, 4), le(&zip, 0, 4);
  le(&zip, static_cast<uint32_t>(packed.size()), 4),
      le(&zip, static_cast<uint32_t>(data.size()), 4);
  le(&zip, static_cast<uint32_t>(name.size()), 2), le(&zip, 0, 2);
  zip += name + packed;
  dir += std::string("PK\x01\x02", 4);
  le(&dir, 20, 2), le(&dir, 20, 2), le(&dir, 0, 2), le(&dir, 8, 2), le(&dir, 0, 4), le(&dir, 0, 4);
  le(&dir, static_cast<uint32_t>(packed.size()), 4),
      le(&dir, static_cast<uint32_t>(data.size()), 4);
  le(&dir, static_cast<uint32_t>(name.size()), 2), le(&dir, 0, 2), le(&dir, 0, 2), le(&dir, 0, 2);
  le(&dir, 0, 2), le(&dir, 0, 4), le(&dir, 0, 4);
  dir += name;
  const uint32_t dir_at = static_cast<uint32_t>(zip.size());
  zip += dir;
  zip += std::string("PK\x05\x06", 4);
  le(&zip, 0, 2), le(&zip, 0, 2), le(&zip, 1, 2), le(&zip, 1, 2);
  le(&zip, static_cast<uint32_t>(dir.size()), 4), le(&zip, dir_at, 4), le(&zip, 0, 2);
  return zip;
}

TEST(PhoneZones, LooksUpTheLongestPrefixAsLibphonenumbersMapperDoes) {
  std::string map;
  ASSERT_TRUE(ReadZipEntry(Zip(kPhoneZonesEntry, SmallMap()), kPhoneZonesEntry, &map).ok());
  std::unique_ptr<PhoneZones> zones;
  ASSERT_TRUE(PhoneZones::FromMapData(map, &zones).ok());
  EXPECT_EQ(zones->size(), 3u);
  EXPECT_EQ(zones->ZonesFor("12055550101"), std::vector<std::string>{"America/Chicago"});
  EXPECT_EQ(zones->ZonesFor("12125550101"), std::vector<std::string>{"America/New_York"});
  EXPECT_EQ(zones->ZonesFor("19995550101").size(), 4u) << "the country's zones";
  EXPECT_TRUE(zones->ZonesFor("442079460000").empty());
  EXPECT_TRUE(zones->ZonesFor("12a").empty());

  std::string data;
  EXPECT_TRUE(ReadZipEntry(Zip("other", "x"), kPhoneZonesEntry, &map).IsNotFound());
  EXPECT_TRUE(ReadZipEntry("PK not a zip", kPhoneZonesEntry, &map).IsCorruption());
  EXPECT_TRUE(JavaBlockData(std::string("\xAC\xED\x00\x05\x73", 5), &data).IsCorruption())
      << "an object";
  EXPECT_TRUE(PhoneZones::FromMapData(SmallMap(0), &zones).IsCorruption()) << "a prefix of no digits";
  const std::string cut = SmallMap().substr(0, 40);
  EXPECT_TRUE(PhoneZones::FromMapData(cut, &zones).IsCorruption());
}

TEST(PhoneZones, ReadsTheMapDebianShipsAndTheRecipientsZonesFollowIt) {
  std::unique_ptr<PhoneZones> loaded;
  Status s = PhoneZones::Load(kPhoneZonesJar, &loaded);
  ASSERT_TRUE(s.ok()) << s.ToString() << " (scripts/setup.sh installs libphonenumber8-java)";
  EXPECT_GT(loaded->size(), 1000u);
  RecipientZones who(std::move(loaded));
  EXPECT_EQ(who.PhoneZoneNames("+12055550101"),
            std::vector<std::string>{"America/Chicago"});  // Alabama
  EXPECT_EQ(who.PhoneZoneNames("+12125550101"), std::vector<std::string>{"America/New_York"});
  EXPECT_EQ(who.PhoneZoneNames("+442079460000"), std::vector<std::string>{"Europe/London"});
  EXPECT_TRUE(who.PhoneZoneNames("not a phone").empty());

  ZoneChoice c;
  ASSERT_TRUE(who.For("America/Denver", "+12125550101", "UTC", &c).ok());
  EXPECT_EQ(c.how, "contact field");
  EXPECT_EQ(c.zones.at(0)->name(), "America/Denver");
  ASSERT_TRUE(who.For("", "+12125550101", "UTC", &c).ok());
  EXPECT_EQ(c.how, "phone number");
  EXPECT_EQ(c.zones.at(0)->name(), "America/New_York");
  ASSERT_TRUE(who.For("Nowhere/Special", "", "+05:30", &c).ok());
  EXPECT_EQ(c.how, "tenant default");
  EXPECT_EQ(c.zones.at(0)->OffsetAt(Utc(2026, 7, 1)), 19800);
  EXPECT_TRUE(who.For("", "", "Nowhere/Special", &c).IsInvalidArgument());

  int32_t off = 0;
  EXPECT_TRUE(ParseFixedOffset("UTC", &off) && off == 0);
  EXPECT_TRUE(ParseFixedOffset("UTC-3", &off) && off == -10800);
  EXPECT_TRUE(ParseFixedOffset("+05:30", &off) && off == 19800);
  EXPECT_FALSE(ParseFixedOffset("+15", &off));
  EXPECT_FALSE(ParseFixedOffset("5", &off));
  EXPECT_FALSE(ParseFixedOffset("", &off)) << "no zone named: not UTC";
}

}  // namespace
}  // namespace dfm
