#include "app/backup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include "app/erase.h"
#include "events/sealing.h"
#include "replay-tools/log_commands.h"
#include "storage/durable_file.h"
#include "storage/erasure_ledger.h"
#include "storage/high_water.h"
#include "storage/key_store.h"
#include "storage/rocksdb_event_log.h"
#include "sync/domain_event.h"
#include "sync/erasure.h"
#include "util/crypto.h"
#include "util/json.h"

namespace dfm {
namespace {

namespace fs = std::filesystem;

std::string UtcStamp(int64_t now_us) {
  const time_t t = static_cast<time_t>(now_us / 1000000);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// Adds the entries of the ledger at `path` to `into`, by (tenant, contact).
Status Gather(const std::string& path, std::map<std::pair<std::string, std::string>, LedgerEntry>* into) {
  std::vector<LedgerEntry> entries;
  Status s = ReadErasureLedger(path, &entries);
  if (!s.ok()) return s;
  for (LedgerEntry& e : entries) into->emplace(std::make_pair(e.tenant, e.contact_id), std::move(e));
  return Status::OK();
}

// A RocksDB LOCK file locked as RocksDB locks it (fcntl, the whole file),
// by descriptor: renaming its directory does not touch it, and a service
// starting meanwhile finds it held and stops.
class HeldLock {
 public:
  HeldLock() = default;
  HeldLock(const HeldLock&) = delete;
  HeldLock& operator=(const HeldLock&) = delete;
  ~HeldLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  // OK when locked, or when there is no such file; Unavailable when held.
  Status Take(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd_ < 0) return Status::OK();
    struct flock f {};
    f.l_type = F_WRLCK;
    f.l_whence = SEEK_SET;
    if (::fcntl(fd_, F_SETLK, &f) == 0) return Status::OK();
    return Status::Unavailable("held");
  }

 private:
  int fd_ = -1;
};

// What a restore keeps of the data directory it replaces until the swap:
// the service's locks (the log's and the key store's, so no service starts
// on it meanwhile) and its owner and mode (the unit's StateDirectory, 0700).
struct Replaced {
  bool exists = false;  // data_dir exists, empty or not
  bool holds = false;   // and holds something
  struct stat st {};    // its owner and mode, when it exists
  HeldLock log_lock, keys_lock;
};

// Reads what the restore needs of the data directory, before it is
// replaced. Unavailable while a service holds it.
Status ReadReplaced(const std::string& data_dir, const RestoreOptions& o, RestoreReport* r,
                    std::map<std::pair<std::string, std::string>, LedgerEntry>* erasures,
                    Replaced* was) {
  std::error_code ec;
  was->exists = ::stat(data_dir.c_str(), &was->st) == 0;
  was->holds = was->exists && !fs::is_empty(data_dir, ec);
  if (!was->holds) return Status::OK();
  if (!o.replace)
    return Status::AlreadyExists(data_dir + " is not empty: stop the service, then restore with "
                                 "--replace (the directory is moved aside, not deleted)");
  if (!was->log_lock.Take(data_dir + "/LOCK").ok() ||
      !was->keys_lock.Take(KeyStorePath(data_dir) + "/LOCK").ok())
    return Status::Unavailable("a service holds " + data_dir + ": stop it first");
  if (!ReadHighWater(data_dir, &r->high_water_before).ok()) r->high_water_before = 0;
  return Gather(ErasureLedgerPath(data_dir), erasures);
}

// A restore's mark, <staging>.building beside `staging`: present from
// before `staging` is made until the directory it is exchanged with is
// moved aside. Empty while `staging` is built; the built `staging`'s
// inode number from just before the exchange (the two directories are on
// one file system, as the exchange requires; the device number is left
// out: it may change at a remount). Each change is durable
// (the parent directory synced). SetAsideLeftover reads it.
std::string BuildingMark(const std::string& staging) { return staging + ".building"; }

Status SyncParent(const std::string& path) {
  const std::string parent = fs::path(path).parent_path().string();
  return SyncDirectory(parent.empty() ? "." : parent);
}

// The inode number of `path`, or "" when it cannot be read.
std::string Identity(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return "";
  return std::to_string(st.st_ino);
}

// Marks `staging` (`identity`: "" while it is built).
Status Mark(const std::string& staging, const std::string& identity = "") {
  Status s = ReplaceFileDurably(BuildingMark(staging), identity);
  return s.ok() ? SyncParent(staging) : s;
}

Status Unmark(const std::string& staging) {
  std::error_code ec;
  fs::remove(BuildingMark(staging), ec);
  if (ec) return Status::IOError("cannot remove " + BuildingMark(staging) + ": " + ec.message());
  return SyncParent(staging);
}

// What an earlier restore that stopped half-way left at `staging`, told
// by its mark: removed when it is the restore's own directory (marked
// empty: half-built; or marked with its own identity: built, never put in
// place); else it is the data directory the exchange replaced (marked
// with another identity), or unknown (unmarked), and is moved aside, never
// deleted: it holds what that directory had acknowledged after its backup.
// An empty one is removed.
Status SetAsideLeftover(const std::string& staging, const std::string& data_dir,
                        const RestoreOptions& o, RestoreReport* r) {
  std::error_code ec;
  const bool marked = fs::exists(BuildingMark(staging), ec);
  std::string mark;
  if (marked) {
    std::ifstream in(BuildingMark(staging), std::ios::binary);
    if (!in) return Status::IOError("cannot read " + BuildingMark(staging));
    mark.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (fs::exists(staging, ec) || fs::is_symlink(staging, ec)) {
    const bool ours = marked && (mark.empty() || mark == Identity(staging));
    if (ours || fs::is_empty(staging, ec)) {
      fs::remove_all(staging, ec);
      if (ec) return Status::IOError("cannot remove " + staging + ": " + ec.message());
    } else {
      const std::string aside = data_dir + ".replaced-earlier-" + UtcStamp(o.now_us);
      fs::rename(staging, aside, ec);
      if (ec)
        return Status::IOError(staging + " holds the data directory an earlier restore replaced; " +
                               "it cannot be moved to " + aside + ": " + ec.message());
      r->earlier_aside = aside;
    }
  }
  return marked ? Unmark(staging) : SyncParent(staging);
}

// Puts the restored directory `staging` in place of `data_dir` in one step
// (exchanged: there is always a data directory), then moves the replaced
// one aside (or removes it, empty) and syncs their parent; the mark goes
// last (kept when the replaced one could not be moved: the next restore
// moves it).
Status SwapIn(const std::string& staging, const std::string& data_dir, const Replaced& was,
              const RestoreOptions& o, RestoreReport* r) {
  const bool exchanged = was.exists;
  Status s = Mark(staging, Identity(staging));
  if (!s.ok()) return s;
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, data_dir.c_str(),
                  exchanged ? RENAME_EXCHANGE : 0) != 0)
    return Status::IOError("the restored directory is " + staging +
                           "; it cannot be put in place of " + data_dir + ": " +
                           std::strerror(errno));
  std::error_code ec;
  if (was.holds) {
    r->moved_aside = data_dir + ".replaced-" + UtcStamp(o.now_us);
    fs::rename(staging, r->moved_aside, ec);
    if (ec) r->moved_aside = staging;  // aside all the same, under that name
  } else if (exchanged) {
    fs::remove(staging, ec);  // the empty one
  }
  s = SyncParent(data_dir);
  if (s.ok() && !ec) s = Unmark(staging);
  return s;
}

// Whether the contact's stream holds its contact.erased (*found); not OK
// when the stream could not be read.
Status StreamHasErasure(const EventLog& log, const LedgerEntry& e, bool* found) {
  *found = false;
  return log.ScanStream(e.tenant, ContactStream(e.contact_id), [found](const Event& ev) {
    *found = ev.type == kContactErasedType;
    return !*found;
  });
}

// Appends the erasures the restored log lacks; *max_key: the highest key
// number any erasure names.
Status AppendMissing(EventLog* log, const std::map<std::pair<std::string, std::string>, LedgerEntry>& all,
                     size_t* appended, uint64_t* max_key) {
  for (const auto& [who, e] : all) {
    Erasure er;
    if (!DecodeErasure(e.erasure, &er).ok()) continue;
    for (uint64_t k : er.keys) *max_key = std::max(*max_key, k);
    bool erased = false;
    if (Status s = StreamHasErasure(*log, e, &erased); !s.ok()) return s;
    if (erased) continue;
    EventDraft d;
    d.tenant = e.tenant;
    d.stream = ContactStream(e.contact_id);
    d.type = std::string(kContactErasedType);
    d.payload = e.erasure;
    d.idempotency_system = kDecisionKeySystem;
    d.idempotency_key = "erase/" + e.contact_id;
    AppendOutcome out;
    Status s = log->Append(std::move(d), &out);
    if (!s.ok()) return s;
    ++*appended;
  }
  return Status::OK();
}

Status RecordRestore(EventLog* log, RestoreReport* r) {
  EventDraft d;
  d.tenant = "default";
  d.stream = kLogStream;
  d.type = kLogRestoredType;
  JsonObject p;
  p.UInt("backup_id", r->backup.id)
      .Int("backup_created_at_us", r->backup.created_at_us)
      .UInt("backup_last_seq", r->backup.last_seq)
      .Str("backup_head_hash", r->backup.head_hash)
      .UInt("high_water_before", r->high_water_before);
  if (r->lost_to != 0) p.UInt("lost_from", r->lost_from).UInt("lost_to", r->lost_to);
  d.payload = p.UInt("erasures_appended", r->erasures_appended).Finish();
  AppendOutcome out;
  Status s = log->Append(std::move(d), &out);
  r->restored_seq = out.seq;
  return s;
}

// Restores backup o.id into `dir` (which must not exist), re-applies every
// erasure the ledgers know and records the restore in its log.
Status RestoreInto(const std::string& backup_dir, const std::string& dir, const RestoreOptions& o,
                   const std::map<std::pair<std::string, std::string>, LedgerEntry>& erasures,
                   const Replaced& was, RestoreReport* r) {
  Status s = RestoreBackupFiles(backup_dir, o.id, dir, &r->backup);
  if (!s.ok()) return s;
  if (was.exists) {  // the replaced directory's owner and mode; its files follow at the close
    if (::chown(dir.c_str(), was.st.st_uid, was.st.st_gid) != 0 ||
        ::chmod(dir.c_str(), was.st.st_mode & 07777) != 0)
      return Status::IOError("cannot give " + dir +
                             " the owner and mode of the data directory: " + std::strerror(errno));
  }
  std::vector<LedgerEntry> ledger;
  for (const auto& [who, e] : erasures) ledger.push_back(e);
  s = AddToErasureLedger(ErasureLedgerPath(dir), ledger);
  if (!s.ok()) return s;
  std::unique_ptr<RocksDbKeyStore> ks;
  s = RocksDbKeyStore::Open(KeyStorePath(dir), false, &ks);
  if (!s.ok()) return s;
  std::shared_ptr<RocksDbKeyStore> keys = std::move(ks);
  // The key store's copy may be newer than the log's: carry out every
  // erasure from the log's end on.
  if (keys->ErasuresThrough() > r->backup.last_seq) s = keys->SetErasuresThrough(r->backup.last_seq);
  RocksDbLogOptions lo;
  lo.path = dir;
  lo.keys = keys;
  std::unique_ptr<RocksDbEventLog> log;
  if (s.ok()) s = RocksDbEventLog::Open(lo, &log);
  if (!s.ok()) return s;
  uint64_t max_key = 0;
  s = AppendMissing(log.get(), erasures, &r->erasures_appended, &max_key);
  if (s.ok() && max_key > 0) s = keys->ReserveThrough(max_key);
  if (s.ok())
    s = ApplyErasures(log.get(), keys.get(), &r->erasures_applied, ErasureLedgerPath(dir));
  // What the erasures deleted (their snapshots) out of the files too.
  if (s.ok() && r->erasures_applied > 0) s = log->CompactDerived();
  if (s.ok() && r->high_water_before > r->backup.last_seq) {
    r->lost_from = r->backup.last_seq + 1;
    r->lost_to = r->high_water_before;
  }
  if (s.ok()) s = RecordRestore(log.get(), r);
  log->Close();
  return s;
}

}  // namespace

Status RestoreDataDir(const std::string& backup_dir, const std::string& data_dir_as_given,
                      const RestoreOptions& o, RestoreReport* r) {
  std::string data_dir = data_dir_as_given;  // its siblings are named after it: no trailing '/'
  while (data_dir.size() > 1 && data_dir.back() == '/') data_dir.pop_back();
  std::map<std::pair<std::string, std::string>, LedgerEntry> erasures;
  Status s = Gather(backup_dir + "/" + kErasureLedgerFile, &erasures);
  for (const std::string& path : o.ledgers) {
    if (s.ok() && !fs::exists(path)) s = Status::NotFound("no erasure ledger at " + path);
    if (s.ok()) s = Gather(path, &erasures);
  }
  if (!s.ok()) return s;
  std::vector<BackupManifest> all;
  s = ListBackups(backup_dir, &all);
  if (!s.ok()) return s;
  Replaced was;
  s = ReadReplaced(data_dir, o, r, &erasures, &was);
  if (!s.ok()) return s;
  // Restored, its erasures carried out and the restore recorded beside the
  // data directory, which stays as it was until then: a restore that
  // fails or is stopped half-way leaves nothing a service would start on
  // (an erased person's data back, or an empty log).
  const std::string staging = data_dir + ".restoring";
  s = SetAsideLeftover(staging, data_dir, o, r);
  if (s.ok()) s = Mark(staging);
  if (!s.ok()) return s;
  s = RestoreInto(backup_dir, staging, o, erasures, was, r);
  if (s.ok()) return SwapIn(staging, data_dir, was, o, r);
  std::error_code ec;
  fs::remove_all(staging, ec);
  if (!ec) (void)Unmark(staging);
  return s;
}

Status CheckBackup(const std::string& backup_dir, uint32_t id, BackupCheck* check) {
  Status s = VerifyBackupFiles(backup_dir, id, &check->backup);
  if (s.IsCorruption()) {
    check->problem = s.message();
    return Status::OK();
  }
  if (!s.ok()) return s;
  const std::string scratch = backup_dir + "/verify-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(scratch, ec);
  BackupManifest m;
  s = RestoreBackupFiles(backup_dir, check->backup.id, scratch, &m);
  std::unique_ptr<RocksDbEventLog> log;
  if (s.ok()) {
    RocksDbLogOptions lo;
    lo.path = scratch;
    s = RocksDbEventLog::Open(lo, &log);
  }
  if (s.ok()) {
    ChainReport chain = log->VerifyChain();
    check->events = chain.count;
    const std::string head = chain.last_seq == 0 ? "" : HexEncode(chain.head_hash);
    if (!chain.ok)
      check->problem = "hash chain broken at seq " + std::to_string(chain.first_bad_seq) + ": " +
                       chain.problem;
    else if (chain.last_seq != m.last_seq || head != m.head_hash)
      check->problem = "the log ends at seq " + std::to_string(chain.last_seq) + " (head " + head +
                       "), the manifest says " + std::to_string(m.last_seq) + " (" + m.head_hash + ")";
    log->Close();
    log.reset();
    std::unique_ptr<RocksDbKeyStore> keys;
    Status ks = RocksDbKeyStore::Open(KeyStorePath(scratch), true, &keys);
    if (!ks.ok() && check->problem.empty()) check->problem = "key store: " + ks.ToString();
  }
  fs::remove_all(scratch, ec);
  return s;
}

}  // namespace dfm
