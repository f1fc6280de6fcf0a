// X-Hub-Signature-256 (connectors/common/webhook_source.h).
#include "connectors/common/webhook_source.h"
#include "util/crypto.h"

namespace dfm {

Status VerifyHubSignature(const InboundRequest& req, const HmacKey& key, DigestText text) {
  if (!req.HasHeader("x-hub-signature-256"))
    return Status::Unauthenticated("missing X-Hub-Signature-256 header");
  std::string_view v = req.Header("x-hub-signature-256");
  constexpr std::string_view kPrefix = "sha256=";
  const char* form = text == DigestText::kHex ? "sha256=<hex>" : "sha256=<base64>";
  if (v.substr(0, kPrefix.size()) != kPrefix)
    return Status::Unauthenticated(std::string("X-Hub-Signature-256 is not ") + form);
  v.remove_prefix(kPrefix.size());
  auto got = text == DigestText::kHex ? HexDecode(v) : Base64Decode(v);
  if (!got || !ConstantTimeEquals(*got, key.Mac(req.body)))
    return Status::Unauthenticated("X-Hub-Signature-256 does not match the body");
  return Status::OK();
}

}  // namespace dfm
