// Micro-benchmarks of single ingest stages (issue 50; bench/README.md (b),
// "Stages, one at a time"). Each stage runs the way the service runs it
// beside the way it ran before the change, in alternating rounds, and the
// medians are reported with their ratio.
//
//   build/release/bench/stage_bench [--stage aead|answers|phone|streams|keys|all] [--rounds 5]
//
// aead: sealing one 1,500-byte payload with AeadSeal, whose thread keeps
//   one initialised cipher context and takes nonces from a buffer of the
//   generator's output, against a context reset and set up again, and a
//   nonce asked of the generator, for every payload; opening 1,400 bytes
//   under a key of their own with AeadOpen (the provider's functions)
//   against the same through EVP with a kept context.
// answers: a writer thread ends bursts of 64 answers, 200 µs apart (a
//   group commit's fdatasync), to an io_context run by one I/O thread:
//   through AnswerQueue (one post per burst) against one asio::post per
//   answer. CPU (both threads) and context switches per answer.
// phone: two threads normalise the numbers of texts from 10,000 senders
//   drawn at random (the mapper's Normalizer::Phone): the shared cache
//   against each thread's own 1,024 answers, emptied when full.
// streams: a streams memtable set up like the log's (32 MiB, filled in turn),
//   takes the stream keys of webhooks from 10,000 senders (each webhook a
//   key of the source's stream and one of its sender's contact stream, in
//   group commits of 20 keys; no WAL): with the insert hint per stream
//   (storage/stream_keys.h) against without. CPU per webhook.
// keys: the 256 keys of a key-store block (storage/key_store.h: a sealed
//   log makes one per webhook) drawn from the generator at once, as
//   MakeKeys draws them, against one draw of 32 bytes per key. ns per key.
#include <openssl/evp.h>
#include <phonenumbers/phonenumberutil.h>
#include <rocksdb/db.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/write_batch.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench/latency.h"
#include "http/answer_queue.h"
#include "storage/stream_keys.h"
#include "sync/normalize.h"
#include "util/aead.h"
#include "util/burst.h"
#include "util/coding.h"
#include "util/crypto.h"

using namespace dfm;
using dfm::bench::Median;

namespace {

struct Usage {
  double cpu_s = 0;
  long switches = 0;
};

Usage Now() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return {static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
              static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6,
          u.ru_nvcsw + u.ru_nivcsw};
}

// The way AeadSeal worked before: the thread's context reset, so the
// cipher's own context is freed and made again, and set up in full; the
// nonce asked of the generator.
std::string SealResetEachTime(std::string_view key, std::string_view aad, std::string_view plain) {
  static EVP_CIPHER* const gcm = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  thread_local std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(
      EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  EVP_CIPHER_CTX_reset(ctx.get());
  std::string out(kAeadNonceBytes + plain.size() + kAeadTagBytes, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  auto* k = reinterpret_cast<const unsigned char*>(key.data());
  int n = 0, m = 0;
  RandomBytes(o, kAeadNonceBytes);
  if (EVP_EncryptInit_ex(ctx.get(), gcm, nullptr, k, o) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &n, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), o + kAeadNonceBytes, &n,
                        reinterpret_cast<const unsigned char*>(plain.data()),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), o + kAeadNonceBytes + n, &m) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kAeadTagBytes,
                          o + kAeadNonceBytes + plain.size()) != 1)
    return {};
  return out;
}

// The way AeadOpen worked before: through EVP, with the thread's context
// kept (set up once with the cipher), the key and nonce set per payload,
// the tag given by ctrl. Each call asks the provider for the key and
// nonce lengths, and the tag goes as a parameter list: lookups by name.
// Like AeadOpen, the plaintext comes in a string of its own.
std::optional<std::string> OpenThroughEvp(std::string_view key, std::string_view aad,
                                          std::string_view sealed) {
  static EVP_CIPHER* const gcm = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  thread_local std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(
      [] {
        EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
        EVP_CipherInit_ex(c, gcm, nullptr, nullptr, nullptr, 0);
        return c;
      }(),
      EVP_CIPHER_CTX_free);
  const size_t len = sealed.size() - kAeadNonceBytes - kAeadTagBytes;
  std::string plain(len, '\0');
  const auto* in = reinterpret_cast<const unsigned char*>(sealed.data());
  unsigned char tag[kAeadTagBytes];
  std::memcpy(tag, in + kAeadNonceBytes + len, kAeadTagBytes);
  int n = 0, m = 0;
  auto* out = reinterpret_cast<unsigned char*>(plain.data());
  if (EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr,
                            reinterpret_cast<const unsigned char*>(key.data()), in) == 1 &&
         EVP_DecryptUpdate(ctx.get(), nullptr, &n,
                           reinterpret_cast<const unsigned char*>(aad.data()),
                           static_cast<int>(aad.size())) == 1 &&
         EVP_DecryptUpdate(ctx.get(), out, &n, in + kAeadNonceBytes, static_cast<int>(len)) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kAeadTagBytes, tag) == 1 &&
         EVP_DecryptFinal_ex(ctx.get(), out + n, &m) == 1)
    return plain;
  return std::nullopt;
}

// ns per call of `fn` over ~0.3 s.
template <typename Fn>
double NsPerCall(Fn fn) {
  constexpr int kCalls = 100000;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kCalls; ++i) fn(i);
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
         kCalls;
}

// Round r of an alternating comparison: `now` then `before` in even
// rounds, the other way round in odd ones, each figure to its list.
template <typename Now, typename Before>
void Alternate(int r, Now now_fn, Before before_fn, std::vector<double>* now,
               std::vector<double>* before) {
  if (r % 2 == 0) {
    now->push_back(now_fn());
    before->push_back(before_fn());
  } else {
    before->push_back(before_fn());
    now->push_back(now_fn());
  }
}

void AeadStage(int rounds) {
  std::string key(kAeadKeyBytes, 'k'), aad(40, 'a'), plain(1500, 'p');
  // Opening as a log's reader does: each payload under a key of its own
  // (the key schedule every time), 1,400 bytes.
  constexpr int kKeys = 4096;
  std::vector<std::string> keys, sealed_under;
  for (int i = 0; i < kKeys; ++i) {
    keys.emplace_back(kAeadKeyBytes, '\0');
    RandomBytes(reinterpret_cast<uint8_t*>(keys.back().data()), kAeadKeyBytes);
    sealed_under.push_back(AeadSeal(keys.back(), aad, std::string(1400, 'p')));
  }
  size_t sink = 0;
  std::vector<double> now, before, open_now, open_before, nonce;
  const std::string sealed = AeadSeal(key, aad, plain);
  for (int r = 0; r < rounds; ++r) {
    auto seal = [&](int) { sink += AeadSeal(key, aad, plain).size(); };
    auto reset = [&](int) { sink += SealResetEachTime(key, aad, plain).size(); };
    auto opener = [&](int i) { sink += AeadOpen(keys[i % kKeys], aad, sealed_under[i % kKeys])->size(); };
    auto evp = [&](int i) {
      sink += OpenThroughEvp(keys[i % kKeys], aad, sealed_under[i % kKeys])->size();
    };
    Alternate(
        r, [&] { return NsPerCall(seal); }, [&] { return NsPerCall(reset); }, &now, &before);
    Alternate(
        r, [&] { return NsPerCall(opener); }, [&] { return NsPerCall(evp); }, &open_now,
        &open_before);
    nonce.push_back(NsPerCall([&](int) {
      uint8_t n[kAeadNonceBytes];
      RandomBytes(n, sizeof(n));
      sink += n[0];
    }));
  }
  if (SealResetEachTime(key, aad, plain).size() != sealed.size() || sink == 0 ||
      OpenThroughEvp(keys[0], aad, sealed_under[0]) != std::string(1400, 'p'))
    std::abort();
  std::printf(
      "aead: seal 1,500 bytes %.0f ns (context kept, nonces buffered) vs %.0f ns (before), "
      "%.2fx; open 1,400 bytes under a key of its own %.0f ns (the provider's functions) vs "
      "%.0f ns (through EVP), %.2fx; a 12-byte nonce %.0f ns; medians of %d\n",
      Median(now), Median(before), Median(now) / Median(before), Median(open_now),
      Median(open_before), Median(open_now) / Median(open_before), Median(nonce), rounds);
}

struct HandOff {
  double cpu_ns = 0, switches = 0;
};

// One round: `bursts` bursts of kBurst answers from this thread to an
// io_context run by another, as the log's writer ends a group commit's
// webhooks: through an AnswerQueue inside a Burst, or by one post per
// answer. Each answer goes to its connection's strand, as RESTinio's
// response does, and carries what a webhook's does (a shared handle and a
// request id).
HandOff RunHandOff(bool queued, int bursts) {
  constexpr int kBurst = 64, kConnections = 128;
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::vector<asio::strand<asio::io_context::executor_type>> strands;
  for (int i = 0; i < kConnections; ++i) strands.push_back(asio::make_strand(io));
  std::thread front([&] { io.run(); });
  AnswerQueue answers(io);
  std::atomic<uint64_t> ran{0};
  auto handle = std::make_shared<int>(1);
  const Usage u0 = Now();
  for (int b = 0; b < bursts; ++b) {
    {
      Burst burst;  // as the writer's, around a group commit's callbacks
      for (int i = 0; i < kBurst; ++i) {
        auto& strand = strands[static_cast<size_t>(b * kBurst + i) % kConnections];
        std::string request_id(32, 'r');
        auto write = [&ran, handle, request_id] { ran.fetch_add(request_id.size() == 32); };
        if (queued) {
          answers.Post([&strand, write] { asio::dispatch(strand, write); });
        } else {
          asio::dispatch(strand, write);
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // the next fdatasync
  }
  const uint64_t total = static_cast<uint64_t>(bursts) * kBurst;
  while (ran.load() < total) std::this_thread::yield();
  const Usage u1 = Now();
  work.reset();
  front.join();
  return {(u1.cpu_s - u0.cpu_s) * 1e9 / static_cast<double>(total),
          static_cast<double>(u1.switches - u0.switches) / static_cast<double>(total)};
}

void AnswersStage(int rounds) {
  constexpr int kBursts = 3000;
  std::vector<double> q_cpu, q_sw, p_cpu, p_sw;
  for (int r = 0; r < rounds; ++r) {
    for (bool queued :
         r % 2 == 0 ? std::vector<bool>{true, false} : std::vector<bool>{false, true}) {
      HandOff h = RunHandOff(queued, kBursts);
      (queued ? q_cpu : p_cpu).push_back(h.cpu_ns);
      (queued ? q_sw : p_sw).push_back(h.switches);
    }
  }
  std::printf(
      "answers: CPU per answer %.0f ns (AnswerQueue) vs %.0f ns (a post each), %.2fx; "
      "context switches per answer %.3f vs %.3f (bursts of 64, 200 us apart); "
      "medians of %d\n",
      Median(q_cpu), Median(p_cpu), Median(q_cpu) / Median(p_cpu), Median(q_sw), Median(p_sw),
      rounds);
}

// The way Normalizer::Phone worked before: each thread's own 1,024
// answers, emptied when full, over the same parse.
std::optional<std::string> PhoneThreadCached(const std::string& text) {
  using i18n::phonenumbers::PhoneNumber;
  using i18n::phonenumbers::PhoneNumberUtil;
  thread_local std::unordered_map<std::string, std::optional<std::string>> cache;
  auto it = cache.find(text);
  if (it != cache.end()) return it->second;
  std::optional<std::string> out;
  const PhoneNumberUtil* util = PhoneNumberUtil::GetInstance();
  PhoneNumber number;
  if (util->Parse(text, "US", &number) == PhoneNumberUtil::NO_PARSING_ERROR &&
      util->IsPossibleNumber(number)) {
    out.emplace();
    util->Format(number, PhoneNumberUtil::E164, &*out);
  }
  if (cache.size() >= 1024) cache.clear();
  cache.emplace(text, out);
  return out;
}

// ns of CPU per number: two threads, each normalising `calls` numbers of
// senders drawn at random from 10,000.
template <typename Fn>
double PhoneRound(Fn normalise, int calls) {
  const Usage u0 = Now();
  std::vector<std::thread> threads;
  std::atomic<size_t> sink{0};
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      uint64_t rng = 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(t);
      for (int i = 0; i < calls; ++i) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        const std::string text = "+1205" + std::to_string(2010000 + rng % 10000);
        sink += normalise(text).value_or("").size();
      }
    });
  }
  for (auto& t : threads) t.join();
  if (sink.load() == 0) std::abort();
  return (Now().cpu_s - u0.cpu_s) * 1e9 / (2.0 * calls);
}

void PhoneStage(int rounds) {
  constexpr int kCalls = 100000;
  Normalizer us("US");
  std::vector<double> now, before;
  for (int r = 0; r < rounds; ++r) {
    auto shared = [&](const std::string& t) { return us.Phone(t); };
    Alternate(
        r, [&] { return PhoneRound(shared, kCalls); },
        [&] { return PhoneRound(PhoneThreadCached, kCalls); }, &now, &before);
  }
  std::printf(
      "phone: CPU per number %.0f ns (shared cache) vs %.0f ns (per thread, 1,024), "
      "%.2fx; 10,000 senders, 2 threads; medians of %d\n",
      Median(now), Median(before), Median(now) / Median(before), rounds);
}

// CPU ns per webhook of `webhooks` webhooks' stream keys into a fresh
// memtable (32 MiB, as the log's streams family), hinted or not.
double StreamsRound(bool hinted, int webhooks) {
  char tmpl[] = "/tmp/dfm-stage-streams-XXXXXX";
  auto fail = [&](const char* what) {
    std::fprintf(stderr, "streams: %s\n", what);
    std::filesystem::remove_all(tmpl);
    std::exit(1);
  };
  if (mkdtemp(tmpl) == nullptr) fail("cannot make a temporary directory");
  rocksdb::Options o;
  o.create_if_missing = true;
  o.allow_concurrent_memtable_write = false;
  o.write_buffer_size = 32 << 20;
  if (hinted) o.memtable_insert_with_hint_prefix_extractor.reset(NewStreamInsertHint());
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(o, tmpl, &raw).ok()) fail("cannot open RocksDB");
  std::unique_ptr<rocksdb::DB> db(raw);
  std::mt19937_64 rng(7);
  std::vector<std::string> contacts;
  for (int i = 0; i < 10000; ++i)
    contacts.push_back(StreamPrefix("default", "contact:" + std::to_string(rng())));
  const std::string source = StreamPrefix("default", "source:verity");
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  uint64_t seq = 1;
  const double start = bench::CpuSeconds();
  for (int i = 0; i < webhooks; i += 10) {
    rocksdb::WriteBatch wb;
    for (int j = 0; j < 10; ++j) {
      wb.Put(source + EncodeFixed64BE(seq++), rocksdb::Slice());
      wb.Put(contacts[rng() % contacts.size()] + EncodeFixed64BE(seq++), rocksdb::Slice());
    }
    if (!db->Write(wo, &wb).ok()) fail("a write failed");
  }
  const double ns = (bench::CpuSeconds() - start) / webhooks * 1e9;
  db.reset();
  std::filesystem::remove_all(tmpl);
  return ns;
}

void StreamsStage(int rounds) {
  constexpr int kWebhooks = 150000;
  std::vector<double> now, before;
  for (int r = 0; r < rounds; ++r) {
    Alternate(
        r, [] { return StreamsRound(true, kWebhooks); },
        [] { return StreamsRound(false, kWebhooks); }, &now, &before);
  }
  std::printf(
      "streams: CPU per webhook %.0f ns (insert hint per stream) vs %.0f ns (none), %.2fx; "
      "10,000 contacts' streams; medians of %d\n",
      Median(now), Median(before), Median(now) / Median(before), rounds);
}

void KeysStage(int rounds) {
  constexpr size_t kBlock = 256, kKey = 32;
  std::vector<double> now, before;
  size_t sink = 0;
  for (int r = 0; r < rounds; ++r) {
    auto at_once = [&](int) {
      std::string drawn(kBlock * kKey, '\0');
      RandomBytes(reinterpret_cast<uint8_t*>(drawn.data()), drawn.size());
      for (size_t i = 0; i < kBlock; ++i) sink += static_cast<uint8_t>(drawn[i * kKey]);
    };
    auto each = [&](int) {
      for (size_t i = 0; i < kBlock; ++i) {
        uint8_t k[kKey];
        RandomBytes(k, sizeof(k));
        sink += k[0];
      }
    };
    auto per_key = [&](auto block) {  // 2,000 blocks
      const auto t0 = std::chrono::steady_clock::now();
      for (int b = 0; b < 2000; ++b) block(b);
      return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0)
                 .count() /
             (2000.0 * kBlock);
    };
    Alternate(
        r, [&] { return per_key(at_once); }, [&] { return per_key(each); }, &now, &before);
  }
  if (sink == 0) std::abort();
  std::printf(
      "keys: a key of a block drawn at once %.0f ns vs a draw per key %.0f ns, %.2fx; medians of "
      "%d\n",
      Median(now), Median(before), Median(now) / Median(before), rounds);
}

}  // namespace

int main(int argc, char** argv) {
  std::string stage = "all";
  int rounds = 5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--stage" && i + 1 < argc) {
      stage = argv[++i];
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(
          stderr,
          "usage: stage_bench [--stage aead|answers|phone|streams|keys|all] [--rounds N]\n");
      return 2;
    }
  }
  if (stage != "all" && stage != "aead" && stage != "answers" && stage != "phone" &&
      stage != "streams" && stage != "keys") {
    std::fprintf(stderr, "unknown stage %s (aead, answers, phone, streams, keys, all)\n",
                 stage.c_str());
    return 2;
  }
  if (stage == "all" || stage == "aead") AeadStage(rounds);
  if (stage == "all" || stage == "answers") AnswersStage(rounds);
  if (stage == "all" || stage == "phone") PhoneStage(rounds);
  if (stage == "all" || stage == "streams") StreamsStage(rounds);
  if (stage == "all" || stage == "keys") KeysStage(rounds);
  return 0;
}
