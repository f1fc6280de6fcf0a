// The status page's sign-in (docs/status-page.md): a viewer signs in with
// an API key once; the browser then holds a session cookie
//
//   dfm_session = key_id "." expires_unix_s "." hex(HMAC-SHA256(secret, key_id "." expires))
//
// signed with the data directory's session secret (session.key, made once,
// mode 0600). The cookie names the key, not its secret: a key revoked
// since ends its sessions, and a stolen cookie ends when it expires.
// Pure: time and the secret come in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dfm {

inline constexpr std::string_view kSessionCookie = "dfm_session";

std::string MakeSession(std::string_view secret, std::string_view key_id, int64_t expires_s);
// The key id of a well-signed, unexpired cookie value; nullopt otherwise.
std::optional<std::string> CheckSession(std::string_view secret, std::string_view value,
                                        int64_t now_s);
// The value of cookie `name` in a Cookie header ("a=1; b=2"); "" if absent.
std::string CookieValue(std::string_view header, std::string_view name);

}  // namespace dfm
