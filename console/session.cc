#include "console/session.h"

#include <cstdlib>

#include "util/crypto.h"
#include "util/strings.h"

namespace dfm {

namespace {

std::string Sign(std::string_view secret, std::string_view what) {
  HmacKey key(HmacKey::Digest::kSha256, secret);
  return HexEncode(key.Mac(what));
}

}  // namespace

std::string MakeSession(std::string_view secret, std::string_view key_id, int64_t expires_s) {
  std::string what = std::string(key_id) + "." + std::to_string(expires_s);
  return what + "." + Sign(secret, what);
}

std::optional<std::string> CheckSession(std::string_view secret, std::string_view value,
                                        int64_t now_s) {
  const size_t a = value.find('.');
  const size_t b = a == std::string_view::npos ? a : value.find('.', a + 1);
  if (b == std::string_view::npos || a == 0) return std::nullopt;
  std::string_view id = value.substr(0, a), expires = value.substr(a + 1, b - a - 1),
                   mac = value.substr(b + 1);
  if (expires.empty() || expires.size() > 12) return std::nullopt;
  for (char c : expires)
    if (c < '0' || c > '9') return std::nullopt;
  if (!ConstantTimeEquals(Sign(secret, value.substr(0, b)), mac)) return std::nullopt;
  if (std::strtoll(std::string(expires).c_str(), nullptr, 10) <= now_s) return std::nullopt;
  return std::string(id);
}

std::string CookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    size_t end = header.find(';');
    std::string_view part = TrimSpace(header.substr(0, end));
    size_t eq = part.find('=');
    if (eq != std::string_view::npos && TrimSpace(part.substr(0, eq)) == name)
      return std::string(TrimSpace(part.substr(eq + 1)));
    if (end == std::string_view::npos) break;
    header.remove_prefix(end + 1);
  }
  return "";
}

}  // namespace dfm
