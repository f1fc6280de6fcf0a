#include "events/sealing.h"

#include "util/aead.h"
#include "util/coding.h"

namespace dfm {
namespace {

constexpr std::string_view kContactPrefix = "contact:";
constexpr std::string_view kSourcePrefix = "source:";
constexpr std::string_view kTaskPrefix = "campaign-tasks:";

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

void PutAad(const Event& e, std::string* aad) {
  PutLengthPrefixed(aad, e.tenant);
  PutLengthPrefixed(aad, e.stream);
  PutLengthPrefixed(aad, e.type);
  aad->append(e.id.AsBytes());
}

std::string Aad(const Event& e) {
  std::string aad;
  PutAad(e, &aad);
  return aad;
}

}  // namespace

SealKind SealKindFor(std::string_view stream, std::string_view type) {
  if (type == kContactErasedType) return SealKind::kClear;
  if (type == "webhook.received" || type == "contact.imported" || type == "replay.requested")
    return SealKind::kOwn;
  if (StartsWith(stream, kContactPrefix)) return SealKind::kContact;
  if (StartsWith(stream, kSourcePrefix)) return SealKind::kCause;
  if (StartsWith(stream, kTaskPrefix)) return SealKind::kTaskContact;
  return SealKind::kClear;
}

std::string_view ErasedContactOf(const Event& e) {
  if (e.type != kContactErasedType || !StartsWith(e.stream, kContactPrefix)) return {};
  return std::string_view(e.stream).substr(kContactPrefix.size());
}

std::string ContactKeyName(std::string_view tenant, std::string_view stream) {
  std::string k(tenant);
  k.push_back('\n');
  k.append(stream);
  return k;
}

std::string SealPayload(std::string_view key, uint64_t key_no, const Event& e,
                        std::string_view plaintext) {
  std::string out;
  PutFixed64BE(&out, key_no);
  out += AeadSeal(key, Aad(e), plaintext);
  return out;
}

std::optional<uint64_t> SealedKeyNo(std::string_view sealed) {
  uint64_t n = 0;
  if (!GetFixed64BE(&sealed, &n)) return std::nullopt;
  return n;
}

std::optional<std::string> OpenPayload(std::string_view key, const Event& e,
                                       std::string_view sealed) {
  if (sealed.size() < 8) return std::nullopt;
  return AeadOpen(key, Aad(e), sealed.substr(8));
}

bool OpenPayloadTo(std::string_view key, const Event& e, std::string_view sealed,
                   std::string* out) {
  out->clear();
  if (sealed.size() < 8) return false;
  thread_local std::string aad;  // kept: no allocation per event
  aad.clear();
  PutAad(e, &aad);
  return AeadOpenTo(key, aad, sealed.substr(8), out);
}

bool OpenPayloadInPlace(std::string_view key, Event* e) {
  thread_local std::string aad;  // kept: no allocation per event
  aad.clear();
  PutAad(*e, &aad);
  return AeadOpenInPlace(key, aad, &e->payload, 8);
}

}  // namespace dfm
