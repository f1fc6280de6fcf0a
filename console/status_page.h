// The status page, /docs/visual (docs/status-page.md): one HTML document
// rendered from a model, with its style inline and no script it needs
// (a Copy button is the only script, and the page works without it). It
// refreshes itself while it shows only the status. Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "console/contact_story.h"
#include "console/status_view.h"
#include "util/strings.h"  // HtmlEscape

namespace dfm {

struct PageModel {
  StatusView view;
  std::string path = "visual";  // the page, relative to itself (forms post to it and below it)
  std::string query;                  // the search box's text
  bool searched = false;
  std::string search_problem;  // why the search found nothing, in words
  std::vector<ContactStory> stories;
  bool search_allowed = true;  // anonymous search is off and nobody is signed in: false
  std::string search_refusal;  // why not, when search_allowed is false; empty: the usual words
  bool signed_in = false;
  std::string key_name, key_role;  // who is signed in
  std::string notice;              // one line at the top ("Signed in.", "That key is not valid.")
  std::string nonce;               // the Copy button's script nonce (Content-Security-Policy)
  int refresh_s = 30;              // 0: no refresh (a search's answer)
};

std::string RenderStatusPage(const PageModel& model);

}  // namespace dfm
