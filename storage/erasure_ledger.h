// The erasure ledger: every contact.erased event, also kept in a small file
// beside the log (docs/privacy.md, "Backups"). A backup holds the log and
// the key store as they were; an erasure made after it is in neither. At
// restore (app/backup.h) the ledger's erasures that the restored log lacks
// are appended to it again and their keys destroyed, so a restore never
// brings back an erased person.
//
// File `<data dir>/ERASURES`, mode 0600, appended to and synced per entry:
//
//   ledger  := header *entry
//   header  := "dfm-erasures" SP version LF
//   version := "1"
//   entry   := crc SP json LF
//   crc     := 8HEXDIG          ; CRC-32C of `json`, lower case
//   json    := {"tenant": str, "contact_id": str, "erased_seq": uint,
//                "erasure": <the contact.erased payload, sync/erasure.h>}
//
// `erased_seq` is where the event was in the log that wrote the entry (a
// restored log numbers on from the backup, so entries are matched by tenant
// and contact, never by it). A last line cut short by a crash (no LF, or a
// crc that does not match) is ignored: the event is in the log, and the
// service writes the entry again when it carries the erasure out at start
// (ApplyErasures). Pure file I/O: no RocksDB inside.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace dfm {

inline constexpr char kErasureLedgerFile[] = "ERASURES";

struct LedgerEntry {
  std::string tenant;
  std::string contact_id;
  uint64_t erased_seq = 0;
  std::string erasure;  // the contact.erased payload (JSON)
};

// "<data_dir>/ERASURES".
std::string ErasureLedgerPath(const std::string& data_dir);

// One entry's line, LF included, and back. Decode: Corruption when the
// line is not one whole entry.
std::string EncodeLedgerEntry(const LedgerEntry& e);
Status DecodeLedgerEntry(const std::string& line, LedgerEntry* out);

// The entries of the ledger at `path`, oldest first; none (OK) when there
// is no file. Corruption for a header of another format or version, or a
// damaged line that is not the last.
Status ReadErasureLedger(const std::string& path, std::vector<LedgerEntry>* out);

// Appends `entries` whose (tenant, contact_id) the ledger does not hold yet,
// synced before returning; creates the file (and syncs its directory) when
// missing. *added (may be null) counts them.
Status AddToErasureLedger(const std::string& path, const std::vector<LedgerEntry>& entries,
                          size_t* added = nullptr);

}  // namespace dfm
