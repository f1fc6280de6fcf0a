#include "util/crypto.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <stdexcept>

namespace dfm {

std::string HexEncode(const Sha256Digest& digest) {
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

std::string HexEncode(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.resize(bytes.size() * 2);
  for (size_t i = 0; i < bytes.size(); ++i) {
    auto b = static_cast<uint8_t>(bytes[i]);
    out[2 * i] = kDigits[b >> 4];
    out[2 * i + 1] = kDigits[b & 0xF];
  }
  return out;
}

namespace {

// kHexValue[c]: the value of hex digit c, or 0xFF.
struct HexTable {
  uint8_t v[256];
  constexpr HexTable() : v() {
    for (int c = 0; c < 256; ++c) v[c] = 0xFF;
    for (int c = 0; c < 10; ++c) v['0' + c] = static_cast<uint8_t>(c);
    for (int c = 0; c < 6; ++c) {
      v['a' + c] = static_cast<uint8_t>(10 + c);
      v['A' + c] = static_cast<uint8_t>(10 + c);
    }
  }
};
constexpr HexTable kHexValue;

}  // namespace

std::optional<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    uint8_t hi = kHexValue.v[static_cast<uint8_t>(hex[2 * i])];
    uint8_t lo = kHexValue.v[static_cast<uint8_t>(hex[2 * i + 1])];
    if ((hi | lo) == 0xFF) return std::nullopt;
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> Base64Decode(std::string_view b64) {
  if (b64.size() % 4 != 0) return std::nullopt;
  for (char c : b64) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '=';
    if (!ok) return std::nullopt;
  }
  std::string out(3 * b64.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  if (n < 0) return std::nullopt;
  size_t pad = 0;
  if (!b64.empty() && b64.back() == '=') ++pad;
  if (b64.size() > 1 && b64[b64.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

void Wipe(void* p, size_t n) {
  if (n > 0) OPENSSL_cleanse(p, n);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// --- PublicKey / PrivateKey --------------------------------------------------

std::unique_ptr<PublicKey> PublicKey::FromRawEd25519(std::string_view raw) {
  if (raw.size() != 32) return nullptr;
  EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  if (pkey == nullptr) return nullptr;
  return std::unique_ptr<PublicKey>(new PublicKey(pkey));
}

std::unique_ptr<PublicKey> PublicKey::FromPem(std::string_view pem, std::string* error) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* pkey = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (pkey == nullptr) {
    if (error) *error = "not a PEM public key (expected -----BEGIN PUBLIC KEY-----)";
    return nullptr;
  }
  return std::unique_ptr<PublicKey>(new PublicKey(pkey));
}

PublicKey::~PublicKey() { EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_)); }

bool PublicKey::IsEd25519() const {
  return EVP_PKEY_get_id(static_cast<EVP_PKEY*>(pkey_)) == EVP_PKEY_ED25519;
}
bool PublicKey::IsRsa() const {
  return EVP_PKEY_get_id(static_cast<EVP_PKEY*>(pkey_)) == EVP_PKEY_RSA;
}

bool PublicKey::VerifyEd25519(std::string_view message, std::string_view signature) const {
  if (!IsEd25519()) return false;
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(md, nullptr, nullptr, nullptr, static_cast<EVP_PKEY*>(pkey_)) ==
                1 &&
            EVP_DigestVerify(md, reinterpret_cast<const unsigned char*>(signature.data()),
                             signature.size(),
                             reinterpret_cast<const unsigned char*>(message.data()),
                             message.size()) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

bool PublicKey::VerifyRsaSha256(std::string_view message, std::string_view signature) const {
  if (!IsRsa()) return false;
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  bool ok = EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), nullptr,
                                 static_cast<EVP_PKEY*>(pkey_)) == 1 &&
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1 &&
            EVP_DigestVerify(md, reinterpret_cast<const unsigned char*>(signature.data()),
                             signature.size(),
                             reinterpret_cast<const unsigned char*>(message.data()),
                             message.size()) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

std::unique_ptr<PrivateKey> PrivateKey::GenerateEd25519() {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  return pkey ? std::unique_ptr<PrivateKey>(new PrivateKey(pkey)) : nullptr;
}

std::unique_ptr<PrivateKey> PrivateKey::GenerateRsa(int bits) {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits));
  return pkey ? std::unique_ptr<PrivateKey>(new PrivateKey(pkey)) : nullptr;
}

std::unique_ptr<PrivateKey> PrivateKey::FromPem(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return pkey ? std::unique_ptr<PrivateKey>(new PrivateKey(pkey)) : nullptr;
}

PrivateKey::~PrivateKey() { EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_)); }

static std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

std::string PrivateKey::PublicPem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, static_cast<EVP_PKEY*>(pkey_));
  return BioToString(bio);
}

std::string PrivateKey::PrivatePem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, static_cast<EVP_PKEY*>(pkey_), nullptr, nullptr, 0, nullptr,
                           nullptr);
  return BioToString(bio);
}

std::string PrivateKey::Sign(std::string_view message) const {
  auto* pkey = static_cast<EVP_PKEY*>(pkey_);
  bool ed = EVP_PKEY_get_id(pkey) == EVP_PKEY_ED25519;
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  EVP_DigestSignInit(md, &pctx, ed ? nullptr : EVP_sha256(), nullptr, pkey);
  if (!ed) EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING);
  size_t len = 0;
  EVP_DigestSign(md, nullptr, &len, reinterpret_cast<const unsigned char*>(message.data()),
                 message.size());
  std::string sig(len, '\0');
  EVP_DigestSign(md, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(message.data()), message.size());
  sig.resize(len);
  EVP_MD_CTX_free(md);
  return sig;
}

void RandomBytes(uint8_t* out, size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1) throw std::runtime_error("RAND_bytes failed");
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RandomBytes(reinterpret_cast<uint8_t*>(raw.data()), raw.size());
  return HexEncode(raw);
}

}  // namespace dfm
