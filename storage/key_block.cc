#include "storage/key_block.h"

#include <cstring>

#include "util/crypto.h"

namespace dfm {

namespace {
constexpr char kRowVersion = 1;
enum Slot : char { kNone = 0, kLive = 1, kGone = 2 };
}  // namespace

KeyBlock::~KeyBlock() { Wipe(keys_.data(), sizeof(keys_)); }

void KeyBlock::Put(uint64_t no, std::string_view key) {
  const size_t i = no % kKeys;
  if (destroyed_.test(i) || key.size() != kKeyBytes) return;
  present_.set(i);
  std::memcpy(keys_[i].data(), key.data(), kKeyBytes);
}

void KeyBlock::Destroy(uint64_t no) {
  const size_t i = no % kKeys;
  present_.reset(i);
  destroyed_.set(i);
  Wipe(keys_[i].data(), kKeyBytes);
}

void KeyBlock::Merge(const KeyBlock& other) {
  for (size_t i = 0; i < kKeys; ++i)
    if (other.present_.test(i) && !destroyed_.test(i)) keys_[i] = other.keys_[i];
  destroyed_ |= other.destroyed_;
  present_ = (present_ | other.present_) & ~destroyed_;
  for (size_t i = 0; i < kKeys; ++i)
    if (destroyed_.test(i)) Wipe(keys_[i].data(), kKeyBytes);
}

std::string KeyBlock::Encode() const {
  std::string row(kRowBytes, '\0');
  row[0] = kRowVersion;
  for (size_t i = 0; i < kKeys; ++i) {
    char* slot = row.data() + 1 + i * (1 + kKeyBytes);
    if (destroyed_.test(i)) {
      slot[0] = kGone;
    } else if (present_.test(i)) {
      slot[0] = kLive;
      std::memcpy(slot + 1, keys_[i].data(), kKeyBytes);
    }
  }
  return row;
}

bool KeyBlock::Decode(std::string_view row) {
  if (row.size() != kRowBytes || row[0] != kRowVersion) return false;
  for (size_t i = 0; i < kKeys; ++i) {
    const char kind = row[1 + i * (1 + kKeyBytes)];
    if (kind != kNone && kind != kLive && kind != kGone) return false;
  }
  for (size_t i = 0; i < kKeys; ++i) {
    const char* slot = row.data() + 1 + i * (1 + kKeyBytes);
    present_.set(i, slot[0] == kLive);
    destroyed_.set(i, slot[0] == kGone);
    if (slot[0] == kLive) {
      std::memcpy(keys_[i].data(), slot + 1, kKeyBytes);
    } else {
      Wipe(keys_[i].data(), kKeyBytes);
    }
  }
  return true;
}

}  // namespace dfm
