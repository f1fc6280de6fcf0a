#include "projections/projection.h"

namespace dfm {

std::optional<std::string> ProjectionState::Get(std::string_view key) {
  auto it = overlay_.find(key);
  if (it != overlay_.end()) return it->second;
  std::string v;
  Status s = base_(key, &v);
  if (s.ok()) return v;
  if (!s.IsNotFound() && status_.ok()) status_ = s;
  return std::nullopt;
}

void ProjectionState::Put(std::string_view key, std::string value) {
  overlay_[std::string(key)] = std::move(value);
}

void ProjectionState::Erase(std::string_view key) { overlay_[std::string(key)] = std::nullopt; }

void ProjectionState::Add(std::string_view key, int64_t delta) {
  int64_t n = 0;
  if (auto v = Get(key)) n = std::strtoll(v->c_str(), nullptr, 10);
  n += delta;
  if (n == 0) {
    Erase(key);
  } else {
    Put(key, std::to_string(n));
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
  return ops;
}

}  // namespace dfm
