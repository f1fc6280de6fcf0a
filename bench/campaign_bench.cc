// The campaigns' benchmark (issue 49): one campaign to 100,000 people on a
// real RocksDB log, run as the service runs it: the campaign actor's ticks
// (TickCampaign, actors/campaign_actor.h) on one thread, the projections
// folding beside them on another (ProjectionRunner, as the service's
// runner folds after each append).
//
// The sender is played by the bench: each task.claimed becomes the
// push.succeeded of the person's send on their contact stream, as the
// contact actor and Verity's connector append it (what the text agent
// waits for). The connector's HTTP is not in these figures (bench/README.md
// has the sync's).
//
//   campaign_bench DIR [--people 100000] [--cap 100] [--seconds 20] [--stops 100] [--sealed]
//                      [--rest-as-asked]
//
// DIR: an empty directory (the log; with --sealed, payloads sealed as the
// service seals them, its key store in DIR/keys). --rest-as-asked: each
// tick follows when the last asks, without the actor's rest
// (RestAfterTick), as before it. Reported, each on a line of its own:
// - setup: the people's contacts appended and folded (not the campaign's);
// - scheduling: from the campaign's start until every person's first task
//   is created and folded; the resident set's peak growth over it;
// - dispatch: texts claimed per second over --seconds with the sender's
//   cap at --cap per second, and that as a ratio of the cap; a tick's
//   median time, and the CPU time of the ticks as a share of a core;
// - stop: --stops people whose texts still wait opt out (contact.opted_out,
//   what a STOP's decision appends) in five groups from halfway through,
//   1.37 s apart (closer when --seconds is under 14; anywhere in the
//   actor's tick and rest); from each group's append to each person's
//   waiting task skipped: median and max;
// - ceiling: claims per second over --seconds with no cap (what one
//   campaign actor can hand out).
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "actors/campaign_actor.h"
#include "bench/latency.h"
#include "campaigns/campaign_view.h"
#include "campaigns/customer.h"
#include "campaigns/task.h"
#include "config/config.h"
#include "projections/campaign_projections.h"
#include "projections/runner.h"
#include "projections/sync_projections.h"
#include "storage/key_store.h"
#include "storage/rocksdb_event_log.h"
#include "sync/domain_event.h"
#include "sync/identity.h"
#include "sync/normalize.h"
#include "util/clock.h"

namespace dfm {
namespace {

using dfm::bench::Median;

constexpr char kTenant[] = "default";
constexpr char kCampaign[] = "bench";

struct Options {
  std::string dir;
  uint64_t people = 100000;
  double cap = 100;
  double seconds = 20;
  size_t stops = 100;
  bool sealed = false;
  // The next tick when the tick asks, not after RestAfterTick's rest (the
  // actor before the rest), for a comparison in one binary.
  bool rest_as_asked = false;
};

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// This thread's CPU time, seconds.
double ThreadCpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double PeakRssMiB() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

std::string Phone(uint64_t k) {
  char b[32];
  std::snprintf(b, sizeof(b), "+1205%07llu", static_cast<unsigned long long>(k));
  return b;
}

std::string ContactOf(uint64_t k) { return "cb" + std::to_string(k); }

bool Append(EventLog* log, std::vector<EventDraft>* batch) {
  if (batch->empty()) return true;
  std::vector<AppendOutcome> out;
  Status s = log->Append(std::move(*batch), &out);
  batch->clear();
  if (!s.ok()) std::fprintf(stderr, "append: %s\n", s.ToString().c_str());
  return s.ok();
}

// The people: a contact each, tagged "bench", with a phone and a name.
bool AppendPeople(EventLog* log, uint64_t people) {
  std::vector<EventDraft> batch;
  const EventId cause;
  for (uint64_t k = 0; k < people; ++k) {
    DomainEvent d;
    d.type = std::string(ev::kContactCreated);
    d.contact_id = ContactOf(k);
    d.system = "ghl";
    d.external_id = "g" + std::to_string(k);
    d.fields = {{fields::kFirstName, "Person" + std::to_string(k)},
                {fields::kPhone, Phone(k)},
                {fields::kTags, "bench"}};
    batch.push_back(ToDraft(d, kTenant, ContactStream(d.contact_id), cause, cause));
    if (batch.size() >= 4096 && !Append(log, &batch)) return false;
  }
  return Append(log, &batch);
}

// The customer, its payment, and a two-step campaign (a text now, another
// a day later) to everyone tagged "bench", started now.
bool AppendCampaign(EventLog* log, int64_t now_us) {
  Customer c;
  c.id = "cu-bench";
  c.name = "Bench Co";
  Payment paid{"10.00", "USD", "r-1", "", now_us};
  CampaignSpec spec;
  spec.id = kCampaign;
  spec.customer = c.id;
  spec.audience.tags = {"bench"};
  CampaignStep first;
  first.template_text = "Hi {{first_name|there}}, your order is ready.";
  CampaignStep second = first;
  second.template_text = "Still interested?";
  second.delay_s = 86400;
  spec.steps = {first, second};
  CampaignView draft;
  draft.spec = spec;
  CampaignChange start;
  if (!PlanCampaignChange(draft, CampaignAction::kStart, now_us, "bench", "", &start).ok())
    return false;
  std::vector<EventDraft> batch;
  batch.push_back(CustomerDraft(kTenant, c, true));
  batch.push_back(PaymentDraft(kTenant, c.id, paid));
  batch.push_back(CampaignCreatedDraft(kTenant, spec));
  batch.push_back(CampaignChangedDraft(kTenant, start, 0));
  return Append(log, &batch);
}

// Folds the projections on a thread of its own while the bench runs.
class Folder {
 public:
  Folder(EventLog* log, ProjectionRunner* runner) : log_(log), runner_(runner) {
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        const uint64_t last = log_->LastSequence();
        if (Status s = runner_->CatchUp(); !s.ok())
          std::fprintf(stderr, "fold: %s\n", s.ToString().c_str());
        log_->WaitForSequence(last + 1, std::chrono::milliseconds(20));
      }
    });
  }
  ~Folder() {
    stop_.store(true);
    thread_.join();
  }

 private:
  EventLog* log_;
  ProjectionRunner* runner_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The campaign actor's loop and the sender it hands texts to.
class Run {
 public:
  Run(EventLog* log, SyncEnv* env, bool rest_as_asked)
      : log_(log), env_(env), read_(log->LastSequence()), rest_as_asked_(rest_as_asked) {}

  // One tick, then the sender's answers to what it claimed; sleeps until
  // the next tick is due, or until `done` says so (looked at every 10 ms).
  // False when the campaign ended or a step failed.
  bool Step(const std::function<bool()>& done = nullptr) {
    const double t = Now(), cpu = ThreadCpu();
    const int64_t next = TickCampaign(*env_, kTenant, kCampaign, &tick_);
    const double took_s = Now() - t;
    tick_ms_.push_back(took_s * 1000);
    tick_cpu_s_ += ThreadCpu() - cpu;
    // Rested as the actor rests (RestAfterTick), from the tick's end.
    const int64_t rest =
        rest_as_asked_ ? next : RestAfterTick(next, static_cast<int64_t>(took_s * 1e6));
    const double wake = t + took_s + rest / 1e6;
    if (next < 0 || !Answer()) return false;
    while (Now() < wake && !(done && done())) {
      const double left = wake - Now();
      std::this_thread::sleep_for(
          std::chrono::duration<double>(done ? std::min(left, 0.01) : left));
    }
    return true;
  }

  uint64_t claimed() const { return claimed_; }
  // How long each tick took (ms), since the last call.
  std::vector<double> TakeTickTimes() { return std::exchange(tick_ms_, {}); }
  // The CPU time the ticks took (s), since the last call.
  double TakeTickCpu() { return std::exchange(tick_cpu_s_, 0); }
  // When each stopped person's waiting task was skipped (Now()).
  std::map<std::string, double>& skipped_at() { return skipped_at_; }
  std::set<std::string>& watching() { return watching_; }

 private:
  // Reads what was appended since the last look: each claim is answered
  // as sent (the contact's push.succeeded of the send), each skip of a
  // watched person noted.
  bool Answer() {
    std::vector<Event> events;
    std::vector<EventDraft> batch;
    const EventId cause;
    while (read_ < log_->LastSequence()) {
      events.clear();
      if (!log_->Read(read_ + 1, 4096, &events).ok() || events.empty()) return false;
      read_ = events.back().seq;
      for (const Event& e : events) {
        if (e.type.rfind("task.", 0) != 0) continue;
        TaskEvent t;
        if (!DecodeTaskEvent(e.type, e.payload, &t)) continue;
        if (t.type == kTaskSkipped && watching_.count(t.contact) && !skipped_at_.count(t.contact))
          skipped_at_[t.contact] = Now();
        if (t.type != kTaskClaimed) continue;
        ++claimed_;
        DomainEvent d;
        d.type = std::string(ev::kPushSucceeded);
        d.contact_id = t.contact;
        d.system = "verity";
        d.op = "send";
        d.channel = "sms";
        d.message_key = CampaignMessageKey(t.campaign, t.step, t.contact);
        d.push_id = t.contact + ":verity:send:" + d.message_key;
        d.external_id = "v-" + d.message_key;
        batch.push_back(ToDraft(d, kTenant, ContactStream(t.contact), cause, cause));
      }
    }
    return Append(log_, &batch);
  }

  EventLog* log_;
  SyncEnv* env_;
  CampaignTickState tick_;
  uint64_t read_;
  uint64_t claimed_ = 0;
  std::set<std::string> watching_;
  std::map<std::string, double> skipped_at_;
  bool rest_as_asked_;
  std::vector<double> tick_ms_;
  double tick_cpu_s_ = 0;
};

int64_t TasksMade(const EventLog& log) {
  std::map<std::string, int64_t> by_state, skipped;
  if (!ReadCampaignCounts(log, kTenant, kCampaign, &by_state, &skipped).ok()) return -1;
  int64_t n = 0;
  for (const auto& [state, count] : by_state) n += count;
  return n;
}

// What each of the campaign actor's ticks reads: every task of the
// campaign, decoded (ReadCampaignTasks), against their rows' scan alone.
// Medians of 5.
void TimeTaskReads(const EventLog& log) {
  std::vector<double> read, scan;
  size_t tasks_read = 0;
  for (int i = 0; i < 5; ++i) {
    std::vector<Task> tasks;
    double t = Now();
    if (!ReadCampaignTasks(log, kTenant, kCampaign, &tasks).ok()) return;
    read.push_back((Now() - t) * 1000);
    tasks_read = tasks.size();
    t = Now();
    Status s = log.ScanConsumerState(CampaignTasksProjection::kName,
                                     std::string("t/") + kTenant + "/" + kCampaign + "/",
                                     [](std::string_view, std::string_view) { return true; });
    if (!s.ok()) return;
    scan.push_back((Now() - t) * 1000);
  }
  std::printf("tick's read: %zu tasks in %.1f ms (their rows' scan alone %.1f ms)\n", tasks_read,
              Median(read), Median(scan));
}

std::shared_ptr<CampaignRunSettings> Settings(double cap) {
  auto s = std::make_shared<CampaignRunSettings>();
  s->hours = {0, 24 * 60};  // no quiet hours: the figures are the engine's
  s->zones = std::make_shared<RecipientZones>(nullptr);
  s->caps = {0, 0};
  s->texts_per_second = cap;
  return s;
}

// Opts out the last `n` people (their texts wait the longest); returns
// when it appended.
// Opt-outs of the people k in [from, to) appended (what their STOPs'
// decisions append); when the append began, or -1 when it failed.
double StopSome(EventLog* log, uint64_t from, uint64_t to) {
  std::vector<EventDraft> batch;
  const EventId cause;
  for (uint64_t k = from; k < to; ++k) {
    DomainEvent d;
    d.type = std::string(ev::kOptedOut);
    d.contact_id = ContactOf(k);
    d.system = "verity";
    d.channel = "sms";
    d.reason = "keyword STOP";
    d.fields = {{fields::kPhone, Phone(k)}};
    batch.push_back(ToDraft(d, kTenant, ContactStream(d.contact_id), cause, cause));
  }
  const double at = Now();
  return Append(log, &batch) ? at : -1;
}

// The log in o.dir, sealed when o.sealed. False (said) when it cannot
// open.
bool OpenLog(const Options& o, std::unique_ptr<RocksDbEventLog>* log) {
  RocksDbLogOptions lo;
  lo.path = o.dir + "/log";
  if (o.sealed) {
    std::unique_ptr<RocksDbKeyStore> keys;
    if (Status s = RocksDbKeyStore::Open(o.dir + "/keys", false, &keys); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return false;
    }
    lo.keys = std::move(keys);
  }
  if (Status s = RocksDbEventLog::Open(lo, log); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return false;
  }
  return true;
}

// The campaign appended and run until every first task is made.
bool ScheduleAll(const Options& o, RocksDbEventLog* log, const SyncEnv& env, Run* run) {
  const double rss0 = PeakRssMiB();
  const double t = Now();
  if (!AppendCampaign(log, env.now_us())) return false;
  auto all_made = [&] { return TasksMade(*log) >= static_cast<int64_t>(o.people); };
  while (!all_made())
    if (!run->Step(all_made)) return false;
  std::printf("scheduling: %llu tasks made and folded in %.1f s; peak RSS +%.0f MiB (%.0f MiB)\n",
              static_cast<unsigned long long>(o.people), Now() - t, PeakRssMiB() - rss0,
              PeakRssMiB());
  return true;
}

// The dispatch at the cap, with the --stops people opting out on the way,
// and how soon each one's waiting text was skipped.
bool DispatchWithStops(const Options& o, RocksDbEventLog* log, Run* run) {
  // Dispatch at the cap (after 2 s: the pacer's one-second burst spent).
  // The --stops people (the last ones: their texts still wait) opt out in
  // kStopGroups groups from halfway through, kStopGapS apart, on a thread
  // of their own: each group's moment falls anywhere in the actor's tick
  // and rest.
  constexpr int kStopGroups = 5;
  constexpr double kStopGapS = 1.37;
  for (double t0 = Now(); Now() - t0 < 2;)
    if (!run->Step()) return false;
  const uint64_t c0 = run->claimed();
  run->TakeTickTimes();
  run->TakeTickCpu();
  const double t = Now();
  const uint64_t first_stopped = o.people - o.stops;
  // Group g: the stopped people from group_start(g) up to group_start(g + 1).
  auto group_start = [&](uint64_t g) {
    return first_stopped + (g * o.stops + kStopGroups - 1) / kStopGroups;
  };
  auto group_of = [&](uint64_t k) { return (k - first_stopped) * kStopGroups / o.stops; };
  for (uint64_t k = first_stopped; k < o.people; ++k) run->watching().insert(ContactOf(k));
  std::array<std::atomic<double>, kStopGroups> stop_at;
  for (auto& a : stop_at) a.store(-1);
  std::thread stopper([&, begin = t] {
    for (int g = 0; g < kStopGroups && o.stops > 0; ++g) {
      // (Within the dispatch's second half when --seconds is short.)
      const double gap = std::min(kStopGapS, o.seconds / 2 / kStopGroups);
      const double when = begin + o.seconds / 2 + g * gap;
      while (Now() < when) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      stop_at[g].store(StopSome(log, group_start(g), group_start(g + 1)));
    }
  });
  while (Now() - t < o.seconds)
    if (!run->Step()) break;
  stopper.join();
  for (const auto& a : stop_at)
    if (o.stops > 0 && a.load() < 0) return false;  // said on stderr
  const double rate = static_cast<double>(run->claimed() - c0) / (Now() - t);
  std::vector<double> ticks = run->TakeTickTimes();
  std::printf(
      "dispatch: %.1f texts/s at a cap of %.0f/s (%.3f of the cap); a tick median %.1f ms, "
      "the ticks' CPU %.2f of a core\n",
      rate, o.cap, rate / o.cap, Median(ticks), run->TakeTickCpu() / (Now() - t));
  // Every stopped person's task skipped (the actor keeps ticking).
  const double wait_from = Now();
  while (run->skipped_at().size() < run->watching().size() && Now() - wait_from < 30)
    if (!run->Step()) return false;
  std::vector<double> lags;
  for (uint64_t k = first_stopped; k < o.people; ++k) {
    auto skipped = run->skipped_at().find(ContactOf(k));
    if (skipped != run->skipped_at().end())
      lags.push_back((skipped->second - stop_at[group_of(k)].load()) * 1000);
  }
  std::printf(
      "stop: %zu of %zu people's waiting texts skipped; append -> skipped median %.0f ms, "
      "max %.0f ms\n",
      lags.size(), run->watching().size(), Median(lags),
      lags.empty() ? 0 : *std::max_element(lags.begin(), lags.end()));
  return true;
}

// The dispatch with no cap: the actor's ceiling.
void Ceiling(const Options& o, SyncEnv* env, Run* run) {
  env->campaigns = Settings(1e9);
  const uint64_t c0 = run->claimed();
  const double t = Now();
  while (Now() - t < o.seconds)
    if (!run->Step()) break;
  const double rate = static_cast<double>(run->claimed() - c0) / (Now() - t);
  std::printf("ceiling: %.0f texts/s claimed with no cap; peak RSS %.0f MiB\n", rate, PeakRssMiB());
}

int Bench(const Options& o) {
  std::unique_ptr<RocksDbEventLog> log;
  if (!OpenLog(o, &log)) return 1;
  SyncProjections proj;
  ProjectionRunner runner(log.get(), proj.All());
  const double t = Now();
  if (!AppendPeople(log.get(), o.people) || !runner.CatchUp().ok()) return 1;
  std::printf("setup: %llu people appended and folded in %.1f s\n",
              static_cast<unsigned long long>(o.people), Now() - t);

  Normalizer normalizer("US");
  SyncEnv env;
  env.log = log.get();
  ApplyBuiltinDefaults(&env.ctx);
  env.mapper.normalizer = &normalizer;
  env.now_us = [] { return SystemClock::Instance()->NowMicros(); };
  env.campaigns = Settings(o.cap);
  Folder folder(log.get(), &runner);
  Run run(log.get(), &env, o.rest_as_asked);
  if (!ScheduleAll(o, log.get(), env, &run) || !DispatchWithStops(o, log.get(), &run)) return 1;
  Ceiling(o, &env, &run);
  TimeTaskReads(*log);  // last: its own reads' memory is not in the figures above
  return 0;
}

}  // namespace
}  // namespace dfm

int main(int argc, char** argv) {
  static const char kUsage[] =
      "usage: campaign_bench DIR [--people N] [--cap T] [--seconds S] [--stops K] [--sealed]\n"
      "                          [--rest-as-asked]\n";
  dfm::Options o;
  for (int i = 1; i < argc; ++i) {
    auto next = [&](const char* flag) -> const char* {
      if (std::strcmp(argv[i], flag) != 0 || i + 1 >= argc) return nullptr;
      return argv[++i];
    };
    if (const char* v = next("--people")) {
      o.people = std::strtoull(v, nullptr, 10);
    } else if (const char* v2 = next("--cap")) {
      o.cap = std::atof(v2);
    } else if (const char* v3 = next("--seconds")) {
      o.seconds = std::atof(v3);
    } else if (const char* v4 = next("--stops")) {
      o.stops = std::strtoull(v4, nullptr, 10);
    } else if (std::strcmp(argv[i], "--rest-as-asked") == 0) {
      o.rest_as_asked = true;
    } else if (std::strcmp(argv[i], "--sealed") == 0) {
      o.sealed = true;
    } else if (argv[i][0] != '-' && o.dir.empty()) {
      o.dir = argv[i];
    } else {
      std::fputs(kUsage, stderr);
      return 2;
    }
  }
  if (o.dir.empty() || o.stops > o.people) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  return dfm::Bench(o);
}
