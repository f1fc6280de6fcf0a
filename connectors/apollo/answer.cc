// Apollo's answers (docs/vendors/apollo.md sections 2 and 3) read into
// sync/fact.h names:
//   person.first_name, last_name, title, linkedin_url (the person's own)
//   organization.name -> company_name, primary_domain -> company_domain,
//   estimated_num_employees -> company_size, industry -> industry
// The company's LinkedIn page is not read: it is not the person's.
#include <simdjson.h>

#include "connectors/apollo/apollo.h"
#include "connectors/common/outbound.h"
#include "sync/fact.h"

namespace dfm {

namespace {

void Str(simdjson::dom::object o, const char* key, const char* field,
         std::map<std::string, std::string>* out) {
  std::string_view v;
  if (!o[key].get(v) && !v.empty()) (*out)[field] = std::string(v);
}

void ReadOrganization(simdjson::dom::object org, std::map<std::string, std::string>* out) {
  Str(org, "name", fields::kCompanyName, out);
  Str(org, "primary_domain", fields::kCompanyDomain, out);
  Str(org, "industry", fields::kIndustry, out);
  int64_t n = 0;
  if (!org["estimated_num_employees"].get(n) && n > 0) (*out)[fields::kCompanySize] = std::to_string(n);
}

}  // namespace

bool ReadApolloPerson(std::string_view body, std::map<std::string, std::string>* out) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body.data(), body.size()).get(doc)) return false;
  simdjson::dom::object person;
  if (doc["person"].get(person)) return doc.is_object();  // null or absent: no match
  Str(person, "first_name", fields::kFirstName, out);
  Str(person, "last_name", fields::kLastName, out);
  Str(person, "title", fields::kTitle, out);
  Str(person, "linkedin_url", fields::kLinkedinUrl, out);
  simdjson::dom::object org;
  if (!person["organization"].get(org)) ReadOrganization(org, out);
  return true;
}

bool ReadApolloOrganization(std::string_view body, std::map<std::string, std::string>* out) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body.data(), body.size()).get(doc)) return false;
  simdjson::dom::object org;
  if (!doc["organization"].get(org)) ReadOrganization(org, out);
  return doc.is_object();
}

bool ApolloCreditsSpent(const HttpResponse& r) {
  return r.status == 422 && r.body.find("nsufficient credits") != std::string::npos;
}

std::string ApolloErrorDetail(const HttpResponse& r) {
  if (r.status == 0) return r.error;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view text;
  if (!parser.parse(r.body).get(doc)) {
    if (doc["error"].get(text) && doc["message"].get(text) && doc["error_message"].get(text)) text = "";
    return SafeDetail(r.status, text);
  }
  // 401 answers in plain text ("Invalid access credentials.").
  return SafeDetail(r.status, r.body.substr(0, std::min<size_t>(r.body.size(), 160)));
}

}  // namespace dfm
