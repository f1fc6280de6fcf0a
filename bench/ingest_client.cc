// Load generator for benchmark (b): signed ~1.5 KiB Verity webhooks over
// keep-alive loopback connections, every one with a new messageId (so each
// is a new durable append, never a duplicate).
//
//   ingest_client --port P [--connections 64] [--seconds 10] [--rate R]
//                 [--secret S] [--prefix P] [--path /webhooks/verity]
//                 [--timeline FILE] [--senders N]
//
// Without --rate it is closed-loop (each connection sends as soon as it has
// its answer): the maximum rate. With --rate it is open-loop: requests are
// due at a fixed rate and latency counts from when each was due, so a slow
// server cannot hide its queueing (no coordinated omission). Prints one
// JSON object: connections, rate, seconds, ok, errors, req_per_s, the
// latency percentiles p50_us, p99_us, p999_us, max_us, and cpu_us: the
// client's own CPU time (user and system) over the run, so a script can
// put a server's CPU per request beside the client's. Exits 2 if any
// request was not answered 2xx, 1 if --timeline's FILE cannot be written.
// --timeline also writes the run's answers per 100 ms slice to FILE (see
// WriteTimeline), to find when a stall was. --senders N (1) spreads the
// texts over N senders' numbers, drawn at random for each request: with
// the sync on, N contacts' work instead of one's.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "bench/latency.h"
#include "util/crypto.h"

using namespace dfm;
using Clock = std::chrono::steady_clock;

namespace {

// User plus system CPU time this process has used, in µs.
int64_t CpuUs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto us = [](const timeval& t) { return int64_t{t.tv_sec} * 1'000'000 + t.tv_usec; };
  return us(u.ru_utime) + us(u.ru_stime);
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

struct Conn {
  int fd = -1;
  bool busy = false;
  std::string out;
  size_t sent = 0;
  std::string in;
  int64_t due_ns = 0;
};

// Writes one line per 100 ms slice of the run: the slice's start (ms
// since the run began, wall-clock ms since the epoch), answers completed
// in it, and the slowest of them (µs; 0 when none completed, which in a
// stall is the slice to look at). To line up with RocksDB's LOG, which
// prints local time. False if FILE cannot be written.
bool WriteTimeline(const std::string& path, int64_t start, const std::vector<int64_t>& done_at,
                   const std::vector<int64_t>& lat) {
  constexpr int64_t kSlice = 100'000'000;
  std::vector<std::pair<uint64_t, int64_t>> slices;
  for (size_t i = 0; i < done_at.size(); ++i) {
    size_t s = static_cast<size_t>((done_at[i] - start) / kSlice);
    if (slices.size() <= s) slices.resize(s + 1);
    slices[s].first++;
    slices[s].second = std::max(slices[s].second, lat[i]);
  }
  const int64_t wall_start_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count() -
      (NowNs() - start) / 1'000'000;
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  for (size_t s = 0; s < slices.size(); ++s) {
    std::fprintf(f, "%lld %lld %llu %lld\n", static_cast<long long>(s * 100),
                 static_cast<long long>(wall_start_ms + static_cast<int64_t>(s) * 100),
                 static_cast<unsigned long long>(slices[s].first),
                 static_cast<long long>(slices[s].second / 1000));
  }
  return std::fclose(f) == 0;
}

struct Options {
  int port = 8080, connections = 64;
  double seconds = 10, rate = 0;
  std::string secret = "dev-verity-secret", prefix = "bench", path = "/webhooks/verity";
  std::string timeline_path;
  uint64_t senders = 1;
};

// False (said on stderr) when an option is out of range.
bool ParseOptions(int argc, char** argv, Options* o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--port") o->port = std::atoi(argv[i + 1]);
    if (a == "--connections") o->connections = std::atoi(argv[i + 1]);
    if (a == "--seconds") o->seconds = std::atof(argv[i + 1]);
    if (a == "--rate") o->rate = std::atof(argv[i + 1]);
    if (a == "--secret") o->secret = argv[i + 1];
    if (a == "--prefix") o->prefix = argv[i + 1];
    if (a == "--path") o->path = argv[i + 1];
    if (a == "--timeline") o->timeline_path = argv[i + 1];
    if (a == "--senders") {
      char* end = nullptr;
      o->senders = std::strtoull(argv[i + 1], &end, 10);
      if (*end != '\0') o->senders = 0;  // refused below
    }
  }
  if (o->senders < 1 || o->senders > 1000000) {
    std::fprintf(stderr, "--senders must be 1 to 1,000,000\n");
    return false;
  }
  return true;
}

// A body shaped like a real message webhook (~1.5 KiB): random ids, a
// text of words drawn at random, and the sender's record. Not a run of
// one character: the bytes must compress the way real ones do. One
// sender unless --senders, so the sync behind the log stays one contact's
// work: this measures ingest (bench (c) measures the sync).
//
// The client shares the machine's two cores with the server it loads,
// so it builds each request in place in reused buffers (a 64-bit draw
// gives 16 hex digits): ~3.2 µs of its own user CPU per request rather
// than 4.4-5.6 (bench/README.md (b)). The bodies are the same shape and
// as random.
class RequestMaker {
 public:
  explicit RequestMaker(const Options& o) : o_(o), key_(HmacKey::Digest::kSha256, o.secret) {
    body_.reserve(2048);
    for (size_t i = 0; i < kNumWords; ++i) word_len_[i] = std::strlen(kWords[i]);
  }

  // Fills `out` with the next request.
  void Make(std::string& out) {
    MakeBody();
    out.clear();
    out += "POST ";
    out += o_.path;
    out +=
        " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Texting-Signature: ";
    out += HexEncode(key_.Mac(body_));
    out += "\r\nContent-Length: ";
    Num(out, body_.size());
    out += "\r\n\r\n";
    out += body_;
  }

 private:
  static constexpr const char* kWords[] = {
      "hi",        "there",    "can",    "we",     "move",   "the",       "appointment",
      "to",        "thursday", "at",     "3pm",    "thanks", "please",    "call",
      "me",        "back",     "when",   "you",    "get",    "a",         "chance",
      "about",     "quote",    "for",    "roof",   "repair", "is",        "still",
      "available", "what",     "time",   "works",  "best",   "tomorrow",  "morning",
      "I",         "sent",     "photos", "of",     "damage", "yesterday", "and",
      "insurance", "adjuster", "said",   "should", "be",     "fine",      "let",
      "know",      "price",    "ok"};
  static constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

  uint64_t Next() {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return rng_;
  }
  void Hex(int n) {
    static const char* d = "0123456789abcdef";
    char b[64];
    for (int i = 0; i < n; i += 16) {
      uint64_t r = Next();
      for (int k = 0; k < 16; ++k, r >>= 4) b[i + k] = d[r & 15];
    }
    body_.append(b, static_cast<size_t>(n));
  }
  static void Num(std::string& out, uint64_t v) {
    char b[24];
    auto res = std::to_chars(b, b + sizeof(b), v);
    out.append(b, static_cast<size_t>(res.ptr - b));
  }

  void MakeBody() {
    std::string& body = body_;
    body.clear();
    body += R"({"eventType":"message.received","messageId":"msg_)";
    body += o_.prefix;
    body += '_';
    Num(body, counter_++);
    body += R"(","conversationId":"chat_)";
    Hex(24);
    body += R"(","accountId":"acct_)";
    Hex(16);
    if (o_.senders == 1) {
      body += R"(","direction":"inbound","from":"+12055550142","to":"+12055550100","body":")";
    } else {  // +1 205 201-0000 and on: possible US numbers, as the mapper asks
      body += R"(","direction":"inbound","from":"+1205)";
      Num(body, 2010000 + Next() % o_.senders);
      body += R"(","to":"+12055550100","body":")";
    }
    const size_t text_start = body.size();
    while (body.size() - text_start < 280) {
      if (body.size() != text_start) body += ' ';
      size_t w = static_cast<size_t>(((Next() >> 32) * kNumWords) >> 32);
      body.append(kWords[w], word_len_[w]);
    }
    body += R"(","segments":2,"encoding":"GSM-7","media":[],"timestamp":"2026-11-20T18:01:02.)";
    Num(body, 100 + Next() % 900);
    body += R"(Z","status":"received","carrier":{"name":"T-Mobile USA, Inc.",)"
            R"("type":"mobile","mcc":"310","mnc":"260"},"contact":{"id":"cont_)";
    Hex(20);
    body += R"(","firstName":"Jordan","lastName":"Whitfield","email":"jordan.whitfield)";
    Num(body, Next() % 1000);
    body += R"(@example.com","tags":["lead","roofing","spring-campaign"],"createdAt":"2026-10-02T14:22:09.000Z",)"
            R"("owner":{"id":"user_)";
    Hex(12);
    body += R"(","name":"Dana Ortiz"}},"campaign":{"id":"cmp_)";
    Hex(12);
    body += R"(","name":"Spring roofing follow-up","brandId":"brd_)";
    Hex(12);
    body += R"("},"metadata":{"source":"sms","webhookVersion":"2024-06-01","deliveryAttempt":1,"traceId":")";
    Hex(32);
    body += R"(","region":"us-east-1"}})";
  }

  const Options& o_;
  HmacKey key_;
  std::string body_;
  size_t word_len_[kNumWords];
  uint64_t rng_ = 0x9E3779B97F4A7C15ULL;
  uint64_t counter_ = 0;
};

// `conns` connected to the port over loopback, non-blocking, each in the
// epoll set `ep` by its index. False (said) when one cannot connect.
bool Connect(const Options& o, int ep, std::vector<Conn>* conns) {
  conns->resize(static_cast<size_t>(o.connections));
  for (size_t i = 0; i < conns->size(); ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(o.port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      std::perror("connect");
      return false;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, O_NONBLOCK);
    (*conns)[i].fd = fd;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  return true;
}

// The run: requests sent as each connection is free (closed loop) or as
// they come due (--rate), answers read and timed.
class Load {
 public:
  Load(const Options& o, int ep, std::vector<Conn>* conns)
      : o_(o), ep_(ep), conns_(*conns), maker_(o) {
    lat.reserve(1 << 20);
    if (!o.timeline_path.empty()) done_at.reserve(1 << 20);
    for (size_t i = 0; i < conns_.size(); ++i) idle_.push_back(i);
  }

  void Run() {
    start = NowNs();
    const int64_t end = start + static_cast<int64_t>(o_.seconds * 1e9);
    const int64_t interval = o_.rate > 0 ? static_cast<int64_t>(1e9 / o_.rate) : 0;
    int64_t next_due = start;
    epoll_event events[256];
    while (true) {
      int64_t now = NowNs();
      if (now >= end) break;
      // Start what is due.
      while (!idle_.empty()) {
        if (interval > 0) {
          if (next_due > now) break;
          SendOn(idle_.front(), next_due);
          next_due += interval;
        } else {
          SendOn(idle_.front(), now);
        }
        idle_.pop_front();
      }
      for (auto& c : conns_) SendRest(c);  // finish partial sends
      int timeout_ms = 1;
      int n = epoll_wait(ep_, events, 256, timeout_ms);
      for (int k = 0; k < n; ++k) Receive(events[k].data.u64);
    }
  }

  std::vector<int64_t> lat;
  std::vector<int64_t> done_at;  // completion times, kept for --timeline
  uint64_t ok = 0, errors = 0;
  int64_t start = 0;

 private:
  void SendOn(size_t i, int64_t due) {
    Conn& c = conns_[i];
    maker_.Make(c.out);
    c.sent = 0;
    c.busy = true;
    c.due_ns = due;
    SendRest(c);
  }
  // Loopback buffers are large; what does not go now goes at the next turn.
  static void SendRest(Conn& c) {
    while (c.busy && c.sent < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      c.sent += static_cast<size_t>(n);
    }
  }
  void Receive(size_t i) {
    Conn& c = conns_[i];
    char buf[16384];
    // One read per readiness event: an answer is far smaller than the
    // buffer, and whatever is left is reported again (level-triggered),
    // so a second read that would only say EAGAIN is not made.
    ssize_t r = ::recv(c.fd, buf, sizeof(buf), 0);
    if (r > 0) c.in.append(buf, static_cast<size_t>(r));
    for (;;) {
      size_t hdr_end = c.in.find("\r\n\r\n");
      if (hdr_end == std::string::npos) break;
      size_t cl = c.in.find("Content-Length: ");
      size_t len = cl != std::string::npos && cl < hdr_end
                       ? std::strtoul(c.in.c_str() + cl + 16, nullptr, 10)
                       : 0;
      if (c.in.size() < hdr_end + 4 + len) break;
      bool good = c.in.compare(0, 12, "HTTP/1.1 200") == 0;
      c.in.erase(0, hdr_end + 4 + len);
      (good ? ok : errors)++;
      const int64_t t = NowNs();
      lat.push_back(t - c.due_ns);
      if (!o_.timeline_path.empty()) done_at.push_back(t);
      c.busy = false;
      idle_.push_back(i);
    }
  }

  const Options& o_;
  int ep_;
  std::vector<Conn>& conns_;
  RequestMaker maker_;
  std::deque<size_t> idle_;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseOptions(argc, argv, &o)) return 2;
  int ep = epoll_create1(0);
  std::vector<Conn> conns;
  if (!Connect(o, ep, &conns)) return 1;
  Load load(o, ep, &conns);
  const int64_t cpu_start = CpuUs();
  load.Run();
  double elapsed = static_cast<double>(NowNs() - load.start) / 1e9;
  const int64_t cpu_us = CpuUs() - cpu_start;
  std::vector<int64_t>& lat = load.lat;
  // Before the percentiles, which reorder `lat`.
  if (!o.timeline_path.empty() && !WriteTimeline(o.timeline_path, load.start, load.done_at, lat)) {
    std::perror(o.timeline_path.c_str());
    return 1;
  }
  std::printf(
      "{\"connections\":%d,\"rate\":%.0f,\"seconds\":%.1f,\"ok\":%lu,\"errors\":%lu,"
      "\"req_per_s\":%.0f,\"p50_us\":%.0f,\"p99_us\":%.0f,\"p999_us\":%.0f,"
      "\"max_us\":%.0f,\"cpu_us\":%lld}\n",
      o.connections, o.rate, elapsed, static_cast<unsigned long>(load.ok),
      static_cast<unsigned long>(load.errors), static_cast<double>(load.ok) / elapsed,
      bench::Percentile(lat, 50), bench::Percentile(lat, 99), bench::Percentile(lat, 99.9),
      bench::Percentile(lat, 100), static_cast<long long>(cpu_us));
  for (auto& c : conns) close(c.fd);
  return load.errors > 0 ? 2 : 0;
}
