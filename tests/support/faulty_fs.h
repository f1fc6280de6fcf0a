// A RocksDB FileSystem that fails writes on demand, as a full disk does
// (IOStatus::NoSpace from Append/Flush/Sync), or makes syncs slow, as a
// stalling disk does, and notes which threads opened the database.
// Everything else passes through.
#pragma once

#include <rocksdb/file_system.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace dfm::testing {

class FaultyFs : public rocksdb::FileSystemWrapper {
  struct Flags {
    std::atomic<bool> writes{false};
    std::atomic<bool> syncs{false};
    std::atomic<int64_t> sync_delay_us{0};
  };

 public:
  FaultyFs() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "FaultyFs"; }

  void FailWrites(bool fail) { fail_->writes.store(fail); }
  // Only Sync/Fsync fail (writes reach the OS, fdatasync reports EIO).
  void FailSyncs(bool fail) { fail_->syncs.store(fail); }
  // Every Sync/Fsync takes `delay` longer (zero: as fast as the disk).
  void SlowSyncs(std::chrono::microseconds delay) { fail_->sync_delay_us.store(delay.count()); }

  // Every open of a database locks its LOCK file: the threads that did.
  std::vector<std::thread::id> LockingThreads() const {
    std::lock_guard<std::mutex> lk(locks_mu_);
    return locking_threads_;
  }
  rocksdb::IOStatus LockFile(const std::string& f, const rocksdb::IOOptions& o,
                             rocksdb::FileLock** l, rocksdb::IODebugContext* dbg) override {
    {
      std::lock_guard<std::mutex> lk(locks_mu_);
      locking_threads_.push_back(std::this_thread::get_id());
    }
    return target()->LockFile(f, o, l, dbg);
  }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    if (fail_->writes.load()) return rocksdb::IOStatus::NoSpace("injected: no space");
    auto s = target()->NewWritableFile(f, o, r, dbg);
    if (s.ok()) *r = std::make_unique<File>(std::move(*r), fail_);
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    auto s = target()->ReopenWritableFile(f, o, r, dbg);
    if (s.ok()) *r = std::make_unique<File>(std::move(*r), fail_);
    return s;
  }

 private:
  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile>&& t, std::shared_ptr<Flags> fail)
        : FSWritableFileOwnerWrapper(std::move(t)), fail_(std::move(fail)) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& d, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
      if (fail_->writes.load()) return rocksdb::IOStatus::NoSpace("injected: no space");
      return FSWritableFileOwnerWrapper::Append(d, o, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& d, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& v,
                             rocksdb::IODebugContext* dbg) override {
      if (fail_->writes.load()) return rocksdb::IOStatus::NoSpace("injected: no space");
      return FSWritableFileOwnerWrapper::Append(d, o, v, dbg);
    }
    rocksdb::IOStatus Flush(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fail_->writes.load()) return rocksdb::IOStatus::NoSpace("injected: no space");
      return FSWritableFileOwnerWrapper::Flush(o, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fail_->writes.load()) return rocksdb::IOStatus::NoSpace("injected: no space");
      if (fail_->syncs.load()) return rocksdb::IOStatus::IOError("injected: fdatasync EIO");
      Stall();
      return FSWritableFileOwnerWrapper::Sync(o, dbg);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fail_->writes.load()) return rocksdb::IOStatus::NoSpace("injected: no space");
      if (fail_->syncs.load()) return rocksdb::IOStatus::IOError("injected: fsync EIO");
      Stall();
      return FSWritableFileOwnerWrapper::Fsync(o, dbg);
    }

   private:
    void Stall() const {
      std::this_thread::sleep_for(std::chrono::microseconds(fail_->sync_delay_us.load()));
    }
    std::shared_ptr<Flags> fail_;
  };

  std::shared_ptr<Flags> fail_ = std::make_shared<Flags>();
  mutable std::mutex locks_mu_;
  std::vector<std::thread::id> locking_threads_;
};

}  // namespace dfm::testing
