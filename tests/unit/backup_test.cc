// Backups and restores (storage/backup.h, storage/erasure_ledger.h,
// app/backup.h) on real RocksDB in temporary directories.
#include "app/backup.h"

#include <gtest/gtest.h>
#include <rocksdb/utilities/checkpoint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "app/erase.h"
#include "events/sealing.h"
#include "events/webhook_received.h"
#include "storage/backup.h"
#include "storage/erasure_ledger.h"
#include "storage/high_water.h"
#include "storage/key_store.h"
#include "storage/rocksdb_event_log.h"
#include "sync/contact_snapshot.h"
#include "sync/domain_event.h"
#include "tests/support/erasure_drafts.h"
#include "tests/support/temp_dir.h"
#include "util/crypto.h"

namespace dfm {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteAll(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

LedgerEntry Entry(const std::string& contact, uint64_t seq) {
  return {"t", contact, seq, "{\"contact_id\":\"" + contact + "\",\"keys\":[1,2]}"};
}

TEST(ErasureLedger, EntriesRoundTripAndAreAddedOncePerPerson) {
  testing::TempDir dir;
  const std::string path = ErasureLedgerPath(dir.path());
  std::vector<LedgerEntry> got;
  ASSERT_TRUE(ReadErasureLedger(path, &got).ok()) << "no file reads as none";
  EXPECT_TRUE(got.empty());
  size_t added = 0;
  ASSERT_TRUE(AddToErasureLedger(path, {Entry("c1", 7), Entry("c2", 9)}, &added).ok());
  EXPECT_EQ(added, 2u);
  ASSERT_TRUE(AddToErasureLedger(path, {Entry("c1", 70), Entry("c3", 11)}, &added).ok());
  EXPECT_EQ(added, 1u) << "c1 is held already";
  ASSERT_TRUE(ReadErasureLedger(path, &got).ok());
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].contact_id, "c1");
  EXPECT_EQ(got[0].erased_seq, 7u);
  EXPECT_EQ(got[2].contact_id, "c3");
  EXPECT_EQ(got[1].erasure, Entry("c2", 9).erasure);
  EXPECT_EQ(ReadAll(path).substr(0, 15), "dfm-erasures 1\n");
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
}

TEST(ErasureLedger, ATornLastLineIsIgnoredThenCutOffAndDamageBeforeTheEndIsNot) {
  testing::TempDir dir;
  const std::string path = ErasureLedgerPath(dir.path());
  ASSERT_TRUE(AddToErasureLedger(path, {Entry("c1", 1)}).ok());
  const std::string whole = ReadAll(path);
  const std::string line = EncodeLedgerEntry(Entry("c2", 2));
  WriteAll(path, whole + line.substr(0, line.size() / 2));  // a crash mid-write
  std::vector<LedgerEntry> got;
  ASSERT_TRUE(ReadErasureLedger(path, &got).ok());
  EXPECT_EQ(got.size(), 1u);
  ASSERT_TRUE(AddToErasureLedger(path, {Entry("c3", 3)}).ok());
  EXPECT_EQ(ReadAll(path), whole + EncodeLedgerEntry(Entry("c3", 3))) << "the torn part is cut off";
  // A flipped byte inside a line that is not the last.
  std::string text = ReadAll(path);
  text[whole.size() - 5] ^= 1;
  WriteAll(path, text);
  EXPECT_TRUE(ReadErasureLedger(path, &got).IsCorruption());
  WriteAll(path, "dfm-erasures 2\n");
  EXPECT_TRUE(ReadErasureLedger(path, &got).IsCorruption()) << "an unknown version";
}

// A first write cut short within the header: the ledger reads as empty,
// and the next entry makes it whole again rather than writing over the
// torn header (which made every later read Corruption, and the service
// refuse to start).
TEST(ErasureLedger, AFirstWriteTornWithinItsHeaderIsWrittenAgainWhole) {
  testing::TempDir dir;
  const std::string path = ErasureLedgerPath(dir.path());
  for (const std::string torn : {"dfm-erasures 1", "dfm-er"}) {
    WriteAll(path, torn);
    std::vector<LedgerEntry> got;
    ASSERT_TRUE(ReadErasureLedger(path, &got).ok());
    EXPECT_TRUE(got.empty());
    size_t added = 0;
    ASSERT_TRUE(AddToErasureLedger(path, {Entry("c1", 1)}, &added).ok());
    EXPECT_EQ(added, 1u);
    Status s = ReadErasureLedger(path, &got);
    ASSERT_TRUE(s.ok()) << torn << ": " << s.ToString();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].contact_id, "c1");
    EXPECT_EQ(ReadAll(path), "dfm-erasures 1\n" + EncodeLedgerEntry(Entry("c1", 1)));
  }
}

TEST(BackupManifest, RoundTripsAndRefusesOtherVersions) {
  BackupManifest m;
  m.id = 3;
  m.keys_id = 4;
  m.created_at_us = 1700000000000000;
  m.last_seq = 12345;
  m.head_hash = std::string(64, 'a');
  m.record_format = 1;
  m.key_store_format = 1;
  m.erasures_through = 17;
  m.log_bytes = 100;
  m.keys_bytes = 20;
  m.added_bytes = 5;
  m.dfm_version = "0.1.0";
  BackupManifest back;
  ASSERT_TRUE(DecodeBackupManifest(EncodeBackupManifest(m), &back).ok());
  EXPECT_EQ(EncodeBackupManifest(back), EncodeBackupManifest(m));
  std::string other = EncodeBackupManifest(m);
  other.replace(other.find("\"version\":1"), 11, "\"version\":2");
  EXPECT_TRUE(DecodeBackupManifest(other, &back).IsCorruption());
  EXPECT_TRUE(DecodeBackupManifest("{}", &back).IsCorruption());
}

// A data directory laid out as the service's: the log in it, keys in keys/.
class DataDir {
 public:
  explicit DataDir(std::string path) : path_(std::move(path)) { Open(); }
  ~DataDir() { Close(); }
  void Open() {
    std::unique_ptr<RocksDbKeyStore> ks;
    Status opened = RocksDbKeyStore::Open(KeyStorePath(path_), false, &ks);
    ASSERT_TRUE(opened.ok()) << opened.ToString();
    keys_ = std::move(ks);
    RocksDbLogOptions o;
    o.path = path_;
    o.keys = keys_;
    ASSERT_TRUE(RocksDbEventLog::Open(o, &log_).ok());
  }
  void Close() {
    if (log_) log_->Close();
    log_.reset();
    keys_.reset();
  }
  // A sealed webhook and the contact it created, with its phone.
  uint64_t AddContact(const std::string& contact, const std::string& phone) {
    AppendOutcome hook, created;
    EXPECT_TRUE(log_->Append(testing::GhlWebhook("{\"phone\":\"" + phone + "\"}", "w-" + contact), &hook).ok());
    EXPECT_TRUE(log_->Append(testing::ContactCreated(contact, phone, hook), &created).ok());
    return created.seq;
  }
  Event Read(uint64_t seq) const {
    std::vector<Event> out;
    EXPECT_TRUE(log_->Read(seq, 1, &out).ok());
    return out.empty() ? Event{} : out[0];
  }
  Status Erase(const std::string& contact) {
    EraseRequest r{"t", contact, "request", "cli", {}};
    r.ledger_path = ErasureLedgerPath(path_);
    EraseOutcome out;
    return EraseContact(log_.get(), keys_.get(), r, &out);
  }
  BackupManifest Backup(const std::string& into, int keep = 0) {
    BackupManifest m;
    Status s = CreateBackup(log_.get(), keys_.get(), path_, into, 1000, "test", keep, &m);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return m;
  }
  RocksDbEventLog* log() { return log_.get(); }

 private:
  std::string path_;
  std::shared_ptr<RocksDbKeyStore> keys_;
  std::unique_ptr<RocksDbEventLog> log_;
};

TEST(Backup, IncrementalBackupsRestoreToTheirManifestsAndVerify) {
  testing::TempDir dir;
  const std::string backups = dir.Sub("backups");
  DataDir data(dir.Sub("data"));
  for (int i = 0; i < 200; ++i) data.AddContact("c" + std::to_string(i), "+1555000" + std::to_string(1000 + i));
  BackupManifest first = data.Backup(backups);
  EXPECT_EQ(first.last_seq, 400u);
  EXPECT_EQ(first.head_hash.size(), 64u);
  EXPECT_EQ(first.record_format, 1u);
  EXPECT_FALSE(fs::exists(dir.Sub("data/backup-staging"))) << "checkpoints removed";
  for (int i = 200; i < 210; ++i) data.AddContact("c" + std::to_string(i), "+1555000" + std::to_string(1000 + i));
  BackupManifest second = data.Backup(backups);
  EXPECT_EQ(second.last_seq, 420u);
  EXPECT_GT(second.id, first.id);
  EXPECT_LT(second.added_bytes, first.added_bytes) << "the first backup's table files are shared";
  std::vector<BackupManifest> all;
  ASSERT_TRUE(ListBackups(backups, &all).ok());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, first.id);

  // The older one restores to exactly its manifest.
  BackupManifest restored;
  ASSERT_TRUE(RestoreBackupFiles(backups, first.id, dir.Sub("r1"), &restored).ok());
  uint64_t mark = 0;
  ASSERT_TRUE(ReadHighWater(dir.Sub("r1"), &mark).ok());
  EXPECT_EQ(mark, 400u);
  {
    DataDir r1(dir.Sub("r1"));
    ChainReport chain = r1.log()->VerifyChain();
    EXPECT_TRUE(chain.ok);
    EXPECT_EQ(chain.last_seq, 400u);
    EXPECT_EQ(HexEncode(chain.head_hash), first.head_hash);
    EXPECT_EQ(r1.Read(2).sealing, Event::Sealing::kOpened) << "its keys came with it";
  }
  EXPECT_TRUE(RestoreBackupFiles(backups, 0, dir.Sub("r1"), &restored).code() == Status::Code::kAlreadyExists);
  BackupCheck check;
  ASSERT_TRUE(CheckBackup(backups, 0, &check).ok());
  EXPECT_EQ(check.problem, "");
  EXPECT_EQ(check.events, 420u);
  // --keep 1 drops the older one.
  BackupManifest third = data.Backup(backups, 1);
  ASSERT_TRUE(ListBackups(backups, &all).ok());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].id, third.id);
  std::vector<std::string> manifests;
  for (const auto& f : fs::directory_iterator(backups + "/manifests"))
    manifests.push_back(f.path().filename().string());
  EXPECT_EQ(manifests, std::vector<std::string>{std::to_string(third.id) + ".json"})
      << "the purged backups' manifests go with them";
}

// A process that died during a backup left its checkpoints: hard links to
// the log's and the key store's files, which would keep a person's keys
// in the data directory after `dfm erase` rewrote the key store's files.
// The next writable open removes them.
TEST(Backup, ABackupsCheckpointsLeftByADeadProcessGoAtTheNextOpen) {
  testing::TempDir dir;
  auto data = std::make_unique<DataDir>(dir.Sub("data"));
  data->AddContact("c1", "+15550003100");
  const fs::path staging = fs::path(dir.Sub("data")) / "backup-staging";
  fs::create_directories(staging);
  ASSERT_TRUE(data->log()
                  ->WithDb([&](rocksdb::DB* db) {
                    rocksdb::Checkpoint* c = nullptr;
                    rocksdb::Status s = rocksdb::Checkpoint::Create(db, &c);
                    if (s.ok()) s = c->CreateCheckpoint((staging / "log").string());
                    delete c;
                    return s.ok() ? Status::OK() : Status::IOError(s.ToString());
                  })
                  .ok());
  fs::create_directories(staging / "keys");
  for (const auto& f : fs::directory_iterator(KeyStorePath(dir.Sub("data"))))
    if (f.is_regular_file()) fs::create_hard_link(f.path(), staging / "keys" / f.path().filename());
  ASSERT_FALSE(fs::is_empty(staging / "keys"));
  data->Close();
  data->Open();
  EXPECT_FALSE(fs::exists(staging)) << "removed when the log opened";
  EXPECT_EQ(data->log()->LastSequence(), 2u);
}

// A backup the engine reads as damaged (its meta file) is left by a purge:
// its manifest stays while the engine still knows it.
TEST(Backup, ABackupReadAsDamagedKeepsItsManifest) {
  testing::TempDir dir;
  const std::string backups = dir.Sub("backups");
  DataDir data(dir.Sub("data"));
  data.AddContact("c1", "+15550004200");
  BackupManifest first = data.Backup(backups);
  data.AddContact("c2", "+15550004201");
  data.Backup(backups);
  const std::string meta = backups + "/log/meta/" + std::to_string(first.id);
  ASSERT_TRUE(fs::exists(meta));
  WriteAll(meta, "damaged");
  data.AddContact("c3", "+15550004202");
  data.Backup(backups, /*keep=*/3);
  const bool still_there = fs::exists(meta);
  EXPECT_EQ(fs::exists(backups + "/manifests/" + std::to_string(first.id) + ".json"), still_there)
      << "a backup still on disk keeps its manifest; one gone loses it";
}

// A checkpoint taken while webhooks arrive hard-links the live log's WALs
// but the last into the staging copy; that copy's open deleted them once
// replayed, and the WAL trash cut a deleted WAL in place, through the
// link: the live log's WAL, still holding acknowledged events, shrank.
TEST(Backup, AnOnlineBackupUnderLoadLeavesTheLiveLogWhole) {
  testing::TempDir dir;
  auto data = std::make_unique<DataDir>(dir.Sub("data"));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> acked{0};
  std::vector<std::thread> appenders;
  const std::string big(64 << 10, 'x');  // WALs past the trash's 1 MiB piece within a flush
  for (int t = 0; t < 4; ++t)
    appenders.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        AppendOutcome out;
        const std::string id = "w-" + std::to_string(t) + "-" + std::to_string(i);
        if (data->log()->Append(testing::GhlWebhook("{\"n\":\"" + big + "\"}", id), &out).ok())
          ++acked;
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (int i = 0; i < 3; ++i) data->Backup(dir.Sub("backups"));
  stop = true;
  for (auto& t : appenders) t.join();
  const uint64_t taken = acked.load();
  data->Close();
  data->Open();
  EXPECT_EQ(data->log()->LastSequence(), taken)
      << "every acknowledged event is still in the live log";
  ChainReport chain = data->log()->VerifyChain();
  EXPECT_TRUE(chain.ok) << chain.problem << " at " << chain.first_bad_seq << " of " << taken;
  EXPECT_EQ(chain.count, taken);
}

TEST(Backup, ADamagedFileIsFoundByVerify) {
  testing::TempDir dir;
  const std::string backups = dir.Sub("backups");
  DataDir data(dir.Sub("data"));
  for (int i = 0; i < 50; ++i) data.AddContact("c" + std::to_string(i), "+15550001" + std::to_string(100 + i));
  data.Backup(backups);
  std::string victim;
  for (const auto& f : fs::recursive_directory_iterator(backups + "/log"))
    if (f.path().extension() == ".sst") victim = f.path().string();
  ASSERT_FALSE(victim.empty());
  fs::permissions(victim, fs::perms::owner_write, fs::perm_options::add);
  std::string bytes = ReadAll(victim);
  bytes[bytes.size() / 2] ^= 0x40;
  WriteAll(victim, bytes);
  BackupCheck check;
  ASSERT_TRUE(CheckBackup(backups, 0, &check).ok());
  EXPECT_NE(check.problem, "");
}

// A restore that fails half-way (here a damaged backup file; or a full
// disk, an interrupted command) moved the data directory aside first and
// left a half-restored one, or none, for the service to start on: its
// erasures not yet carried out, or an empty log. It leaves it as it was.
TEST(Backup, ARestoreThatFailsLeavesTheDataDirectoryAsItWas) {
  testing::TempDir dir;
  const std::string backups = dir.Sub("backups");
  auto data = std::make_unique<DataDir>(dir.Sub("data"));
  for (int i = 0; i < 50; ++i)
    data->AddContact("c" + std::to_string(i), "+15550002" + std::to_string(100 + i));
  data->Backup(backups);
  data->Close();
  for (const auto& f : fs::recursive_directory_iterator(backups + "/log"))
    if (f.path().extension() == ".sst") {
      fs::permissions(f.path(), fs::perms::owner_write, fs::perm_options::add);
      std::string bytes = ReadAll(f.path().string());
      bytes[bytes.size() / 2] ^= 0x40;
      WriteAll(f.path().string(), bytes);
    }
  RestoreOptions o;
  o.now_us = 1700000000000000;
  o.replace = true;
  RestoreReport r;
  EXPECT_FALSE(RestoreDataDir(backups, dir.Sub("data") + "/", o, &r).ok());
  EXPECT_EQ(r.moved_aside, "");
  std::vector<std::string> beside;
  for (const auto& f : fs::directory_iterator(dir.path()))
    beside.push_back(f.path().filename().string());
  std::sort(beside.begin(), beside.end());
  EXPECT_EQ(beside, (std::vector<std::string>{"backups", "data"}))
      << "nothing moved aside or left half-restored";
  data->Open();
  EXPECT_EQ(data->log()->LastSequence(), 100u) << "the data directory as it was";
}

// What a restore that stopped half-way left at data.restoring is told by
// its mark (data.restoring.building): the data directory its exchange
// replaced (marked with another directory's identity), or one left
// unmarked, is moved aside, never deleted (it holds what was acknowledged
// after the backup); the restore's own directory, half-built (marked
// empty) or built but never put in place (marked with its own identity),
// is removed.
TEST(Backup, ARestoreKeepsTheDirectoryAnInterruptedOneReplaced) {
  testing::TempDir dir;
  const std::string backups = dir.Sub("backups");
  auto data = std::make_unique<DataDir>(dir.Sub("data"));
  for (int i = 0; i < 5; ++i)
    data->AddContact("c" + std::to_string(i), "+1555000410" + std::to_string(i));
  data->Backup(backups);
  data->Close();
  const fs::path staging = dir.Sub("data") + ".restoring";
  const std::string mark = staging.string() + ".building";
  auto identity = [](const fs::path& p) {
    struct stat st;
    EXPECT_EQ(::lstat(p.c_str(), &st), 0);
    return std::to_string(st.st_ino);
  };
  auto restore = [&](RestoreReport* r) {
    RestoreOptions o;
    o.now_us = 1700000000000000;
    o.replace = true;
    Status s = RestoreDataDir(backups, dir.Sub("data"), o, r);
    EXPECT_TRUE(s.ok()) << s.ToString();
  };
  auto beside = [&] {
    std::vector<std::string> names;
    for (const auto& f : fs::directory_iterator(dir.path()))
      names.push_back(f.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  };
  const std::string replaced = "data.replaced-20231114T221320Z";
  const std::string earlier = "data.replaced-earlier-20231114T221320Z";

  // Stopped after the exchange: the mark names the directory put in place.
  fs::create_directories(staging);
  WriteAll((staging / "acknowledged-after-the-backup").string(), "events");
  WriteAll(mark, identity(dir.Sub("data")));
  RestoreReport r;
  restore(&r);
  EXPECT_EQ(r.earlier_aside, dir.Sub("data") + "." + earlier.substr(5));
  EXPECT_EQ(ReadAll(r.earlier_aside + "/acknowledged-after-the-backup"), "events");
  EXPECT_EQ(beside(), (std::vector<std::string>{"backups", "data", replaced, earlier}));
  fs::remove_all(r.earlier_aside);
  fs::remove_all(r.moved_aside);

  // Left unmarked (by an earlier build): moved aside too.
  fs::create_directories(staging);
  WriteAll((staging / "unknown").string(), "x");
  RestoreReport unmarked;
  restore(&unmarked);
  EXPECT_NE(unmarked.earlier_aside, "");
  EXPECT_EQ(beside(), (std::vector<std::string>{"backups", "data", replaced, earlier}));
  fs::remove_all(unmarked.earlier_aside);
  fs::remove_all(unmarked.moved_aside);

  // The restore's own: half-built, then built and never exchanged.
  for (bool built : {false, true}) {
    fs::create_directories(staging);
    WriteAll((staging / "half").string(), "built");
    WriteAll(mark, built ? identity(staging) : "");
    RestoreReport again;
    restore(&again);
    EXPECT_EQ(again.earlier_aside, "") << built;
    EXPECT_EQ(beside(), (std::vector<std::string>{"backups", "data", replaced}))
        << "removed, its mark too (built " << built << ")";
    fs::remove_all(again.moved_aside);
  }
}

TEST(Backup, ARestoreNeverBringsBackAPersonErasedAfterTheBackup) {
  testing::TempDir dir;
  const std::string backups = dir.Sub("backups");
  auto data = std::make_unique<DataDir>(dir.Sub("data"));
  const uint64_t ann = data->AddContact("ann", "+15550009001");
  const uint64_t bob = data->AddContact("bob", "+15550009002");
  for (const std::string who : {"ann", "bob"})  // their actors' snapshots: personal data in clear
    ASSERT_TRUE(
        data->log()
            ->CommitConsumer(kContactSnapshotConsumer, bob,
                             {StateOp{ContactSnapshotKey("t", who), who + " +1555000900x", false}})
            .ok());
  BackupManifest m = data->Backup(backups);
  ASSERT_TRUE(data->Erase("ann").ok());
  EXPECT_TRUE(data->Read(ann).erased());
  data->AddContact("cy", "+15550009003");  // acknowledged after the backup: lost by the restore
  data->Close();
  const std::string mark_text = ReadAll(dir.Sub("data/HIGH_WATER"));

  RestoreOptions o;
  o.now_us = 1700000000000000;
  RestoreReport r;
  EXPECT_TRUE(RestoreDataDir(backups, dir.Sub("data"), o, &r).code() == Status::Code::kAlreadyExists) << "not without --replace";
  o.replace = true;
  // The service's directory: its user's (as root here), 0700. The restore
  // runs as root: what it puts in place is that user's still.
  const bool root = ::geteuid() == 0;
  constexpr uid_t kService = 65534;
  if (root) {
    for (const auto& e : fs::recursive_directory_iterator(dir.Sub("data")))
      ASSERT_EQ(::lchown(e.path().c_str(), kService, kService), 0);
    ASSERT_EQ(::chown(dir.Sub("data").c_str(), kService, kService), 0);
  }
  ASSERT_EQ(::chmod(dir.Sub("data").c_str(), 0700), 0);
  Status s = RestoreDataDir(backups, dir.Sub("data"), o, &r);
  ASSERT_TRUE(s.ok()) << s.ToString();
  struct stat st;
  ASSERT_EQ(::stat(dir.Sub("data").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  if (root) {
    EXPECT_EQ(st.st_uid, kService);
    for (const auto& e : fs::recursive_directory_iterator(dir.Sub("data"))) {
      ASSERT_EQ(::lstat(e.path().c_str(), &st), 0);
      EXPECT_EQ(st.st_uid, kService) << e.path();
    }
  }
  EXPECT_EQ(r.backup.id, m.id);
  EXPECT_TRUE(fs::exists(r.moved_aside));
  EXPECT_EQ(r.erasures_appended, 1u);
  EXPECT_GT(r.high_water_before, m.last_seq) << mark_text;
  EXPECT_EQ(r.lost_from, m.last_seq + 1);
  EXPECT_EQ(r.lost_to, r.high_water_before);

  DataDir back(dir.Sub("data"));
  EXPECT_TRUE(back.Read(ann).erased()) << "ann stays erased";
  EXPECT_FALSE(back.Read(bob).erased());
  std::string snapshot;
  EXPECT_TRUE(
      back.log()
          ->GetConsumerState(kContactSnapshotConsumer, ContactSnapshotKey("t", "ann"), &snapshot)
          .IsNotFound())
      << "her snapshot, in the backup, does not come back";
  EXPECT_TRUE(
      back.log()
          ->GetConsumerState(kContactSnapshotConsumer, ContactSnapshotKey("t", "bob"), &snapshot)
          .ok());
  std::vector<Event> stream;
  ASSERT_TRUE(back.log()->ReadWholeStream("t", ContactStream("ann"), &stream).ok());
  EXPECT_EQ(stream.back().type, kContactErasedType);
  std::vector<Event> tail;
  ASSERT_TRUE(back.log()->Read(r.restored_seq, 1, &tail).ok());
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0].type, kLogRestoredType);
  EXPECT_NE(tail[0].payload.find("\"lost_to\":" + std::to_string(r.lost_to)), std::string::npos);
  EXPECT_TRUE(back.log()->VerifyChain().ok);
  std::vector<LedgerEntry> ledger;
  ASSERT_TRUE(ReadErasureLedger(ErasureLedgerPath(dir.Sub("data")), &ledger).ok());
  ASSERT_EQ(ledger.size(), 1u) << "the ledger came along";
  EXPECT_EQ(ledger[0].contact_id, "ann");
  // New keys are not numbered like the ones the erasure destroyed.
  const uint64_t dan = back.AddContact("dan", "+15550009004");
  EXPECT_EQ(back.Read(dan).sealing, Event::Sealing::kOpened);
}

}  // namespace
}  // namespace dfm
