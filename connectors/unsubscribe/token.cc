// Unsubscribe tokens (email.h has the grammar).
#include <cctype>
#include <cstdlib>

#include "connectors/common/webhook_source.h"
#include "connectors/unsubscribe/unsubscribe.h"
#include "sync/normalize.h"
#include "util/aead.h"
#include "util/crypto.h"

namespace dfm {
namespace {

constexpr char kVersion = '\x01';
constexpr size_t kCampaignMax = 64;

std::string TokenKey(std::string_view secret) {
  HmacKey k(HmacKey::Digest::kSha256, secret);
  return k.Mac("dfm unsubscribe token v1");
}

bool CampaignOk(std::string_view c) {
  if (c.size() > kCampaignMax) return false;
  for (unsigned char ch : c)
    if (!std::isalnum(ch) && ch != '.' && ch != '_' && ch != ':' && ch != '-') return false;
  return true;
}

}  // namespace

Status MintUnsubscribeToken(std::string_view secret, const UnsubscribeLink& link, std::string* token) {
  auto address = Normalizer::Email(link.address);
  if (!address) return Status::InvalidArgument("not an email address");
  if (!CampaignOk(link.campaign))
    return Status::InvalidArgument("campaign must be at most 64 of A-Z a-z 0-9 . _ : -");
  const std::string plain = std::to_string(link.issued_s) + "\n" + *address + "\n" + link.campaign;
  const std::string aad(1, kVersion);
  *token = Base64UrlEncode(aad + AeadSeal(TokenKey(secret), aad, plain));
  return Status::OK();
}

Status ReadUnsubscribeToken(std::string_view secret, std::string_view token, UnsubscribeLink* link) {
  const Status bad = Status::Unauthenticated("not a valid unsubscribe link");
  auto raw = Base64UrlDecode(token);
  if (!raw || raw->empty() || (*raw)[0] != kVersion) return bad;
  const std::string aad(1, kVersion);
  auto plain = AeadOpen(TokenKey(secret), aad, std::string_view(*raw).substr(1));
  if (!plain) return bad;
  const size_t a = plain->find('\n');
  const size_t b = a == std::string::npos ? a : plain->find('\n', a + 1);
  if (b == std::string::npos) return bad;
  link->issued_s = std::strtoll(plain->substr(0, a).c_str(), nullptr, 10);
  link->address = plain->substr(a + 1, b - a - 1);
  link->campaign = plain->substr(b + 1);
  return Status::OK();
}

std::string UnsubscribeTokenId(std::string_view token) {
  const Sha256Digest d = Sha256(token);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(d.data()), 16));
}

std::string TokenInTarget(std::string_view target) {
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return "";
  auto params = ParseForm(target.substr(q + 1));
  if (!params) return "";
  for (const auto& [k, v] : *params)
    if (k == "u") return v;
  return "";
}

std::string MaskAddress(std::string_view address) {
  const size_t at = address.find('@');
  if (at == std::string_view::npos || at == 0) return "•••";
  return std::string(address.substr(0, 1)) + "•••" + std::string(address.substr(at));
}

}  // namespace dfm
