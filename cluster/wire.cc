#include "cluster/wire.h"

#include "util/coding.h"

namespace dfm {

namespace {
constexpr char kVersion = 1;
constexpr char kSealedDraftVersion = 2;
constexpr char kDraftBatchVersion = 3;

Status Bad(const char* what) { return Status::InvalidArgument(std::string("frame: ") + what); }
}  // namespace

uint32_t PartitionOf(std::string_view tenant, uint32_t partitions) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : tenant) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return static_cast<uint32_t>(h % (partitions == 0 ? 1 : partitions));
}

std::string EncodeDraft(const EventDraft& d, bool sealed) {
  std::string out(1, sealed ? kSealedDraftVersion : kVersion);
  PutLengthPrefixed(&out, d.tenant);
  PutLengthPrefixed(&out, d.stream);
  PutLengthPrefixed(&out, d.type);
  PutVarint64(&out, d.schema_version);
  PutVarint64(&out, d.source_time_us ? 1 : 0);
  if (d.source_time_us) PutFixed64BE(&out, static_cast<uint64_t>(*d.source_time_us));
  PutLengthPrefixed(&out, d.causation_id.AsBytes());
  PutLengthPrefixed(&out, d.correlation_id.AsBytes());
  PutLengthPrefixed(&out, d.id.AsBytes());
  PutLengthPrefixed(&out, d.idempotency_system);
  PutLengthPrefixed(&out, d.idempotency_key);
  PutLengthPrefixed(&out, d.payload);
  return out;
}

Status DecodeDraft(std::string_view in, EventDraft* d, bool* sealed) {
  if (in.empty() || (in[0] != kVersion && in[0] != kSealedDraftVersion)) return Bad("unknown draft version");
  if (sealed) *sealed = in[0] == kSealedDraftVersion;
  in.remove_prefix(1);
  uint64_t schema = 0, has_src = 0, src = 0;
  std::string_view causation, correlation, id;
  if (!GetLengthPrefixed(&in, &d->tenant) || !GetLengthPrefixed(&in, &d->stream) ||
      !GetLengthPrefixed(&in, &d->type) || !GetVarint64(&in, &schema) || schema > 0xFFFF ||
      !GetVarint64(&in, &has_src) || has_src > 1)
    return Bad("draft cut short");
  if (has_src && !GetFixed64BE(&in, &src)) return Bad("draft cut short");
  if (!GetLengthPrefixed(&in, &causation) || causation.size() != 16 ||
      !GetLengthPrefixed(&in, &correlation) || correlation.size() != 16 ||
      !GetLengthPrefixed(&in, &id) || id.size() != 16 ||
      !GetLengthPrefixed(&in, &d->idempotency_system) ||
      !GetLengthPrefixed(&in, &d->idempotency_key) || !GetLengthPrefixed(&in, &d->payload))
    return Bad("draft cut short");
  if (!in.empty()) return Bad("bytes after the draft");
  d->schema_version = static_cast<uint16_t>(schema);
  d->source_time_us.reset();
  if (has_src) d->source_time_us = static_cast<int64_t>(src);
  d->causation_id = EventId::FromBytes(causation);
  d->correlation_id = EventId::FromBytes(correlation);
  d->id = EventId::FromBytes(id);
  return Status::OK();
}

std::string EncodeDraftBatch(const std::vector<std::string>& frames) {
  size_t bytes = 8;
  for (const auto& f : frames) bytes += f.size() + 4;
  std::string out;
  out.reserve(bytes);
  out.push_back(kDraftBatchVersion);
  PutVarint64(&out, frames.size());
  for (const auto& f : frames) PutLengthPrefixed(&out, f);
  return out;
}

Status DecodeDrafts(std::string_view in, std::vector<TakenDraft>* out) {
  out->clear();
  if (in.empty() || in[0] != kDraftBatchVersion) {
    out->emplace_back();
    return DecodeDraft(in, &out->back().draft, &out->back().sealed);
  }
  in.remove_prefix(1);
  uint64_t count = 0;
  if (!GetVarint64(&in, &count) || count < 2 || count > in.size()) return Bad("draft batch cut short");
  // Grown as they decode: a damaged count costs nothing up front.
  for (uint64_t i = 0; i < count; ++i) {
    std::string_view frame;
    if (!GetLengthPrefixed(&in, &frame)) return Bad("draft batch cut short");
    out->emplace_back();
    Status s = DecodeDraft(frame, &out->back().draft, &out->back().sealed);
    if (!s.ok()) return s;
  }
  if (!in.empty()) return Bad("bytes after the draft batch");
  return Status::OK();
}

bool WrittenByNewerBuild(std::string_view in) {
  if (in.empty()) return false;
  // Up to 15: a damaged message is not taken for a newer one.
  const unsigned char version = static_cast<unsigned char>(in[0]);
  if (version > kDraftBatchVersion) return version <= 15;
  if (in[0] != kDraftBatchVersion) return false;
  // A batch whose frames all parse, one of them of a version after this
  // build's.
  in.remove_prefix(1);
  uint64_t count = 0;
  if (!GetVarint64(&in, &count) || count < 2 || count > in.size()) return false;
  bool newer = false;
  std::string_view frame;
  for (uint64_t i = 0; i < count; ++i) {
    if (!GetLengthPrefixed(&in, &frame)) return false;
    const unsigned char v = frame.empty() ? 0 : static_cast<unsigned char>(frame[0]);
    newer = newer || (v > kSealedDraftVersion && v <= 15);
  }
  return newer && in.empty();
}

std::string EncodeChunk(const LogChunk& c) {
  size_t bytes = 32 + c.writer.size();
  for (const auto& r : c.records) bytes += r.record.size() + r.idempotency_key.size() + 8;
  std::string out;
  out.reserve(bytes);
  out.push_back(kVersion);
  PutLengthPrefixed(&out, c.writer);
  PutVarint64(&out, c.lease_rev);
  PutVarint64(&out, c.records.size());
  for (const auto& r : c.records) {
    PutLengthPrefixed(&out, r.record);
    PutLengthPrefixed(&out, r.idempotency_key);
  }
  return out;
}

Status DecodeChunk(std::string_view in, LogChunk* c) {
  if (in.empty() || in[0] != kVersion) return Bad("unknown chunk version");
  in.remove_prefix(1);
  uint64_t count = 0;
  if (!GetLengthPrefixed(&in, &c->writer) || !GetVarint64(&in, &c->lease_rev) ||
      !GetVarint64(&in, &count) || count > in.size())
    return Bad("chunk cut short");
  c->records.clear();
  c->records.resize(static_cast<size_t>(count));
  for (auto& r : c->records)
    if (!GetLengthPrefixed(&in, &r.record) || !GetLengthPrefixed(&in, &r.idempotency_key))
      return Bad("chunk cut short");
  if (!in.empty()) return Bad("bytes after the chunk");
  return Status::OK();
}

std::string EncodeSeenAsk(const SeenAsk& a) {
  std::string out(1, kVersion);
  PutVarint64(&out, a.keys.size());
  for (const auto& k : a.keys) {
    PutLengthPrefixed(&out, k.tenant);
    PutLengthPrefixed(&out, k.system);
    PutLengthPrefixed(&out, k.key);
  }
  return out;
}

Status DecodeSeenAsk(std::string_view in, SeenAsk* a) {
  if (in.empty() || in[0] != kVersion) return Bad("unknown ask version");
  in.remove_prefix(1);
  uint64_t count = 0;
  if (!GetVarint64(&in, &count) || count > in.size()) return Bad("ask cut short");
  a->keys.clear();
  for (uint64_t i = 0; i < count; ++i) {
    SeenKey& k = a->keys.emplace_back();
    if (!GetLengthPrefixed(&in, &k.tenant) || !GetLengthPrefixed(&in, &k.system) ||
        !GetLengthPrefixed(&in, &k.key))
      return Bad("ask cut short");
  }
  if (!in.empty()) return Bad("bytes after the ask");
  return Status::OK();
}

std::string EncodeSeen(const std::vector<Seen>& answer) {
  std::string out(1, kVersion);
  PutVarint64(&out, answer.size());
  for (const auto& s : answer) {
    PutVarint64(&out, s.seq);
    if (s.seq != 0) PutLengthPrefixed(&out, s.id.AsBytes());
  }
  return out;
}

Status DecodeSeen(std::string_view in, std::vector<Seen>* answer) {
  if (in.empty() || in[0] != kVersion) return Bad("unknown answer version");
  in.remove_prefix(1);
  uint64_t count = 0;
  if (!GetVarint64(&in, &count) || count > in.size()) return Bad("answer cut short");
  answer->clear();
  for (uint64_t i = 0; i < count; ++i) {
    Seen& s = answer->emplace_back();
    std::string_view id;
    if (!GetVarint64(&in, &s.seq)) return Bad("answer cut short");
    if (s.seq == 0) continue;
    if (!GetLengthPrefixed(&in, &id) || id.size() != 16) return Bad("answer cut short");
    s.id = EventId::FromBytes(id);
  }
  if (!in.empty()) return Bad("bytes after the answer");
  return Status::OK();
}

}  // namespace dfm
