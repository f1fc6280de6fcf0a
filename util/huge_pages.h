// Big arrays on huge pages.
//
// A projection rebuild fills hash tables, arenas and sort orders of tens
// to hundreds of MiB in a few seconds. On 4 KiB pages every page of them
// is a page fault when first written (dear on a virtual machine) and
// every random lookup may walk the page tables. Memory asked through
// this file in pieces of kMinHugePiece or more is mapped on its own, its
// start aligned to 2 MiB, and advised MADV_HUGEPAGE, so that the kernel backs
// it with huge pages where its transparent huge page setting is
// `always` or `madvise` (Debian's default). Smaller pieces come from the
// ordinary allocator, so small tables (a live batch's) cost nothing
// more. The advice is a hint: where the kernel has no huge page at hand
// the memory is still there, on small pages.
#pragma once

#include <cstddef>
#include <new>

namespace dfm {

inline constexpr size_t kHugePageBytes = size_t{2} << 20;
// Pieces from this size on are mapped apart. Twice a huge page: a live
// batch's tables and items stay below it, so they do not map and unmap
// memory at every batch.
inline constexpr size_t kMinHugePiece = 2 * kHugePageBytes;

// `bytes` of memory aligned as operator new aligns; never null (throws
// std::bad_alloc). A piece of kMinHugePiece or more is mapped apart, its
// start aligned to kHugePageBytes, and advised for huge pages; the part
// of its last huge page it does not fill stays on small pages.
void* AllocateMaybeHuge(size_t bytes);
// Gives back what AllocateMaybeHuge(bytes) returned, with the same
// `bytes`.
void FreeMaybeHuge(void* p, size_t bytes) noexcept;

// A std allocator over AllocateMaybeHuge: for vectors that may grow to
// megabytes.
template <typename T>
struct HugePageAllocator {
  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__, "aligned beyond operator new");
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}
  T* allocate(size_t n) {
    if (n > static_cast<size_t>(-1) / sizeof(T)) throw std::bad_alloc();
    return static_cast<T*>(AllocateMaybeHuge(n * sizeof(T)));
  }
  void deallocate(T* p, size_t n) noexcept { FreeMaybeHuge(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const noexcept {
    return true;
  }
  template <typename U>
  bool operator!=(const HugePageAllocator<U>&) const noexcept {
    return false;
  }
};

}  // namespace dfm
