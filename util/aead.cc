#include "util/aead.h"

#include <openssl/evp.h>
#include <pthread.h>

#include <atomic>
#include <cstring>
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
// fetched once instead. Each thread keeps one context for sealing and one
// for opening, set up with the cipher once: a use sets only the key and
// the nonce. Resetting a context frees the cipher's own state, and setting
// it up again goes through OpenSSL's parameter lookups, ~0.3 µs of a
// 1,500-byte seal (bench/stage_bench.cc, "aead"); the log seals and opens
// one payload per event (bench/README.md (n)).
const EVP_CIPHER* Gcm() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

CipherCtx MakeCtx(int enc) {
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  if (ctx && (!Gcm() || EVP_CipherInit_ex(ctx.get(), Gcm(), nullptr, nullptr, nullptr, enc) != 1))
    ctx.reset();
  return ctx;
}

// nullptr when OpenSSL could not make one.
EVP_CIPHER_CTX* SealCtx() {
  thread_local CipherCtx ctx = MakeCtx(1);
  return ctx.get();
}

EVP_CIPHER_CTX* OpenCtx() {
  thread_local CipherCtx ctx = MakeCtx(0);
  return ctx.get();
}

// Bumped in a child process at fork(): the child must not take nonces
// from the buffer its parent had.
std::atomic<uint64_t> fork_generation{0};

uint64_t ForkGeneration() {
  static const bool registered =
      pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1); }) == 0;
  (void)registered;
  return fork_generation.load(std::memory_order_relaxed);
}

// A nonce must never repeat under a key; it need not be secret. One call
// of OpenSSL's generator costs ~0.9 µs for 12 bytes and not much more for
// 4 KiB (bench/stage_bench.cc, "aead"), and the log seals one payload per
// event: so each thread takes its nonces from 4 KiB of the generator's
// output at a time.
void FreshNonce(unsigned char* out) {
  struct Pool {
    unsigned char bytes[341 * kAeadNonceBytes];
    size_t used = sizeof(bytes);
    uint64_t generation = 0;
  };
  thread_local Pool pool;
  const uint64_t generation = ForkGeneration();
  if (pool.used + kAeadNonceBytes > sizeof(pool.bytes) || pool.generation != generation) {
    RandomBytes(pool.bytes, sizeof(pool.bytes));
    pool.used = 0;
    pool.generation = generation;
  }
  std::memcpy(out, pool.bytes + pool.used, kAeadNonceBytes);
  pool.used += kAeadNonceBytes;
}

}  // namespace

std::string AeadSeal(std::string_view key, std::string_view aad, std::string_view plaintext) {
  std::string out(kAeadNonceBytes + plaintext.size() + kAeadTagBytes, '\0');
  FreshNonce(U(out));
  EVP_CIPHER_CTX* ctx = SealCtx();
  int n = 0, m = 0;
  if (!ctx || key.size() != kAeadKeyBytes ||
      EVP_EncryptInit_ex(ctx, nullptr, nullptr, U(key), U(out)) != 1 ||
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

namespace {

// Decrypts the `len` bytes at `in` (which may be `out`: in place) into
// `out` and checks them, the aad and the tag that follows them; false
// when they were not sealed by AeadSeal with this key and aad.
bool OpenTo(std::string_view key, std::string_view aad, const unsigned char* nonce,
            const unsigned char* in, size_t len, unsigned char* out) {
  unsigned char tag[kAeadTagBytes];
  std::memcpy(tag, in + len, kAeadTagBytes);
  EVP_CIPHER_CTX* ctx = OpenCtx();
  int n = 0, m = 0;
  return ctx && key.size() == kAeadKeyBytes &&
         EVP_DecryptInit_ex(ctx, nullptr, nullptr, U(key), nonce) == 1 &&
         EVP_DecryptUpdate(ctx, nullptr, &n, U(aad), static_cast<int>(aad.size())) == 1 &&
         EVP_DecryptUpdate(ctx, out, &n, in, static_cast<int>(len)) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kAeadTagBytes, tag) == 1 &&
         EVP_DecryptFinal_ex(ctx, out + n, &m) == 1;
}

}  // namespace

std::optional<std::string> AeadOpen(std::string_view key, std::string_view aad,
                                    std::string_view sealed) {
  if (sealed.size() < kAeadNonceBytes + kAeadTagBytes) return std::nullopt;
  const size_t len = sealed.size() - kAeadNonceBytes - kAeadTagBytes;
  std::string plain(len, '\0');
  if (!OpenTo(key, aad, U(sealed), U(sealed.substr(kAeadNonceBytes)), len, U(plain))) {
    Wipe(plain.data(), plain.size());  // GCM decrypts before it checks
    return std::nullopt;
  }
  return plain;
}

bool AeadOpenInPlace(std::string_view key, std::string_view aad, std::string* buf, size_t at) {
  if (buf->size() < at + kAeadNonceBytes + kAeadTagBytes) return false;
  const size_t len = buf->size() - at - kAeadNonceBytes - kAeadTagBytes;
  unsigned char* text = U(*buf, at + kAeadNonceBytes);
  if (!OpenTo(key, aad, U(*buf, at), text, len, text)) {
    Wipe(text, len);  // GCM decrypts before it checks
    return false;
  }
  std::memmove(buf->data(), text, len);
  buf->resize(len);
  return true;
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
