#include "app/backfill.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <set>

#include "connectors/connector.h"
#include "events/webhook_received.h"
#include "projections/sync_projections.h"
#include "sync/identity.h"
#include "util/clock.h"
#include "util/crypto.h"

namespace dfm {

namespace {

std::string PositionKey(const BackfillOptions& o) { return o.tenant + "/" + o.system; }

class Backfiller {
 public:
  Backfiller(const BackfillOptions& o, const BackfillDeps& d) : o_(o), d_(d) {}

  Status LoadCredentials() {
    if (d_.read) return Status::OK();  // the connector actor holds the grant
    creds_ = d_.credentials;
    std::string stored;
    if (d_.log
            ->GetConsumerState(kCredentialsConsumer, CredentialsKey(o_.tenant, o_.system), &stored)
            .ok())
      creds_ =
          NewestGrant(d_.credentials, stored);  // refreshed by the service, unless granted anew
    if (d_.client->UsesOAuth() && creds_.expires_at_us != 0 &&
        creds_.expires_at_us - 60 * 1000000LL < d_.now_us()) {
      return Refresh();
    }
    return Status::OK();
  }

  // One request, retried as the header says; OK with the page, or the
  // reason it failed for good.
  // `lookup`: 404 (unknown) and 400/422 (the vendor refuses that number)
  // are answers about one phone, not reasons to stop.
  Status Request(const ReadAsk& ask, BackfillStats* stats, ContactPage* page) {
    bool refreshed = false;
    for (int attempt = 1;; ++attempt) {
      if (d_.stopping && d_.stopping()) return Status::Unavailable("stopped; the position is kept");
      int64_t now = d_.now_us();
      if (last_request_us_ != 0 && now < last_request_us_ + o_.min_interval_us)
        d_.sleep_us(last_request_us_ + o_.min_interval_us - now);
      last_request_us_ = d_.now_us();
      *page = Read(ask);
      stats->requests += std::max(1, page->requests);
      // A page that took more requests waits as long for each.
      last_request_us_ += (std::max(1, page->requests) - 1) * o_.min_interval_us;
      int st = page->http_status;
      if (st / 100 == 2 || (ask.lookup && (st == 404 || st == 400 || st == 422))) return Status::OK();
      if (st == 401 && !d_.read && d_.client->UsesOAuth() && !refreshed) {
        refreshed = true;
        Status s = Refresh();
        if (!s.ok()) return s;
        continue;
      }
      bool retryable = st == 0 || st == 429 || st >= 500;
      if (!retryable) {
        return Status::InvalidArgument(o_.system + " refused the request (" + page->detail + ")" +
                                       (st == 401 ? ": check the credentials" : ""));
      }
      if (attempt >= o_.max_attempts) {
        return Status::Unavailable(o_.system + " still failing after " + std::to_string(attempt) +
                                   " attempts (" + page->detail + ")");
      }
      int shift = std::min(attempt - 1, 20);
      int64_t delay = o_.retry_base_us > (o_.retry_max_us >> shift) ? o_.retry_max_us
                                                                    : o_.retry_base_us << shift;
      if (page->retry_after_us) delay = std::max(delay, *page->retry_after_us);
      d_.sleep_us(delay);
    }
  }

  ContactPage Read(const ReadAsk& ask) {
    if (d_.read) return d_.read(ask);
    std::promise<ContactPage> answer;
    auto fut = answer.get_future();
    auto done = [&answer](ContactPage p) { answer.set_value(std::move(p)); };
    if (ask.lookup) {
      d_.client->LookupByPhone(ask.phone, creds_, std::move(done));
    } else {
      d_.client->ListContacts(ask.cursor, ask.page_size, creds_, std::move(done));
    }
    return fut.get();
  }

  // Appends the page's contacts (one batch, durable when it returns).
  Status Append(const ContactPage& page, BackfillStats* stats) {
    std::vector<EventDraft> drafts;
    for (const auto& c : page.contacts) {
      WebhookReceived w;
      w.system = o_.system;
      std::string version = c.version;
      if (version.empty()) {
        auto digest = Sha256(c.body);
        version = "sha256:" +
                  HexEncode(std::string_view(reinterpret_cast<const char*>(digest.data()), 16));
      }
      w.provider_event_id = "backfill/" + c.external_id + "/" + version;
      w.id_source = "backfill";
      w.verification = "api";
      w.request_id = o_.run_id;
      w.public_url = page.url;
      w.body = c.body;
      EventDraft d;
      d.tenant = o_.tenant;
      d.stream = "backfill:" + o_.system;
      d.type = std::string(kContactImportedType);
      d.schema_version = WebhookReceived::kSchemaVersion;
      // Only a version with its zone is a time (Aloware's is zone-less; the
      // import mapper applies the configured offset to the fact).
      if (!c.version.empty() && c.version.back() == 'Z') {
        if (auto t = ParseIso8601Micros(c.version)) d.source_time_us = *t;
      }
      d.payload = EncodeWebhookReceived(w);
      d.idempotency_system = o_.system;
      d.idempotency_key = w.provider_event_id;
      drafts.push_back(std::move(d));
    }
    stats->seen += static_cast<int64_t>(drafts.size());
    if (drafts.empty()) return Status::OK();
    std::promise<std::pair<Status, std::vector<AppendOutcome>>> done;
    auto fut = done.get_future();
    d_.log->AppendAsync(std::move(drafts),
                        [&done](const Status& s, const std::vector<AppendOutcome>& out) {
                          done.set_value({s, out});
                        });
    auto [s, outcomes] = fut.get();
    if (!s.ok()) return s;
    for (const auto& oc : outcomes) (oc.duplicate ? stats->unchanged : stats->imported)++;
    return Status::OK();
  }

  // Grammar: mode " " page_size LF position (kBackfillConsumer, app/backfill.h).
  Status SavePosition(const std::string& mode, const std::string& position) {
    return StorePosition(
        {StateOp{PositionKey(o_), mode + " " + std::to_string(page_size_) + "\n" + position, false}});
  }

  Status ClearPosition() { return StorePosition({StateOp{PositionKey(o_), "", true}}); }

  // The stored position of an unfinished run in `mode`, or empty. A run
  // continues with the page size it began with (a page-number cursor
  // means nothing with another): it becomes page_size().
  std::string StoredPosition(const std::string& mode) {
    std::string v;
    if (o_.restart || !d_.log->GetConsumerState(kBackfillConsumer, PositionKey(o_), &v).ok())
      return {};
    const size_t nl = v.find('\n');
    if (nl == std::string::npos || v.compare(0, mode.size(), mode) != 0) return {};
    const std::string head = v.substr(mode.size(), nl - mode.size());  // "" (older runs) or " <size>"
    if (!head.empty()) {
      const long size = std::strtol(head.c_str() + 1, nullptr, 10);
      if (head[0] != ' ' || size < 1 || size > 100000) return {};
      page_size_ = static_cast<int>(size);
    }
    return v.substr(nl + 1);
  }
  int page_size() const { return page_size_; }

 private:
  Status Refresh() {
    std::promise<TokenGrant> answer;
    auto fut = answer.get_future();
    d_.client->RefreshToken(creds_, [&answer](TokenGrant g) { answer.set_value(std::move(g)); });
    TokenGrant g = fut.get();
    if (!g.ok) return Status::InvalidArgument("token refresh refused (" + g.detail + ")");
    Credentials fresh;
    fresh.access_token = g.access_token;
    fresh.refresh_token = g.refresh_token;
    fresh.expires_at_us = d_.now_us() + g.expires_in_s * 1000000;
    // Stored before use: the old refresh token is spent now.
    Status s =
        d_.log->CommitConsumerDurable(kCredentialsConsumer, 0,
                                      {StateOp{CredentialsKey(o_.tenant, o_.system),
                                               EncodeCredentials(fresh, d_.credentials), false}});
    creds_ = fresh;  // the only valid grant now, stored or not
    if (!s.ok() && d_.warn) {
      d_.warn("could not store the refreshed token (" + s.ToString() +
              "); the service will need a new grant when it starts");
    }
    return Status::OK();
  }

  // Durable here, then replicated for the partition's next node.
  Status StorePosition(const std::vector<StateOp>& ops) {
    Status s = d_.log->CommitConsumerDurable(kBackfillConsumer, 0, ops);
    if (s.ok() && d_.replicate_state) s = d_.replicate_state(o_.tenant, kBackfillConsumer, ops);
    return s;
  }

  const BackfillOptions& o_;
  const BackfillDeps& d_;
  int page_size_ = o_.page_size;
  Credentials creds_;
  int64_t last_request_us_ = 0;
};

Status RunList(Backfiller* b, const std::function<void(const BackfillStats&)>& progress, BackfillStats* stats) {
  std::string cursor = b->StoredPosition("list");
  stats->resumed = !cursor.empty();
  if (cursor.empty()) {  // a run under way, for the service to resume after a stop
    Status s = b->SavePosition("list", "");
    if (!s.ok()) return s;
  }
  for (;;) {
    ContactPage page;
    ReadAsk ask;
    ask.cursor = cursor;
    ask.page_size = b->page_size();
    Status s = b->Request(ask, stats, &page);
    if (!s.ok()) return s;
    stats->pages++;
    if (page.total >= 0) stats->total = page.total;
    s = b->Append(page, stats);
    if (!s.ok()) return s;
    if (page.next_cursor.empty()) break;
    cursor = page.next_cursor;
    s = b->SavePosition("list", cursor);
    if (!s.ok()) return s;
    progress(*stats);
  }
  stats->finished = true;
  Status s = b->ClearPosition();
  progress(*stats);
  return s;
}

Status RunLookup(Backfiller* b, const BackfillOptions& o, const BackfillDeps& d,
                 const std::function<void(const BackfillStats&)>& progress, BackfillStats* stats) {
  if (d.normalizer == nullptr) return Status::InvalidArgument("lookup backfill needs a normalizer");
  std::vector<std::string> phones;
  Status s = PhonesToLookUp(*d.log, o.tenant, o.system, *d.normalizer, &phones);
  if (!s.ok()) return s;
  stats->phones = static_cast<int64_t>(phones.size());
  // The position holds a fingerprint of the phone list: when the list
  // changed since (another backfill, or the service ran), start over, so no
  // phone that sorts before the position is skipped (asking again is
  // harmless: unchanged answers are not imported twice).
  std::string all;
  for (const auto& p : phones) all += p + "\n";
  auto digest = Sha256(all);
  const std::string fingerprint =
      HexEncode(std::string_view(reinterpret_cast<const char*>(digest.data()), 8));
  std::string stored = b->StoredPosition("lookup");
  std::string after;
  if (stored.compare(0, fingerprint.size() + 1, fingerprint + " ") == 0)
    after = stored.substr(fingerprint.size() + 1);
  stats->resumed = !after.empty();
  if (after.empty()) {  // a run under way, for the service to resume after a stop
    s = b->SavePosition("lookup", fingerprint + " ");
    if (!s.ok()) return s;
  }
  auto start = phones.begin();
  if (!after.empty() && after[0] == '#') {  // how many were asked (the list is the fingerprint's)
    const uint64_t asked = std::strtoull(after.c_str() + 1, nullptr, 10);
    start += static_cast<std::ptrdiff_t>(std::min<uint64_t>(asked, phones.size()));
  } else if (!after.empty()) {  // the last phone asked, as earlier builds stored it
    start = std::upper_bound(phones.begin(), phones.end(), after);
  }
  stats->asked = start - phones.begin();
  int64_t since_save = 0;
  for (auto it = start; it != phones.end(); ++it) {
    ContactPage page;
    const std::string& phone = *it;
    ReadAsk ask;
    ask.lookup = true;
    ask.phone = phone;
    s = b->Request(ask, stats, &page);
    if (!s.ok()) return s;
    stats->asked++;
    if (page.http_status == 404) stats->not_found++;
    if (page.http_status == 400 || page.http_status == 422) stats->refused++;
    s = b->Append(page, stats);
    if (!s.ok()) return s;
    if (++since_save >= 50) {  // a synced write per 50 lookups bounds what a crash re-asks
      since_save = 0;
      // The count, not the number: an erased person's would stay here.
      s = b->SavePosition("lookup", fingerprint + " #" + std::to_string(it - phones.begin() + 1));
      if (!s.ok()) return s;
    }
    progress(*stats);
  }
  stats->finished = true;
  s = b->ClearPosition();
  progress(*stats);
  return s;
}

std::string Thousands(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ",";
    out += digits[i];
  }
  return (n < 0 ? "-" : "") + out;
}

}  // namespace

Status PhonesToLookUp(const EventLog& log, const std::string& tenant, const std::string& system,
                      const Normalizer& normalizer, std::vector<std::string>* phones) {
  std::set<std::string> all;
  const std::string prefix = PhoneKey(tenant, "");
  Status s = log.ScanConsumerState(MappingsProjection::kName, prefix,
                                   [&](std::string_view key, std::string_view) {
                                     all.emplace(key.substr(prefix.size()));
                                     return true;
                                   });
  if (!s.ok()) return s;
  MapperSettings ms;
  ms.normalizer = &normalizer;
  for (const Connector* other : Connectors()) {
    if (other->system == system || !other->map_import) continue;
    s = log.ScanStream(tenant, "backfill:" + other->system, [&](const Event& e) {
      WebhookReceived w;
      std::vector<ContactFact> facts;
      if (!DecodeWebhookReceived(e.schema_version, e.payload, &w).ok()) return true;
      if (!other->map_import(w, ms, &facts).ok()) return true;
      for (const auto& f : facts) {
        auto p = f.fields.find(fields::kPhone);
        if (p != f.fields.end() && !p->second.empty()) all.insert(p->second);
      }
      return true;
    });
    if (!s.ok()) return s;
  }
  phones->assign(all.begin(), all.end());
  return Status::OK();
}

Status RunBackfill(const BackfillOptions& options, const BackfillDeps& deps,
                   const std::function<void(const BackfillStats&)>& progress,
                   BackfillStats* stats) {
  *stats = BackfillStats{};
  if (options.page_size < 1) return Status::InvalidArgument("page size must be at least 1");
  Backfiller b(options, deps);
  Status s = b.LoadCredentials();
  if (!s.ok()) return s;
  const bool list = deps.read ? deps.list : deps.client->CanList();
  const bool lookup = deps.read ? !deps.list : deps.client->CanLookupByPhone();
  if (list) return RunList(&b, progress, stats);
  if (lookup) return RunLookup(&b, options, deps, progress, stats);
  return Status::InvalidArgument(options.system + " has neither a list API nor a phone lookup");
}

std::string FormatBackfillProgress(const std::string& system, const BackfillStats& s,
                                   double per_second) {
  std::string out = system + ": ";
  if (s.phones > 0 || s.pages == 0) {
    out += Thousands(s.asked) + " of " + Thousands(s.phones) + " phones asked";
    if (s.phones > 0) out += " (" + std::to_string(s.asked * 100 / s.phones) + "%)";
    out += " · " + Thousands(s.seen) + " found";
  } else {
    out += "page " + Thousands(s.pages) + " · " + Thousands(s.seen);
    if (s.total >= 0) {
      out += " of " + Thousands(s.total) + " contacts";
      if (s.total > 0)
        out += " (" + std::to_string(std::min<int64_t>(100, s.seen * 100 / s.total)) + "%)";
    } else {
      out += " contacts";
    }
  }
  out += " · " + Thousands(s.imported) + " new · " + Thousands(s.unchanged) + " unchanged";
  char rate[32];
  std::snprintf(rate, sizeof(rate), " · %.0f/s", per_second);
  out += rate;
  if (s.finished) out += " · done";
  return out;
}

}  // namespace dfm
