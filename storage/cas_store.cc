#include "storage/cas_store.h"

#include <mutex>

namespace dfm {

namespace {

class LogCasStore final : public CasStore {
 public:
  LogCasStore(EventLog* log, std::string consumer) : log_(log), consumer_(std::move(consumer)) {}

  Status Get(const std::string& key, Entry* e) override {
    std::lock_guard<std::mutex> lock(mu_);
    return Read(key, e);
  }

  Status Create(const std::string& key, const std::string& value) override {
    std::lock_guard<std::mutex> lock(mu_);
    Entry now;
    Status s = Read(key, &now);
    if (!s.ok()) return s;
    if (now.present) return Status::AlreadyExists(key + " is held");
    return Write(key, value, now.rev + 1);
  }

  Status Keys(std::vector<std::string>* keys) override {
    std::lock_guard<std::mutex> lock(mu_);
    return log_->ScanConsumerState(consumer_, "", [keys](std::string_view k, std::string_view) {
      keys->emplace_back(k);
      return true;
    });
  }

  Status Update(const std::string& key, const std::string& value, uint64_t rev) override {
    std::lock_guard<std::mutex> lock(mu_);
    Entry now;
    Status s = Read(key, &now);
    if (!s.ok()) return s;
    if (!now.present || now.rev != rev) return Status::AlreadyExists(key + " moved on");
    return Write(key, value, rev + 1);
  }

 private:
  // REQUIRES: mu_ held.
  Status Read(const std::string& key, Entry* e) const {
    *e = Entry();
    std::string stored;
    Status s = log_->GetConsumerState(consumer_, key, &stored);
    if (s.IsNotFound()) return Status::OK();
    if (!s.ok()) return s;
    // "1 <rev> <value>"
    const size_t sp = stored.find(' ', 2);
    if (stored.compare(0, 2, "1 ") != 0 || sp == std::string::npos)
      return Status::Corruption("stored record " + key + " does not read");
    try {
      e->rev = std::stoull(stored.substr(2, sp - 2));
    } catch (...) {
      return Status::Corruption("stored record " + key + " has no revision");
    }
    e->present = true;
    e->value = stored.substr(sp + 1);
    return Status::OK();
  }

  Status Write(const std::string& key, const std::string& value, uint64_t rev) {
    return log_->CommitConsumerDurable(consumer_, 0,
                                       {StateOp{key, "1 " + std::to_string(rev) + " " + value, false}});
  }

  EventLog* log_;
  const std::string consumer_;
  std::mutex mu_;
};

}  // namespace

std::unique_ptr<CasStore> NewLogCasStore(EventLog* log, std::string consumer) {
  return std::make_unique<LogCasStore>(log, std::move(consumer));
}

}  // namespace dfm
