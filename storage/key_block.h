// KeyBlock: 256 consecutive key numbers of a RocksDbKeyStore
// (storage/key_store.h), as its cache holds them and as its layout 2
// stores them, one row per block. Pure: no RocksDB inside.
//
// Row value (grammar, version byte 1):
//   block = %x01 256*slot               ; slot i: number b * 256 + i
//   slot  = %x00 32*%x00                ; never made here
//         / %x01 key:32                 ; a live key
//         / %x02 32*%x00                ; a destroyed key
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>

namespace dfm {

class KeyBlock {
 public:
  static constexpr uint64_t kKeys = 256;
  static constexpr size_t kKeyBytes = 32;
  static constexpr size_t kRowBytes = 1 + kKeys * (1 + kKeyBytes);

  KeyBlock() = default;
  KeyBlock(const KeyBlock&) = delete;
  KeyBlock& operator=(const KeyBlock&) = delete;
  ~KeyBlock();  // wipes the key bytes

  // Key `no` (of this block) is `key`, unless it was destroyed: a
  // destroyed number never comes back.
  void Put(uint64_t no, std::string_view key);
  // Key `no` is destroyed: its bytes wiped, and it reads as destroyed.
  void Destroy(uint64_t no);

  bool Present(uint64_t no) const { return present_.test(no % kKeys); }
  bool Destroyed(uint64_t no) const { return destroyed_.test(no % kKeys); }
  bool Empty() const { return present_.none() && destroyed_.none(); }
  std::string_view Key(uint64_t no) const {
    return std::string_view(keys_[no % kKeys].data(), kKeyBytes);
  }

  // What `other` knows that this block does not: its keys, and its
  // destroyed numbers (which win over keys either holds).
  void Merge(const KeyBlock& other);

  // The row value above. The caller wipes it once written.
  std::string Encode() const;
  // False (and this block left as it was) when `row` is not one.
  bool Decode(std::string_view row);

 private:
  std::bitset<kKeys> present_, destroyed_;
  std::array<std::array<char, kKeyBytes>, kKeys> keys_{};
};

}  // namespace dfm
