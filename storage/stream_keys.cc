#include "storage/stream_keys.h"

#include <rocksdb/slice_transform.h>

#include "util/coding.h"

namespace dfm {

std::string StreamPrefix(std::string_view tenant, std::string_view stream) {
  std::string k;
  PutLengthPrefixed(&k, tenant);
  PutLengthPrefixed(&k, stream);
  return k;
}

namespace {

class StreamOfKey : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "dfm.StreamOfKey"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - 8);
  }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() > 8; }
};

}  // namespace

const rocksdb::SliceTransform* NewStreamInsertHint() { return new StreamOfKey; }

}  // namespace dfm
