#include "storage/wal_trash_fs.h"

#include <algorithm>
#include <chrono>
#include <string_view>

namespace dfm {
namespace {

bool IsWal(const std::string& fname) {
  constexpr std::string_view kSuffix = ".log";
  if (fname.size() <= kSuffix.size()) return false;
  if (fname.compare(fname.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) return false;
  // "<digits>.log" after the last '/': not the info LOG, not other files.
  size_t start = fname.rfind('/');
  start = start == std::string::npos ? 0 : start + 1;
  size_t end = fname.size() - kSuffix.size();
  if (start == end) return false;
  for (size_t i = start; i < end; ++i) {
    if (fname[i] < '0' || fname[i] > '9') return false;
  }
  return true;
}

}  // namespace

WalTrashFileSystem::WalTrashFileSystem(const std::shared_ptr<rocksdb::FileSystem>& target,
                                       uint64_t bytes_per_second, uint64_t chunk_bytes,
                                       uint64_t max_backlog_bytes)
    : FileSystemWrapper(target),
      bytes_per_second_(bytes_per_second),
      chunk_bytes_(chunk_bytes),
      max_backlog_bytes_(max_backlog_bytes),
      thread_([this] { Run(); }) {}

WalTrashFileSystem::~WalTrashFileSystem() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

rocksdb::IOStatus WalTrashFileSystem::DeleteFile(const std::string& fname,
                                                 const rocksdb::IOOptions& options,
                                                 rocksdb::IODebugContext* dbg) {
  uint64_t size = 0;
  if (!IsWal(fname) || !target()->GetFileSize(fname, options, &size, dbg).ok() ||
      size <= chunk_bytes_) {
    return target()->DeleteFile(fname, options, dbg);
  }
  bool behind;
  {
    std::lock_guard<std::mutex> lk(mu_);
    behind = backlog_bytes_ + size > max_backlog_bytes_;
  }
  if (behind) return target()->DeleteFile(fname, options, dbg);  // as without the wrapper
  const std::string trash = fname + ".trash";
  if (!target()->RenameFile(fname, trash, options, dbg).ok()) {
    return target()->DeleteFile(fname, options, dbg);
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    queue_.push_back({trash, size});
    backlog_bytes_ += size;
  }
  cv_.notify_all();
  return rocksdb::IOStatus::OK();
}

void WalTrashFileSystem::WaitUntilEmpty() {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [this] { return stop_ || (queue_.empty() && !busy_); });
}

uint64_t WalTrashFileSystem::BacklogBytes() {
  std::lock_guard<std::mutex> lk(mu_);
  return backlog_bytes_;
}

void WalTrashFileSystem::Run() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    Trash t = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lk.unlock();
    bool finished = Drain(t);
    lk.lock();
    busy_ = false;
    cv_.notify_all();
    if (!finished) return;
  }
}

bool WalTrashFileSystem::Drain(const Trash& t) {
  const rocksdb::IOOptions io;
  const auto pause = bytes_per_second_ == 0
                         ? Clock::duration::zero()
                         : std::chrono::duration_cast<Clock::duration>(std::chrono::microseconds(
                               chunk_bytes_ * 1'000'000 / bytes_per_second_));
  // One handle for the whole file, opened before its size is read: if
  // something else unlinks the trash meanwhile (RocksDB deletes `*.trash`
  // whenever the log is opened), the cuts go on through the handle
  // instead of re-creating the file by name. A file found no bigger than
  // one piece (a copy the reopen created, say) is only unlinked.
  std::unique_ptr<rocksdb::FSWritableFile> file;
  uint64_t size = 0;
  if (target()->ReopenWritableFile(t.path, rocksdb::FileOptions(), &file, nullptr).ok()) {
    if (!target()->GetFileSize(t.path, io, &size, nullptr).ok()) size = 0;
    while (size > chunk_bytes_) {
      {
        // A steady pace across cuts and files: each cut starts a pause
        // after the one before it started, so a slow cut counts toward its
        // pause and a late one is not followed by a catch-up burst.
        std::unique_lock<std::mutex> lk(mu_);
        if (cv_.wait_until(lk, next_cut_, [this] { return stop_; })) {
          backlog_bytes_ -= t.size;
          lk.unlock();
          file->Close(io, nullptr).PermitUncheckedError();
          return false;
        }
        next_cut_ = std::max(next_cut_, Clock::now()) + pause;
      }
      size -= chunk_bytes_;
      if (!file->Truncate(size, io, nullptr).ok()) break;
    }
    file->Close(io, nullptr).PermitUncheckedError();
  }
  // Whatever happened above, the rest goes at once; a failure here (the
  // file is already gone) leaves nothing to do.
  target()->DeleteFile(t.path, io, nullptr).PermitUncheckedError();
  std::lock_guard<std::mutex> lk(mu_);
  backlog_bytes_ -= t.size;
  return true;
}

}  // namespace dfm
