// Apollo's answers read into sync/fact.h names (connectors/apollo/answer.cc;
// docs/vendors/apollo.md sections 2 and 3).
#include <gtest/gtest.h>

#include "connectors/apollo/apollo.h"

namespace dfm {
namespace {

TEST(ApolloAnswer, APersonWithTheirCompany) {
  std::map<std::string, std::string> f;
  ASSERT_TRUE(ReadApolloPerson(R"({"person": {"id": "5f", "first_name": "Annie", "last_name": "Smith",
      "title": "CTO", "linkedin_url": "http://www.linkedin.com/in/annie", "email_status": "verified",
      "organization": {"name": "Acme Inc", "primary_domain": "acme.io", "industry": "software",
      "estimated_num_employees": 120, "linkedin_url": "http://www.linkedin.com/company/acme"}},
      "request_id": -4411})", &f));
  EXPECT_EQ(f, (std::map<std::string, std::string>{
                   {"first_name", "Annie"}, {"last_name", "Smith"}, {"title", "CTO"},
                   {"linkedin_url", "http://www.linkedin.com/in/annie"}, {"company_name", "Acme Inc"},
                   {"company_domain", "acme.io"}, {"industry", "software"}, {"company_size", "120"}}))
      << "the company's LinkedIn page is not the person's";
}

TEST(ApolloAnswer, NoMatchInEveryFormApolloAnswersIt) {
  for (const char* body : {R"({"person": null})", R"({})", R"({"person": null, "request_id": 1})"}) {
    std::map<std::string, std::string> f;
    EXPECT_TRUE(ReadApolloPerson(body, &f)) << body;
    EXPECT_TRUE(f.empty()) << body;
  }
  for (const char* body : {R"({})", R"({"organization": null})", R"({"organization": {}})"}) {
    std::map<std::string, std::string> f;
    EXPECT_TRUE(ReadApolloOrganization(body, &f)) << body;
    EXPECT_TRUE(f.empty()) << body;
  }
  std::map<std::string, std::string> f;
  EXPECT_FALSE(ReadApolloPerson("<html>", &f)) << "unreadable: asked again";
}

TEST(ApolloAnswer, ErrorsInApollosWords) {
  HttpResponse r;
  r.status = 401;
  r.body = "Invalid access credentials.";
  EXPECT_EQ(ApolloErrorDetail(r), "HTTP 401: Invalid access credentials.");
  r.status = 422;
  r.body = R"({"error": "Insufficient credits. Please upgrade your plan."})";
  EXPECT_TRUE(ApolloCreditsSpent(r));
  EXPECT_EQ(ApolloErrorDetail(r), "HTTP 422: Insufficient credits. Please upgrade your plan.");
  r.status = 429;
  r.body = R"({"message": "The maximum number of api calls allowed for api/v1/people/match is 50 times per minute."})";
  EXPECT_FALSE(ApolloCreditsSpent(r));
  EXPECT_NE(ApolloErrorDetail(r).find("50 times per minute"), std::string::npos);
}

}  // namespace
}  // namespace dfm
