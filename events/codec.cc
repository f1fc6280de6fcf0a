#include "events/codec.h"

#include <cstring>

#include "util/coding.h"

namespace dfm {

namespace {
constexpr uint8_t kFlagSourceTime = 0x01;
constexpr uint8_t kFlagSealed = 0x02;  // payload: events/sealing.h

void PutId(std::string* dst, const EventId& id) { dst->append(id.AsBytes()); }

bool GetBytes(std::string_view* in, size_t n, uint8_t* out) {
  if (in->size() < n) return false;
  std::memcpy(out, in->data(), n);
  in->remove_prefix(n);
  return true;
}
}  // namespace

std::string EncodeRecord(const Event& e) {
  std::string out;
  out.reserve(128 + e.tenant.size() + e.stream.size() + e.type.size() + e.payload.size());
  out.push_back(static_cast<char>(kRecordFormatVersion));
  PutFixed64BE(&out, e.seq);
  PutId(&out, e.id);
  PutFixed64BE(&out, static_cast<uint64_t>(e.recorded_at_us));
  out.push_back(static_cast<char>((e.source_time_us ? kFlagSourceTime : 0) |
                                  (e.sealing != Event::Sealing::kClear ? kFlagSealed : 0)));
  if (e.source_time_us) PutFixed64BE(&out, static_cast<uint64_t>(*e.source_time_us));
  PutFixed16BE(&out, e.schema_version);
  PutLengthPrefixed(&out, e.tenant);
  PutLengthPrefixed(&out, e.stream);
  PutLengthPrefixed(&out, e.type);
  PutId(&out, e.causation_id);
  PutId(&out, e.correlation_id);
  out.append(reinterpret_cast<const char*>(e.prev_hash.data()), e.prev_hash.size());
  PutLengthPrefixed(&out, e.payload);
  return out;
}

Status DecodeRecord(std::string_view in, Event* e) {
  std::string_view payload;
  Status s = DecodeRecord(in, e, &payload);
  if (s.ok()) e->payload.assign(payload.data(), payload.size());
  return s;
}

Status DecodeRecord(std::string_view in, Event* e, std::string_view* payload) {
  if (in.empty()) return Status::Corruption("empty record");
  auto format = static_cast<uint8_t>(in[0]);
  in.remove_prefix(1);
  if (format != 1) {
    return Status::Corruption("unknown record format version " + std::to_string(format));
  }
  uint64_t u = 0;
  uint8_t flags = 0;
  bool ok = GetFixed64BE(&in, &e->seq) && GetBytes(&in, 16, e->id.bytes.data()) &&
            GetFixed64BE(&in, &u);
  if (!ok) return Status::Corruption("truncated record header");
  e->recorded_at_us = static_cast<int64_t>(u);
  if (!GetBytes(&in, 1, &flags)) return Status::Corruption("truncated record flags");
  if (flags & ~(kFlagSourceTime | kFlagSealed)) return Status::Corruption("unknown record flags");
  e->sealing = (flags & kFlagSealed) ? Event::Sealing::kSealed : Event::Sealing::kClear;
  e->source_time_us.reset();
  if (flags & kFlagSourceTime) {
    if (!GetFixed64BE(&in, &u)) return Status::Corruption("truncated source time");
    e->source_time_us = static_cast<int64_t>(u);
  }
  ok = GetFixed16BE(&in, &e->schema_version) && GetLengthPrefixed(&in, &e->tenant) &&
       GetLengthPrefixed(&in, &e->stream) && GetLengthPrefixed(&in, &e->type) &&
       GetBytes(&in, 16, e->causation_id.bytes.data()) &&
       GetBytes(&in, 16, e->correlation_id.bytes.data()) &&
       GetBytes(&in, 32, e->prev_hash.data()) && GetLengthPrefixed(&in, payload);
  if (!ok) return Status::Corruption("truncated record body");
  if (!in.empty()) return Status::Corruption("trailing bytes after record");
  return Status::OK();
}

}  // namespace dfm
