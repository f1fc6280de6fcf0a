#include "util/aead.h"

#include <openssl/evp.h>

#include <memory>

#include "util/crypto.h"

namespace dfm {
namespace {

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

const unsigned char* U(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
unsigned char* U(std::string& s, size_t at = 0) { return reinterpret_cast<unsigned char*>(s.data() + at); }

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int Sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// OpenSSL 3 looks a cipher up by name at every init given EVP_aes_256_gcm();
// fetched once instead, and each thread keeps one context (reset per use):
// the log seals and opens one payload per event (bench/README.md (n)).
const EVP_CIPHER* Gcm() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

EVP_CIPHER_CTX* ThreadCtx() {
  thread_local CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  if (ctx) EVP_CIPHER_CTX_reset(ctx.get());
  return ctx.get();
}

}  // namespace

std::string AeadSeal(std::string_view key, std::string_view aad, std::string_view plaintext) {
  std::string out(kAeadNonceBytes + plaintext.size() + kAeadTagBytes, '\0');
  RandomBytes(U(out), kAeadNonceBytes);
  EVP_CIPHER_CTX* ctx = ThreadCtx();
  int n = 0, m = 0;
  if (!ctx || !Gcm() || key.size() != kAeadKeyBytes ||
      EVP_EncryptInit_ex(ctx, Gcm(), nullptr, U(key), U(out)) != 1 ||
      EVP_EncryptUpdate(ctx, nullptr, &n, U(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx, U(out, kAeadNonceBytes), &n, U(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx, U(out, kAeadNonceBytes + n), &m) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kAeadTagBytes,
                          U(out, kAeadNonceBytes + plaintext.size())) != 1) {
    return {};
  }
  return out;
}

std::optional<std::string> AeadOpen(std::string_view key, std::string_view aad,
                                    std::string_view sealed) {
  if (key.size() != kAeadKeyBytes || sealed.size() < kAeadNonceBytes + kAeadTagBytes)
    return std::nullopt;
  const size_t len = sealed.size() - kAeadNonceBytes - kAeadTagBytes;
  std::string plain(len, '\0');
  std::string tag(sealed.substr(kAeadNonceBytes + len));
  EVP_CIPHER_CTX* ctx = ThreadCtx();
  int n = 0, m = 0;
  if (!ctx || !Gcm() || EVP_DecryptInit_ex(ctx, Gcm(), nullptr, U(key), U(sealed)) != 1 ||
      EVP_DecryptUpdate(ctx, nullptr, &n, U(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx, U(plain), &n, U(sealed.substr(kAeadNonceBytes)),
                        static_cast<int>(len)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kAeadTagBytes, U(tag)) != 1 ||
      EVP_DecryptFinal_ex(ctx, U(plain, static_cast<size_t>(n)), &m) != 1) {
    return std::nullopt;
  }
  return plain;
}

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = Sextet(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;  // non-canonical
  return out;
}

}  // namespace dfm
