// PhoneZones: the time zones a phone number may be in, from libphonenumber's
// time zone map (its Java PhoneNumberToTimeZonesMapper's data: the C++
// library has no such mapper). Debian ships the map in libphonenumber8-java's
// geocoder.jar (com/google/i18n/phonenumbers/timezones/data/map_data), so
// this reads it from there: the jar is a zip (the entry deflated), the map a
// Java object stream of a PrefixTimeZonesMap.
//
// Map format (what PhonePrefixMap.writeExternal writes, in the stream's
// block data; big-endian):
//   map      = flyweight:u8 (1: FlyweightMapStorage; 0: DefaultMapStorage)
//              storage
//   flyweight storage = prefix_size:i32 (2 or 4) index_size:i32 (2 or 4)
//              lengths:i32 length:i32{lengths}
//              pool_size:i32 utf{pool_size}
//              entries:i32 (prefix:prefix_size index:index_size){entries}
//   default storage = entries:i32 (prefix:i32 utf){entries}
//              lengths:i32 length:i32{lengths}
//   utf      = u16 length, then modified UTF-8 (ASCII here)
// A description is zone names joined by '&' ("America/New_York&...").
//
// Lookup (as PhonePrefixMap.lookup): the longest prefix of the number's
// digits (country code, then the national number) that the map holds.
//
// Pure but for Load. Thread-safety: immutable once made.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace dfm {

inline constexpr char kPhoneZonesJar[] = "/usr/share/java/geocoder.jar";
inline constexpr char kPhoneZonesEntry[] = "com/google/i18n/phonenumbers/timezones/data/map_data";

class PhoneZones {
 public:
  // From the map's bytes (the object stream); Corruption when malformed.
  static Status FromMapData(std::string_view stream, std::unique_ptr<PhoneZones>* out);
  // Reads kPhoneZonesEntry of the jar at `jar_path`.
  static Status Load(const std::string& jar_path, std::unique_ptr<PhoneZones>* out);

  // The zones for `digits` (country code and national number, no '+'), or
  // none when no prefix of it is mapped.
  std::vector<std::string> ZonesFor(std::string_view digits) const;
  size_t size() const { return prefixes_.size(); }

 private:
  std::vector<int64_t> prefixes_;       // sorted
  std::vector<uint32_t> descriptions_;  // index into pool_, per prefix
  std::vector<std::string> pool_;
  std::vector<int> lengths_;  // the prefixes' digit counts, ascending
};

// The bytes of the entry `name` of the zip archive `zip` (stored or
// deflated); NotFound when it has none.
Status ReadZipEntry(std::string_view zip, std::string_view name, std::string* out);
// The block data of a Java object stream (its primitive writes, in order);
// Corruption when it holds anything else.
Status JavaBlockData(std::string_view stream, std::string* out);

}  // namespace dfm
