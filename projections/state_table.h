// StateTable: the hash table behind a ProjectionState's overlay.
//
// Maps string keys to a value that is either a string or absent (an erase
// to commit). A rebuild holds millions of keys here and a fold looks most
// of them up more than once, so the layout is chosen for cache misses:
//
//   slots  a power-of-two array of {64-bit hash, entry pointer}, linear
//          probing, at most 5/8 full. A probe compares the full hash
//          before it touches an entry, so a missing key usually costs one
//          slot line and a present one a slot line and its entry.
//   arena  entries, each its key and its value side by side
//          (header | key | value capacity), bump-allocated in insertion
//          order in blocks that grow from 4 KiB to 4 MiB (a live batch
//          holds a few keys, a rebuild millions). A value that outgrows
//          its capacity moves to a new entry; the old one stays unused in
//          the arena until Clear().
//
// Slot arrays and blocks of 4 MiB or more are on huge pages
// (util/huge_pages.h): a rebuild's table would otherwise fault in every
// 4 KiB page it fills.
//
// Nothing is ever removed but by Clear(): an erase is an entry whose value
// is absent. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "util/huge_pages.h"

namespace dfm {

class StateTable {
 public:
  struct Entry {
    uint32_t key_len;
    uint32_t value_cap;
    uint32_t value_len;
    uint32_t present;  // 1: value holds a string; 0: absent
    char* data() { return reinterpret_cast<char*>(this + 1); }
    const char* data() const { return reinterpret_cast<const char*>(this + 1); }
    std::string_view key() const { return std::string_view(data(), key_len); }
    std::optional<std::string_view> value() const {
      if (!present) return std::nullopt;
      return std::string_view(data() + key_len, value_len);
    }
  };
  // Where an entry is filed; valid until the next insertion (FindOrInsert,
  // Set).
  struct Slot {
    uint64_t hash;
    Entry* entry;  // null: empty
  };

  StateTable();
  StateTable(const StateTable&) = delete;
  StateTable& operator=(const StateTable&) = delete;
  // A moved-from table may only be destroyed or Clear()ed (which makes it
  // an empty table again).
  StateTable(StateTable&&) noexcept = default;
  StateTable& operator=(StateTable&&) noexcept = default;

  // The entry for `key`, or null.
  const Entry* Find(std::string_view key) const;
  // The slot of `key`, inserted (value absent) when missing; *inserted says
  // which.
  Slot* FindOrInsert(std::string_view key, bool* inserted) {
    return Insert(key, std::string_view(), false, inserted);
  }
  // Gives the slot's entry `value` (copied) or makes it absent.
  void Assign(Slot* slot, std::string_view value);
  // Gives `key` `value`, inserting it when missing (one entry, sized for
  // the value).
  void Set(std::string_view key, std::string_view value);
  static void MakeAbsent(Slot* slot) { slot->entry->present = 0; }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Every entry, in no particular order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const Slot& s : slots_)
      if (s.entry) fn(*s.entry);
  }
  // From now until Clear(), every key inserted is also listed in
  // NewKeys() (a view into its entry, valid until Clear()), for an index
  // kept beside the table (ProjectionState::Scan). The caller empties the
  // list as it takes them.
  void TrackNewKeys() { tracking_ = true; }
  bool tracking() const { return tracking_; }
  std::vector<std::string_view>* NewKeys() { return &new_keys_; }
  // Drops every entry and frees their memory, and stops the tracking. A
  // slot array of up to 4,096 slots is kept for the next fill (a catch-up
  // clears its tables after each batch's commit); a bigger one (a
  // rebuild's) is given back too.
  void Clear();

 private:
  static uint64_t Hash(std::string_view key);
  // The slot of `key`; a missing key is inserted with `value` (present or
  // absent).
  Slot* Insert(std::string_view key, std::string_view value, bool present, bool* inserted);
  Entry* NewEntry(std::string_view key, std::string_view value, bool present);
  void* Allocate(size_t bytes);
  void Grow();

  // A block of the arena, given back as it was taken.
  struct BlockFree {
    size_t bytes;
    void operator()(char* p) const noexcept { FreeMaybeHuge(p, bytes); }
  };
  using Slots = std::vector<Slot, HugePageAllocator<Slot>>;

  Slots slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
  std::vector<std::unique_ptr<char, BlockFree>> blocks_;
  char* cursor_ = nullptr;
  size_t left_ = 0;
  size_t next_block_ = 0;  // bytes of the next block
  bool tracking_ = false;
  std::vector<std::string_view> new_keys_;  // while tracking_
};

}  // namespace dfm
