// Reading an API body's fields into values, each problem said as a
// ValidationDetail ("steps[1].delay_s": "must be ..."), so one answer
// lists them all (campaign.h, customer.h). Pure.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "campaigns/campaign.h"

namespace dfm {

using Details = std::vector<ValidationDetail>;

// Whether `id` may name a campaign or customer: 1-64 of [A-Za-z0-9_.-].
bool GoodId(std::string_view id);
inline constexpr char kGoodIdProblem[] = "must be 1-64 letters, digits, '_', '-' or '.'";

// The body as an object; false (one detail, field "") when it is not one.
bool BodyObject(simdjson::dom::parser& parser, std::string_view json, simdjson::dom::object* o,
                Details* d);

// A string: absent is "" (a detail when `required`; then empty is one
// too); longer than `max` bytes is a detail. `field` names it in details.
std::string TextField(simdjson::dom::object o, const char* key, const std::string& field,
                      bool required, size_t max, Details* d);
// A list of non-empty strings; absent is empty.
std::vector<std::string> StringsField(simdjson::dom::object o, const char* key,
                                      const std::string& field, Details* d);
// A whole number from `lo` to `hi`; absent is `dflt`.
int64_t NumberField(simdjson::dom::object o, const char* key, int64_t dflt, int64_t lo, int64_t hi,
                    const std::string& field, Details* d);
// true or false; absent is `dflt`.
bool FlagField(simdjson::dom::object o, const char* key, bool dflt, const std::string& field,
               Details* d);

}  // namespace dfm
