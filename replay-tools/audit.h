// `dfm audit ...`: the opt-out history, violations and the hash-chain
// summary that compliance auditors are handed. Read-only. Audit output
// carries phone numbers and emails unmasked: it is the record the auditor
// asked for, not a log.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "storage/event_log.h"

namespace dfm {

struct OptOutAuditOptions {
  std::string phone;                   // E.164; empty: every one
  std::string email;                   // lower case; empty: every one
  // [since_us, until_us): when it happened, as its source stated it (the
  // provider's time, else when recorded); 0: unbounded.
  int64_t since_us = 0, until_us = 0;
  std::string tenant;
  // sync.email_plus_addressing = "same": `email` finds its plus addresses
  // too ("ann@x.com" the rows of "ann+news@x.com", and back), as the
  // engine matches them (sync/identity.h, FoldedEmail); also the rows of
  // a contact who holds one of them exactly, whom matching keeps apart.
  bool fold_plus_addressing = false;
};

// One opt-out or opt-in, with who was told and when.
struct ConsentRecord {
  std::string tenant, contact_id, status;  // status: "opt_out" | "opt_in"
  std::string channel, source_system, reason, cause, phone, email;
  // Who made it: "person", "staff", "carrier" (docs/sync-rules.md).
  std::string actor;
  int64_t at_us = 0;           // when it happened (source time, else recorded)
  int64_t recorded_us = 0;     // when the engine recorded it
  std::string cause_event_id;  // the webhook that carried it
  std::string event_id, record_sha256;
  uint64_t seq = 0;
  struct Told {
    std::string system;
    // "succeeded", "dead", "pending", "refused" (open), "withdrawn" (the
    // person opted in again before the system took it). A push superseded
    // by a later one (a repeated STOP) has that one's state.
    std::string state;
    int64_t at_us = 0;  // when it succeeded (withdrawn: when it was taken back)
  };
  std::vector<Told> told;
  // Its person erased (docs/privacy.md): the row says only that an opt-out
  // or opt-in was recorded then, under that contact (channel, phone,
  // email, source and who was told are gone with the person).
  bool erased = false;
};

Status CollectConsentRecords(const EventLog& log, const OptOutAuditOptions& options,
                             std::vector<ConsentRecord>* out);

// csv: a header line, then one line per record (RFC 4180 quoting); json: one
// object per line. Returns the exit code.
int PrintConsentRecords(const std::vector<ConsentRecord>& records, const std::string& format,
                        std::ostream& out, std::ostream& err);

struct ViolationOptions {
  int threshold_business_days = 10;  // the FCC rule's ten business days
  int64_t now_us = 0;                // opt-outs not yet everywhere are measured to now
  std::string tenant;
};

struct Violation {
  // "campaign_quiet_hours" (campaign_audit.h) |
  // "outbound_while_opted_out" | "delivered_after_opt_out" (a text already on
  // the wire when the opt-out came, delivered after it) | "slow_opt_out" |
  // "opt_out_refused" (a system refused it: open, tried again)
  std::string kind;
  std::string tenant, contact_id, phone, channel;
  std::string email;  // an email's address (phone: a text's or a call's number)
  int64_t at_us = 0;  // the message's time, or the opt-out's
  int64_t opted_out_at_us = 0;
  int64_t delivered_at_us = 0;  // delivered_after_opt_out: when it was delivered
  std::string message_key;
  std::vector<std::string> systems;  // where the message was seen / systems told late or never
  // "sent by the engine through S", "observed in S", or "not everywhere
  // within N business days (M)"
  std::string how;
  std::string event_id;  // the event that shows it
  int business_days = 0;
};

Status FindViolations(const EventLog& log, const ViolationOptions& options,
                      std::vector<Violation>* out);
// Returns the exit code: 0 none, 1 some found.
int PrintViolations(const std::vector<Violation>& v, bool json, std::ostream& out);

// Weekdays (Monday to Friday, UTC) after the day of `from_us` up to and
// including the day of `to_us`: a Friday opt-out told on Monday took 1.
int BusinessDaysBetween(int64_t from_us, int64_t to_us);

// `dfm audit verify [--against FILE]`: walks the hash chain and prints a
// summary (first and last sequence, head hash, counts by type, first and last
// recorded time). With a summary kept from an earlier run, also checks that
// the log still holds exactly that prefix: the record at its last sequence
// hashes to its head hash and the counts up to it agree. Returns the exit
// code (0 intact and matching, 1 not, 2 error).
int RunAuditVerify(const EventLog& log, const std::string& against_json, bool json,
                   std::ostream& out, std::ostream& err);

}  // namespace dfm
