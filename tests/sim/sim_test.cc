// Deterministic simulation of the sync (issue 34, section 2): the router,
// contact actors and two connector actors (Aloware, and Verity as the
// texts' sender) on CAF's test coordinator, with simulated time, a seeded
// scheduler (the next message delivered is a random one of those
// waiting), a log that refuses writes for a while, and vendors that answer
// late, fail (500), rate-limit (429 with Retry-After), or do the work and
// time out. GoHighLevel's contact webhooks and requests to send texts, and
// the people's STOP and START through Verity, arrive late, twice and out
// of order. Every seed is one run; a failing seed reruns exactly from its
// number:
//
//   DFM_SIM_SEED=1234 build/debug/tests/dfm_sim      (one seed, verbose)
//   DFM_SIM_SEEDS=10000 build/debug/tests/dfm_sim    (stops at 5 failing seeds)
//
// Two switches run a seed otherwise the same, to tell causes apart:
// DFM_SIM_NO_ERASE (nobody is erased) and DFM_SIM_RETRY_SENDS (Verity's
// sends are retried after no answer, as before MayApplyTwice: texts go
// out twice).
//
// CI runs 2,000 seeds (ctest sim.seeds). What it found, each fixed with a
// unit test of its own: seed 93, a value stated again later did not move
// its time on, so a late older edit replaced it (ContactModelTest.
// AValueStatedAgainLaterBeatsALateOlderEdit); seed 114, a newer value was
// not sent while another was on its way (ContactModelTest.
// ANewerValueIsSentWhenAnotherIsOnItsWay); seed 455, a half-open circuit
// breaker whose trial was answered 429 waited for it for ever, and the
// connector never sent again (Delivery.ATrialThatEndsNeutrallyLetsTheNextGo);
// seed 6, a text went out between an opt-out's append and its cancel
// (ActorTest.ASendToANumberTheGateClosedIsWithheld); seed 1394, a claim
// lapsed before the fact that used it was projected: a second contact
// (ActorTest.AClaimTheNextFactRecordsFirstHoldsUntilThatIsProjected).
//
// Checked on every seed, once the faults stop and the run is quiet:
// - every webhook the log acknowledged is in it exactly once;
// - the hash chain verifies;
// - every push the sync asked for was settled (none lost, none left hanging);
// - the vendor's record of each person converged to the merged contact:
//   the first name of the newest webhook about them (by its time);
// - the projections, folded live between the sync's steps (some folds
//   refused with the log's writes), equal a rebuild from the log.
// The log seals payloads (docs/privacy.md), and in some runs a person is
// erased (`dfm erase`) while their webhooks and pushes are still on their
// way; then also:
// - the erased contact's events, and the webhooks that fed it, read as
//   erased, and the projections (live, folding the erasure between the
//   sync's steps, and rebuilt) agree without its rows;
// - the person is not checked for convergence (later webhooks about them
//   start a new contact).
// - no text reaches Verity while its number is opted out by what the log
//   holds at that moment (checked at every text, not only at the end);
// - no text is carried out twice (Verity's sends are not idempotent, and
//   the vendor sometimes does a send and leaves it unanswered).
// Not yet simulated (issue 34 notes): the HTTP front, restarts.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>

#include <spdlog/spdlog.h>

#include "app/erase.h"
#include "events/sealing.h"
#include "sync/consent.h"
#include "sync/erasure.h"
#include "projections/runner.h"
#include "projections/sync_projections.h"
#include "tests/support/actor_fixture.h"

namespace dfm {
namespace {

using testing::ActorTest;
using testing::kStart;

constexpr int kPeople = 4;

// The vendor: remembers what each push set, answers when the run says.
class SimVendor : public VendorClient {
 public:
  struct Call {
    PushRequest req;
    std::function<void(PushResult)> done;
  };
  std::vector<Call> waiting;
  std::map<std::string, std::string> first_name;  // by contact id: what the vendor holds
  std::map<std::string, int> attempts;            // by push id
  std::function<void(const PushRequest&)> on_push;  // sees every push as it arrives
  std::map<std::string, int> applied;  // by push id: how often the vendor carried it out
  bool sends_not_idempotent = false;   // as Verity's send route (docs/verity.md)
  bool MayApplyTwice(const PushRequest& req) const override {
    return sends_not_idempotent && req.op == "send";
  }

  void Push(const PushRequest& req, const Credentials&, std::function<void(PushResult)> done) override {
    attempts[req.push_id]++;
    if (on_push) on_push(req);
    waiting.push_back({req, std::move(done)});
  }

  // Answers waiting call `i`: 0 ok, 1 a 500, 2 a 429, 3 done and timed out.
  bool verbose = false;
  void Answer(size_t i, int how) {
    Call c = std::move(waiting[i]);
    waiting.erase(waiting.begin() + static_cast<long>(i));
    if (verbose) {
      std::string name;
      for (const auto& [k, v] : c.req.fields)
        if (k == "first_name") name = v;
      std::printf("vendor: %s %s first_name=%s answer=%d\n", c.req.push_id.c_str(),
                  c.req.contact_id.c_str(), name.c_str(), how);
    }
    PushResult r;
    r.requests = 1;
    if (how == 0 || how == 3) {
      applied[c.req.push_id]++;
      for (const auto& [k, v] : c.req.fields)
        if (k == "first_name") first_name[c.req.contact_id] = v;
    }
    if (how == 0) {
      r.http_status = 200;
      r.external_id = "v-" + c.req.contact_id;
    } else if (how == 1) {
      r.http_status = 500;
    } else if (how == 2) {
      r.http_status = 429;
      r.retry_after_us = 2'000'000;
    } else {
      r.http_status = 0;  // the answer never came: a transport error
      r.detail = "timeout";
    }
    c.done(r);
  }
};

struct Webhook {
  enum Kind { kContact, kStop, kStart, kSend };
  std::string id;
  int person;
  std::string first_name;
  int64_t at_ms;  // its timestamp
  Kind kind = kContact;
};

class SimRun : public ActorTest {
 public:
  explicit SimRun(uint64_t seed) : rng_(seed) {}
  void TestBody() override {}

  // Runs the seed; returns what broke ("" when every invariant held).
  std::string Run(bool verbose) {
    auto vendor = std::make_shared<SimVendor>();
    vendor->verbose = verbose;
    log_.SetKeyStore(keys_);
    env_->subject_hash_key = keys_->HashKey();
    env_->gate = std::make_shared<SendGate>();
    // In a third of the runs, one person is erased at a random step.
    int erase_person = rng_() % 3 == 0 ? static_cast<int>(rng_() % kPeople) : -1;
    if (std::getenv("DFM_SIM_NO_ERASE")) erase_person = -1;  // debugging: the same run otherwise
    const int erase_at = 40 + static_cast<int>(rng_() % 400);
    std::string erased_contact;
    env_->ctx.targets["aloware"] = {"first_name", "last_name", "email", "phone"};
    ConnectorSettings cs;
    cs.tenant = "default";
    cs.system = "aloware";
    cs.client = vendor;
    cs.seed = 7;
    cs.status = std::make_shared<ConnectorStatus>();
    status_ = cs.status;
    cs.backoff.max_attempts = 1000;  // faults stop in time: nothing may dead-letter
    auto connector = Keep(sys_->spawn(ConnectorActor, std::shared_ptr<const SyncEnv>(env_), ReportSink(), cs));
    sched_->run();
    env_->connectors[{"default", "aloware"}] = connector;
    // Verity: the texts' sender (GoHighLevel asks, Verity sends), told of
    // contacts and opt-outs too. Every text it is handed is checked against
    // the person's consent as the log holds it at that moment.
    auto verity = std::make_shared<SimVendor>();
    verity->verbose = verbose;
    verity->sends_not_idempotent = std::getenv("DFM_SIM_RETRY_SENDS") == nullptr;  // debugging: as before
    env_->ctx.targets["verity"] = {"first_name", "email", "phone"};
    env_->ctx.channels["verity"] = {"sms"};
    std::string texted_while_out;
    verity->on_push = [&](const PushRequest& req) {
      if (req.op != "send" || !texted_while_out.empty()) return;
      auto phone = req.fields.find("phone");
      if (phone == req.fields.end()) return;
      if (std::string why = OptedOutNow(phone->second); !why.empty())
        texted_while_out = "a text (" + req.push_id + ") went to " + phone->second + " while " + why;
    };
    ConnectorSettings vs = cs;
    vs.system = "verity";
    vs.client = verity;
    vs.status = std::make_shared<ConnectorStatus>();
    verity_status_ = vs.status;
    auto verity_connector =
        Keep(sys_->spawn(ConnectorActor, std::shared_ptr<const SyncEnv>(env_), ReportSink(), vs));
    sched_->run();
    env_->connectors[{"default", "verity"}] = verity_connector;
    env_->board = std::make_shared<SyncStatusBoard>();
    auto router = StartRouter(connector);
    caf::anon_send(verity_connector, router);  // its reports go to the router too
    sched_->run();
    ProjectionRunner projections(&log_, proj_.All());

    // The webhooks, in the order the vendor made them; delivered late,
    // twice and out of order below.
    std::vector<Webhook> made;
    const int count = 6 + static_cast<int>(rng_() % 10);
    for (int i = 0; i < count; ++i) {
      static const char* names[] = {"Ann", "Bea", "Cy", "Dee", "Eve", "Flo", "Gus"};
      made.push_back({"w-" + std::to_string(i), static_cast<int>(rng_() % kPeople),
                      names[rng_() % 7], 1'795'000'000'000 + i * 1000});
    }
    // Texts: GoHighLevel asks Verity to send some; people reply STOP, and
    // some START again.
    const int texts = static_cast<int>(rng_() % 8);
    for (int i = 0; i < texts; ++i) {
      const uint32_t k = rng_() % 10;
      Webhook w{"t-" + std::to_string(i), static_cast<int>(rng_() % kPeople), "",
                1'795'000'000'000 + (count + i) * 1000,
                k < 5 ? Webhook::kSend : k < 8 ? Webhook::kStop : Webhook::kStart};
      made.push_back(w);
    }
    std::vector<Webhook> to_send = made;
    for (int i = 0; i < count / 3; ++i) to_send.push_back(made[rng_() % made.size()]);  // twice
    std::shuffle(to_send.begin(), to_send.end(), rng_);  // late and out of order

    std::set<std::string> acked;
    size_t next = 0;
    int failing_for = 0;  // steps the log still refuses writes
    for (int step = 0; step < 4000 && (next < to_send.size() || step < 400); ++step) {
      const uint32_t dice = rng_() % 100;
      if (dice < 15 && next < to_send.size()) {
        const Webhook& w = to_send[next++];
        if (Deliver(w)) acked.insert(w.id);
        if (verbose)
          std::printf("webhook %s person %d %s at %lld: %s\n", w.id.c_str(), w.person,
                      w.first_name.c_str(), static_cast<long long>(w.at_ms), acked.count(w.id) ? "acked" : "refused");
        caf::anon_send(router, poll_atom::value);
      } else if (dice < 60) {
        RunOne();
      } else if (dice < 75 && (!vendor->waiting.empty() || !verity->waiting.empty())) {
        const uint32_t kind = rng_() % 10;  // 60% ok, 20% 500, 10% 429, 10% done then timeout
        SimVendor& v = verity->waiting.empty() || (!vendor->waiting.empty() && rng_() % 2) ? *vendor : *verity;
        v.Answer(rng_() % v.waiting.size(), kind < 6 ? 0 : kind < 8 ? 1 : kind < 9 ? 2 : 3);
      } else if (dice < 90) {
        AdvanceBy(static_cast<int64_t>(rng_() % 3'000'000));
      } else if (dice < 92) {
        (void)projections.CatchUp();  // folding live, between the sync's steps (may fail: writes refused)
      } else if (dice < 94 && failing_for == 0) {
        failing_for = 1 + static_cast<int>(rng_() % 40);
        log_.FailWrites(true);
      } else if (erase_person >= 0 && erased_contact.empty() && step >= erase_at) {
        std::vector<Event> now;
        if (log_.Read(1, 1000000, &now).ok()) {
          const std::string contact = ContactsByPhone(now)[Phone(erase_person)];
          EraseOutcome out;
          EraseRequest req{"default", contact, "sim", "sim", MapperSource(&env_->mapper)};
          if (!contact.empty() && EraseContact(&log_, keys_.get(), req, &out).ok()) {
            erased_contact = contact;
            if (verbose) std::printf("erased person %d (contact %s) at seq %llu\n", erase_person,
                                     contact.c_str(), static_cast<unsigned long long>(out.seq));
            caf::anon_send(router, poll_atom::value);
          }
        }
      }
      if (failing_for > 0 && --failing_for == 0) log_.FailWrites(false);
    }
    // The faults stop: the log writes, the vendor answers 200, time runs.
    log_.FailWrites(false);
    for (int round = 0; round < 2000; ++round) {
      while (!vendor->waiting.empty()) vendor->Answer(0, 0);
      while (!verity->waiting.empty()) verity->Answer(0, 0);
      sched_->run();
      if (verbose && round % 200 == 0)
        std::printf("quiet %d: jobs %zu, timeouts %zu, connector holds %llu, in flight %llu, breaker %d\n",
                    round, sched_->jobs.size(), sched_->clock().schedule().size(),
                    static_cast<unsigned long long>(status_->held.load()),
                    static_cast<unsigned long long>(status_->in_flight.load()),
                    status_->breaker_open.load() ? 1 : 0);
      if (vendor->waiting.empty() && verity->waiting.empty() && !sched_->has_job() && Settled())
        break;
      AdvanceBy(1'000'000);
    }

    std::string broken;
    auto fail = [&](const std::string& why) {
      if (broken.empty()) broken = why;
    };
    // Every webhook acknowledged is in the log exactly once.
    std::vector<Event> all;
    if (!log_.Read(1, 1000000, &all).ok()) return "the log cannot be read";
    std::map<std::string, int> seen;
    for (const auto& e : all)
      if (e.type == "webhook.received") {
        WebhookReceived w;
        if (DecodeWebhookReceived(e.schema_version, e.payload, &w).ok()) seen[w.provider_event_id]++;
      }
    for (const auto& id : acked) {
      // An erased webhook no longer says its id: its key in the index does.
      uint64_t seq = 0;
      if (seen[id] == 0 &&
          (log_.LookupIdempotency("default", "ghl", id, &seq).ok() ||
           log_.LookupIdempotency("default", "verity", id, &seq).ok()) &&
          all[seq - 1].erased())
        continue;
      if (seen[id] != 1) fail("webhook " + id + " is in the log " + std::to_string(seen[id]) + " times");
    }
    if (!erased_contact.empty()) {
      uint64_t erased_at = 0;
      for (const auto& e : all)
        if (e.type == kContactErasedType && e.stream == "contact:" + erased_contact) erased_at = e.seq;
      for (const auto& e : all) {
        if (e.seq >= erased_at || e.stream != "contact:" + erased_contact) continue;
        if (!e.erased()) fail("event " + std::to_string(e.seq) + " of the erased contact still reads");
        for (const EventId& cause : {e.causation_id, e.correlation_id}) {
          uint64_t at = 0;
          if (log_.LookupEventId(cause, &at).ok() && all[at - 1].type == "webhook.received" &&
              !all[at - 1].erased())
            fail("webhook " + std::to_string(at) + " that fed the erased contact still reads");
        }
      }
    }
    if (!log_.VerifyChain().ok) fail("the hash chain does not verify");
    if (!texted_while_out.empty()) fail(texted_while_out);
    // No text carried out twice (a retry after the vendor did it unanswered).
    for (const auto& [push_id, n] : verity->applied)
      if (push_id.find(":send:") != std::string::npos && n > 1)
        fail("the text " + push_id + " was sent " + std::to_string(n) + " times");
    if (!Settled()) fail("a push never succeeded");
    // Projections: what was folded live, bit by bit, equals a rebuild.
    if (Status st = projections.CatchUp(); !st.ok()) fail("projections: " + st.ToString());
    const auto live = ProjectionState();
    if (Status st = projections.Rebuild(); !st.ok()) fail("projections rebuild: " + st.ToString());
    const auto rebuilt = ProjectionState();
    if (live != rebuilt) {
      std::string first;
      for (const auto& [k, v] : live)
        if (!rebuilt.count(k) || rebuilt.at(k) != v) { first = k; break; }
      if (first.empty()) for (const auto& [k, v] : rebuilt) if (!live.count(k)) { first = k; break; }
      fail("projections rebuilt differ from live at " + first);
    }
    // Convergence: each person's record holds the newest name.
    std::map<int, const Webhook*> newest;
    for (const auto& w : made)
      if (w.kind == Webhook::kContact && acked.count(w.id) &&
          (!newest[w.person] || newest[w.person]->at_ms < w.at_ms))
        newest[w.person] = &w;
    std::map<std::string, std::string> contact_of_phone = ContactsByPhone(all);
    for (const auto& [person, w] : newest) {
      if (person == erase_person && !erased_contact.empty()) continue;
      const std::string contact = contact_of_phone[Phone(person)];
      const std::string held = vendor->first_name[contact];
      if (held != w->first_name)
        fail("person " + std::to_string(person) + ": the vendor holds \"" + held + "\", the newest is \"" +
             w->first_name + "\"");
    }
    if (verbose) {
      for (const auto& e : all) {
        if (e.type == "webhook.received") {
          WebhookReceived w;
          if (DecodeWebhookReceived(e.schema_version, e.payload, &w).ok())
            std::printf("log %llu webhook %s\n", static_cast<unsigned long long>(e.seq),
                        w.provider_event_id.c_str());
          continue;
        }
        DomainEvent d;
        if (!DecodeDomainEvent(e.type, e.payload, &d).ok()) continue;
        std::string name, changes;
        for (const auto& [k, v] : d.fields)
          if (k == "first_name" || (k == "phone" && name.empty())) name = v;
        for (const auto& c : d.changes) changes += c.field + ":" + c.old_value + ">" + c.new_value + " ";
        std::printf("log %llu %s %s first_name=%s changes=%s push=%s webhook_seq=%llu\n",
                    static_cast<unsigned long long>(e.seq), e.stream.c_str(), e.type.c_str(),
                    name.c_str(), changes.c_str(), d.push_id.c_str(),
                    static_cast<unsigned long long>(d.webhook_seq));
      }
      std::printf("%zu webhooks (%zu delivered), %zu events, %zu pushes asked\n", made.size(),
                  to_send.size(), all.size(), vendor->attempts.size());
    }
    return broken;
  }

 private:
  static std::string Phone(int person) { return "+1205555010" + std::to_string(person); }

  bool Deliver(const Webhook& w) {
    char ts[40];
    const int64_t s = w.at_ms / 1000;
    std::tm tm{};
    const time_t t = static_cast<time_t>(s);
    gmtime_r(&t, &tm);
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    const std::string person = std::to_string(w.person);
    std::string body, system = "ghl";
    if (w.kind == Webhook::kContact) {
      body = GhlBody("ghl/ContactCreate.json",
                     {{"webhookId", w.id},
                      {"timestamp", ts},
                      {"dateAdded", ts},
                      {"id", "ghl-" + person},
                      {"phone", "(205) 555-010" + person},
                      {"email", "p" + person + "@example.com"},
                      {"firstName", w.first_name}});
    } else if (w.kind == Webhook::kSend) {
      body = GhlBody("ghl/ProviderOutboundMessage.json",
                     {{"contactId", "ghl-" + person}, {"messageId", w.id}, {"phone", Phone(w.person)},
                      {"message", "Hello " + w.id}});
    } else {
      system = "verity";
      body = GhlBody("verity/message.stop.json",
                     {{"messageId", w.id}, {"from", Phone(w.person)},
                      {"body", w.kind == Webhook::kStop ? "STOP" : "START"}, {"timestamp", ts}});
    }
    WebhookReceived r;
    r.system = system;
    r.provider_event_id = w.id;
    EventDraft d = WebhookDraft("default", r, body);
    d.idempotency_system = system;  // as the front keys a webhook (http/ingest.cc)
    d.idempotency_key = w.id;
    AppendOutcome out;
    return log_.Append(std::move(d), &out).ok();
  }

  // Why `phone` is opted out of texts by what the log holds now (its
  // newest sms opt-out or opt-in, an erased person's among them), or "".
  std::string OptedOutNow(const std::string& phone) {
    std::vector<Event> all;
    if (!log_.Read(1, 1000000, &all).ok()) return "";
    bool known = false, out = false;
    int64_t at = 0;
    uint64_t by = 0;
    auto consider = [&](bool is_out, int64_t when, uint64_t seq) {
      if (known && !ConsentSupersedes(is_out, when, out, at)) return;
      known = true;
      out = is_out;
      at = when;
      by = seq;
    };
    const std::string hash = SubjectHash(keys_->HashKey(), "default", phone);
    for (const auto& e : all) {
      if (e.type == kContactErasedType) {
        Erasure er;
        if (!DecodeErasure(e.payload, &er).ok()) continue;
        for (const auto& sub : er.subjects)
          if (sub.hash == hash && sub.channel == "sms") consider(sub.out, sub.at_us, e.seq);
        continue;
      }
      if (e.type != ev::kOptedOut && e.type != ev::kOptedIn) continue;
      DomainEvent d;
      if (!AsDomainEvent(e, &d)) continue;
      auto p = d.fields.find("phone");
      if (p == d.fields.end() || p->second != phone) continue;
      for (const auto& ch : SplitChannels(d.channel))
        if (ch == "sms") consider(d.type == ev::kOptedOut, HappenedAt(e, d), e.seq);
    }
    return known && out ? "opted out (event " + std::to_string(by) + ")" : "";
  }

  // One waiting message, chosen by the seed, or the clock's next timeout.
  void RunOne() {
    auto& jobs = sched_->jobs;
    if (jobs.empty()) return;
    std::swap(jobs.front(), jobs[rng_() % jobs.size()]);
    sched_->try_run_once();
  }

  void AdvanceBy(int64_t us) {
    clock_.Advance(us);
    sched_->advance_time(std::chrono::microseconds(us));
  }

  // Every projection's state and checkpoint, by "<projection>/<key>".
  std::map<std::string, std::string> ProjectionState() {
    std::map<std::string, std::string> out;
    for (Projection* p : proj_.All()) {
      const std::string name = p->name();
      uint64_t cp = 0;
      if (log_.ReadCheckpoint(name, &cp).ok()) out[name + "/#checkpoint"] = std::to_string(cp);
      (void)log_.ScanConsumerState(name, "", [&](std::string_view k, std::string_view v) {
        out[name + "/" + std::string(k)] = std::string(v);
        return true;
      });
    }
    return out;
  }

  // Every push asked for has succeeded.
  bool Settled() {
    std::vector<Event> all;
    if (!log_.Read(1, 1000000, &all).ok()) return false;
    std::set<std::string> asked, done;
    for (const auto& e : all) {
      if (e.type.rfind("push.", 0) != 0 && e.type != ev::kMessageRefused) continue;
      DomainEvent d;
      if (!AsDomainEvent(e, &d) || d.push_id.empty()) continue;
      if (e.type == ev::kPushRequested) asked.insert(d.push_id);
      if (SettlesPush(d)) done.insert(d.push_id);
    }
    for (const auto& p : asked)
      if (!done.count(p)) return false;
    return true;
  }

  // contact id by phone, from the contacts' own events.
  static std::map<std::string, std::string> ContactsByPhone(const std::vector<Event>& all) {
    std::map<std::string, std::string> out;
    for (const auto& e : all) {
      if (e.stream.rfind("contact:", 0) != 0) continue;
      DomainEvent d;
      if (!DecodeDomainEvent(e.type, e.payload, &d).ok()) continue;
      for (const auto& [k, v] : d.fields)
        if (k == "phone" && !out.count(v)) out[v] = e.stream.substr(8);
    }
    return out;
  }

  std::mt19937_64 rng_;
  std::shared_ptr<MemoryKeyStore> keys_ = std::make_shared<MemoryKeyStore>();
  std::shared_ptr<ConnectorStatus> status_, verity_status_;
  SyncProjections proj_;
};

uint64_t EnvU64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

TEST(Simulation, EverySeedKeepsTheInvariants) {
  if (const char* one = std::getenv("DFM_SIM_SEED"); one && *one) {
    const uint64_t seed = std::strtoull(one, nullptr, 10);
    SimRun run(seed);
    const std::string broken = run.Run(/*verbose=*/true);
    EXPECT_EQ(broken, "") << "seed " << seed;
    return;
  }
  spdlog::set_level(spdlog::level::off);  // the actors' warnings, thousands of runs over
  const uint64_t seeds = EnvU64("DFM_SIM_SEEDS", 1000), first = EnvU64("DFM_SIM_FIRST", 1);
  int failed = 0;
  for (uint64_t seed = first; seed < first + seeds && failed < 5; ++seed) {
    SimRun run(seed);
    const std::string broken = run.Run(/*verbose=*/false);
    if (!broken.empty()) {
      ++failed;
      ADD_FAILURE() << "seed " << seed << ": " << broken << " (rerun: DFM_SIM_SEED=" << seed << ")";
    }
  }
}

}  // namespace
}  // namespace dfm
