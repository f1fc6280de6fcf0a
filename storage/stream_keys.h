// The keys of the log's streams column family (docs/event-format.md):
//
//   key = string(tenant) string(stream) seq     ; string: varint length, bytes
//                                                ; seq: 8 bytes, big-endian
//
// and how its memtable files them.
#pragma once

#include <string>
#include <string_view>

namespace rocksdb {
class SliceTransform;
}

namespace dfm {

// string(tenant) string(stream): every key of the stream begins with it.
std::string StreamPrefix(std::string_view tenant, std::string_view stream);

// For ColumnFamilyOptions::memtable_insert_with_hint_prefix_extractor: a
// key's stream (the key without its last 8 bytes). A stream's keys are
// written in sequence order, so the memtable keeps, per stream, where its
// last key went and files the next one from there instead of searching
// the skip list from its top: a contact's stream among 10,000 costs about
// half (bench/README.md (b), "Stages, one at a time"). Hints are used only
// while memtable writes are not concurrent (allow_concurrent_memtable_write
// off). Each stream a memtable takes keys of costs it ~250 bytes for its
// hint, so a memtable of many streams with few keys each fills (and is
// flushed) sooner. Only the memtable uses it: the table files have no
// prefix extractor, and nothing about it is stored.
const rocksdb::SliceTransform* NewStreamInsertHint();

}  // namespace dfm
