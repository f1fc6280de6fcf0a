// The per-event hashes: SHA-256 (the log's hash chain) and HMAC (webhook
// signatures), on OpenSSL's fixed-size SHA contexts (openssl/sha.h). They
// are deprecated in OpenSSL 3 in favour of EVP but kept, and run the same
// SHA-NI/AVX code; a context is a plain struct, so HMAC's prepared pad
// states are copied per MAC instead of an EVP context being fetched or
// duplicated (allocated) per call. The deprecation switch below is why
// this file holds nothing else.
#define OPENSSL_SUPPRESS_DEPRECATED

#include "util/crypto.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cstring>

namespace dfm {

Sha256Digest Sha256(std::string_view data) {
  // Not the one-shot SHA256(): OpenSSL 3 implements that over EVP.
  Sha256Digest out{};
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, data.data(), data.size());
  SHA256_Final(out.data(), &c);
  return out;
}

// --- HmacKey ---------------------------------------------------------------

namespace {

// One of OpenSSL's fixed-size hashes, by its context and functions. The two
// HMAC is used with here (SHA-1, SHA-256) both have 64-byte blocks.
template <typename C, int (*InitFn)(C*), int (*UpdateFn)(C*, const void*, size_t),
          int (*FinalFn)(unsigned char*, C*), size_t kDigest>
struct Hash {
  using Ctx = C;
  static constexpr size_t kSize = kDigest;
  static void Init(Ctx* c) { InitFn(c); }
  static void Update(Ctx* c, const void* d, size_t n) { UpdateFn(c, d, n); }
  static void Final(unsigned char* out, Ctx* c) { FinalFn(out, c); }
};
using Sha1Hash = Hash<SHA_CTX, SHA1_Init, SHA1_Update, SHA1_Final, SHA_DIGEST_LENGTH>;
using Sha256Hash = Hash<SHA256_CTX, SHA256_Init, SHA256_Update, SHA256_Final, SHA256_DIGEST_LENGTH>;
constexpr size_t kHmacBlock = 64;

// RFC 2104: the key (hashed first if longer than a block) padded to a block
// and XORed with 0x36 (inner) and 0x5c (outer), each hashed once here.
template <typename H>
void PrepareHmac(std::string_view key, typename H::Ctx* inner, typename H::Ctx* outer) {
  unsigned char block[kHmacBlock] = {};
  if (key.size() > kHmacBlock) {
    typename H::Ctx c;
    H::Init(&c);
    H::Update(&c, key.data(), key.size());
    H::Final(block, &c);
    OPENSSL_cleanse(&c, sizeof(c));
  } else if (!key.empty()) {
    std::memcpy(block, key.data(), key.size());
  }
  unsigned char pad[kHmacBlock];
  for (size_t i = 0; i < kHmacBlock; ++i) pad[i] = block[i] ^ 0x36;
  H::Init(inner);
  H::Update(inner, pad, kHmacBlock);
  for (size_t i = 0; i < kHmacBlock; ++i) pad[i] = block[i] ^ 0x5c;
  H::Init(outer);
  H::Update(outer, pad, kHmacBlock);
  OPENSSL_cleanse(block, sizeof(block));
  OPENSSL_cleanse(pad, sizeof(pad));
}

template <typename H>
std::string RunHmac(const typename H::Ctx& inner, const typename H::Ctx& outer,
                    const std::string_view* parts, size_t n) {
  typename H::Ctx c = inner;
  for (size_t i = 0; i < n; ++i) H::Update(&c, parts[i].data(), parts[i].size());
  unsigned char d[H::kSize];
  H::Final(d, &c);
  c = outer;
  H::Update(&c, d, H::kSize);
  H::Final(d, &c);
  OPENSSL_cleanse(&c, sizeof(c));
  return std::string(reinterpret_cast<const char*>(d), H::kSize);
}

}  // namespace

struct HmacKey::Pads {
  Digest digest;
  SHA_CTX inner1, outer1;
  SHA256_CTX inner256, outer256;
};

HmacKey::HmacKey(Digest digest, std::string_view key) : pads_(std::make_unique<Pads>()) {
  pads_->digest = digest;
  if (digest == Digest::kSha1) {
    PrepareHmac<Sha1Hash>(key, &pads_->inner1, &pads_->outer1);
  } else {
    PrepareHmac<Sha256Hash>(key, &pads_->inner256, &pads_->outer256);
  }
}

HmacKey::~HmacKey() { OPENSSL_cleanse(pads_.get(), sizeof(Pads)); }

std::string HmacKey::MacOf(const std::string_view* parts, size_t n) const {
  const Pads& p = *pads_;
  return p.digest == Digest::kSha1 ? RunHmac<Sha1Hash>(p.inner1, p.outer1, parts, n)
                                   : RunHmac<Sha256Hash>(p.inner256, p.outer256, parts, n);
}

std::string HmacKey::Mac(std::string_view data) const { return MacOf(&data, 1); }

std::string HmacKey::MacOfParts(const std::vector<std::string_view>& parts) const {
  return MacOf(parts.data(), parts.size());
}

}  // namespace dfm
