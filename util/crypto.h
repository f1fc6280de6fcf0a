// Cryptographic helpers over OpenSSL 3: digests, HMACs, public-key signature
// checks, and the encodings vendors use for them.
//
// Thread-safety: free functions are thread-safe. A HmacKey may be shared by
// any number of threads after construction (each call copies the prepared
// hash states onto its own stack).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace dfm {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest Sha256(std::string_view data);

std::string HexEncode(std::string_view bytes);  // lower case
std::string HexEncode(const Sha256Digest& digest);
// Accepts upper or lower case; nullopt on odd length or a non-hex digit.
std::optional<std::string> HexDecode(std::string_view hex);
std::string Base64Encode(std::string_view bytes);
// Standard alphabet with padding; nullopt on malformed input.
std::optional<std::string> Base64Decode(std::string_view b64);

// Compares in time that depends only on the lengths, never on the contents.
bool ConstantTimeEquals(std::string_view a, std::string_view b);
// Zeroes `n` bytes at `p` so that the compiler cannot drop it: for a
// secret (a key, a plaintext) about to be dropped or reused.
void Wipe(void* p, size_t n);

// A prepared HMAC key (SHA-1 or SHA-256): the hash states after the key's
// inner and outer pad blocks (RFC 2104), computed once. A MAC then costs
// the hashing of its data and one more block, with no hash context to
// allocate (only the returned string); the webhook sources compute one per
// request.
class HmacKey {
 public:
  enum class Digest { kSha1, kSha256 };
  HmacKey(Digest digest, std::string_view key);
  ~HmacKey();  // wipes the prepared states
  HmacKey(const HmacKey&) = delete;
  HmacKey& operator=(const HmacKey&) = delete;

  // Raw MAC bytes of `data`, or of the concatenation of `parts`.
  std::string Mac(std::string_view data) const;
  std::string MacOfParts(const std::vector<std::string_view>& parts) const;

 private:
  struct Pads;
  std::string MacOf(const std::string_view* parts, size_t n) const;
  std::unique_ptr<Pads> pads_;
};

// A public key read from PEM (SubjectPublicKeyInfo, "-----BEGIN PUBLIC KEY-----").
class PublicKey {
 public:
  static std::unique_ptr<PublicKey> FromPem(std::string_view pem, std::string* error);
  // An Ed25519 key from its 32 raw bytes (RFC 8032); null for another length.
  static std::unique_ptr<PublicKey> FromRawEd25519(std::string_view raw);
  ~PublicKey();

  bool IsEd25519() const;
  bool IsRsa() const;
  // Ed25519 signature over `message`.
  bool VerifyEd25519(std::string_view message, std::string_view signature) const;
  // RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
  bool VerifyRsaSha256(std::string_view message, std::string_view signature) const;

 private:
  explicit PublicKey(void* pkey) : pkey_(pkey) {}
  void* pkey_;  // EVP_PKEY*
};

// Private keys, used by tests, the sandbox servers and benchmarks to sign as
// a vendor would.
class PrivateKey {
 public:
  static std::unique_ptr<PrivateKey> GenerateEd25519();
  static std::unique_ptr<PrivateKey> GenerateRsa(int bits);
  ~PrivateKey();
  std::string PublicPem() const;
  std::string PrivatePem() const;
  static std::unique_ptr<PrivateKey> FromPem(std::string_view pem);
  // Ed25519 or RSA-SHA256 PKCS#1 v1.5, depending on the key.
  std::string Sign(std::string_view message) const;

 private:
  explicit PrivateKey(void* pkey) : pkey_(pkey) {}
  void* pkey_;
};

// Fills `out` with cryptographically strong random bytes.
void RandomBytes(uint8_t* out, size_t n);
// `bytes` such bytes as lower-case hex (2 * bytes characters).
std::string RandomHex(size_t bytes);

}  // namespace dfm
