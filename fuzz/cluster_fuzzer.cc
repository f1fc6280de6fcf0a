// libFuzzer target: the frames cluster mode reads from NATS JetStream
// (cluster/wire.h): a message of the ingest stream (one webhook draft or a
// batch of them) and a chunk of a partition's log. A damaged frame is
// refused with a status, never a crash, and one that decodes encodes back
// to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

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
  std::vector<dfm::TakenDraft> drafts;
  if (dfm::DecodeDrafts(in, &drafts).ok() && drafts.size() > 1) {
    std::vector<std::string> frames;
    for (const auto& t : drafts) frames.push_back(dfm::EncodeDraft(t.draft, t.sealed));
    std::vector<dfm::TakenDraft> again;
    if (!dfm::DecodeDrafts(dfm::EncodeDraftBatch(frames), &again).ok() || again.size() != drafts.size())
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
