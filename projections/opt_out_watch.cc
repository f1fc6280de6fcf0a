#include "projections/opt_out_watch.h"

#include <algorithm>
#include <utility>

#include "events/codec.h"
#include "events/sealing.h"
#include "projections/audience_index.h"
#include "projections/sync_projections.h"
#include "sync/domain_event.h"

namespace dfm {

namespace {

std::string AnswerKey(std::string_view contact, std::string_view channel) {
  std::string k(contact);
  k.append("\n").append(channel);
  return k;
}

constexpr std::string_view kContactStream = "contact:";

}  // namespace

OptOutWatch::OptOutWatch(const EventLog* log, std::string tenant)
    : log_(log), tenant_(std::move(tenant)) {}

void OptOutWatch::Forget() {
  answers_.clear();
  by_address_.clear();
}

void OptOutWatch::ForgetContact(std::string_view contact) {
  for (const std::string& ch : channels_) answers_.erase(AnswerKey(contact, ch));
}

void OptOutWatch::ForgetAddress(const std::string& address) {
  auto [from, to] = by_address_.equal_range(address);
  for (auto it = from; it != to; ++it) answers_.erase(it->second);
  by_address_.erase(from, to);
}

Status OptOutWatch::Refresh() {
  uint64_t view = 0, registry = 0;
  Status s = log_->ReadCheckpoint(ContactViewProjection::kName, &view);
  if (s.ok()) s = log_->ReadCheckpoint(OptOutRegistryProjection::kName, &registry);
  if (!s.ok()) {
    Forget();
    primed_ = false;
    return s;
  }
  // Events through `both` are in both projections; those up to `either`
  // may be in one. Each is read (its answers forgotten) once `either`
  // passes it, and again once `both` does: an answer read in between may
  // hold one projection's word on it and not the other's.
  const uint64_t both = std::min(view, registry), either = std::max(view, registry);
  if (primed_ && both < through_) Forget();  // a projection folded again
  if (primed_ && either > through_) {
    if (answers_.empty() || either - through_ > kMaxTail) {
      Forget();
    } else if (!ReadTail(either)) {
      Forget();
      primed_ = false;
      return Status::Unavailable("the log's tail cannot be read now");
    }
  }
  through_ = both;
  primed_ = true;
  // Forgotten answers leave their address rows behind: drop them now and
  // then so the index stays the answers' size.
  if (by_address_.size() > 2 * answers_.size() + 1024) {
    by_address_.clear();
    for (const auto& [key, a] : answers_)
      if (!a.address.empty()) by_address_.emplace(a.address, key);
  }
  return Status::OK();
}

bool OptOutWatch::ReadTail(uint64_t until) {
  static const ContactViewProjection kView{};
  static const OptOutRegistryProjection kRegistry{};
  bool whole = false;  // forget everything
  Status s = log_->ScanRecords(through_ + 1, [&](uint64_t seq, std::string_view record) {
    if (seq > until) return false;
    Event e;
    std::string_view payload;
    if (!DecodeRecord(record, &e, &payload).ok()) return !(whole = true);
    if (!kView.Takes(e.type) && !kRegistry.Takes(e.type)) return true;
    if (e.type == kContactErasedType) return !(whole = true);  // rows forgotten by the fold
    if (e.stream.compare(0, kContactStream.size(), kContactStream) == 0)
      ForgetContact(std::string_view(e.stream).substr(kContactStream.size()));
    if (e.tenant != tenant_ && !kView.Takes(e.type)) return true;  // another's registry
    e.payload.reserve(payload.size() + kDecodePadding);
    e.payload.assign(payload.data(), payload.size());
    // A key not read now leaves it sealed: forgotten below, as unreadable.
    if (e.sealing == Event::Sealing::kSealed) (void)log_->Unseal(&e);
    DomainEvent d;
    // Unreadable now (its key destroyed since the fold, say): what it
    // changed is not known, so nothing is kept.
    if (!AsDomainEvent(e, &d)) return !(whole = true);
    ForgetContact(d.contact_id);
    for (const auto& [field, value] : d.fields)
      if (!value.empty()) ForgetAddress(value);
    for (const auto& change : d.changes) {
      if (!change.old_value.empty()) ForgetAddress(change.old_value);
      if (!change.new_value.empty()) ForgetAddress(change.new_value);
    }
    return true;
  });
  if (!s.ok()) return false;
  if (whole) Forget();
  return true;
}

bool OptOutWatch::OptedOut(const std::string& contact, std::string_view channel) {
  // Asked for every waiting task at each tick: the key is built in a kept
  // buffer, a copy made only for an answer remembered.
  key_.assign(contact).append("\n").append(channel);
  if (auto it = answers_.find(key_); it != answers_.end()) return it->second.out;
  std::string key = key_;
  Answer a;
  if (!ReadContactOptOut(*log_, tenant_, contact, std::string(channel), &a.address, &a.out).ok())
    return false;
  const bool out = a.out;
  if (primed_) {
    channels_.emplace(channel);
    if (!a.address.empty()) by_address_.emplace(a.address, key);
    answers_.emplace(std::move(key), std::move(a));
  }
  return out;
}

}  // namespace dfm
