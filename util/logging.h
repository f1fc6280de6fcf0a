// Logging: one named spdlog logger per module, level from SPDLOG_LEVEL or the
// config, lines of key=value pairs. Personal data (phones, emails, message
// bodies) never reaches a log unmasked: use the Mask* helpers.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

namespace dfm {

// Sets up the default sink (stderr, async with a bounded queue that drops the
// oldest lines under overload rather than stall the service) and the level.
void InitLogging(std::string_view level);

// The logger for a module ("http", "storage", ...), created on first use.
std::shared_ptr<spdlog::logger> Logger(const std::string& module);

// "+1205*****42": keeps the country code's first digits and the last two.
std::string MaskPhone(std::string_view phone);
// "j***@example.com".
std::string MaskEmail(std::string_view email);
// "<37 bytes>".
std::string MaskBody(std::string_view body);
// `text` (a vendor's id, which may be a phone: WhatsApp's wa_id, Genesys's
// channel id) with each run of 7 or more digits kept to its first two and
// last two: "p:16*******34:marketing_messages:stop".
std::string MaskDigitRuns(std::string_view text);

// Text a caller or a vendor chose (a path, a header's value, an error
// message quoting them), made safe inside a quoted log value: `"` and `\`
// escaped with `\`, every other byte outside printable ASCII as \xHH, and
// cut to `max` bytes ("..." after). A log line keeps the fields its code
// wrote, whatever the text holds.
std::string LogText(std::string_view text, size_t max = 200);

}  // namespace dfm
