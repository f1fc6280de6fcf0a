#include "projections/state_table.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <new>

namespace dfm {

namespace {
constexpr size_t kInitialSlots = 16;
constexpr size_t kKeptSlots = 4096;  // 64 KiB of slots
constexpr size_t kFirstBlockBytes = 4 << 10;
constexpr size_t kBlockBytes = 4 << 20;
constexpr size_t kAlign = 8;

size_t RoundUp(size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }

// Room for a value of `len` bytes and some growth: a status word or a
// counter that gets a digit longer is rewritten in place.
uint32_t CapacityFor(size_t len) { return static_cast<uint32_t>(RoundUp(len + len / 4 + 1)); }
}  // namespace

StateTable::StateTable() : slots_(kInitialSlots, Slot{0, nullptr}), mask_(kInitialSlots - 1) {}

uint64_t StateTable::Hash(std::string_view key) {
  return std::hash<std::string_view>{}(key);
}

const StateTable::Entry* StateTable::Find(std::string_view key) const {
  const uint64_t h = Hash(key);
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (!s.entry) return nullptr;
    if (s.hash == h && s.entry->key() == key) return s.entry;
  }
}

void StateTable::Set(std::string_view key, std::string_view value) {
  bool inserted = false;
  Slot* slot = Insert(key, value, true, &inserted);
  if (!inserted) Assign(slot, value);
}

StateTable::Slot* StateTable::Insert(std::string_view key, std::string_view value, bool present,
                                     bool* inserted) {
  const uint64_t h = Hash(key);
  for (;;) {
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.entry && s.hash == h && s.entry->key() == key) {
        *inserted = false;
        return &s;
      }
      if (s.entry) continue;
      // Not here: insert unless that would pass the load limit (5/8).
      if ((size_ + 1) * 8 > slots_.size() * 5) break;
      s.hash = h;
      s.entry = NewEntry(key, value, present);
      if (tracking_) new_keys_.push_back(s.entry->key());
      ++size_;
      *inserted = true;
      return &s;
    }
    Grow();
  }
}

void StateTable::Assign(Slot* slot, std::string_view value) {
  Entry* e = slot->entry;
  if (value.size() > e->value_cap) {
    e = NewEntry(e->key(), value, true);  // the old entry stays unused
    slot->entry = e;
    return;
  }
  if (!value.empty()) std::memcpy(e->data() + e->key_len, value.data(), value.size());
  e->value_len = static_cast<uint32_t>(value.size());
  e->present = 1;
}

StateTable::Entry* StateTable::NewEntry(std::string_view key, std::string_view value,
                                         bool present) {
  const uint32_t cap = CapacityFor(value.size());
  void* mem = Allocate(sizeof(Entry) + RoundUp(key.size() + cap));
  Entry* e = new (mem) Entry{static_cast<uint32_t>(key.size()), cap,
                             static_cast<uint32_t>(value.size()), present ? 1u : 0u};
  if (!key.empty()) std::memcpy(e->data(), key.data(), key.size());
  if (!value.empty()) std::memcpy(e->data() + key.size(), value.data(), value.size());
  return e;
}

void* StateTable::Allocate(size_t bytes) {
  if (bytes > left_) {
    next_block_ = next_block_ == 0 ? kFirstBlockBytes : std::min(next_block_ * 2, kBlockBytes);
    const size_t size = std::max(bytes, next_block_);
    blocks_.emplace_back(static_cast<char*>(AllocateMaybeHuge(size)), BlockFree{size});
    cursor_ = blocks_.back().get();
    left_ = size;
  }
  void* p = cursor_;
  cursor_ += bytes;
  left_ -= bytes;
  return p;
}

void StateTable::Grow() {
  Slots old(slots_.size() * 2, Slot{0, nullptr});
  old.swap(slots_);
  mask_ = slots_.size() - 1;
  for (const Slot& s : old) {
    if (!s.entry) continue;
    size_t i = s.hash & mask_;
    while (slots_[i].entry) i = (i + 1) & mask_;
    slots_[i] = s;
  }
}

void StateTable::Clear() {
  // Within one Run (a catch-up commits every batch) a table is cleared
  // after each commit and fills to about the same size again: keep a small
  // slot array rather than grow it anew each time. A big one (a rebuild's)
  // is given back, and so is the empty array of a moved-from table.
  if (!slots_.empty() && slots_.size() <= kKeptSlots) {
    std::fill(slots_.begin(), slots_.end(), Slot{0, nullptr});
  } else {
    Slots(kInitialSlots, Slot{0, nullptr}).swap(slots_);
    mask_ = kInitialSlots - 1;
  }
  size_ = 0;
  tracking_ = false;
  std::vector<std::string_view>().swap(new_keys_);
  blocks_.clear();
  cursor_ = nullptr;
  left_ = 0;
  next_block_ = 0;
}

}  // namespace dfm
