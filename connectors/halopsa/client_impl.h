// HaloPSA's API client, shared by the files that define its members
// (internal to this folder): client.cc (the protocol's summary, users,
// OAuth, the backfill), client_users.cc (neversendemails on every user of
// the person) and client_clients.cc (the Client and site a new user is
// filed under). The shared helpers are described where they are defined.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/common/json_body.h"
#include "connectors/common/outbound.h"
#include "connectors/connector.h"
#include "connectors/halopsa/clients_cache.h"
#include "connectors/halopsa/halopsa.h"
#include "connectors/halopsa/paged_walk.h"
#include "util/json.h"

namespace dfm {
namespace halo {

// One user's email consent (neversendemails).
struct UserConsent {
  int64_t id = 0;
  bool never = false;
};

// client.cc
int64_t NowUs();
std::string Digits(std::string_view s);
int64_t FindUserIn(std::string_view body, const std::string& email, const std::string& phone);
bool ReadUserConsent(simdjson::dom::element u, UserConsent* out);
bool UsersWithEmail(std::string_view body, const std::string& email, std::vector<UserConsent>* out);

class HaloClient final : public VendorClient {
 public:
  HaloClient(const SystemSettings& s, HttpClient* http)
      : http_(http),
        base_(ApiBaseUrl(s)),
        token_request_(HaloTokenRequest(s)),
        timeout_ms_(std::stoll(s.at("request_timeout_ms"))),
        create_clients_(s.at("create_clients") == "true"),
        default_client_(std::strtoll(s.at("default_client_id").c_str(), nullptr, 10)) {
    std::string problem;
    custom_ = ParseHaloCustomFields(s.at("custom_fields"), &problem).value_or(HaloCustomFields{});
  }

  bool UsesOAuth() const override { return true; }

  std::string Notice() const override { return clients_.DuplicatesText(); }

  void RefreshToken(const Credentials&, std::function<void(TokenGrant)> done) override;

  void Push(const PushRequest& req, const Credentials& creds,
            std::function<void(PushResult)> done) override;

  bool CanList() const override { return true; }

  // Backfill (list): client.cc's comment. `cursor` is "<page>:<highest id
  // read>"; empty, or a bare page number (an older build's), starts again.
  void ListContacts(const std::string& cursor, int page_size, const Credentials& creds,
                    std::function<void(ContactPage)> done) override;

 private:
  struct Job {
    PushRequest req;
    std::string token;
    std::function<void(PushResult)> done;
    PushResult result;
    std::vector<HaloClientRecord> listed;  // a GET /api/Client walk in progress
    int64_t listed_from_us = 0;            // when that walk began
    bool looked_again = false;             // the linked user was gone: found or made anew once
  };
  using JobPtr = std::shared_ptr<Job>;

  // A walk over `list` (paged_walk.h) with `token`, its requests sent by `send`.
  HaloWalk Walk(std::string list, std::string key, int page_size, const std::string& token,
                std::function<void(HttpRequest, HttpCallback)> send) const;

  // A users page's rows into `p` (the contacts, record_count); false when
  // it does not read.
  static bool ReadUsersPage(const std::string& body, ContactPage* p);

  HttpRequest Api(const std::string& token, const char* method, const std::string& path) const;

  void Send(const JobPtr& job, HttpRequest r, std::function<void(HttpResponse)> then);

  // True when `resp` settled the push (an error, reported).
  static bool Settle(const JobPtr& job, const HttpResponse& resp);

  static void Finish(const JobPtr& job) { job->done(std::move(job->result)); }

  static void Unreadable(const JobPtr& job, const std::string& what);

  void FindUser(const JobPtr& job);

  // Consent: every user of the person (client.cc's comment), then each set
  // (opt_out, opt_in) or read (read_consent).
  void EveryUser(const JobPtr& job);

  void OwnUser(const JobPtr& job, std::vector<UserConsent> users);

  static void AnswerHeld(const JobPtr& job, const std::vector<UserConsent>& users);

  // Sets neversendemails on ids[i..]; `set`: those done.
  void SetEach(const JobPtr& job, std::vector<int64_t> ids, size_t i, std::vector<int64_t> set);

  std::string CompanyDomain(const JobPtr& job) const;

  void ResolveClient(const JobPtr& job);

  void ListClients(const JobPtr& job);

  // Every Client into job->listed, each once, through the id-ordered walk
  // (paged_walk.h), at most kMostPages pages of kPage; `done` gets null, or
  // the answer that ended the walk (a 2xx one: it did not read).
  void WalkClients(const JobPtr& job, HaloWalkAt at, std::function<void(const HttpResponse*)> done);

  void MissingClient(const JobPtr& job);

  // The creator of a company's Client within this connector claims it in
  // the records every node and restart shares (vendor_records.h).
  void ClaimClient(const JobPtr& job, const std::string& company, const std::string& domain);

  // A Client another node or an earlier run made (the records know its id).
  void KnownClient(const JobPtr& job, const std::string& company, const std::string& domain,
                   const std::string& id);

  void ListThenPost(const JobPtr& job, const std::string& company, const std::string& domain,
                    std::vector<std::string> mine);

  // Every waiter learns how the creation ended; the records keep its id
  // (or let the next creator try).
  // `maybe_made`: the creation got no answer and may have landed: its
  // claims are kept until stale, so that whoever creates next lists first.
  void EndCreation(const JobPtr& job, const std::string& company, const std::string& domain,
                   const std::vector<std::string>& mine,
                   const std::optional<HaloClientRecord>& made, bool maybe_made = false);

  void PostClient(const JobPtr& job, const std::string& company, const std::string& domain,
                  std::vector<std::string> mine);

  void WithDefaultClient(const JobPtr& job);

  void SiteOf(const JobPtr& job, const HaloClientRecord& c);

  // The user's fields as HaloPSA names them, from the push.
  void UserFields(const PushRequest& req, JsonObject* u) const;

  void Create(const JobPtr& job, int64_t client, int64_t site);

  // A user deleted in HaloPSA: 404, or 400 "User N does not exist."
  static bool Gone(const HttpResponse& resp);

  // Saves user `id`; one deleted in HaloPSA since it was linked is looked
  // for again (by email or phone) and made when none is found, once: the
  // link would otherwise refuse every later push of the person for good.
  void Save(const JobPtr& job, int64_t id);

  void Post(const JobPtr& job, std::string user, bool look_again_if_gone = false);

  HttpClient* http_;
  std::string base_;
  HttpRequest token_request_;
  int64_t timeout_ms_;
  bool create_clients_;
  int64_t default_client_;
  HaloCustomFields custom_;
  HaloClientsCache clients_;
};

}  // namespace halo
}  // namespace dfm
