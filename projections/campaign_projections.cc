#include "projections/campaign_projections.h"

#include <simdjson.h>

#include "projections/campaign_rows.h"
#include "util/json.h"

namespace dfm {

using campaign_rows::DatedKey;
using campaign_rows::ReadRows;
using campaign_rows::ScanDated;

std::string EncodeCampaignRow(const CampaignView& v) {
  return JsonObject()
      .Int("v", 1)
      .Raw("spec", EncodeCampaignSpec(v.spec))
      .Str("state", CampaignStateName(v.state))
      .Int("created_us", v.created_us)
      .Int("started_us", v.started_us)
      .Int("changed_us", v.changed_us)
      .Int("reset_us", v.reset_us)
      .Str("changed_by", v.changed_by)
      .Str("reason", v.reason)
      .Int("changes", v.changes)
      .Finish();
}

bool DecodeCampaignRow(std::string_view row, CampaignView* v) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  simdjson::dom::element spec;
  int64_t version = 0, changes = 0;
  std::string_view state, by, reason;
  CampaignView x;
  if (parser.parse(row.data(), row.size()).get(o) || o["v"].get(version) || version != 1 ||
      o["spec"].get(spec) || o["state"].get(state) || !ParseCampaignState(state, &x.state) ||
      o["created_us"].get(x.created_us) || o["started_us"].get(x.started_us) ||
      o["changed_us"].get(x.changed_us) || o["changed_by"].get(by) || o["reason"].get(reason) ||
      o["changes"].get(changes))
    return false;
  std::vector<ValidationDetail> problems;
  DecodeCampaignSpec(simdjson::minify(spec), &x.spec, &problems);
  if (!problems.empty()) return false;
  x.changed_by = std::string(by);
  x.reason = std::string(reason);
  if (o["reset_us"].get(x.reset_us) != simdjson::SUCCESS) x.reset_us = 0;  // absent in older rows
  x.changes = static_cast<int>(changes);
  *v = std::move(x);
  return true;
}

std::string EncodeCustomerRow(const Customer& c) {
  JsonArray payments;
  const size_t from = c.payments.size() > kRecentPayments ? c.payments.size() - kRecentPayments : 0;
  for (size_t i = from; i < c.payments.size(); ++i) {
    const Payment& p = c.payments[i];
    payments.Raw(JsonObject()
                     .Str("amount", p.amount)
                     .Str("currency", p.currency)
                     .Str("reference", p.reference)
                     .Str("contact", p.contact)
                     .Int("at_us", p.at_us)
                     .Finish());
  }
  return JsonObject()
      .Int("v", 1)
      .Str("id", c.id)
      .Str("name", c.name)
      .Bool("active", c.active)
      .Int("payments_total", c.payments_total)
      .Raw("payments", payments.Finish())
      .Finish();
}

bool DecodeCustomerRow(std::string_view row, Customer* c) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  simdjson::dom::array payments;
  int64_t version = 0;
  std::string_view id, name;
  Customer x;
  if (parser.parse(row.data(), row.size()).get(o) || o["v"].get(version) || version != 1 ||
      o["id"].get(id) || o["name"].get(name) || o["active"].get(x.active) ||
      o["payments_total"].get(x.payments_total) || o["payments"].get(payments))
    return false;
  for (auto e : payments) {
    simdjson::dom::object p;
    std::string_view amount, currency, reference, contact;
    Payment y;
    if (e.get(p) || p["amount"].get(amount) || p["currency"].get(currency) ||
        p["reference"].get(reference) || p["contact"].get(contact) || p["at_us"].get(y.at_us))
      return false;
    y.amount = std::string(amount);
    y.currency = std::string(currency);
    y.reference = std::string(reference);
    y.contact = std::string(contact);
    x.payments.push_back(std::move(y));
  }
  x.id = std::string(id);
  x.name = std::string(name);
  *c = std::move(x);
  return true;
}

bool CampaignsProjection::Uses(std::string_view type) const {
  return type == kCampaignCreated || type == kCampaignChanged || type == kCustomerCreated ||
         type == kCustomerUpdated || type == kPaymentRecorded;
}

void CampaignsProjection::FoldDecoded(const Event& e, const DomainEvent*, ProjectionState* st) {
  if (e.type == kCampaignCreated || e.type == kCampaignChanged) {
    // The campaign's id: the stream's ("campaign:<id>").
    if (e.stream.rfind("campaign:", 0) != 0) return;
    const std::string key = "c/" + e.tenant + "/" + e.stream.substr(9);
    CampaignView v;
    std::optional<std::string_view> row = st->Peek(key);
    if (row && !DecodeCampaignRow(*row, &v)) return;
    if (ApplyCampaignEvent(e.type, e.payload, e.recorded_at_us, &v).ok() && !v.spec.id.empty())
      st->Put(key, EncodeCampaignRow(v));
    return;
  }
  if (e.stream.rfind("customer:", 0) != 0) return;
  const std::string id = e.stream.substr(9);
  const std::string key = "u/" + e.tenant + "/" + id;
  Customer c;
  std::optional<std::string_view> row = st->Peek(key);
  if (row && !DecodeCustomerRow(*row, &c)) return;
  if (!ApplyCustomerEvent(e.type, e.payload, e.recorded_at_us, &c)) return;
  if (c.id.empty()) c.id = id;  // a payment for a customer not created (yet): kept under its id
  st->Put(key, EncodeCustomerRow(c));
  if (e.type == kPaymentRecorded && !c.payments.empty() && !c.payments.back().contact.empty())
    st->Put(DatedKey('p', e.tenant, c.payments.back().contact, e.recorded_at_us, id), "");
}

Status ReadCampaign(const EventLog& log, const std::string& tenant, const std::string& campaign,
                    CampaignView* v) {
  std::string row;
  Status s = log.GetConsumerState(CampaignsProjection::kName, "c/" + tenant + "/" + campaign, &row);
  if (!s.ok()) return s;
  return DecodeCampaignRow(row, v) ? Status::OK()
                                   : Status::Corruption("a campaign row that does not read");
}

Status ReadCustomer(const EventLog& log, const std::string& tenant, const std::string& customer,
                    Customer* c) {
  std::string row;
  Status s = log.GetConsumerState(CampaignsProjection::kName, "u/" + tenant + "/" + customer, &row);
  if (!s.ok()) return s;
  return DecodeCustomerRow(row, c) ? Status::OK()
                                   : Status::Corruption("a customer row that does not read");
}

Status FoldCampaignStream(const EventLog& log, const std::string& tenant,
                          const std::string& campaign, CampaignView* v, uint64_t* last_seq) {
  *v = CampaignView();
  Status s = log.ScanStream(tenant, "campaign:" + campaign, [v, last_seq](const Event& e) {
    (void)ApplyCampaignEvent(e.type, e.payload, e.recorded_at_us, v);  // a refused one: no change
    if (last_seq) *last_seq = e.seq;
    return true;
  });
  if (!s.ok()) return s;
  return v->spec.id.empty() ? Status::NotFound("no campaign " + campaign) : Status::OK();
}

Status FoldCustomerStream(const EventLog& log, const std::string& tenant,
                          const std::string& customer, Customer* c) {
  *c = Customer();
  bool created = false;
  Status s = log.ScanStream(tenant, "customer:" + customer, [c, &created](const Event& e) {
    if (ApplyCustomerEvent(e.type, e.payload, e.recorded_at_us, c) && e.type == kCustomerCreated)
      created = true;
    return true;
  });
  if (!s.ok()) return s;
  return created ? Status::OK() : Status::NotFound("no customer " + customer);
}

Status ListCampaigns(const EventLog& log, const std::string& tenant,
                     std::vector<CampaignView>* out) {
  return ReadRows(log, CampaignsProjection::kName, "c/" + tenant + "/", &DecodeCampaignRow, out);
}

Status ReadPaidSince(const EventLog& log, const std::string& tenant, const std::string& contact,
                     int64_t since_us, bool* paid) {
  *paid = false;
  return ScanDated(log, CampaignsProjection::kName, 'p', tenant, contact, since_us,
                   [paid](int64_t) {
                     *paid = true;
                     return false;
                   });
}

}  // namespace dfm
