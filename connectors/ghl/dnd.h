// GoHighLevel's DND channels: its dndSettings keys and our channel names
// (sync/consent.h). Read by the mapper (ContactDndUpdate) and written by
// the client (opt_out / opt_in pushes).
#pragma once

#include "sync/consent.h"

namespace dfm::ghl {

struct DndChannel {
  const char* theirs;  // dndSettings key
  const char* ours;
};
inline constexpr DndChannel kDndChannels[] = {
    {"SMS", channels::kSms},           {"Call", channels::kCall}, {"Email", channels::kEmail},
    {"WhatsApp", channels::kWhatsApp}, {"GMB", "gmb"},            {"FB", "fb"},
};

}  // namespace dfm::ghl
