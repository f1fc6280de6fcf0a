#include "util/huge_pages.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>

namespace dfm {
namespace {

constexpr size_t kPageBytes = 4096;

// Whole small pages: a huge page is never put on a partial 2 MiB range at
// a mapping's end, so its tail stays on small pages.
size_t MappedBytes(size_t bytes) { return (bytes + kPageBytes - 1) & ~(kPageBytes - 1); }

}  // namespace

void* AllocateMaybeHuge(size_t bytes) {
  if (bytes < kMinHugePiece) return ::operator new(bytes == 0 ? 1 : bytes);
  if (bytes > SIZE_MAX / 4) throw std::bad_alloc();
  // Mapped with a huge page of slack, then trimmed to an aligned start:
  // mmap itself only promises 4 KiB alignment.
  const size_t len = MappedBytes(bytes);
  void* raw = mmap(nullptr, len + kHugePageBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePageBytes - 1) & ~(uintptr_t{kHugePageBytes} - 1);
  if (aligned > start) munmap(raw, aligned - start);
  // The slack after the piece: 4 KiB to 2 MiB, never none.
  munmap(reinterpret_cast<void*>(aligned + len), (start + kHugePageBytes) - aligned);
  void* p = reinterpret_cast<void*>(aligned);
  madvise(p, len, MADV_HUGEPAGE);  // a hint: refused, the pages are small
  return p;
}

void FreeMaybeHuge(void* p, size_t bytes) noexcept {
  if (p == nullptr) return;
  if (bytes < kMinHugePiece) {
    ::operator delete(p);
    return;
  }
  munmap(p, MappedBytes(bytes));
}

}  // namespace dfm
