// A RocksDB FileSystem that deletes WAL files a piece at a time.
//
// Deleting a file frees all its blocks at once, and on a file system
// mounted with `discard` the unlink also discards them all before it
// returns: a 130 MB WAL took ~50 ms, and every WAL fdatasync waited behind
// it (bench/README.md (b), "Stalls after a burst"). This wrapper answers
// DeleteFile on a WAL ("<number>.log") larger than one piece by renaming
// it to "<name>.cut" at once (so RocksDB sees it gone) and then, on its
// own thread, cutting the file from its end `chunk_bytes` at a time, at
// most `bytes_per_second` (0: no pause), before unlinking what is left.
// A WAL that would put more than `max_backlog_bytes` waiting is unlinked at
// once, as without the wrapper, so the trash cannot grow without bound. A failure
// to rename or cut also falls back to unlinking at once. DeletedWhole()
// counts those fallbacks. A WAL with another name (a hard link: a
// checkpoint links every live WAL but the last, and the checkpoint's copy,
// opened, deletes them once replayed) is only unlinked: cut, it would cut
// the other database's WAL too, acknowledged events in it.
//
// Only WAL files: a table file may still be read through a descriptor a
// secondary instance (the `dfm log` tools beside the service) holds open.
// Unlinked, such a file stays readable; cut shorter, it would not. A WAL
// is deleted only once every write in it is in a table file, and a
// secondary reading it sees a cut like a WAL's end that is not written
// yet. Every other call goes to the wrapped FileSystem.
//
// RocksDB never touches a "<number>.log.cut" file: it is not one of its
// names (RocksDB 7.8 deletes "*.trash" files whole on every open, a
// secondary's included, which is why the suffix is not ".trash"). A cut
// file left when the wrapper is destroyed (or by a crash) is found by
// AdoptLeftovers when the log is next opened for writing, and cut then.
#pragma once

#include <rocksdb/file_system.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>

namespace dfm {

class WalTrashFileSystem : public rocksdb::FileSystemWrapper {
 public:
  WalTrashFileSystem(const std::shared_ptr<rocksdb::FileSystem>& target, uint64_t bytes_per_second,
                     uint64_t chunk_bytes, uint64_t max_backlog_bytes);
  ~WalTrashFileSystem() override;  // stops after the piece being cut

  const char* Name() const override { return "WalTrashFileSystem"; }

  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;

  // Queues every "<number>.log.cut" file directly in `dir` (left by a
  // stop or a crash) to be cut like a WAL handed to DeleteFile, except
  // those queued already; returns how many such files it found. Past the
  // backlog limit one is unlinked at once.
  size_t AdoptLeftovers(const std::string& dir);

  // Blocks until every WAL handed to DeleteFile so far has been dealt
  // with (tests).
  void WaitUntilEmpty();
  // Bytes of the trash files not yet wholly deleted.
  uint64_t BacklogBytes();
  // WALs larger than one piece that were unlinked at once: the backlog
  // was past its limit, or renaming or cutting failed.
  uint64_t DeletedWhole();

  // The suffix a WAL gets while it is cut.
  static constexpr std::string_view kCutSuffix = ".cut";

 private:
  struct Trash {
    std::string path;
    uint64_t size;
  };
  // Renames `wal` (of `size` bytes; already the cut name when `renamed`)
  // to its cut name and queues it, or unlinks it at once when behind or
  // when the rename fails. A cut name already queued is left as it is.
  rocksdb::IOStatus Enqueue(const std::string& wal, uint64_t size, bool renamed,
                            const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg);
  void Run();
  // Cuts and then unlinks one trash file; false if stopped half-way.
  bool Drain(const Trash& t);

  using Clock = std::chrono::steady_clock;

  const uint64_t bytes_per_second_;
  const uint64_t chunk_bytes_;
  const uint64_t max_backlog_bytes_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Trash> queue_;       // trash files not yet deleted
  uint64_t backlog_bytes_ = 0;    // sizes of those and the one being cut
  bool busy_ = false;             // Run is draining one
  uint64_t deleted_whole_ = 0;    // see DeletedWhole()
  std::set<std::string> known_;   // cut names queued or being cut
  Clock::time_point next_cut_{};  // when the next cut may start
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace dfm
