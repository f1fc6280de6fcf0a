#include "app/erase.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "actors/router.h"
#include "campaigns/task.h"
#include "connectors/connector.h"
#include "events/codec.h"
#include "events/sealing.h"
#include "events/webhook_received.h"
#include "storage/erasure_ledger.h"
#include "sync/contact_snapshot.h"
#include "sync/domain_event.h"
#include "sync/fact.h"
#include "sync/redrive.h"

namespace dfm {
namespace {

bool IsSource(std::string_view type) {
  return type == WebhookReceived::kType || type == kContactImportedType;
}

// The key number of record `seq` when it is a sealed webhook or import
// (each has a key of its own); 0 otherwise. Reads the envelope only.
uint64_t SourceKeyOf(const EventLog& log, uint64_t seq) {
  uint64_t no = 0;
  if (seq == 0) return 0;
  Status s = log.ScanRecords(seq, [&](uint64_t at, std::string_view record) {
    Event e;
    std::string_view payload;
    if (at == seq && DecodeRecord(record, &e, &payload).ok() && IsSource(e.type) &&
        e.sealing != Event::Sealing::kClear)
      no = SealedKeyNo(payload).value_or(0);
    return false;
  });
  return s.ok() ? no : 0;
}

constexpr std::string_view kTasks = "campaign-tasks:";

bool IsTask(const Event& e) { return e.stream.compare(0, kTasks.size(), kTasks) == 0; }

// The keys of the tenant's task events for `contact` that `named` lacks,
// and how many task events they seal (*events). A contact whose stream
// begins with events older than sealing may have had tasks sealed under
// keys of their own (storage/sealer.h: its stream's key is looked for
// among its first records only), so every task event of the tenant under
// another key is opened.
Status TaskKeysOfOwn(EventLog* log, const std::string& tenant, const std::string& contact,
                     const std::set<uint64_t>& named, std::set<uint64_t>* out, uint64_t* events) {
  Status unread;  // a key not read now: the erasure would miss what it seals
  Status s = log->ScanRecords(1, [&](uint64_t, std::string_view record) {
    Event e;
    std::string_view payload;
    if (!DecodeRecord(record, &e, &payload).ok() || e.tenant != tenant || !IsTask(e) ||
        e.sealing == Event::Sealing::kClear)
      return true;
    const uint64_t no = SealedKeyNo(payload).value_or(0);
    if (no == 0 || named.count(no)) return true;
    if (out->count(no)) {
      ++*events;
      return true;
    }
    e.payload.assign(payload.data(), payload.size());
    unread = log->Unseal(&e);
    if (!unread.ok()) return false;
    TaskEvent t;
    if (e.sealing == Event::Sealing::kOpened && DecodeTaskEvent(e.type, e.payload, &t) &&
        t.contact == contact) {
      out->insert(no);
      ++*events;
    }
    return true;
  });
  return s.ok() ? unread : s;
}

// What the contact's stream tells of the person.
struct Person {
  std::set<uint64_t> own;                              // its stream's keys
  std::set<std::pair<std::string, std::string>> ids;  // (system, external id)
  std::set<std::string> phones, emails;
};

// What one pass over the tenant's records found (ScanTenant).
struct Scan {
  uint64_t task_events = 0;               // campaign task events sealed with the person's keys
  std::vector<uint64_t> undecided;        // webhooks about the person the router has not decided
  std::vector<UndecidedOptOut> opt_outs;  // theirs
};

// The opt-outs of `f`, a fact about `p` in webhook `e` the router has not
// decided: about the phone or email the fact names, else (a record found
// by its id alone) about each of the person's, as the sync would decide
// them (sync/consent_pushes.h, Whom). A system's repeated setting
// (Consent::snapshot) counts too: it can only refuse more.
void AddOptOuts(const Event& e, const ContactFact& f, const Person& p,
                std::vector<UndecidedOptOut>* out) {
  auto ph = f.fields.find(fields::kPhone);
  auto em = f.fields.find(fields::kEmail);
  const bool named = (ph != f.fields.end() && !ph->second.empty()) ||
                     (em != f.fields.end() && !em->second.empty());
  for (const Consent& c : f.consents) {
    if (c.change != Consent::Change::kOptOut) continue;
    UndecidedOptOut u;
    u.seq = e.seq;
    u.at_us = f.source_time_us != 0 ? f.source_time_us : e.recorded_at_us;
    u.system = f.system;
    u.channels = c.channels;
    if (named) {
      if (ph != f.fields.end()) u.phone = ph->second;
      if (em != f.fields.end()) u.email = em->second;
      out->push_back(std::move(u));
      continue;
    }
    for (const std::string& phone : p.phones) {
      out->push_back(u);
      out->back().phone = phone;
    }
    for (const std::string& email : p.emails) {
      out->push_back(u);
      out->back().email = email;
    }
  }
}

bool AboutPerson(const ContactFact& f, const Person& p) {
  auto ph = f.fields.find(fields::kPhone);
  auto em = f.fields.find(fields::kEmail);
  return (!f.external_id.empty() && p.ids.count({f.system, f.external_id})) ||
         (ph != f.fields.end() && p.phones.count(ph->second)) ||
         (em != f.fields.end() && p.emails.count(em->second));
}

// One pass over the tenant's records: the campaign task events sealed
// with one of `p.own` are counted; with a mapper, every webhook and import
// with a fact about the person (one of its ids, phones or emails) not in
// *sources yet (those the stream names were decided) is opened and, if
// so, its key added; those `decided` has not are listed, and their
// opt-outs kept.
Status ScanTenant(EventLog* log, const EraseRequest& r, const Person& p, const DecidedView& decided,
                  std::set<uint64_t>* sources, Scan* scan) {
  Status unread;  // a key not read now: the erasure would miss what it seals
  Status s = log->ScanRecords(1, [&](uint64_t seq, std::string_view record) {
    Event e;
    std::string_view payload;
    if (!DecodeRecord(record, &e, &payload).ok() || e.tenant != r.tenant ||
        e.sealing == Event::Sealing::kClear)
      return true;
    const uint64_t no = SealedKeyNo(payload).value_or(0);
    if (IsTask(e)) {
      scan->task_events += p.own.count(no);
      return true;
    }
    if (!r.mapper || !IsSource(e.type) || no == 0 || sources->count(no)) return true;
    e.payload.assign(payload.data(), payload.size());
    unread = log->Unseal(&e);
    if (!unread.ok()) return false;
    WebhookReceived w;
    if (e.sealing != Event::Sealing::kOpened ||
        !DecodeWebhookReceived(e.schema_version, e.payload, &w).ok())
      return true;
    const InboundMapper* mapper = FindMapperFor(e.type, w.system);
    std::vector<ContactFact> facts;
    if (!mapper || !(*mapper)(w, r.mapper.For(r.tenant, w.system), &facts).ok()) return true;
    if (std::none_of(facts.begin(), facts.end(),
                     [&](const ContactFact& f) { return AboutPerson(f, p); }))
      return true;
    sources->insert(no);
    if (!decided.Has(seq)) {
      e.seq = seq;
      scan->undecided.push_back(seq);
      for (const ContactFact& f : facts)
        if (AboutPerson(f, p)) AddOptOuts(e, f, p, &scan->opt_outs);
    }
    return true;
  });
  return s.ok() ? unread : s;
}

// Reads the contact's stream (`events`) and, in one pass over it, the
// webhooks (and imports) that fed it (each decision's cause and root, and
// the webhook it names) and the person's identities, to find the others
// about them.
Status ReadPerson(EventLog* log, const EraseRequest& r, std::vector<Event>* events, Person* person,
                  std::set<uint64_t>* sources) {
  Status s = log->ReadWholeStream(r.tenant, ContactStream(r.contact_id), events);
  if (!s.ok()) return s;
  if (events->empty())
    return Status::NotFound("tenant " + r.tenant + " has no contact " + r.contact_id);
  std::set<uint64_t> looked_up;  // sequence numbers read
  auto source_at = [&](uint64_t seq) {
    if (seq == 0 || !looked_up.insert(seq).second) return;
    if (uint64_t k = SourceKeyOf(*log, seq)) sources->insert(k);
  };
  for (const Event& e : *events) {
    if (e.key_no != 0 && e.type != kContactErasedType) person->own.insert(e.key_no);
    for (const EventId& id : {e.causation_id, e.correlation_id}) {
      uint64_t seq = 0;
      if (!id.IsZero() && log->LookupEventId(id, &seq).ok()) source_at(seq);
    }
    DomainEvent d;
    if (!AsDomainEvent(e, &d)) continue;
    source_at(d.webhook_seq);
    // (Not what a conflict's opt-out push set: the duplicate is another's.)
    const bool about_contact =
        e.type.rfind("contact.", 0) == 0 ||
        (e.type == ev::kPushSucceeded && d.message_key.empty() && !LinksNoRecord(d));
    if (about_contact && !d.external_id.empty()) person->ids.insert({d.system, d.external_id});
    if (auto p = d.fields.find(fields::kPhone); p != d.fields.end() && !p->second.empty())
      person->phones.insert(p->second);
    if (auto m = d.fields.find(fields::kEmail); m != d.fields.end() && !m->second.empty())
      person->emails.insert(m->second);
  }
  return Status::OK();
}

// The person as the log holds them once every webhook about them is
// decided: read, and read again after r.wait_decided while the router has
// webhooks about them to decide (at most kRounds reads). Without a waiter
// the undecided webhooks' opt-outs are in scan->opt_outs.
Status ReadDecided(EventLog* log, const EraseRequest& r, std::vector<Event>* events, Person* person,
                   std::set<uint64_t>* sources, Scan* scan) {
  constexpr int kRounds = 3;
  for (int round = 1;; ++round) {
    *events = {};
    *person = {};
    *sources = {};
    *scan = {};
    // What is decided first: the router says so once the decisions are
    // durable, so the stream read after it holds all it has decided.
    const DecidedView decided = r.decided ? r.decided() : CheckpointView(log);
    Status s = ReadPerson(log, r, events, person, sources);
    if (s.ok()) s = ScanTenant(log, r, *person, decided, sources, scan);
    if (!s.ok() || scan->undecided.empty() || !r.wait_decided) return s;
    if (round == kRounds)
      return Status::Unavailable("webhooks about the person keep arriving (" +
                                 std::to_string(scan->undecided.size()) +
                                 " not decided by the sync yet): nothing was erased; erase again");
    s = r.wait_decided(scan->undecided);
    if (!s.ok()) return s;
  }
}

// The opt-out, opt-in and do-not-contact pushes `events` (a contact's
// stream) request and do not settle, as its actor holds them, to a
// system `delivers` accepts (null: any): each "<op> to <system>" once.
std::vector<std::string> OpenConsentPushes(
    const std::vector<Event>& events, const std::function<bool(const std::string&)>& delivers) {
  std::map<std::string, std::pair<std::string, std::string>> open;  // push id -> op, system
  for (const Event& e : events) {
    DomainEvent d;
    if (!AsDomainEvent(e, &d) || d.push_id.empty()) continue;
    if (d.type == ev::kPushRequested && IsConsentOp(d.op))
      open.emplace(d.push_id, std::make_pair(d.op, d.system));
    else if (SettlesPush(d))
      open.erase(d.push_id);
  }
  std::set<std::string> what;
  for (const auto& [id, push] : open)
    if (!delivers || delivers(push.second)) what.insert(push.first + " to " + push.second);
  return {what.begin(), what.end()};
}

Status ConsentPushesOpen(const std::vector<std::string>& open) {
  std::string list;
  for (const std::string& w : open) list.append(list.empty() ? "" : ", ").append(w);
  return Status::FailedPrecondition(
      "the person's consent pushes are still on their way (" + list +
      "): erased now, they would be lost at the next restart. Nothing was erased; erase again "
      "once they land (the status page, `dfm replay dead-letters`), or with force");
}

// ReadDecided, then, while the person's consent pushes are on their way,
// their contact's stream alone every 200 ms up to r.consent_wait
// (EraseRequest); once they have landed, ReadDecided again (a webhook
// decided meanwhile may have asked for more: then refused).
Status ReadSettled(EventLog* log, const EraseRequest& r, std::vector<Event>* events, Person* person,
                   std::set<uint64_t>* sources, Scan* scan) {
  Status s = ReadDecided(log, r, events, person, sources, scan);
  if (!s.ok() || r.force) return s;
  std::vector<std::string> open = OpenConsentPushes(*events, r.delivers);
  if (open.empty()) return Status::OK();
  const auto until = std::chrono::steady_clock::now() + r.consent_wait;
  while (!open.empty() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::vector<Event> stream;
    s = log->ReadWholeStream(r.tenant, ContactStream(r.contact_id), &stream);
    if (!s.ok()) return s;
    open = OpenConsentPushes(stream, r.delivers);
  }
  if (!open.empty()) return ConsentPushesOpen(open);
  s = ReadDecided(log, r, events, person, sources, scan);
  if (!s.ok()) return s;
  open = OpenConsentPushes(*events, r.delivers);
  return open.empty() ? Status::OK() : ConsentPushesOpen(open);
}

}  // namespace

Status EraseContact(EventLog* log, KeyStore* keys, const EraseRequest& r, EraseOutcome* out) {
  const std::string stream = ContactStream(r.contact_id);
  std::vector<Event> events;
  Status s = log->ReadWholeStream(r.tenant, stream, &events);
  if (!s.ok()) return s;
  if (events.empty())
    return Status::NotFound("tenant " + r.tenant + " has no contact " + r.contact_id);
  for (const Event& e : events) {
    if (e.type != kContactErasedType) continue;
    // Erased before: make sure its keys are gone, and answer with it.
    Erasure first;
    s = DecodeErasure(e.payload, &first);
    if (s.ok() && !r.ledger_path.empty())
      s = AddToErasureLedger(r.ledger_path, {{r.tenant, r.contact_id, e.seq, e.payload}});
    if (s.ok()) s = keys->Destroy(first.keys);
    if (!s.ok()) return s;
    out->seq = e.seq;
    out->already = true;
    out->erasure = std::move(first);
    return Status::OK();
  }
  // The person, every webhook and import with a fact about them (whatever
  // was decided: only those not found from the stream are opened) decided
  // first, and the campaign task events its keys seal.
  Person person;
  std::set<uint64_t> sources;  // key numbers
  Scan scan;
  s = ReadSettled(log, r, &events, &person, &sources, &scan);
  if (!s.ok()) return s;
  uint64_t task_events = scan.task_events;
  // Re-drive requests that name it.
  const std::string named = "\"contact_id\":\"" + r.contact_id + "\"";
  s = log->ScanStream(r.tenant, kReplayStream, [&](const Event& e) {
    if (e.key_no != 0 && e.payload.find(named) != std::string::npos) sources.insert(e.key_no);
    return true;
  });
  if (!s.ok()) return s;
  Erasure erasure = PlanErasure(r.tenant, r.contact_id, events, {sources.begin(), sources.end()},
                                keys->HashKey(), scan.opt_outs);
  erasure.reason = r.reason;
  erasure.requested_by = r.requested_by;
  if (events.front().sealing == Event::Sealing::kClear) {  // older than sealing
    std::set<uint64_t> tasks;
    s = TaskKeysOfOwn(log, r.tenant, r.contact_id, {erasure.keys.begin(), erasure.keys.end()},
                      &tasks, &task_events);
    if (!s.ok()) return s;
    erasure.keys.insert(erasure.keys.end(), tasks.begin(), tasks.end());
  }
  erasure.events += task_events;

  EventDraft d;
  d.tenant = r.tenant;
  d.stream = stream;
  d.type = std::string(kContactErasedType);
  d.payload = EncodeErasure(erasure);
  d.idempotency_system = kDecisionKeySystem;
  d.idempotency_key = "erase/" + r.contact_id;
  AppendOutcome appended;
  s = log->Append(std::move(d), &appended);
  if (!s.ok()) return s;
  if (!r.ledger_path.empty()) {
    s = AddToErasureLedger(r.ledger_path,
                           {{r.tenant, r.contact_id, appended.seq, EncodeErasure(erasure)}});
    if (!s.ok()) return s;  // ApplyErasures writes it, and destroys, at the next start
  }
  // Durable first, then destroyed: a crash in between leaves the event,
  // which ApplyErasures carries out at the next start.
#ifndef NDEBUG
  // Debug builds only: the integration suite dies here, as a crash would.
  if (std::getenv("DFM_TEST_DIE_BEFORE_KEYS_DESTROYED") != nullptr) std::_Exit(137);
#endif
  s = keys->Destroy(erasure.keys);
  if (!s.ok()) return s;
  uint64_t snapshots_at = 0;
  (void)log->ReadCheckpoint(kContactSnapshotConsumer, &snapshots_at);
  s = log->CommitConsumerDurable(kContactSnapshotConsumer, snapshots_at,
                                 {StateOp{ContactSnapshotKey(r.tenant, r.contact_id), "", true}});
  if (!s.ok()) return s;
  out->seq = appended.seq;
  out->already = appended.duplicate;
  out->erasure = std::move(erasure);
  return Status::OK();
}

DecidedView CheckpointView(const EventLog* log) {
  DecidedView v;
  uint64_t checkpoint = 0;
  if (log->ReadCheckpoint(kRouterConsumer, &checkpoint).ok()) v.AddCheckpoint(checkpoint);
  return v;
}

std::function<Status(const std::vector<uint64_t>&)> RouterWaiter(
    std::function<DecidedView()> decided, std::chrono::milliseconds budget) {
  auto deadline = std::make_shared<std::chrono::steady_clock::time_point>();
  return [decided = std::move(decided), budget, deadline](const std::vector<uint64_t>& seqs) {
    if (*deadline == std::chrono::steady_clock::time_point{})
      *deadline = std::chrono::steady_clock::now() + budget;
    DecidedView v;
    uint64_t waiting = 0;  // the first webhook not decided
    while (true) {
      v = decided();
      auto undecided =
          std::find_if(seqs.begin(), seqs.end(), [&v](uint64_t seq) { return !v.Has(seq); });
      if (undecided == seqs.end()) return Status::OK();
      waiting = *undecided;
      if (std::chrono::steady_clock::now() >= *deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const std::string why =
        v.Held(waiting)
            ? "it waits for a contact the sync holds (its log shows contact_held)"
            : "it has decided up to " + std::to_string(std::max(v.checkpoint, v.now.through)) +
                  ": is it behind, or a contact held?";
    return Status::Unavailable("the sync has not decided webhook " + std::to_string(waiting) +
                               " about the person (" + why + "); nothing was erased; erase again");
  };
}

std::function<Status(const std::vector<uint64_t>&)> RouterWaiter(const EventLog* log,
                                                                 std::chrono::milliseconds budget) {
  return RouterWaiter([log] { return CheckpointView(log); }, budget);
}

Status ApplyErasures(EventLog* log, KeyStore* keys, uint64_t* applied,
                     const std::string& ledger_path) {
  if (applied) *applied = 0;
  const uint64_t from = keys->ErasuresThrough() + 1;
  const uint64_t head = log->LastSequence();
  if (from > head) return Status::OK();
  uint64_t n = 0;
  std::vector<uint64_t> destroy;
  std::vector<LedgerEntry> entries;
  Status s = log->ScanRecords(from, [&](uint64_t seq, std::string_view record) {
    Event e;
    std::string_view payload;
    if (!DecodeRecord(record, &e, &payload).ok() || e.type != kContactErasedType) return true;
    Erasure er;
    if (!DecodeErasure(payload, &er).ok()) return true;
    destroy.insert(destroy.end(), er.keys.begin(), er.keys.end());
    entries.push_back({e.tenant, er.contact_id, seq, std::string(payload)});
    ++n;
    return true;
  });
  if (s.ok() && !ledger_path.empty()) s = AddToErasureLedger(ledger_path, entries);
  if (s.ok()) s = keys->Destroy(destroy);  // one flush and compaction for all
  if (s.ok() && !entries.empty()) {
    // Their snapshots (in clear) go too: a backup older than the erasure
    // holds them, and so does a crash before EraseContact deleted one.
    std::vector<StateOp> gone;
    for (const LedgerEntry& e : entries)
      gone.push_back(StateOp{ContactSnapshotKey(e.tenant, e.contact_id), "", true});
    uint64_t snapshots_at = 0;
    (void)log->ReadCheckpoint(kContactSnapshotConsumer, &snapshots_at);
    s = log->CommitConsumerDurable(kContactSnapshotConsumer, snapshots_at, gone);
  }
  if (!s.ok()) return s;
  if (applied) *applied = n;
  return keys->SetErasuresThrough(head);
}

}  // namespace dfm
