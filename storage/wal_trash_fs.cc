#include "storage/wal_trash_fs.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <string_view>
#include <vector>

namespace dfm {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool IsWal(std::string_view fname) {
  constexpr std::string_view kSuffix = ".log";
  if (!EndsWith(fname, kSuffix)) return false;
  // "<digits>.log" after the last '/': not the info LOG, not other files.
  size_t start = fname.rfind('/');
  start = start == std::string_view::npos ? 0 : start + 1;
  size_t end = fname.size() - kSuffix.size();
  if (start == end) return false;
  for (size_t i = start; i < end; ++i) {
    if (fname[i] < '0' || fname[i] > '9') return false;
  }
  return true;
}

// True when the file has another name too (a hard link: a checkpoint's
// WAL shares its inode with the live log's). Cutting it would cut both.
bool HasOtherNames(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && st.st_nlink > 1;
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
      size <= chunk_bytes_ || HasOtherNames(fname)) {
    return target()->DeleteFile(fname, options, dbg);
  }
  return Enqueue(fname, size, /*renamed=*/false, options, dbg);
}

rocksdb::IOStatus WalTrashFileSystem::Enqueue(const std::string& wal, uint64_t size, bool renamed,
                                              const rocksdb::IOOptions& options,
                                              rocksdb::IODebugContext* dbg) {
  const std::string cut = renamed ? wal : wal + std::string(kCutSuffix);
  bool whole;
  {
    // The bytes are reserved and the cut name claimed before the rename,
    // so neither a concurrent delete nor AdoptLeftovers (which may list
    // the directory between the rename and the queueing) counts it twice.
    std::lock_guard<std::mutex> lk(mu_);
    if (!known_.insert(cut).second) return rocksdb::IOStatus::OK();  // queued already
    whole = backlog_bytes_ + size > max_backlog_bytes_;
    if (!whole) backlog_bytes_ += size;
  }
  if (!whole && !renamed && !target()->RenameFile(wal, cut, options, dbg).ok()) {
    std::lock_guard<std::mutex> lk(mu_);
    backlog_bytes_ -= size;
    whole = true;
  }
  if (whole) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      known_.erase(cut);
      ++deleted_whole_;
    }
    return target()->DeleteFile(wal, options, dbg);  // as without the wrapper
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    queue_.push_back({cut, size});
  }
  cv_.notify_all();
  return rocksdb::IOStatus::OK();
}

size_t WalTrashFileSystem::AdoptLeftovers(const std::string& dir) {
  const rocksdb::IOOptions io;
  std::vector<std::string> children, found;
  if (!target()->GetChildren(dir, io, &children, nullptr).ok()) return 0;
  for (const auto& name : children) {
    if (EndsWith(name, kCutSuffix) &&
        IsWal(std::string_view(name).substr(0, name.size() - kCutSuffix.size()))) {
      found.push_back(dir + "/" + name);
    }
  }
  std::sort(found.begin(), found.end());  // oldest WAL first
  for (const auto& path : found) {
    uint64_t size = 0;
    if (!target()->GetFileSize(path, io, &size, nullptr).ok()) continue;  // gone meanwhile
    if (size <= chunk_bytes_) {
      std::lock_guard<std::mutex> lk(mu_);
      if (known_.count(path) == 0) target()->DeleteFile(path, io, nullptr).PermitUncheckedError();
    } else {
      Enqueue(path, size, /*renamed=*/true, io, nullptr).PermitUncheckedError();
    }
  }
  return found.size();
}

void WalTrashFileSystem::WaitUntilEmpty() {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [this] { return stop_ || (queue_.empty() && !busy_); });
}

uint64_t WalTrashFileSystem::BacklogBytes() {
  std::lock_guard<std::mutex> lk(mu_);
  return backlog_bytes_;
}

uint64_t WalTrashFileSystem::DeletedWhole() {
  std::lock_guard<std::mutex> lk(mu_);
  return deleted_whole_;
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
  // something else unlinks the file meanwhile (an operator clearing the
  // directory), the cuts go on through the handle instead of re-creating
  // the file by name. A file found no bigger than one piece (a copy the
  // reopen created, say) is only unlinked.
  std::unique_ptr<rocksdb::FSWritableFile> file;
  uint64_t size = 0;
  const bool opened =
      target()->ReopenWritableFile(t.path, rocksdb::FileOptions(), &file, nullptr).ok();
  if (opened) {
    if (!target()->GetFileSize(t.path, io, &size, nullptr).ok()) size = 0;
    while (size > chunk_bytes_) {
      {
        // A steady pace across cuts and files: each cut starts a pause
        // after the one before it started, so a slow cut counts toward its
        // pause and a late one is not followed by a catch-up burst.
        std::unique_lock<std::mutex> lk(mu_);
        if (cv_.wait_until(lk, next_cut_, [this] { return stop_; })) {
          backlog_bytes_ -= t.size;
          known_.erase(t.path);  // left for the next open to adopt
          lk.unlock();
          file->Close(io, nullptr).PermitUncheckedError();
          return false;
        }
        next_cut_ = std::max(next_cut_, Clock::now()) + pause;
      }
      size -= chunk_bytes_;
      if (!file->Truncate(size, io, nullptr).ok()) {
        std::lock_guard<std::mutex> lk(mu_);
        ++deleted_whole_;  // the rest goes at once, below
        break;
      }
    }
    file->Close(io, nullptr).PermitUncheckedError();
  }
  // Whatever happened above, the rest goes at once; a failure here (the
  // file is already gone) leaves nothing to do.
  const bool existed = target()->DeleteFile(t.path, io, nullptr).ok();
  std::lock_guard<std::mutex> lk(mu_);
  if (!opened && existed) ++deleted_whole_;  // could not be cut at all
  backlog_bytes_ -= t.size;
  known_.erase(t.path);
  return true;
}

}  // namespace dfm
