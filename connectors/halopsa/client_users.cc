// HaloPSA's client: a consent push (opt_out, opt_in) and a read back, on
// every user of the person (the protocol: client.cc).
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

void HaloClient::FindUser(const JobPtr& job) {
  const std::string email = job->req.Field(fields::kEmail);
  const std::string phone = job->req.Field(fields::kPhone);
  if (email.empty() && phone.empty()) return ResolveClient(job);  // nothing to look up by
  std::string path =
      "/api/Users?includeinactive=true&pageinate=true&page_size=50&page_no=1&search=" +
      UrlEscape(email.empty() ? phone : email);
  if (email.empty()) path += "&search_phonenumbers=true";
  Send(job, Api(job->token, "GET", path), [this, job, email, phone](HttpResponse resp) {
    if (Settle(job, resp)) return;
    const int64_t id = FindUserIn(resp.body, email, phone);
    if (id < 0) return Unreadable(job, "users search");
    if (id > 0) return Save(job, id);
    ResolveClient(job);
  });
}

// Consent: every user of the person (client.cc's comment), then each set
// (opt_out, opt_in) or read (read_consent).
void HaloClient::EveryUser(const JobPtr& job) {
  const std::string email = AsciiLower(job->req.Field(fields::kEmail));
  if (email.empty()) return OwnUser(job, {});
  const std::string path =
      "/api/Users?includeinactive=true&pageinate=true&page_size=50&page_no=1&search=" +
      UrlEscape(email);
  Send(job, Api(job->token, "GET", path), [this, job, email](HttpResponse resp) {
    if (Settle(job, resp)) return;
    std::vector<UserConsent> users;
    if (!UsersWithEmail(resp.body, email, &users)) return Unreadable(job, "users search");
    OwnUser(job, std::move(users));
  });
}

void HaloClient::OwnUser(const JobPtr& job, std::vector<UserConsent> users) {
  const int64_t own = std::strtoll(job->req.external_id.c_str(), nullptr, 10);
  auto is_own = [own](const UserConsent& u) { return u.id == own; };
  const bool after = !job->req.Field("after").empty();  // read it fresh
  if (after && own > 0 && job->req.op == "read_consent")
    users.erase(std::remove_if(users.begin(), users.end(), is_own), users.end());
  const bool listed = own <= 0 || std::any_of(users.begin(), users.end(), is_own);
  if (job->req.op != "read_consent") {
    std::vector<int64_t> ids;
    if (own > 0) ids.push_back(own);
    for (const auto& u : users)
      if (u.id != own) ids.push_back(u.id);
    return SetEach(job, std::move(ids), 0, {});
  }
  if (listed) return AnswerHeld(job, users);
  Send(job, Api(job->token, "GET", "/api/Users/" + std::to_string(own)),
       [job, users, after](HttpResponse resp) mutable {
         bool read = false;
         if (!Gone(resp)) {
           if (Settle(job, resp)) return;
           simdjson::dom::parser parser;
           simdjson::dom::element u;
           UserConsent c;
           read = !parser.parse(resp.body).get(u) && ReadUserConsent(u, &c);
           if (read) users.push_back(c);
         }
         if (after && !read) users.clear();  // the others' copies may be as old
         AnswerHeld(job, users);
       });
}

void HaloClient::AnswerHeld(const JobPtr& job, const std::vector<UserConsent>& users) {
  job->result.http_status = 200;
  bool all = !users.empty();
  for (const auto& u : users) all = all && u.never;
  if (!users.empty())
    job->result.answered["held." + std::string(channels::kEmail)] = all ? "out" : "in";
  job->result.detail =
      "read " + std::to_string(users.size()) + " HaloPSA user" + (users.size() == 1 ? "" : "s");
  Finish(job);
}

// Sets neversendemails on ids[i..]; `set`: those done.
void HaloClient::SetEach(const JobPtr& job, std::vector<int64_t> ids, size_t i,
                         std::vector<int64_t> set) {
  if (i == ids.size()) {
    if (set.empty()) {
      job->result.http_status = 422;
      job->result.detail = "HaloPSA has no user with this email";
      return Finish(job);
    }
    std::string all;
    for (int64_t id : set) all += (all.empty() ? "" : ",") + std::to_string(id);
    job->result.http_status = 200;
    // The person's own user only when it is the push's own: one found by
    // the email may be another contact's (a shared mailbox); answer.ids
    // names every user set (as GoHighLevel's consent push does).
    if (std::to_string(set[0]) == job->req.external_id)
      job->result.external_id = job->req.external_id;
    job->result.answered["ids"] = all;
    job->result.detail =
        "set on " + std::to_string(set.size()) + " HaloPSA user" + (set.size() == 1 ? "" : "s");
    return Finish(job);
  }
  JsonObject u;
  u.Int("id", ids[i]).Bool("neversendemails", job->req.op == "opt_out");
  HttpRequest r = Api(job->token, "POST", "/api/Users");
  r.body = "[" + u.Finish() + "]";
  Send(job, std::move(r),
       [this, job, ids = std::move(ids), i, set = std::move(set)](HttpResponse resp) mutable {
         if (!Gone(resp)) {
           if (Settle(job, resp)) return;
           set.push_back(ids[i]);
         }
         SetEach(job, std::move(ids), i + 1, std::move(set));
       });
}

}  // namespace halo
}  // namespace dfm
