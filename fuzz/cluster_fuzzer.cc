// libFuzzer target: the frames cluster mode reads from NATS JetStream
// (cluster/wire.h): a webhook draft of the ingest stream and a chunk of a
// partition's log. A damaged frame is refused with a status, never a
// crash, and one that decodes encodes back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cluster/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  dfm::EventDraft d;
  if (dfm::DecodeDraft(in, &d).ok() && dfm::EncodeDraft(d) != in) {
    // Varints have one shortest form; a longer one decodes too, so compare decoded.
    dfm::EventDraft again;
    if (!dfm::DecodeDraft(dfm::EncodeDraft(d), &again).ok() || again.payload != d.payload ||
        again.tenant != d.tenant || again.idempotency_key != d.idempotency_key)
      abort();
  }
  dfm::LogChunk c;
  if (dfm::DecodeChunk(in, &c).ok()) {
    dfm::LogChunk again;
    if (!dfm::DecodeChunk(dfm::EncodeChunk(c), &again).ok() ||
        again.records.size() != c.records.size() || again.writer != c.writer)
      abort();
  }
  (void)dfm::PartitionOf(in, static_cast<uint32_t>(size % 7 + 1));
  return 0;
}
