// `ratelab report` (issue 24): the page's tables hold what the terminal commands print (summary --csv, verify),
// every string from a file is escaped, the figures' data cover every configuration, view and metric, and the
// page is written whole or not at all.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cli_support.hpp"
#include "results/trace_file.hpp"
#include "tools/analysis_commands.hpp"
#include "tools/fixed_target_commands.hpp"
#include "tools/report.hpp"

using ratelab_test::run_cli;
using ratelab_test::scratch;

namespace {

std::string read_text(const ratelab_test::fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string html_unescape(std::string s) {
  const std::pair<const char*, const char*> entities[] = {
      {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&amp;", "&"}};
  for (const auto& [entity, text] : entities)
    for (std::size_t at = s.find(entity); at != std::string::npos; at = s.find(entity, at + 1))
      s.replace(at, std::string(entity).size(), text);
  return s;
}

// The rows of the HTML table with this id, each as its unescaped cells (header row first).
std::vector<std::vector<std::string>> html_table(const std::string& page, const std::string& id) {
  const auto begin = page.find("<table class=\"sortable\" id=\"" + id + "\"") != std::string::npos
                         ? page.find("<table class=\"sortable\" id=\"" + id + "\"")
                         : page.find("<table id=\"" + id + "\"");
  REQUIRE(begin != std::string::npos);
  const std::string table = page.substr(begin, page.find("</table>", begin) - begin);
  std::vector<std::vector<std::string>> rows;
  // A cell's exact value is its data-value when it has one (numbers show 4 digits), else its text.
  const std::regex row("<tr[^>]*>(.*?)</tr>"), cell("<t[hd]([^>]*)>(.*?)</t[hd]>"), exact("data-value=\"([^\"]*)\"");
  for (auto r = std::sregex_iterator(table.begin(), table.end(), row); r != std::sregex_iterator(); ++r) {
    const std::string text = (*r)[1];
    std::vector<std::string> cells;
    for (auto c = std::sregex_iterator(text.begin(), text.end(), cell); c != std::sregex_iterator(); ++c)
    {
      const std::string attributes = (*c)[1];
      std::smatch value;
      cells.push_back(html_unescape(std::regex_search(attributes, value, exact) ? value[1].str() : (*c)[2].str()));
    }
    rows.push_back(cells);
  }
  return rows;
}

std::vector<std::vector<std::string>> csv_rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> fields;
    std::string field;
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (quoted && line[i] == '"' && i + 1 < line.size() && line[i + 1] == '"') field += '"', ++i;
      else if (line[i] == '"') quoted = !quoted;
      else if (line[i] == ',' && !quoted) fields.push_back(field), field.clear();
      else field += line[i];
    }
    fields.push_back(field);
    rows.push_back(fields);
  }
  return rows;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A small sweep (2 step sizes x 2 optimizers... here 3 values of c) with a hostile description and claims,
// one of which fails.
const char* kHostileDescription = "a </script><script>window.injected=1</script> & <b>bold</b> \"double\" 'single'";

ratelab_test::fs::path small_sweep(const std::string& name) {
  const auto ini = scratch(name + ".ini");
  std::ofstream(ini) << "[experiment]\nname = " << name << "\ndescription = " << kHostileDescription
                     << "\nsteps = 400\nreplicates = 6\ncheckpoints = 12\nviews = last, suffix\n"
                     << "[problem]\nname = quadratic\nd = 4\nmu = 0.5\nL = 1\nnoise_scale = 0.5\n"
                     << "[optimizer]\nname = sgd\n"
                     << "[schedule]\nname = inv_sqrt\nc = 0.05, 0.1, 0.2\n"
                     << "[claims]\n"
                     << "holds = status error=0\n"
                     << "fails_on_purpose = value expect=[0, 1e-300]\n"
                     << "ordered = compare a=schedule.c=0.2 b=schedule.c=0.05 expect=a<b\n";
  const auto h5 = scratch(name + ".h5");
  const auto o = run_cli("run " + ini.string() + " --quiet --threads 2 -o " + h5.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  return h5;
}

}  // namespace

TEST_CASE("json_string and html_escape leave nothing that can end a script or open a tag", "[report]") {
  using ratelab::tools::html_escape;
  using ratelab::tools::json_string;
  CHECK(html_escape("a</script>&\"'") == "a&lt;/script&gt;&amp;&quot;&#39;");
  CHECK(json_string("</script>&x") == "\"\\u003c/script\\u003e\\u0026x\"");
  CHECK(json_string("q\"b\\\n") == "\"q\\\"b\\\\\\n\"");
  CHECK(json_string("line\xE2\x80\xA8sep") == "\"line\\u2028sep\"");  // ends a JS string literal in old engines
  CHECK(json_string(std::string("nul\0x", 5)) == "\"nul\\u0000x\"");
}

TEST_CASE("report: tables equal summary --csv and verify, strings escaped, every curve embedded", "[report]") {
  const auto h5 = small_sweep("report_sweep");
  const auto page_path = scratch("report_sweep.html");
  const auto made = run_cli("report " + h5.string() + " -o " + page_path.string());
  INFO(made.output);
  REQUIRE(made.exit_code == 0);
  CHECK_THAT(made.output, Catch::Contains("wrote " + page_path.string()));
  const std::string page = read_text(page_path);

  SECTION("self-contained: no external resource") {
    CHECK(count(page, "src=") == 0);
    CHECK(count(page, "href=") == 0);
    CHECK(count(page, "http://") == count(page, "http://www.w3.org/2000/svg"));
    CHECK(count(page, "https://") == 0);
  }
  SECTION("the hostile description is text, and only the page's two scripts open or close") {
    CHECK(count(page, "<script") == 2);
    CHECK(count(page, "</script") == 2);
    CHECK(count(page, "window.injected") == 3);  // as text: under the title, in the table, in the experiment file
    CHECK_THAT(page, Catch::Contains(
                         "a &lt;/script&gt;&lt;script&gt;window.injected=1&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt; "
                         "&quot;double&quot; &#39;single&#39;"));
    CHECK(count(page, "<b>") == 0);
  }
  SECTION("the summary table is summary --csv, cell for cell (exact values in data-value, 4 digits shown)") {
    const auto csv = run_cli("summary " + h5.string() + " --csv");
    REQUIRE(csv.exit_code == 0);
    const auto expected = csv_rows(csv.output);
    const auto shown = html_table(page, "summary");
    REQUIRE(expected.size() == 1 + 3 * 2);  // header, 3 configurations x 2 views
    CHECK(shown == expected);
    CHECK_THAT(page, Catch::Contains("data-value=\"" + expected[1][3] + "\">" + ratelab::tools::short_real(std::stod(expected[1][3])) + "<"));
  }
  SECTION("claims: verify's verdicts, failed first") {
    const auto verify = run_cli("verify " + h5.string());
    CHECK(verify.exit_code == 5);
    const auto claims = html_table(page, "claims");
    REQUIRE(claims.size() == 4);
    CHECK(claims[0] == std::vector<std::string>{"verdict", "claim", "what", "measured", "bound"});
    CHECK(claims[1][0] == "FAIL");
    CHECK(claims[1][1] == "fails_on_purpose");
    CHECK(claims[2][0] == "PASS");
    CHECK(claims[3][0] == "PASS");
    for (std::size_t r = 1; r < claims.size(); ++r) {
      // verify's line for the claim holds the same what, measured and bound
      INFO(verify.output);
      CHECK_THAT(verify.output, Catch::Contains(claims[r][1]) && Catch::Contains(claims[r][3]) &&
                                    Catch::Contains(claims[r][4]));
    }
    CHECK_THAT(page, Catch::Contains("FAILED: 2/3 claims hold"));
    // compare's bound text holds '<': escaped in the HTML, read back intact
    CHECK_THAT(page, Catch::Contains("a&lt;b") || Catch::Contains("&lt;"));
  }
  SECTION("what varies: one row per configuration with the varying parameter") {
    const auto configurations = html_table(page, "configurations");
    REQUIRE(configurations.size() == 4);
    CHECK(configurations[0][2] == "schedule.c");
    CHECK(configurations[1][2] == "0.05");
    CHECK(configurations[3][2] == "0.2");
    CHECK(configurations[1][3] == "6");  // ok runs
  }
  SECTION("the figure data: every metric, every view, one curve per configuration, no replicate") {
    const auto begin = page.find("<script type=\"application/json\" id=\"data-0\">");
    REQUIRE(begin != std::string::npos);
    const std::string json = page.substr(begin, page.find("</script>", begin) - begin);
    for (const char* metric : {"\"subopt\":{", "\"dist2\":{", "\"value\":{", "\"gradnorm2\":{"})
      CHECK_THAT(json, Catch::Contains(metric));
    // per metric and view, 3 curves [c, center, low, high]: 4 metrics x 2 views x 3
    CHECK(count(json, "[0,[") == 4 * 2);
    CHECK(count(json, "[1,[") == 4 * 2);
    CHECK(count(json, "[2,[") == 4 * 2);
    CHECK(count(json, "[3,[") == 0);
    CHECK_THAT(json, Catch::Contains("\"band\":\"q0.1\\u2013q0.9\"") || Catch::Contains("\"band\":\"q0.1"));
  }
}

TEST_CASE("report, ert, ecdf and profile read only the run data they need, with the output of the whole file",
          "[report][window]") {
  namespace results = ratelab::results;
  namespace tools = ratelab::tools;
  const auto h5 = small_sweep("report_parts");
  const std::string path = h5.string();
  const results::TraceData whole = results::read_trace_file(path);
  const long R = whole.layout.replicates;
  const long C = long(whole.layout.configurations.size());
  tools::ReportOptions options;
  const std::string expected = tools::report_html({{path, whole}}, options);
  // The page from the file read in parts: the curves and the summary a window of configurations and one
  // metric at a time, the claims and the ECDF every configuration of the metrics they name.
  const results::TraceReader reader(path);
  const std::string page = tools::report_html({{path, reader.outline(), &reader}}, options);
  CHECK(page == expected);
  CHECK_THAT(page, Catch::Contains("FAILED: 2/3 claims hold"));
  // ert, ecdf and profile given files read one metric of every configuration (a quarter of these 4 metrics).
  std::ostringstream ert_file, ert_whole, ecdf_file, ecdf_whole, profile_file, profile_whole;
  tools::ErtOptions ert;
  ert.files = {path};
  ert.targets = {1e-2};
  ert.metric = "dist2";
  ert.bootstrap = 50;
  results::reset_largest_run_read();
  REQUIRE(tools::ert(ert, ert_file) == 0);
  CHECK(results::largest_run_read() == C * R);
  REQUIRE(tools::ert(ert, {whole}, {path}, ert_whole) == 0);
  CHECK(ert_file.str() == ert_whole.str());
  tools::EcdfOptions ecdf;
  ecdf.files = {path};
  ecdf.csv = true;
  REQUIRE(tools::ecdf(ecdf, ecdf_file) == 0);
  REQUIRE(tools::ecdf(ecdf, {whole}, {path}, ecdf_whole) == 0);
  CHECK(ecdf_file.str() == ecdf_whole.str());
  tools::ProfileOptions profile;
  profile.files = {path};
  profile.csv = true;
  REQUIRE(tools::profile(profile, profile_file) == 0);
  REQUIRE(tools::profile(profile, {whole}, {path}, profile_whole) == 0);
  CHECK(profile_file.str() == profile_whole.str());
}

TEST_CASE("report: bad input writes nothing and leaves an existing page whole", "[report]") {
  const auto page_path = scratch("kept.html");
  std::ofstream(page_path) << "previous page";
  const auto missing = run_cli("report " + scratch("no_such.h5").string() + " -o " + page_path.string());
  CHECK(missing.exit_code == 2);
  CHECK_THAT(missing.output, Catch::Contains("no_such.h5"));
  CHECK(read_text(page_path) == "previous page");

  const auto h5 = small_sweep("report_bad_output");
  const auto nowhere = run_cli("report " + h5.string() + " -o /nonexistent_dir/page.html");
  INFO(nowhere.output);
  CHECK(nowhere.exit_code == 2);
  CHECK_THAT(nowhere.output, Catch::Contains("cannot write /nonexistent_dir/page.html"));
  const auto no_output = run_cli("report " + h5.string());
  CHECK(no_output.exit_code == 2);
  CHECK_THAT(no_output.output, Catch::Contains("output"));
  const auto bad_metric = run_cli("report " + h5.string() + " --metric subopr -o " + page_path.string());
  CHECK(bad_metric.exit_code == 2);
  CHECK_THAT(bad_metric.output, Catch::Contains("subopt"));
  CHECK(read_text(page_path) == "previous page");
  for (const auto& entry : ratelab_test::fs::directory_iterator(page_path.parent_path()))
    CHECK(entry.path().filename().string().find(".partial.") == std::string::npos);
}

TEST_CASE("run --report writes the page next to the trace file", "[report]") {
  const auto h5 = scratch("run_report.h5");
  const auto page = scratch("run_report.html");
  const auto o = run_cli("run quickstart --quick --quiet --threads 2 --set experiment.replicates=4 --report -o " + h5.string());
  INFO(o.output);
  CHECK(o.exit_code == 0);
  CHECK_THAT(o.output, Catch::Contains("wrote " + page.string()));
  const std::string text = read_text(page);
  CHECK_THAT(text, Catch::StartsWith("<!DOCTYPE html>") && Catch::EndsWith("</html>\n"));
  CHECK_THAT(text, Catch::Contains("<h1>quickstart</h1>") && Catch::Contains("/5 claims hold"));
}
