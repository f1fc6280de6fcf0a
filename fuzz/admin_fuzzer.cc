// libFuzzer target: the admin API's request bodies (POST /v1/admin/keys,
// /v1/admin/replay, /v1/admin/conflicts/.../settle) and the key events
// the registry reads back from the log. The first byte picks which.
#include <cstddef>
#include <cstdint>
#include <string>

#include "console/api_keys.h"
#include "sync/redrive.h"
#include "sync/settle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      dfm::NewKeyRequest k;
      (void)dfm::DecodeNewKeyRequest(body, &k);
      break;
    }
    case 1: {
      dfm::ReplayRequest r;
      (void)dfm::DecodeReplayRequest(body, &r);
      break;
    }
    case 2: {
      dfm::SettleRequest s;
      (void)dfm::DecodeSettleRequest(body, &s);
      break;
    }
    default: {
      dfm::ApiKeyRegistry keys;
      dfm::Event e;
      e.type = std::string(data[0] & 4 ? dfm::kApiKeyCreated : dfm::kApiKeyRevoked);
      e.payload = std::string(body);
      (void)keys.Apply(e);
      (void)keys.Apply(e);  // the same event twice: refused, not a second key
      break;
    }
  }
  return 0;
}
