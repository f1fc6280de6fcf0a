// Authenticated encryption for short tokens: AES-256-GCM over OpenSSL 3,
// and the URL-safe base64 they travel in.
//
// Sealed format: nonce (12 random bytes) || ciphertext || tag (16 bytes).
// Thread-safe: each thread keeps its own cipher contexts and nonce buffer.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace dfm {

inline constexpr size_t kAeadKeyBytes = 32;
inline constexpr size_t kAeadNonceBytes = 12;
inline constexpr size_t kAeadTagBytes = 16;

// Encrypts `plaintext` and authenticates it with `aad`, under a fresh
// random nonce. REQUIRES: key.size() == kAeadKeyBytes.
std::string AeadSeal(std::string_view key, std::string_view aad, std::string_view plaintext);
// The plaintext, or nullopt when `sealed` was not made by AeadSeal with this
// key and aad (tampered, truncated, another key or another aad).
std::optional<std::string> AeadOpen(std::string_view key, std::string_view aad,
                                    std::string_view sealed);
// AeadOpen into *out, whose bytes it replaces: true, or false and *out
// empty. `sealed` must not point into *out.
bool AeadOpenTo(std::string_view key, std::string_view aad, std::string_view sealed,
                std::string* out);
// AeadOpen without a copy: *buf holds, from byte `at` on, what AeadSeal
// made. True: *buf is now the plaintext alone (the bytes before `at`
// dropped too). False: not opened, and what the ciphertext held is
// zeroed (no plaintext is left behind).
bool AeadOpenInPlace(std::string_view key, std::string_view aad, std::string* buf, size_t at);

// RFC 4648 §5 base64url without padding; Decode also refuses padding,
// other alphabets and non-canonical trailing bits.
std::string Base64UrlEncode(std::string_view bytes);
std::optional<std::string> Base64UrlDecode(std::string_view text);

}  // namespace dfm
