#include "campaigns/phone_zones.h"

#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace dfm {

namespace {

uint32_t Le(std::string_view b, size_t at, int bytes) {
  uint32_t v = 0;
  for (int k = bytes - 1; k >= 0; --k)
    v = (v << 8) | static_cast<unsigned char>(b[at + static_cast<size_t>(k)]);
  return v;
}

// Big-endian reads over block data, failing once past the end.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool ok() const { return ok_; }
  uint32_t U(int bytes) {
    if (!ok_ || b_.size() - at_ < static_cast<size_t>(bytes)) {
      ok_ = false;
      return 0;
    }
    uint32_t v = 0;
    for (int k = 0; k < bytes; ++k) v = (v << 8) | static_cast<unsigned char>(b_[at_++]);
    return v;
  }
  int32_t I32() { return static_cast<int32_t>(U(4)); }
  std::string Utf() {
    const uint32_t n = U(2);
    if (!ok_ || b_.size() - at_ < n) {
      ok_ = false;
      return {};
    }
    std::string s(b_.substr(at_, n));
    at_ += n;
    return s;
  }

 private:
  std::string_view b_;
  size_t at_ = 0;
  bool ok_ = true;
};

bool Count(int32_t n, int32_t max) { return n >= 0 && n <= max; }

}  // namespace

Status ReadZipEntry(std::string_view zip, std::string_view name, std::string* out) {
  if (zip.size() < 22) return Status::Corruption("not a zip archive");
  size_t eocd = std::string_view::npos;
  for (size_t at = zip.size() - 22 + 1; at-- > 0 && zip.size() - at <= 65557;) {
    if (zip.substr(at, 4) == std::string_view("PK\x05\x06", 4)) {
      eocd = at;
      break;
    }
  }
  if (eocd == std::string_view::npos)
    return Status::Corruption("not a zip archive (no end record)");
  const uint32_t entries = Le(zip, eocd + 10, 2), cd_size = Le(zip, eocd + 12, 4),
                 cd_at = Le(zip, eocd + 16, 4);
  if (static_cast<uint64_t>(cd_at) + cd_size > eocd)
    return Status::Corruption("zip: directory out of bounds");
  size_t at = cd_at;
  for (uint32_t k = 0; k < entries; ++k) {
    if (at + 46 > eocd || zip.substr(at, 4) != std::string_view("PK\x01\x02", 4))
      return Status::Corruption("zip: a malformed directory entry");
    const uint32_t method = Le(zip, at + 10, 2), packed = Le(zip, at + 20, 4),
                   size = Le(zip, at + 24, 4);
    const uint32_t name_len = Le(zip, at + 28, 2), extra = Le(zip, at + 30, 2),
                   comment = Le(zip, at + 32, 2);
    const uint32_t local = Le(zip, at + 42, 4);
    if (at + 46 + name_len > eocd) return Status::Corruption("zip: a name out of bounds");
    if (zip.substr(at + 46, name_len) == name) {
      if (static_cast<uint64_t>(local) + 30 > zip.size() ||
          zip.substr(local, 4) != std::string_view("PK\x03\x04", 4))
        return Status::Corruption("zip: a malformed local header");
      const uint64_t data =
          static_cast<uint64_t>(local) + 30 + Le(zip, local + 26, 2) + Le(zip, local + 28, 2);
      if (data + packed > zip.size() || size > (64u << 20))
        return Status::Corruption("zip: an entry out of bounds");
      if (method == 0) {
        out->assign(zip.substr(data, packed));
        return Status::OK();
      }
      if (method != 8) return Status::Corruption("zip: an entry compressed other than by deflate");
      out->assign(size, '\0');
      z_stream z{};
      if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return Status::Corruption("zip: inflate");
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(zip.data() + data));
      z.avail_in = packed;
      z.next_out = reinterpret_cast<Bytef*>(out->data());
      z.avail_out = size;
      const int r = inflate(&z, Z_FINISH);
      const uLong produced = z.total_out;
      inflateEnd(&z);
      if (r != Z_STREAM_END || produced != size)
        return Status::Corruption("zip: an entry does not inflate");
      return Status::OK();
    }
    at += 46 + name_len + extra + comment;
  }
  return Status::NotFound("zip: no entry " + std::string(name));
}

Status JavaBlockData(std::string_view s, std::string* out) {
  if (s.size() < 4 || static_cast<unsigned char>(s[0]) != 0xAC ||
      static_cast<unsigned char>(s[1]) != 0xED || s[2] != 0 || s[3] != 5)
    return Status::Corruption("not a Java object stream");
  out->clear();
  size_t at = 4;
  while (at < s.size()) {
    const auto tag = static_cast<unsigned char>(s[at]);
    size_t n = 0, head = 0;
    if (tag == 0x77 && at + 2 <= s.size()) {  // TC_BLOCKDATA
      n = static_cast<unsigned char>(s[at + 1]);
      head = 2;
    } else if (tag == 0x7A && at + 5 <= s.size()) {  // TC_BLOCKDATALONG
      n = (static_cast<size_t>(static_cast<unsigned char>(s[at + 1])) << 24) |
          (static_cast<size_t>(static_cast<unsigned char>(s[at + 2])) << 16) |
          (static_cast<size_t>(static_cast<unsigned char>(s[at + 3])) << 8) |
          static_cast<unsigned char>(s[at + 4]);
      head = 5;
    } else {
      return Status::Corruption("a Java object stream holding more than block data");
    }
    if (s.size() - at - head < n) return Status::Corruption("a Java object stream cut short");
    out->append(s.substr(at + head, n));
    at += head + n;
  }
  return Status::OK();
}

Status PhoneZones::FromMapData(std::string_view stream, std::unique_ptr<PhoneZones>* out) {
  std::string data;
  Status s = JavaBlockData(stream, &data);
  if (!s.ok()) return s;
  Reader r(data);
  auto z = std::unique_ptr<PhoneZones>(new PhoneZones());
  const bool flyweight = r.U(1) != 0;
  auto lengths = [&] {
    const int32_t n = r.I32();
    if (!Count(n, 32)) return false;
    for (int32_t k = 0; k < n; ++k) {
      const int32_t length = r.I32();
      if (length < 1 || length > 18) return false;  // digits of a prefix
      z->lengths_.push_back(length);
    }
    return true;
  };
  bool fine = true;
  if (flyweight) {
    const int32_t prefix_size = r.I32(), index_size = r.I32();
    fine =
        (prefix_size == 2 || prefix_size == 4) && (index_size == 2 || index_size == 4) && lengths();
    const int32_t pool = fine ? r.I32() : -1;
    fine = fine && Count(pool, 1 << 20);
    for (int32_t k = 0; fine && k < pool && r.ok(); ++k) z->pool_.push_back(r.Utf());
    const int32_t entries = fine ? r.I32() : -1;
    fine = fine && Count(entries, 1 << 22);
    for (int32_t k = 0; fine && k < entries && r.ok(); ++k) {
      z->prefixes_.push_back(r.U(prefix_size));
      z->descriptions_.push_back(r.U(index_size));
    }
  } else {
    const int32_t entries = r.I32();
    fine = Count(entries, 1 << 22);
    for (int32_t k = 0; fine && k < entries && r.ok(); ++k) {
      z->prefixes_.push_back(r.I32());
      z->descriptions_.push_back(static_cast<uint32_t>(k));
      z->pool_.push_back(r.Utf());
    }
    fine = fine && lengths();
  }
  if (!fine || !r.ok()) return Status::Corruption("a phone time zone map this does not read");
  for (size_t k = 0; k < z->prefixes_.size(); ++k) {
    if (z->descriptions_[k] >= z->pool_.size() || (k > 0 && z->prefixes_[k] <= z->prefixes_[k - 1]))
      return Status::Corruption("a phone time zone map out of order");
  }
  std::sort(z->lengths_.begin(), z->lengths_.end());
  *out = std::move(z);
  return Status::OK();
}

Status PhoneZones::Load(const std::string& jar_path, std::unique_ptr<PhoneZones>* out) {
  std::ifstream in(jar_path, std::ios::binary);
  if (!in) return Status::NotFound("no " + jar_path + " (Debian package libphonenumber8-java)");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  std::string map;
  Status s = ReadZipEntry(bytes.str(), kPhoneZonesEntry, &map);
  if (!s.ok()) return Status::Corruption(jar_path + ": " + s.ToString());
  return FromMapData(map, out);
}

std::vector<std::string> PhoneZones::ZonesFor(std::string_view digits) const {
  if (digits.empty() || digits.size() > 18 || prefixes_.empty() ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return {};
  size_t end = prefixes_.size();  // search [0, end)
  for (auto len = lengths_.rbegin(); len != lengths_.rend(); ++len) {
    const std::string_view head =
        digits.substr(0, std::min<size_t>(digits.size(), static_cast<size_t>(*len)));
    const int64_t prefix = std::stoll(std::string(head));
    const auto it = std::upper_bound(prefixes_.begin(),
                                     prefixes_.begin() + static_cast<std::ptrdiff_t>(end), prefix);
    if (it == prefixes_.begin()) return {};
    const size_t at = static_cast<size_t>(it - prefixes_.begin()) - 1;
    if (prefixes_[at] == prefix) {
      std::vector<std::string> zones;
      std::string_view all = pool_[descriptions_[at]];
      while (!all.empty()) {
        const size_t amp = all.find('&');
        zones.emplace_back(all.substr(0, amp));
        all = amp == std::string_view::npos ? std::string_view() : all.substr(amp + 1);
      }
      return zones;
    }
    end = at + 1;
  }
  return {};
}

}  // namespace dfm
