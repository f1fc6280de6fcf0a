#include "storage/tailer.h"

namespace dfm {

LogTailer::LogTailer(const EventLog* log, uint64_t from, Handler handler, size_t batch)
    : log_(log), handler_(std::move(handler)), batch_(batch), next_(from == 0 ? 1 : from) {
  thread_ = std::thread([this] { Run(); });
}

LogTailer::~LogTailer() { Stop(); }

void LogTailer::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

Status LogTailer::status() const {
  // Written only by the thread before it ends; read after Stop().
  return status_;
}

void LogTailer::Run() {
  std::vector<Event> events;
  while (!stop_.load()) {
    uint64_t next = next_.load();
    if (log_->WaitForSequence(next, std::chrono::milliseconds(50)) < next) continue;
    events.clear();
    Status s = log_->Read(next, batch_, &events);
    if (!s.ok()) {
      status_ = s;
      return;
    }
    for (const auto& e : events) {
      if (stop_.load()) return;
      if (!handler_(e)) {
        stop_.store(true);
        return;
      }
      next_.store(e.seq + 1);
    }
  }
}

}  // namespace dfm
