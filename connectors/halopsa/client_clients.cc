// HaloPSA's client: the Client and site a new user is filed under, found
// by company name or email domain, created once per company, or the
// default (the protocol: client.cc).
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "connectors/common/json_body.h"
#include "connectors/common/outbound.h"
#include "connectors/common/vendor_records.h"
#include "connectors/halopsa/client_impl.h"
#include "connectors/halopsa/clients_cache.h"
#include "connectors/halopsa/halopsa.h"
#include "connectors/halopsa/paged_walk.h"
#include "sync/consent.h"
#include "sync/identity.h"
#include "util/json.h"
#include "util/strings.h"

namespace dfm {
namespace halo {

std::string HaloClient::CompanyDomain(const JobPtr& job) const {
  std::string d = job->req.Field(fields::kCompanyDomain);
  return d.empty() ? CompanyDomainOfEmail(job->req.Field(fields::kEmail)) : d;
}

void HaloClient::ResolveClient(const JobPtr& job) {
  const std::string company = job->req.Field(fields::kCompanyName), domain = CompanyDomain(job);
  if (company.empty() && domain.empty()) return WithDefaultClient(job);
  if (auto c = clients_.Find(company, domain)) return SiteOf(job, *c);
  if (!clients_.Fresh(NowUs())) return ListClients(job);
  MissingClient(job);
}

void HaloClient::ListClients(const JobPtr& job) {
  job->listed_from_us = NowUs();
  job->listed.clear();
  WalkClients(job, {}, [this, job](const HttpResponse* failed) {
    if (failed) {
      if (Settle(job, *failed)) return;
      return Unreadable(job, "clients list");
    }
    clients_.Replace(std::move(job->listed), NowUs(), job->listed_from_us);
    const std::string company = job->req.Field(fields::kCompanyName);
    if (auto c = clients_.Find(company, CompanyDomain(job))) return SiteOf(job, *c);
    MissingClient(job);
  });
}

// Every Client into job->listed, each once, through the id-ordered walk
// (paged_walk.h), at most kMostPages pages of kPage; `done` gets null, or
// the answer that ended the walk (a 2xx one: it did not read).
void HaloClient::WalkClients(const JobPtr& job, HaloWalkAt at,
                             std::function<void(const HttpResponse*)> done) {
  constexpr int kPage = 100, kMostPages = 200;
  HaloWalk w =
      Walk("/api/Client?pageinate=true", "clients", kPage, job->token,
           [this, job](HttpRequest r, HttpCallback cb) { Send(job, std::move(r), std::move(cb)); });
  ReadHaloPage(w, at, [this, job, done = std::move(done)](HaloPage hp) mutable {
    int64_t total = 0;
    if (!hp.ok() || !ReadHaloClients(hp.answer.body, false, &job->listed, &total))
      return done(&hp.answer);
    if (hp.next && hp.next->page <= kMostPages) return WalkClients(job, *hp.next, std::move(done));
    KeepOncePerId(&job->listed);  // a step back reads a page again
    done(nullptr);
  });
}

void HaloClient::MissingClient(const JobPtr& job) {
  if (!create_clients_) return WithDefaultClient(job);
  const std::string company = job->req.Field(fields::kCompanyName), domain = CompanyDomain(job);
  bool creator = false;
  auto found = clients_.FindOrJoin(
      company, domain,
      [this, job](const std::optional<HaloClientRecord>& made) {
        if (!made) return ResolveClient(job);  // that creation failed: look again
        job->result.detail =
            "filed under HaloPSA Client " + std::to_string(made->id) + ", created for another push";
        SiteOf(job, *made);
      },
      &creator);
  if (found) return SiteOf(job, *found);
  if (!creator) return;  // another push of this company is creating it
  ClaimClient(job, company, domain);
}

// The creator of a company's Client within this connector claims it in
// the records every node and restart shares (vendor_records.h).
void HaloClient::ClaimClient(const JobPtr& job, const std::string& company,
                             const std::string& domain) {
  VendorRecords* records = job->req.records.get();
  if (!records) return PostClient(job, company, domain, {});
  std::vector<std::string> mine;
  bool taken_over = false;
  for (const std::string& key : HaloClientsCache::Keys(company, domain)) {
    const std::string record = "client " + key;
    std::string id;
    int64_t busy_us = 0;
    const VendorRecords::Claim c = records->Take(record, &id, &busy_us);
    if (c == VendorRecords::Claim::kMine || c == VendorRecords::Claim::kTakenOver) {
      mine.push_back(record);
      taken_over = taken_over || c == VendorRecords::Claim::kTakenOver;
      continue;
    }
    for (const auto& m : mine) records->Release(m);
    if (c == VendorRecords::Claim::kKnown) return KnownClient(job, company, domain, id);
    clients_.Created(company, domain, std::nullopt, NowUs());  // the waiters look again
    job->result.http_status = 503;
    job->result.transient = true;
    // A live creator settles within seconds; one quiet for longer died, and
    // its claim may be taken over once stale.
    job->result.retry_after_us =
        busy_us < 10000000 ? 1000000
                           : std::max<int64_t>(1000000, VendorRecords::kStaleUs - busy_us);
    job->result.detail = c == VendorRecords::Claim::kBusy
                             ? "another node is creating this company's HaloPSA Client: asked again"
                             : "the shared vendor records do not answer: asked again";
    return Finish(job);
  }
  if (!taken_over) return PostClient(job, company, domain, std::move(mine));
  // A claim its holder left: its Client may exist. Listed again first.
  clients_.Invalidate();
  ListThenPost(job, company, domain, std::move(mine));
}

// A Client another node or an earlier run made (the records know its id).
void HaloClient::KnownClient(const JobPtr& job, const std::string& company,
                             const std::string& domain, const std::string& id) {
  HaloClientRecord c;
  try {
    c.id = std::stoll(id);
  } catch (...) {
    c.id = 0;
  }
  if (c.id <= 0) return Unreadable(job, "recorded client");
  c.name = company;
  c.domain = domain;
  clients_.Created(company, domain, c, NowUs());
  job->result.detail = "filed under HaloPSA Client " + id + ", created earlier or by another node";
  SiteOf(job, c);
}

void HaloClient::ListThenPost(const JobPtr& job, const std::string& company,
                              const std::string& domain, std::vector<std::string> mine) {
  job->listed.clear();
  WalkClients(
      job, {},
      [this, job, company, domain, mine = std::move(mine)](const HttpResponse* failed) mutable {
        if (failed) {
          // Unknown still whether the dead holder's Client landed: the
          // claims stay, so that whoever takes them over lists first.
          EndCreation(job, company, domain, mine, std::nullopt, /*maybe_made=*/true);
          if (Settle(job, *failed)) return;
          return Unreadable(job, "clients list");
        }
        HaloClientsCache listed;
        listed.Replace(std::move(job->listed), NowUs(), NowUs());
        if (auto c = listed.Find(company, domain)) {
          EndCreation(job, company, domain, mine, c);
          job->result.detail =
              "filed under HaloPSA Client " + std::to_string(c->id) + ", found after a stale claim";
          return SiteOf(job, *c);
        }
        PostClient(job, company, domain, std::move(mine));
      });
}

// Every waiter learns how the creation ended; the records keep its id
// (or let the next creator try).
// `maybe_made`: the creation got no answer and may have landed: its
// claims are kept until stale, so that whoever creates next lists first.
void HaloClient::EndCreation(const JobPtr& job, const std::string& company,
                             const std::string& domain, const std::vector<std::string>& mine,
                             const std::optional<HaloClientRecord>& made, bool maybe_made) {
  if (VendorRecords* records = job->req.records.get()) {
    for (const auto& m : mine) {
      if (!made) {
        if (!maybe_made) records->Release(m);
      } else if (Status s = records->Settle(m, std::to_string(made->id)); !s.ok()) {
        records->Release(m);  // unknown to the others: they list HaloPSA, which has it
      }
    }
  }
  clients_.Created(company, domain, made, NowUs());
}

void HaloClient::PostClient(const JobPtr& job, const std::string& company,
                            const std::string& domain, std::vector<std::string> mine) {
  JsonObject c;
  c.Str("name", company.empty() ? domain : company);
  if (!domain.empty()) c.Str("domain", domain).Str("website", "https://" + domain);
  HttpRequest r = Api(job->token, "POST", "/api/Client");
  r.body = "[" + c.Finish() + "]";
  Send(job, std::move(r), [this, job, company, domain, mine = std::move(mine)](HttpResponse resp) {
    const bool maybe = (resp.status == 0 && !resp.not_sent) || resp.status / 100 == 5;
    if (maybe) clients_.Invalidate();  // it may exist: list again
    std::vector<HaloClientRecord> saved;
    const bool made = resp.status / 100 == 2 && ReadHaloClients(resp.body, true, &saved, nullptr);
    EndCreation(job, company, domain, mine,
                made ? std::optional<HaloClientRecord>(saved[0]) : std::nullopt,
                maybe || (resp.status / 100 == 2 && !made));
    if (Settle(job, resp)) return;
    if (!made) return Unreadable(job, "client create");
    job->result.detail = "created HaloPSA Client " + std::to_string(saved[0].id);
    SiteOf(job, saved[0]);
  });
}

void HaloClient::WithDefaultClient(const JobPtr& job) {
  if (default_client_ <= 0) {
    job->result.http_status = 422;
    job->result.detail =
        "no HaloPSA client for this contact (no company, or none matches and create_clients is "
        "off); "
        "set halopsa.default_client_id";
    return Finish(job);
  }
  Send(job, Api(job->token, "GET", "/api/Client/" + std::to_string(default_client_)),
       [this, job](HttpResponse resp) {
         if (Settle(job, resp)) return;
         std::vector<HaloClientRecord> one;
         if (!ReadHaloClients(resp.body, true, &one, nullptr)) return Unreadable(job, "client");
         SiteOf(job, one[0]);
       });
}

void HaloClient::SiteOf(const JobPtr& job, const HaloClientRecord& c) {
  if (c.main_site_id > 0) return Create(job, c.id, c.main_site_id);
  const int64_t client = c.id;
  Send(job, Api(job->token, "GET", "/api/Site?client_id=" + std::to_string(client)),
       [this, job, client](HttpResponse resp) {
         if (Settle(job, resp)) return;
         simdjson::dom::parser parser;
         simdjson::dom::element doc;
         simdjson::dom::array sites;
         if (parser.parse(resp.body).get(doc) || doc["sites"].get(sites))
           return Unreadable(job, "sites");
         for (simdjson::dom::element s : sites) {
           bool inactive = false;
           int64_t id = 0;
           double d = 0;
           if (s["id"].get(id) && !s["id"].get(d)) id = static_cast<int64_t>(d);
           if (!s["inactive"].get(inactive) && inactive) continue;
           if (id > 0) return Create(job, client, id);
         }
         job->result.http_status = 422;
         job->result.detail = "HaloPSA client " + std::to_string(client) + " has no active site";
         Finish(job);
       });
}

}  // namespace halo
}  // namespace dfm
