#include "console/status_page.h"

#include "replay-tools/tool_log.h"

namespace dfm {

namespace {

constexpr char kStyle[] = R"(
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f4f6f9}
header{background:#1d2330;color:#fff;padding:14px 20px;display:flex;flex-wrap:wrap;gap:8px 20px;align-items:center;justify-content:space-between}
header h1{font-size:20px;margin:0}
header form{display:flex;gap:6px;align-items:center;flex-wrap:wrap}
main{max-width:1180px;margin:0 auto;padding:16px}
.summary{font-size:20px;font-weight:600;padding:14px 16px;border-radius:8px;margin:0 0 16px}
.summary.ok{background:#e3f5e8;color:#14532d}
.summary.bad{background:#fdecea;color:#7f1d1d}
.notice{background:#fff7d6;border:1px solid #e9d37a;padding:8px 12px;border-radius:6px;margin-bottom:12px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:14px}
.card{background:#fff;border-radius:8px;padding:14px 16px;border-left:8px solid #9aa3b2;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card h2{font-size:17px;margin:0 0 2px}
.card .tenant{color:#5b6475;font-size:13px}
.card .state{font-weight:700;margin:8px 0 4px}
.card dl{display:grid;grid-template-columns:1fr auto;gap:2px 12px;margin:10px 0 0;font-size:14px}
.card dt{color:#5b6475}.card dd{margin:0;text-align:right}
.working{border-left-color:#1f9d55}.working .state{color:#14703c}
.idle{border-left-color:#6b7a90}.idle .state{color:#14703c}
.slow{border-left-color:#d89614}.slow .state{color:#8a5a00}
.down{border-left-color:#d4351c}.down .state{color:#a0260f}
.attention{border-left-color:#7c3aed}.attention .state{color:#5b21b6}
.paused{border-left-color:#475569}.paused .state{color:#334155}
section{margin-top:22px}
section h2{font-size:18px;margin:0 0 8px}
.panel{background:#fff;border-radius:8px;padding:14px 16px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.search{display:flex;gap:8px;flex-wrap:wrap}
.search input[type=search]{flex:1 1 260px;font-size:16px;padding:8px 10px;border:1px solid #b8c0cc;border-radius:6px}
button,input[type=submit]{font-size:15px;padding:8px 14px;border-radius:6px;border:0;background:#2f5bd3;color:#fff;cursor:pointer}
header input[type=password]{font-size:14px;padding:6px 8px;border-radius:6px;border:0;width:15em}
header button{padding:6px 12px;font-size:14px}
table{border-collapse:collapse;width:100%;font-size:14px}
td,th{text-align:left;padding:5px 8px;border-bottom:1px solid #e6e9ef;vertical-align:top}
th{color:#5b6475;font-weight:600}
.out{color:#a0260f;font-weight:700}.in{color:#14703c;font-weight:700}
textarea{width:100%;min-height:10em;font:13px/1.4 ui-monospace,Menlo,Consolas,monospace;padding:8px;border:1px solid #b8c0cc;border-radius:6px}
.muted{color:#5b6475;font-size:14px}
ul{margin:6px 0;padding-left:20px}
footer{color:#5b6475;font-size:13px;text-align:center;padding:20px}
@media (max-width:600px){body{font-size:15px}main{padding:10px}.card dl{grid-template-columns:1fr auto}td,th{padding:4px}}
)";

void Add(std::string* out, std::string_view a) { out->append(a.data(), a.size()); }

std::string Card(const ServiceCard& c, bool engine) {
  std::string h = "<article class=\"card " + std::string(CardStateName(c.state)) +
                  "\" data-system=\"" + HtmlEscape(c.system) + "\" data-tenant=\"" +
                  HtmlEscape(c.tenant) + "\" data-state=\"" + CardStateName(c.state) + "\">";
  h += "<h2>" + HtmlEscape(c.name) + "</h2>";
  if (!engine) h += "<div class=\"tenant\">tenant " + HtmlEscape(c.tenant) + "</div>";
  h += "<div class=\"state\">" + HtmlEscape(c.headline) + "</div>";
  h += "<div>" + HtmlEscape(c.detail) + "</div><dl>";
  if (engine) {
    h += "<dt>Events waiting to be synced</dt><dd>" + std::to_string(c.waiting) + "</dd>";
  } else {
    h += "<dt>Last successful sync</dt><dd>" + HtmlEscape(c.last_success) + "</dd>";
    h += "<dt>Syncs in the last hour</dt><dd>" + std::to_string(c.syncs_hour) + "</dd>";
    h += "<dt>Failures in the last hour</dt><dd>" + std::to_string(c.failures_hour) + "</dd>";
    h += "<dt>Changes waiting</dt><dd>" + std::to_string(c.waiting) + "</dd>";
    h += "<dt>Given up (all time)</dt><dd>" + std::to_string(c.dead_letters) + "</dd>";
    if (c.webhooks > 0)
      h += "<dt>Webhooks since the start</dt><dd data-webhooks=\"" + std::to_string(c.webhooks) +
           "\" data-batched=\"" + std::to_string(c.webhooks_batched) + "\" data-facts=\"" +
           std::to_string(c.webhook_facts) + "\">" + std::to_string(c.webhooks) + " (" +
           std::to_string(c.webhooks_batched) + " batched), " + std::to_string(c.webhook_facts) +
           (c.webhook_facts == 1 ? " fact" : " facts") + "</dd>";
  }
  return h + "</dl></article>";
}

// The campaigns card: each scheduled, running or paused campaign in words
// (ids and names only: nobody's phone or email).
std::string CampaignsSection(const StatusView& v) {
  if (v.campaigns.empty()) return "";
  std::string h = "<section id=\"campaigns\"><h2>Campaigns</h2><div class=\"cards\">";
  for (const auto& c : v.campaigns) {
    h += "<article class=\"card campaign\" data-campaign=\"" + HtmlEscape(c.id) +
         "\" data-tenant=\"" + HtmlEscape(c.tenant) + "\" data-state=\"" + HtmlEscape(c.state) +
         "\"><h2>" + HtmlEscape(c.name.empty() ? c.id : c.name) + "</h2>";
    h += "<div class=\"tenant\">tenant " + HtmlEscape(c.tenant) + ", campaign " + HtmlEscape(c.id) +
         "</div>";
    h += "<div class=\"state\">" + HtmlEscape(DescribeCampaign(c)) + "</div>";
    h += "<dl><dt>Sent</dt><dd>" + std::to_string(c.sent) + "</dd><dt>Waiting</dt><dd>" +
         std::to_string(c.waiting) + "</dd><dt>Skipped: opted out</dt><dd>" +
         std::to_string(c.skipped_consent) + "</dd><dt>Skipped: quiet hours</dt><dd>" +
         std::to_string(c.skipped_quiet) + "</dd><dt>Failed</dt><dd>" + std::to_string(c.failed) +
         "</dd></dl></article>";
  }
  return h + "</div></section>";
}

// "2026-11-23 11:19:33 UTC"
std::string StoryTime(int64_t at_us) {
  std::string t = FormatToolTime(at_us);  // 2026-11-23T11:19:33.620Z
  return t.substr(0, 10) + " " + t.substr(11, 8) + " UTC";
}

std::string Story(const ContactStory& s, const PageModel& m, size_t index) {
  const int64_t now = m.view.now_us;
  std::string h = "<div class=\"panel story\" data-contact=\"" + HtmlEscape(s.contact_id) + "\">";
  h += "<h2>" + HtmlEscape(!m.signed_in ? "A contact (sign in to see the name)"
                           : s.name.empty() ? "A contact without a name" : s.name) + "</h2>";
  h += "<p class=\"muted\">tenant " + HtmlEscape(s.tenant) + " &middot; phone " +
       HtmlEscape(s.phone.empty() ? "none" : s.phone) + " &middot; email " +
       HtmlEscape(s.email.empty() ? "none" : s.email) + " &middot; contact:" +
       HtmlEscape(s.contact_id) + "</p>";
  h += "<h3>Where it exists</h3><table><tr><th>System</th><th>Its id there</th></tr>";
  for (const auto& [name, id] : s.where)
    h += "<tr><td>" + HtmlEscape(name) + "</td><td>" +
         (id.empty() ? std::string("<span class=\"out\">not there yet</span>") : HtmlEscape(id)) +
         "</td></tr>";
  h += "</table>";
  h += "<h3>Was the STOP received? Consent by channel</h3>";
  if (s.consent.empty()) {
    h += "<p>No opt-out or opt-in was ever received: the person may be contacted.</p>";
  } else {
    h += "<table><tr><th>Channel</th><th>Status</th><th>Since</th><th>Through</th><th>Made by</th></tr>";
    for (const auto& c : s.consent)
      h += "<tr data-channel=\"" + HtmlEscape(c.channel) + "\"><td>" + HtmlEscape(c.channel) +
           "</td><td class=\"" + (c.opted_out ? "out\">Opted out" : "in\">Opted in") +
           "</td><td>" + HtmlEscape(ClockTime(c.since_us, now)) + " (" +
           HtmlEscape(TimeAgo(c.since_us, now)) + ")</td><td>" + HtmlEscape(c.via) +
           (c.how.empty() ? "" : " (" + HtmlEscape(c.how) + ")") + "</td><td>" +
           HtmlEscape(c.who) + "</td></tr>";
    h += "</table>";
  }
  h += "<h3>Waiting</h3>";
  if (s.waiting.empty()) {
    h += "<p>Nothing is waiting: every change was delivered or given up.</p>";
  } else {
    h += "<ul>";
    for (const auto& w : s.waiting) h += "<li>" + HtmlEscape(w) + "</li>";
    h += "</ul>";
  }
  h += "<h3>What happened (newest first)</h3><table><tr><th>When</th><th>System</th><th>What</th></tr>";
  for (const auto& l : s.timeline)
    h += "<tr><td>" + HtmlEscape(StoryTime(l.at_us)) + "</td><td>" + HtmlEscape(l.system) +
         "</td><td>" + HtmlEscape(l.what) + "</td></tr>";
  h += "</table>";
  h += "<h3>What to send IT</h3><p class=\"muted\">Copy this into your message to IT.</p>";
  const std::string id = "it-" + std::to_string(index);
  h += "<textarea id=\"" + id + "\" readonly>" + HtmlEscape(s.it_report);
  h += "Findings:\n";
  for (const auto& f : s.findings) h += HtmlEscape("- " + f + "\n");
  h += "</textarea>";
  if (!m.nonce.empty())
    h += "<button type=\"button\" class=\"copy\" data-for=\"" + id + "\" hidden>Copy</button>";
  return h + "</div>";
}

}  // namespace

std::string RenderStatusPage(const PageModel& m) {
  std::string h;
  h.reserve(16384);
  Add(&h, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">");
  if (m.refresh_s > 0) h += "<meta http-equiv=\"refresh\" content=\"" + std::to_string(m.refresh_s) + "\">";
  h += "<title>" + HtmlEscape(m.view.summary) + " &middot; DF-Middleware status</title><style>";
  Add(&h, kStyle);
  h += "</style></head><body><header><h1>DF-Middleware status</h1>";
  if (m.signed_in) {
    h += "<form method=\"post\" action=\"" + HtmlEscape(m.path) + "/sign-out\"><span>Signed in: " +
         HtmlEscape(m.key_name) + " (" + HtmlEscape(m.key_role) +
         ")</span><button type=\"submit\">Sign out</button></form>";
  } else {
    h += "<form method=\"post\" action=\"" + HtmlEscape(m.path) +
         "/sign-in\"><label for=\"key\">API key</label><input type=\"password\" id=\"key\" "
         "name=\"key\" autocomplete=\"off\" required><button type=\"submit\">Sign in</button>"
         "</form>";
  }
  h += "</header><main>";
  if (!m.notice.empty()) h += "<div class=\"notice\" role=\"status\">" + HtmlEscape(m.notice) + "</div>";
  h += "<p class=\"summary " + std::string(m.view.all_well ? "ok" : "bad") + "\" id=\"summary\">" +
       HtmlEscape(m.view.summary) + "</p>";
  h += "<div class=\"cards\">";
  for (const auto& c : m.view.cards) h += Card(c, false);
  h += Card(m.view.engine, true);
  h += "</div>";
  h += CampaignsSection(m.view);
  if (m.view.attention_total > 0) {
    h += "<section id=\"attention\"><h2>For a person to look at</h2><div class=\"panel\"><p>" +
         std::to_string(m.view.attention_total) +
         " time(s) staff or a system tried to opt a person back in after the person's own "
         "opt-out. The engine refused and set the opt-out again; check with the person before "
         "anyone contacts them (<code>dfm audit consent-conflicts</code>).</p><table><tr>"
         "<th>When</th><th>Tenant</th><th>Contact</th><th>What</th></tr>";
    for (const auto& a : m.view.attention)
      h += "<tr><td>" + HtmlEscape(FormatToolTime(a.at_us)) + "</td><td>" + HtmlEscape(a.tenant) +
           "</td><td>" +
           (a.hidden ? std::string("(sign in to see)") : "contact:" + HtmlEscape(a.contact_id)) +
           "</td><td>" + HtmlEscape(a.what) + "</td></tr>";
    h += "</table></div></section>";
  }
  h += "<section><h2>Search for a contact</h2><div class=\"panel\">";
  if (m.search_allowed) {
    h += "<form class=\"search\" method=\"post\" action=\"" + HtmlEscape(m.path) +
         "#result\" role=\"search\"><input type=\"search\" name=\"q\" value=\"" +
         HtmlEscape(m.signed_in ? m.query : std::string()) +
         "\" placeholder=\"a phone (any spelling), an email, or ghl:&lt;id&gt;\" "
         "aria-label=\"phone, email or id\"><input type=\"submit\" value=\"Search\"></form>";
    if (!m.signed_in)
      h += "<p class=\"muted\">Phones, emails and names are masked until you sign in with a "
           "viewer key.</p>";
  } else {
    h += "<p>" +
         HtmlEscape(m.search_refusal.empty() ? "Sign in with a viewer key to search for a contact."
                                             : m.search_refusal) +
         "</p>";
  }
  h += "</div>";
  if (m.searched) {
    h += "<div id=\"result\"></div>";
    if (!m.search_problem.empty())
      h += "<div class=\"panel\" id=\"search-result\"><p>" + HtmlEscape(m.search_problem) + "</p></div>";
    for (size_t i = 0; i < m.stories.size(); ++i) h += Story(m.stories[i], m, i);
  }
  h += "</section></main><footer>Updated " + HtmlEscape(FormatToolTime(m.view.now_us)) +
       (m.refresh_s > 0 ? "; refreshes every " + std::to_string(m.refresh_s) + " s" : "") +
       ". Machine-readable: <a href=\"../v1/health\">/v1/health</a>.</footer>";
  if (!m.nonce.empty())
    h += "<script nonce=\"" + HtmlEscape(m.nonce) +
         "\">document.querySelectorAll('button.copy').forEach(function(b){b.hidden=false;"
         "b.addEventListener('click',function(){var t=document.getElementById(b.dataset.for);"
         "t.select();if(navigator.clipboard){navigator.clipboard.writeText(t.value);}else{"
         "document.execCommand('copy');}b.textContent='Copied';});});</script>";
  h += "</body></html>";
  return h;
}

}  // namespace dfm
