#include "util/aead.h"

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "util/crypto.h"

namespace dfm {
namespace {

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

// AES-256-GCM straight from the provider that EVP fetched it from. Through
// EVP, every use asks the provider for the key and nonce lengths and turns
// the tag into a parameter list, each a lookup by name: ~0.2 µs of a
// 0.9 µs open of 1,400 bytes, more than the key schedule (bench/
// stage_bench.cc, "aead"). The provider's own functions (provider-cipher(7),
// reached through OSSL_PROVIDER_query_operation) take the lengths as
// arguments; the algorithm and its output are the same.
struct Gcm {
  EVP_CIPHER* cipher = nullptr;  // kept: it keeps its provider loaded
  void* provctx = nullptr;
  OSSL_FUNC_cipher_newctx_fn* newctx = nullptr;
  OSSL_FUNC_cipher_freectx_fn* freectx = nullptr;
  OSSL_FUNC_cipher_encrypt_init_fn* einit = nullptr;
  OSSL_FUNC_cipher_decrypt_init_fn* dinit = nullptr;
  OSSL_FUNC_cipher_update_fn* update = nullptr;
  OSSL_FUNC_cipher_final_fn* final = nullptr;
  OSSL_FUNC_cipher_get_ctx_params_fn* get_params = nullptr;
  OSSL_FUNC_cipher_set_ctx_params_fn* set_params = nullptr;

  bool ok() const {
    return newctx && freectx && einit && dinit && update && final && get_params && set_params;
  }
};

// Whether `name` is one of the ':'-separated `names`.
bool Names(std::string_view names, std::string_view name) {
  while (!names.empty()) {
    const size_t end = std::min(names.find(':'), names.size());
    if (names.substr(0, end) == name) return true;
    names.remove_prefix(std::min(end + 1, names.size()));
  }
  return false;
}

Gcm Resolve(const OSSL_DISPATCH* d, void* provctx) {
  Gcm g;
  g.provctx = provctx;
  for (; d->function_id != 0; ++d) {
    switch (d->function_id) {
      case OSSL_FUNC_CIPHER_NEWCTX:
        g.newctx = OSSL_FUNC_cipher_newctx(d);
        break;
      case OSSL_FUNC_CIPHER_FREECTX:
        g.freectx = OSSL_FUNC_cipher_freectx(d);
        break;
      case OSSL_FUNC_CIPHER_ENCRYPT_INIT:
        g.einit = OSSL_FUNC_cipher_encrypt_init(d);
        break;
      case OSSL_FUNC_CIPHER_DECRYPT_INIT:
        g.dinit = OSSL_FUNC_cipher_decrypt_init(d);
        break;
      case OSSL_FUNC_CIPHER_UPDATE:
        g.update = OSSL_FUNC_cipher_update(d);
        break;
      case OSSL_FUNC_CIPHER_FINAL:
        g.final = OSSL_FUNC_cipher_final(d);
        break;
      case OSSL_FUNC_CIPHER_GET_CTX_PARAMS:
        g.get_params = OSSL_FUNC_cipher_get_ctx_params(d);
        break;
      case OSSL_FUNC_CIPHER_SET_CTX_PARAMS:
        g.set_params = OSSL_FUNC_cipher_set_ctx_params(d);
        break;
      default:
        break;
    }
  }
  return g;
}

// The provider's functions, found once and kept for the process's life;
// !ok() when OpenSSL has no AES-256-GCM (every seal and open then fails).
const Gcm& Functions() {
  static const Gcm gcm = [] {
    Gcm g;
    EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    const OSSL_PROVIDER* prov = cipher ? EVP_CIPHER_get0_provider(cipher) : nullptr;
    int no_cache = 0;
    const OSSL_ALGORITHM* algs =
        prov ? OSSL_PROVIDER_query_operation(prov, OSSL_OP_CIPHER, &no_cache) : nullptr;
    for (const OSSL_ALGORITHM* a = algs; a && a->algorithm_names; ++a) {
      if (!Names(a->algorithm_names, EVP_CIPHER_get0_name(cipher))) continue;
      g = Resolve(a->implementation, OSSL_PROVIDER_get0_provider_ctx(prov));
      break;
    }
    g.cipher = cipher;
    return g;
  }();
  return gcm;
}

// A provider cipher context of this thread's, made once and freed with the
// thread: a use sets only the key and the nonce. nullptr when none could
// be made.
class ThreadCtx {
 public:
  ThreadCtx() : ctx_(Functions().ok() ? Functions().newctx(Functions().provctx) : nullptr) {}
  ~ThreadCtx() {
    if (ctx_) Functions().freectx(ctx_);
  }
  ThreadCtx(const ThreadCtx&) = delete;
  ThreadCtx& operator=(const ThreadCtx&) = delete;
  void* get() const { return ctx_; }

 private:
  void* ctx_;
};

void* SealCtx() {
  thread_local ThreadCtx ctx;
  return ctx.get();
}

void* OpenCtx() {
  thread_local ThreadCtx ctx;
  return ctx.get();
}

// The tag as the provider's parameter list names it.
struct TagParam {
  explicit TagParam(unsigned char* tag) {
    p[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, kAeadTagBytes);
    p[1] = OSSL_PARAM_construct_end();
  }
  OSSL_PARAM p[2];
};

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
  const size_t len = plaintext.size();
  std::string out(kAeadNonceBytes + len + kAeadTagBytes, '\0');
  FreshNonce(U(out));
  const Gcm& g = Functions();
  void* ctx = SealCtx();
  TagParam tag(U(out, kAeadNonceBytes + len));
  size_t n = 0, m = 0;
  if (!ctx || key.size() != kAeadKeyBytes ||
      g.einit(ctx, U(key), kAeadKeyBytes, U(out), kAeadNonceBytes, nullptr) != 1 ||
      g.update(ctx, nullptr, &n, aad.size(), U(aad), aad.size()) != 1 ||
      g.update(ctx, U(out, kAeadNonceBytes), &n, len, U(plaintext), len) != 1 ||
      g.final(ctx, U(out, kAeadNonceBytes + n), &m, len - n) != 1 ||
      g.get_params(ctx, tag.p) != 1) {
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
  unsigned char tag_bytes[kAeadTagBytes];
  std::memcpy(tag_bytes, in + len, kAeadTagBytes);
  TagParam tag(tag_bytes);
  const Gcm& g = Functions();
  void* ctx = OpenCtx();
  size_t n = 0, m = 0;
  return ctx && key.size() == kAeadKeyBytes &&
         g.dinit(ctx, U(key), kAeadKeyBytes, nonce, kAeadNonceBytes, nullptr) == 1 &&
         g.update(ctx, nullptr, &n, aad.size(), U(aad), aad.size()) == 1 &&
         g.update(ctx, out, &n, len, in, len) == 1 && g.set_params(ctx, tag.p) == 1 &&
         g.final(ctx, out + n, &m, 0) == 1;
}

}  // namespace

bool AeadOpenTo(std::string_view key, std::string_view aad, std::string_view sealed,
                std::string* out) {
  out->clear();
  if (sealed.size() < kAeadNonceBytes + kAeadTagBytes) return false;
  const size_t len = sealed.size() - kAeadNonceBytes - kAeadTagBytes;
  out->resize(len);
  if (!OpenTo(key, aad, U(sealed), U(sealed.substr(kAeadNonceBytes)), len, U(*out))) {
    Wipe(out->data(), out->size());  // GCM decrypts before it checks
    out->clear();
    return false;
  }
  return true;
}

std::optional<std::string> AeadOpen(std::string_view key, std::string_view aad,
                                    std::string_view sealed) {
  std::string plain;
  if (!AeadOpenTo(key, aad, sealed, &plain)) return std::nullopt;
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
