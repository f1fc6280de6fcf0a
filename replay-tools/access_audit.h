// `dfm audit access [--since T] [--key K] [--json]`: the access log's
// records (storage/access_log.h), oldest first; safe while the service runs.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

namespace dfm {

// Prints the records at or after `since_us` (0: all) whose key id is `key`
// (empty: every one; "none": calls without a valid credential): a table,
// or JSON lines. Damaged lines are counted on `err`. Returns 0, or 2 when
// the log cannot be read.
int RunAccessAudit(const std::string& data_dir, int64_t since_us, const std::string& key, bool json,
                   std::ostream& out, std::ostream& err);

}  // namespace dfm
