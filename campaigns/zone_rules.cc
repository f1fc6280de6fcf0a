#include "campaigns/zone_rules.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace dfm {

namespace {

constexpr int64_t kDay = 86400;

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int64_t y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// The civil year of the day `days` after 1970-01-01.
int64_t CivilYear(int64_t days) {
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  return yoe + era * 400 + (month <= 2 ? 1 : 0);
}

int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}

// The day (since the epoch) a rule's transition falls on in `year`.
int64_t RuleDay(const PosixZone::When& w, int64_t year) {
  const int64_t jan1 = DaysFromCivil(year, 1, 1);
  switch (w.kind) {
    case PosixZone::DayKind::kJulianNoLeap:
      return jan1 + w.day - 1 + (IsLeap(year) && w.day >= 60 ? 1 : 0);
    case PosixZone::DayKind::kZeroBased:
      return jan1 + w.day;
    case PosixZone::DayKind::kMonthWeekDay:
      break;
  }
  const int64_t first = DaysFromCivil(year, static_cast<unsigned>(w.month), 1);
  const int64_t weekday_of_first = ((first % 7) + 7 + 4) % 7;  // 1970-01-01 was a Thursday
  int64_t d = first + (w.weekday - weekday_of_first + 7) % 7 + 7 * (w.week - 1);
  while (d >= first + DaysInMonth(year, w.month)) d -= 7;  // week 5: the last one
  return d;
}

// A POSIX TZ string's pieces, read left to right.
class PosixReader {
 public:
  explicit PosixReader(std::string_view s) : s_(s) {}
  bool AtEnd() const { return i_ == s_.size(); }
  bool Eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  // A zone name: <...> or three or more letters.
  bool Name() {
    if (Eat('<')) {
      const size_t close = s_.find('>', i_);
      if (close == std::string_view::npos || close - i_ < 3) return false;
      i_ = close + 1;
      return true;
    }
    const size_t from = i_;
    while (i_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[i_]))) ++i_;
    return i_ - from >= 3;
  }
  bool NextIsNameOrEnd() const {
    return i_ == s_.size() || s_[i_] == '<' || std::isalpha(static_cast<unsigned char>(s_[i_]));
  }
  bool NextIs(char c) const { return i_ < s_.size() && s_[i_] == c; }
  // [+-]hh[:mm[:ss]], hours at most `max_hours`; in seconds.
  bool Duration(int max_hours, int32_t* out) {
    int sign = 1;
    if (Eat('-')) {
      sign = -1;
    } else {
      Eat('+');
    }
    int parts[3] = {0, 0, 0};
    for (int k = 0; k < 3; ++k) {
      if (k > 0 && !Eat(':')) break;
      int digits = 0, v = 0;
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_])) && digits < 3) {
        v = v * 10 + (s_[i_++] - '0');
        ++digits;
      }
      if (digits == 0 || (k > 0 && v > 59)) return false;
      parts[k] = v;
    }
    if (parts[0] > max_hours) return false;
    *out = sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]);
    return true;
  }
  bool Number(int lo, int hi, int* out) {
    int v = 0, digits = 0;
    while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_])) && digits < 3) {
      v = v * 10 + (s_[i_++] - '0');
      ++digits;
    }
    if (digits == 0 || v < lo || v > hi) return false;
    *out = v;
    return true;
  }
  // Mm.w.d | Jn | n, then [/time].
  bool Rule(PosixZone::When* w) {
    if (Eat('M')) {
      w->kind = PosixZone::DayKind::kMonthWeekDay;
      if (!Number(1, 12, &w->month) || !Eat('.') || !Number(1, 5, &w->week) || !Eat('.') ||
          !Number(0, 6, &w->weekday))
        return false;
    } else if (Eat('J')) {
      w->kind = PosixZone::DayKind::kJulianNoLeap;
      if (!Number(1, 365, &w->day)) return false;
    } else {
      w->kind = PosixZone::DayKind::kZeroBased;
      if (!Number(0, 365, &w->day)) return false;
    }
    w->time_s = 7200;
    return !Eat('/') || Duration(167, &w->time_s);
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

uint32_t Be32(std::string_view b, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(b[at])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(b[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(b[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 3]));
}

int64_t Be64(std::string_view b, size_t at) {
  return static_cast<int64_t>((static_cast<uint64_t>(Be32(b, at)) << 32) | Be32(b, at + 4));
}

}  // namespace

int64_t DaysFromCivil(int64_t year, unsigned month, unsigned day) {
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t yoe = year - era * 400;
  const int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool ParsePosixZone(std::string_view text, PosixZone* out) {
  PosixReader r(text);
  PosixZone z;
  int32_t west = 0;
  if (!r.Name() || !r.Duration(24, &west)) return false;
  z.std_offset_s = -west;
  if (r.AtEnd()) {
    *out = z;
    return true;
  }
  if (!r.Name()) return false;
  z.has_dst = true;
  z.dst_offset_s = z.std_offset_s + 3600;
  if (!r.AtEnd() && !r.NextIs(',')) {
    if (!r.Duration(24, &west)) return false;
    z.dst_offset_s = -west;
  }
  if (r.AtEnd()) {  // no rule: the United States' (as glibc)
    z.start = {PosixZone::DayKind::kMonthWeekDay, 3, 2, 0, 0, 7200};
    z.end = {PosixZone::DayKind::kMonthWeekDay, 11, 1, 0, 0, 7200};
    *out = z;
    return true;
  }
  if (!r.Eat(',') || !r.Rule(&z.start) || !r.Eat(',') || !r.Rule(&z.end) || !r.AtEnd())
    return false;
  *out = z;
  return true;
}

int32_t PosixZone::OffsetAt(int64_t unix_s) const {
  if (!has_dst) return std_offset_s;
  const int64_t year = CivilYear(FloorDiv(unix_s + std_offset_s, kDay));
  // The start is given in standard time, the end in daylight time.
  const int64_t into = RuleDay(start, year) * kDay + start.time_s - std_offset_s;
  const int64_t out_of = RuleDay(end, year) * kDay + end.time_s - dst_offset_s;
  const bool dst =
      into < out_of ? (unix_s >= into && unix_s < out_of) : !(unix_s >= out_of && unix_s < into);
  return dst ? dst_offset_s : std_offset_s;
}

Status ZoneRules::Parse(std::string_view b, std::string name,
                        std::shared_ptr<const ZoneRules>* out) {
  auto bad = [&name](const char* why) { return Status::Corruption("zone " + name + ": " + why); };
  if (b.size() < 44 || b.substr(0, 4) != "TZif") return bad("not a TZif file");
  const char version = b[4];
  size_t at = 0;
  int time_size = 4;
  for (int pass = 0; pass < 2; ++pass) {
    if (b.size() < at + 44 || b.substr(at, 4) != "TZif") return bad("a header is missing");
    const uint32_t isutcnt = Be32(b, at + 20), isstdcnt = Be32(b, at + 24),
                   leapcnt = Be32(b, at + 28), timecnt = Be32(b, at + 32),
                   typecnt = Be32(b, at + 36), charcnt = Be32(b, at + 40);
    if (typecnt == 0 || typecnt > 256 || timecnt > 100000 || leapcnt > 10000 || charcnt > 100000 ||
        isutcnt > typecnt || isstdcnt > typecnt)
      return bad("counts out of range");
    const size_t block = static_cast<size_t>(timecnt) * (time_size + 1) + typecnt * 6u + charcnt +
                         static_cast<size_t>(leapcnt) * (time_size + 4) + isstdcnt + isutcnt;
    const size_t data = at + 44;
    if (b.size() < data + block) return bad("truncated");
    if (pass == 0 && version >= '2') {  // the 64-bit block follows: read that one
      at = data + block;
      time_size = 8;
      continue;
    }
    auto rules = std::make_shared<ZoneRules>();
    rules->name_ = std::move(name);
    const size_t types_at = data + static_cast<size_t>(timecnt) * (time_size + 1);
    std::vector<int32_t> utoff(typecnt);
    for (uint32_t k = 0; k < typecnt; ++k)
      utoff[k] = static_cast<int32_t>(Be32(b, types_at + 6u * k));
    rules->initial_offset_ = utoff[0];
    for (uint32_t k = 0; k < timecnt; ++k) {
      const int64_t t = time_size == 8
                            ? Be64(b, data + 8u * k)
                            : static_cast<int64_t>(static_cast<int32_t>(Be32(b, data + 4u * k)));
      const auto type =
          static_cast<unsigned char>(b[data + static_cast<size_t>(timecnt) * time_size + k]);
      if (type >= typecnt) return bad("a transition names no type");
      if (!rules->transitions_.empty() && t <= rules->transitions_.back())
        return bad("transitions out of order");
      rules->transitions_.push_back(t);
      rules->offsets_.push_back(utoff[type]);
    }
    const size_t footer = data + block;
    if (time_size == 8 && footer < b.size()) {
      const size_t end = b.find('\n', footer + 1);
      if (b[footer] != '\n' || end == std::string_view::npos) return bad("a malformed footer");
      const std::string_view tz = b.substr(footer + 1, end - footer - 1);
      if (!tz.empty()) {
        if (!ParsePosixZone(tz, &rules->footer_)) return bad("a footer rule this does not read");
        rules->has_footer_ = true;
      }
    }
    *out = std::move(rules);
    return Status::OK();
  }
  return bad("unreachable");
}

std::shared_ptr<const ZoneRules> ZoneRules::Fixed(int32_t offset_s, std::string name) {
  auto rules = std::make_shared<ZoneRules>();
  rules->name_ = std::move(name);
  rules->initial_offset_ = offset_s;
  return rules;
}

int32_t ZoneRules::OffsetAt(int64_t unix_s) const {
  if (transitions_.empty() || unix_s < transitions_.front())
    return transitions_.empty() && has_footer_ ? footer_.OffsetAt(unix_s) : initial_offset_;
  if (unix_s >= transitions_.back() && has_footer_) return footer_.OffsetAt(unix_s);
  const auto it = std::upper_bound(transitions_.begin(), transitions_.end(), unix_s);
  return offsets_[static_cast<size_t>(it - transitions_.begin()) - 1];
}

Status LoadZone(const std::string& dir, const std::string& name,
                std::shared_ptr<const ZoneRules>* out) {
  const bool ok_chars =
      !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '+' ||
               c == '-';
      });
  if (!ok_chars || name.front() == '/' || name.find("..") != std::string::npos)
    return Status::InvalidArgument("not a time zone name: " + name);
  std::ifstream in(dir + "/" + name, std::ios::binary);
  if (!in) return Status::NotFound("no time zone " + name + " under " + dir);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return ZoneRules::Parse(bytes.str(), name, out);
}

}  // namespace dfm
