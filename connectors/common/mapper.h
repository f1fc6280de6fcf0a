// Inbound mappers: a connector's reading of its vendor's webhooks into
// normalized facts. Pure functions of the stored webhook (no I/O), so the
// router, `dfm replay` and the tests all read a webhook the same way.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <simdjson.h>

#include "connectors/common/webhook_source.h"
#include "events/webhook_received.h"
#include "sync/fact.h"
#include "sync/normalize.h"
#include "util/status.h"

namespace dfm {

struct MapperSettings {
  const Normalizer* normalizer = nullptr;
  // The system's own configuration table for the webhook's tenant (every
  // key of its connector, defaults filled in), or null: its defaults. A
  // mapper reads its options here (e.g. Aloware's contact event names).
  const SystemSettings* system = nullptr;
  // The table's `key`, or `fallback` without a table.
  std::string Get(std::string_view key, std::string_view fallback) const;
};

// Where a tool finds each (tenant, system)'s MapperSettings: one for every
// tenant and system (a pointer, which must outlive it), or a function of
// them (the configuration's tables, config/config.h MapperSettingsFor).
class MapperSource {
 public:
  using Fn = std::function<MapperSettings(const std::string& tenant, const std::string& system)>;
  MapperSource() = default;
  MapperSource(const MapperSettings* all)  // NOLINT: implicit, as a plain pointer was
      : all_(all) {}
  MapperSource(Fn fn) : fn_(std::move(fn)) {}  // NOLINT
  explicit operator bool() const { return all_ != nullptr || static_cast<bool>(fn_); }
  MapperSettings For(const std::string& tenant, const std::string& system) const {
    return fn_ ? fn_(tenant, system) : *all_;
  }

 private:
  const MapperSettings* all_ = nullptr;
  Fn fn_;
};

// Appends the facts in the webhook (none for event types that carry no
// contact facts). InvalidArgument with a reason when the payload cannot be
// read: the router quarantines the webhook with that reason.
using InboundMapper = std::function<Status(const WebhookReceived&, const MapperSettings&,
                                           std::vector<ContactFact>*)>;

// A connector's mappers (connectors/connector.h: map_webhook, map_import;
// FindMapperFor finds the one for a logged event).

// Helpers shared by mappers.
struct JsonFieldMap {
  const char* json;   // the vendor's key
  const char* field;  // ours (sync/fact.h)
};
// Reads the plain fields of `map`, then the email and phone (normalized;
// an unreadable one is left out) into fact->fields. InvalidArgument when a
// field has a type that is neither string nor number.
Status ReadContactFields(const simdjson::dom::object& obj, const JsonFieldMap* map, size_t n,
                         const char* email_key, const char* phone_key, const MapperSettings& s,
                         ContactFact* fact);
// Sorted, de-duplicated, trimmed, lower-cased tags joined by '\n'.
std::string JoinTags(std::vector<std::string> tags);
// "a, b,c" -> {"a", "b", "c"}: trimmed, empty items dropped.
std::vector<std::string> SplitCommaList(std::string_view list);

}  // namespace dfm
