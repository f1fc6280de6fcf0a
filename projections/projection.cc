#include "projections/projection.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <iterator>
#include <map>

#include "events/sealing.h"
#include "util/huge_pages.h"
#include "util/joining_thread.h"

namespace dfm {

StateTable::Slot* ProjectionState::Load(std::string_view key) {
  bool inserted = false;
  StateTable::Slot* slot = overlay_.FindOrInsert(key, &inserted);
  if (!inserted) return slot;
  Status s = base_(key, &peeked_);
  if (s.ok()) {
    overlay_.Assign(slot, peeked_);
  } else if (!s.IsNotFound() && status_.ok()) {
    status_ = s;
  }
  return slot;
}

std::optional<std::string> ProjectionState::Get(std::string_view key) {
  std::optional<std::string_view> v = Peek(key);
  if (!v) return std::nullopt;
  return std::string(*v);
}

std::optional<std::string_view> ProjectionState::Peek(std::string_view key) {
  if (const StateTable::Entry* e = overlay_.Find(key)) return e->value();
  Status s = base_(key, &peeked_);
  if (s.ok()) return std::string_view(peeked_);
  if (!s.IsNotFound() && status_.ok()) status_ = s;
  return std::nullopt;
}

void ProjectionState::Put(std::string_view key, std::string_view value) {
  overlay_.Set(key, value);
  if (owner_.empty() || NamesContact(key, owner_, own_kinds_) ||
      NamesTenantContact(key, tenant_, owner_, tenant_kinds_))
    return;
  // The buffers keep their capacity: a rebuild sets an owner per event.
  index_key_.assign("~o/").append(owner_).append(1, '\n').append(key.data(), key.size());
  overlay_.Set(index_key_, std::string_view());
}

void ProjectionState::SetOwner(std::string_view contact, std::string_view own_kinds,
                               std::string_view tenant, std::string_view tenant_kinds) {
  owner_.assign(contact.data(), contact.size());
  own_kinds_.assign(own_kinds.data(), own_kinds.size());
  tenant_.assign(tenant.data(), tenant.size());
  tenant_kinds_.assign(tenant_kinds.data(), tenant_kinds.size());
}

bool NamesContact(std::string_view key, std::string_view contact_id, std::string_view kinds) {
  if (key.size() < contact_id.size() + 2 || key[1] != '/' ||
      kinds.find(key[0]) == std::string_view::npos || key.substr(2, contact_id.size()) != contact_id)
    return false;
  if (key.size() == contact_id.size() + 2) return true;
  const char next = key[contact_id.size() + 2];
  return next == '/' || next == ':';
}

bool NamesTenantContact(std::string_view key, std::string_view tenant,
                        std::string_view contact_id, std::string_view kinds) {
  const size_t at = 2 + tenant.size() + 1;  // "<kind>/<tenant>/"
  if (key.size() < at + contact_id.size() || key[1] != '/' ||
      kinds.find(key[0]) == std::string_view::npos || key.substr(2, tenant.size()) != tenant ||
      key[at - 1] != '/' || key.substr(at, contact_id.size()) != contact_id)
    return false;
  return key.size() == at + contact_id.size() || key[at + contact_id.size()] == '/';
}

std::string OwnerIndexPrefix(std::string_view contact_id) {
  std::string p = "~o/";
  p.append(contact_id.data(), contact_id.size());
  p.push_back('\n');
  return p;
}

void ProjectionState::Erase(std::string_view key) {
  bool inserted = false;
  StateTable::MakeAbsent(overlay_.FindOrInsert(key, &inserted));
}

void ProjectionState::Add(std::string_view key, int64_t delta) {
  StateTable::Slot* slot = Load(key);
  int64_t n = 0;
  if (std::optional<std::string_view> v = slot->entry->value())
    std::from_chars(v->data(), v->data() + v->size(), n);
  n += delta;
  if (n == 0) {
    StateTable::MakeAbsent(slot);
    return;
  }
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), n);
  overlay_.Assign(slot, std::string_view(buf, static_cast<size_t>(end - buf)));
}

std::vector<StateOp> ProjectionState::TakeOps() {
  std::vector<StateOp> ops;
  const StateEntryRefs entries = SortedEntries();
  ops.reserve(entries.size());
  for (const StateEntryRef& e : entries)
    ops.push_back(StateOp{std::string(e.key), std::string(e.value), e.erase});
  Clear();
  return ops;
}

void Projection::Fold(const Event& e, ProjectionState* state) {
  if (!Takes(e.type)) return;
  DomainEvent d;
  bool decoded = AsDomainEvent(e, &d);
  Apply(e, decoded ? &d : nullptr, state);
}

namespace {
constexpr std::string_view kContactStreamPrefix = "contact:";
}  // namespace

bool Projection::Takes(std::string_view type) const {
  return type == kContactErasedType || Uses(type);
}

void Projection::Apply(const Event& e, const DomainEvent* d, ProjectionState* state) {
  const bool of_contact = e.stream.compare(0, kContactStreamPrefix.size(), kContactStreamPrefix) == 0;
  const std::string_view contact =
      of_contact ? std::string_view(e.stream).substr(kContactStreamPrefix.size()) : "";
  if (e.type == kContactErasedType) {
    if (of_contact) ForgetContact(e.tenant, contact, state);
    if (Uses(e.type)) FoldDecoded(e, d, state);
    return;
  }
  if (of_contact) state->SetOwner(contact, OwnKinds(), e.tenant, TenantOwnKinds());
  FoldDecoded(e, d, state);
  if (of_contact) state->SetOwner({});
}

void Projection::ForgetContact(std::string_view tenant, std::string_view contact_id,
                               ProjectionState* state) {
  for (char kind : OwnKinds()) {
    std::string own(1, kind);
    own.append("/").append(contact_id.data(), contact_id.size());
    for (const auto& [key, value] : state->Scan(own)) {
      if (!NamesContact(key, contact_id, OwnKinds())) continue;  // a longer id
      Forget(key, value, state);
      state->Erase(key);
    }
  }
  for (char kind : TenantOwnKinds()) {
    std::string own(1, kind);
    own.append("/").append(tenant.data(), tenant.size()).append("/");
    own.append(contact_id.data(), contact_id.size());
    for (const auto& [key, value] : state->Scan(own)) {
      if (!NamesTenantContact(key, tenant, contact_id, TenantOwnKinds())) continue;
      Forget(key, value, state);
      state->Erase(key);
    }
  }
  const std::string prefix = OwnerIndexPrefix(contact_id);
  for (const auto& [index_key, unused] : state->Scan(prefix)) {
    std::string_view key = std::string_view(index_key).substr(prefix.size());
    if (std::optional<std::string> v = state->Get(key); v && OwnedBy(key, *v, contact_id)) {
      Forget(key, *v, state);
      state->Erase(key);
    }
    state->Erase(index_key);
  }
}

bool Projection::OwnedBy(std::string_view, std::string_view, std::string_view) const {
  return true;
}

void Projection::Forget(std::string_view, std::string_view, ProjectionState*) {}

namespace {

// An entry to sort and the kChunk bytes of its key from the depth its
// range is sorted at, beside it: most comparisons then read no key, which
// the arena scatters over the memory.
constexpr size_t kChunk = 16;
struct Sortable {
  uint64_t hi, lo;  // key bytes [depth, depth + kChunk), big-endian, zero-padded
  uint32_t rest;    // the key's bytes from depth on, at most kChunk + 1 (more follow)
  const StateTable::Entry* entry;

  bool operator<(const Sortable& o) const {
    if (hi != o.hi) return hi < o.hi;
    if (lo != o.lo) return lo < o.lo;
    return rest < o.rest;
  }
  bool SameChunk(const Sortable& o) const { return hi == o.hi && lo == o.lo && rest == o.rest; }
};

void LoadChunk(size_t depth, Sortable* s) {
  const std::string_view k = s->entry->key();
  const size_t left = k.size() > depth ? k.size() - depth : 0;
  uint64_t word[2] = {0, 0};
  for (size_t i = 0; i < kChunk; ++i)
    word[i / 8] = word[i / 8] << 8 | (i < left ? static_cast<unsigned char>(k[depth + i]) : 0);
  s->hi = word[0];
  s->lo = word[1];
  s->rest = static_cast<uint32_t>(std::min(left, kChunk + 1));
}

// How far ahead of its use an entry is asked of the memory: the arena
// scatters them, and a walk that asks for one at a time waits for each.
constexpr ptrdiff_t kAhead = 8;

// Entries from which SortedEntries sorts on two threads.
constexpr size_t kTwoThreadKeys = 1 << 18;

// A range this short is sorted by whole keys (its few keys stay in the
// caches between comparisons).
constexpr ptrdiff_t kFewKeys = 16;

// Sorts [first, last), whose keys share their first `depth` bytes, by key:
// by the next kChunk bytes, then (ties whose keys go on) by the kChunk
// after them, and so on. Two keys with equal chunks and the same `rest` up
// to kChunk are the same key, which the table holds once. Each level reads
// each key once (asked for ahead), where a comparison sort on whole keys
// reads two per comparison.
void SortByKey(Sortable* first, Sortable* last, size_t depth) {
  if (last - first <= kFewKeys) {
    std::sort(first, last, [](const Sortable& a, const Sortable& b) {
      return a.entry->key() < b.entry->key();
    });
    return;
  }
  for (Sortable* s = first; s != last; ++s) {
    if (last - s > kAhead) __builtin_prefetch(s[kAhead].entry);
    LoadChunk(depth, s);
  }
  std::sort(first, last);
  for (Sortable* run = first; run != last;) {
    Sortable* end = run + 1;
    while (end != last && end->SameChunk(*run)) ++end;
    if (end - run > 1) SortByKey(run, end, depth + kChunk);  // the keys go on
    run = end;
  }
}

// Where to cut `order` so that every key before the cut begins with a
// lower byte than every key after it, the two parts as even as the keys'
// first bytes allow; moves the entries so. Returns the cut.
size_t CutByFirstByte(std::vector<Sortable, HugePageAllocator<Sortable>>* order) {
  auto first = [](const Sortable& s) {
    std::string_view k = s.entry->key();
    return k.empty() ? 0 : static_cast<unsigned char>(k[0]) + 1;  // the empty key first
  };
  std::array<size_t, 257> count{};
  for (size_t i = 0; i < order->size(); ++i) {
    if (i + kAhead < order->size()) __builtin_prefetch((*order)[i + kAhead].entry);
    ++count[first((*order)[i])];
  }
  const size_t half = order->size() / 2;
  size_t below = 0, split = 0;
  while (split < count.size() && below + count[split] <= half) below += count[split++];
  if (split == count.size()) return order->size();
  if (below + count[split] - half < half - below) ++split;  // the nearer cut to the middle
  auto mid = std::partition(order->begin(), order->end(),
                            [&](const Sortable& s) { return first(s) < static_cast<int>(split); });
  return static_cast<size_t>(mid - order->begin());
}

// Sorts `table`'s entries by key and calls emit(i, entry) for the i-th,
// each i once (from two threads, on disjoint ranges, for a table of
// kTwoThreadKeys entries or more: a rebuild's final commit, when the other
// folds are mostly done).
template <typename Emit>
void SortTable(const StateTable& table, Emit emit) {
  std::vector<Sortable, HugePageAllocator<Sortable>> order;  // a rebuild's: ~100 MiB
  order.reserve(table.size());
  table.ForEach([&](const StateTable::Entry& e) { order.push_back(Sortable{0, 0, 0, &e}); });
  // [from, to) of `order` sorted, then emitted.
  auto sort_part = [&](size_t from, size_t to) {
    SortByKey(order.data() + from, order.data() + to, 0);
    for (size_t i = from; i < to; ++i) {
      if (i + kAhead < to) __builtin_prefetch(order[i + kAhead].entry);
      emit(i, *order[i].entry);
    }
  };
  const size_t cut = order.size() < kTwoThreadKeys ? 0 : CutByFirstByte(&order);
  if (cut == 0 || cut == order.size()) {  // small, or one first byte: no cut
    sort_part(0, order.size());
    return;
  }
  JoiningThread other([&] { sort_part(cut, order.size()); });
  sort_part(0, cut);
}

}  // namespace

StateEntryRefs ProjectionState::SortedEntries() const {
  StateEntryRefs refs;
  // One more than the entries: a rebuild's commit inserts its layout mark
  // (runner_rebuild.cc) without moving millions of them.
  refs.reserve(overlay_.size() + 1);
  refs.resize(overlay_.size());
  SortTable(overlay_, [&](size_t i, const StateTable::Entry& e) {
    std::optional<std::string_view> v = e.value();
    refs[i] = StateEntryRef{e.key(), v.value_or(std::string_view()), !v};
  });
  return refs;
}

namespace {
// Overlays smaller than this are always walked.
constexpr size_t kScanIndexFrom = 1 << 14;
// Scans walk a big overlay until they have read this many times its size
// (sorting it costs about that much): a rebuild with one erasure never
// sorts, one with many sorts once.
constexpr size_t kWalksBeforeIndex = 4;

// `*into` and the sorted `more`, merged in order into `*into`.
void MergeSorted(std::vector<std::string_view>* into, const std::vector<std::string_view>& more) {
  std::vector<std::string_view> merged;
  merged.reserve(into->size() + more.size());
  std::merge(into->begin(), into->end(), more.begin(), more.end(), std::back_inserter(merged));
  into->swap(merged);
}
}  // namespace

bool ProjectionState::UpdateScanIndex() {
  ScanIndex& x = scan_index_;
  if (!x.built) {
    if (overlay_.size() < kScanIndexFrom) return false;
    x.walked += overlay_.size();
    if (x.walked < kWalksBeforeIndex * overlay_.size()) return false;
    x.big.resize(overlay_.size());
    SortTable(overlay_, [&](size_t i, const StateTable::Entry& e) { x.big[i] = e.key(); });
    overlay_.NewKeys()->clear();
    overlay_.TrackNewKeys();
    x.built = true;
    return true;
  }
  std::vector<std::string_view>* fresh = overlay_.NewKeys();
  if (!fresh->empty()) {
    std::sort(fresh->begin(), fresh->end());
    MergeSorted(&x.small, *fresh);
    fresh->clear();
  }
  if (x.small.size() > x.big.size() / 8) {
    MergeSorted(&x.big, x.small);
    x.small.clear();
  }
  return true;
}

std::vector<std::pair<std::string, std::string>> ProjectionState::Scan(std::string_view prefix) {
  std::map<std::string, std::string, std::less<>> found;
  if (scan_) {
    Status s = scan_(prefix, [&](std::string_view k, std::string_view v) {
      found.emplace(std::string(k), std::string(v));
      return true;
    });
    if (!s.ok() && status_.ok()) status_ = s;
  }
  // The overlay's entry for `k` over the base's.
  auto apply = [&](std::string_view k, const StateTable::Entry& e) {
    if (std::optional<std::string_view> v = e.value()) {
      found[std::string(k)] = std::string(*v);
    } else {
      auto it = found.find(k);
      if (it != found.end()) found.erase(it);
    }
  };
  if (UpdateScanIndex()) {
    for (const std::vector<std::string_view>* level : {&scan_index_.big, &scan_index_.small}) {
      for (auto it = std::lower_bound(level->begin(), level->end(), prefix);
           it != level->end() && it->substr(0, prefix.size()) == prefix; ++it)
        apply(*it, *overlay_.Find(*it));  // the entry now: a value that grew moved it
    }
  } else {
    overlay_.ForEach([&](const StateTable::Entry& e) {
      if (e.key().substr(0, prefix.size()) == prefix) apply(e.key(), e);
    });
  }
  return {found.begin(), found.end()};
}

}  // namespace dfm
