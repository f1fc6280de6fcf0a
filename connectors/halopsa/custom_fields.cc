// HaloPSA custom fields (docs/vendors/halopsa.md section 4): the mapping
// from our fields, and which FieldInfo types can hold them.
#include "connectors/halopsa/halopsa.h"
#include "sync/fact.h"
#include "util/strings.h"

namespace dfm {

std::optional<HaloCustomFields> ParseHaloCustomFields(const std::string& setting, std::string* problem) {
  HaloCustomFields out;
  for (const std::string& item : SplitCommaList(setting)) {
    const size_t eq = item.find('=');
    const std::string ours = eq == std::string::npos ? "" : std::string(TrimSpace(item.substr(0, eq)));
    const std::string theirs = eq == std::string::npos ? "" : std::string(TrimSpace(item.substr(eq + 1)));
    if (ours.empty() || theirs.empty()) {
      *problem = "\"" + item + "\" is not <field>=<HaloPSA custom field name>";
      return std::nullopt;
    }
    if (ours != fields::kLinkedinUrl && ours != fields::kCompanySize && ours != fields::kIndustry &&
        ours != fields::kCompanyDomain) {
      *problem = "\"" + ours + "\" cannot go to a custom field: one of linkedin_url, company_size, "
                 "industry, company_domain";
      return std::nullopt;
    }
    out[ours] = theirs;
  }
  return out;
}

std::string HaloFieldTypeProblem(const std::string& field, int type, int inputtype) {
  // FieldInfo type 0 Text, 1 Memo; Text inputtype 0 anything, 1 integer,
  // 5 URL.
  if (type == 1) return "";
  if (type != 0) return "is not a text field (type " + std::to_string(type) + ")";
  if (inputtype == 0) return "";
  if (field == fields::kLinkedinUrl && inputtype == 5) return "";
  if (field == fields::kCompanySize && inputtype == 1) return "";
  return "is a text field that takes only " +
         std::string(inputtype == 1   ? "whole numbers"
                     : inputtype == 2 ? "money"
                     : inputtype == 3 ? "letters and digits"
                     : inputtype == 4 ? "decimals"
                     : inputtype == 5 ? "URLs"
                                      : "input type " + std::to_string(inputtype));
}

}  // namespace dfm
