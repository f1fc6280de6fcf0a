#include "projections/projection.h"

#include <algorithm>
#include <charconv>

namespace dfm {

namespace {
// Debian's Abseil has its own string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0).
absl::string_view K(std::string_view s) { return absl::string_view(s.data(), s.size()); }
}  // namespace

std::optional<std::string>& ProjectionState::Slot(std::string_view key) {
  auto [it, inserted] = overlay_.try_emplace(K(key));
  if (!inserted) return it->second;
  std::optional<std::string>& v = it->second;
  v.emplace();
  Status s = base_(key, &*v);
  if (!s.ok()) {
    if (!s.IsNotFound() && status_.ok()) status_ = s;
    v.reset();
  }
  return v;
}

std::optional<std::string> ProjectionState::Get(std::string_view key) {
  auto it = overlay_.find(K(key));
  if (it != overlay_.end()) return it->second;
  std::string v;
  Status s = base_(key, &v);
  if (s.ok()) return v;
  if (!s.IsNotFound() && status_.ok()) status_ = s;
  return std::nullopt;
}

const std::string* ProjectionState::Peek(std::string_view key) {
  auto it = overlay_.find(K(key));
  if (it != overlay_.end()) return it->second ? &*it->second : nullptr;
  Status s = base_(key, &peeked_);
  if (s.ok()) return &peeked_;
  if (!s.IsNotFound() && status_.ok()) status_ = s;
  return nullptr;
}

void ProjectionState::Put(std::string_view key, std::string value) {
  overlay_.try_emplace(K(key)).first->second = std::move(value);
}

void ProjectionState::Erase(std::string_view key) {
  overlay_.try_emplace(K(key)).first->second.reset();
}

void ProjectionState::Add(std::string_view key, int64_t delta) {
  std::optional<std::string>& v = Slot(key);
  int64_t n = 0;
  if (v) std::from_chars(v->data(), v->data() + v->size(), n);
  n += delta;
  if (n == 0) {
    v.reset();
    return;
  }
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), n);
  if (v) {
    v->assign(buf, end);
  } else {
    v.emplace(buf, end);
  }
}

std::vector<StateOp> ProjectionState::TakeOps() {
  std::vector<StateOp> ops;
  ops.reserve(overlay_.size());
  for (auto& [k, v] : overlay_) {
    StateOp op;
    op.key = k;
    if (v) {
      op.value = std::move(*v);
    } else {
      op.erase = true;
    }
    ops.push_back(std::move(op));
  }
  overlay_.clear();
  std::sort(ops.begin(), ops.end(),
            [](const StateOp& a, const StateOp& b) { return a.key < b.key; });
  return ops;
}

void Projection::Fold(const Event& e, ProjectionState* state) {
  if (!Uses(e.type)) return;
  DomainEvent d;
  bool decoded = AsDomainEvent(e, &d);
  FoldDecoded(e, decoded ? &d : nullptr, state);
}

std::vector<StateEntryRef> ProjectionState::SortedEntries() const {
  std::vector<StateEntryRef> refs;
  refs.reserve(overlay_.size());
  for (const auto& [k, v] : overlay_)
    refs.push_back(StateEntryRef{std::string_view(k), v ? &*v : nullptr});
  std::sort(refs.begin(), refs.end(),
            [](const StateEntryRef& a, const StateEntryRef& b) { return a.key < b.key; });
  return refs;
}

}  // namespace dfm
